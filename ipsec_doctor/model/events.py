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
    PHASE2_PROXY_REJECTED = "phase2_proxy_rejected"  # TS_UNACCEPTABLE ...
    PHASE2_POLICY_INVALIDATED = "phase2_policy_invalidated"  # error 32 / 256
    PHASE2_PROPOSAL_REJECTED = "phase2_proposal_rejected"  # CHILD NO_PROPOSAL_CHOSEN
    PFS_MISMATCH = "pfs_mismatch"
    INVALID_LOCAL_ADDRESS = "invalid_local_address"  # invalid local address X
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
    # --- messages an expert reads in a debug dump (analyze --log) ----------------------------
    NOTIFY_REJECTED = "notify_rejected"  # Notify has no hash. Rejected (ambiguous: policy / key)
    PROPOSAL_NOT_CHOSEN = "proposal_not_chosen"  # NOTIFY PROPOSAL_NOT_CHOSEN protocol 0
    SA_NOT_ACCEPTABLE = "sa_not_acceptable"  # bare "SA not acceptable!" (phase 1 or 2)
    PHASE2_RETRANSMIT = "phase2_retransmit"  # retransmitting due to retransmit phase 2
    IKE_NO_SA = "ike_no_sa"  # %CRYPTO-4-IKMP_NO_SA: IKE message from X has no SA
    IKE_NOT_ENCRYPTED = "ike_not_encrypted"  # %CRYPTO-6-IKMP_NOT_ENCRYPTED
    PACKET_MAC_ERROR = "packet_mac_error"  # %CRYPTO-4-RECVD_PKT_MAC_ERR
    REPLAY_ERROR = "replay_error"  # %CRYPTO-4-PKT_REPLAY_ERR
    AAA_FAILED = "aaa_failed"  # AAA/AUTHEN Status=FAIL, Post authorization status = ERROR
    # progress and housekeeping: how far a negotiation got (no finding of their own)
    SA_REQUEST = "sa_request"  # IPSEC(sa_request): interesting traffic asks for SAs
    PHASE1_STARTED = "phase1_started"  # beginning Main Mode exchange
    PHASE1_PROPOSAL_ACCEPTED = "phase1_proposal_accepted"  # atts are acceptable. Next payload
    PSK_FOUND = "psk_found"  # found peer pre-shared key matching X
    PHASE1_AUTHENTICATED = "phase1_authenticated"  # SA has been authenticated with X
    PHASE2_STARTED = "phase2_started"  # beginning Quick Mode exchange
    PHASE2_PROPOSAL = "phase2_proposal"  # IPSEC(validate_proposal_request): proposal part #1
    PHASE2_PROPOSAL_ACCEPTED = "phase2_proposal_accepted"  # atts are acceptable (quick mode)
    SA_DELETED = "sa_deleted"  # IPSEC(delete_sa), deleting SA reason "...", reaper
    SA_BUDDING = "sa_budding"  # SA is still budding. Attached new ipsec request to it.
    NODE_DELETED = "node_deleted"  # deleting node N error FALSE reason "..."
    DPD_REQUEST = "dpd_request"  # DPD request sent to X
    CONFIG_CHANGED = "config_changed"  # %SYS-5-CONFIG_I: Configured from console
