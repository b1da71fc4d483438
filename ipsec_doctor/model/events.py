"""Normalised events: what a syslog, debug or charon log line means, whatever its wording.

Contract: the signature tables (platform YAML, data) map device messages to these names;
parse/ produces :class:`ipsec_doctor.model.state.LogEvent` objects with them and diagnose/
rules match on them. Add names freely; never rename one (they appear in JSON ``detail``).
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    ISAKMP_OFF = "isakmp_off"  # %CRYPTO-6-ISAKMP_ON_OFF: ISAKMP is OFF; charon not running
    ISAKMP_ON = "isakmp_on"
    PHASE1_RETRANSMIT = "phase1_retransmit"  # retransmitting phase 1 MM_NO_STATE...
    PHASE1_NO_RESPONSE = "phase1_no_response"  # giving up / peer not responding to IKE
    PHASE1_PROPOSAL_REJECTED = "phase1_proposal_rejected"  # atts are not acceptable ...
    PHASE1_MODE_FAILURE = "phase1_mode_failure"  # %CRYPTO-6-IKMP_MODE_FAILURE (ambiguous)
    PSK_MISSING = "psk_missing"  # No pre-shared key with A.B.C.D!
    AUTH_FAILED = "auth_failed"  # IKMP_BAD_MESSAGE, reserved not zero, AUTHENTICATION_FAILED
    PEER_ADDRESS_MISMATCH = "peer_address_mismatch"  # No cert, and no keys ... with remote peer
    NAT_T_NOT_DETECTED = "nat_t_not_detected"
    DPD_TEARDOWN = "dpd_teardown"  # DPD: peer not responding, tearing down SA
    SA_REPLACED = "sa_replaced"  # SA deleted/re-established (flap candidates)
    PHASE2_TRANSFORM_REJECTED = "phase2_transform_rejected"  # transform proposal not supported
    PHASE2_PROXY_REJECTED = (
        "phase2_proxy_rejected"  # TS_UNACCEPTABLE ...
    )
    PHASE2_POLICY_INVALIDATED = (
        "phase2_policy_invalidated"  # error 32 / 256
    )
    PHASE2_PROPOSAL_REJECTED = (
        "phase2_proposal_rejected"  # CHILD NO_PROPOSAL_CHOSEN
    )
    PFS_MISMATCH = "pfs_mismatch"
    INVALID_LOCAL_ADDRESS = (
        "invalid_local_address"  # invalid local address X
    )
    PEER_NOT_FOUND = "peer_not_found"  # peer address X not found
    IDENTITY_MISMATCH = "identity_mismatch"  # Identity doesn't match negotiated identity
    INVALID_SPI = "invalid_spi"  # %CRYPTO-4-RECVD_PKT_INV_SPI
    PACKET_NOT_IPSEC = "packet_not_ipsec"  # %CRYPTO-4-RECVD_PKT_NOT_IPSEC
    XAUTH_FAILED = "xauth_failed"
    VPN_GROUP_NOT_FOUND = "vpn_group_not_found"
    ADDRESS_POOL_FAILURE = "address_pool_failure"
    ROUTE_LIMIT_EXCEEDED = "route_limit_exceeded"  # %IPRT-3-ROUTELIMITEXCEEDED
    ROUTE_TARGET_DENIED = "route_target_denied"  # DENIED due to: extended community not supported
    HW_ENGINE_ERROR = "hw_engine_error"
    TUNNEL_UP = "tunnel_up"  # IKE/CHILD SA established
