"""Strategy step ids: where in the troubleshooting path a finding was made.

Contract:
- Every finding's ``reference`` is a key of :data:`REFERENCES`; runbook steps and the platform
  plans (``reference:`` of each command) use the same ids.
- Ids are ``<stage>.<step>`` and, like finding codes, are an interface: never rename one.
- :data:`CODE_REFERENCE` is the step each code is found at unless a rule says otherwise.

The steps follow the Cisco guide's strategy (seed 004, "IPsec Troubleshooting Strategy" and
"Questions for Effective Troubleshooting"): is interesting traffic seen, does IKE come up, does
IPsec come up, do the counters move; plus the prerequisites before and the routing after.
"""

from __future__ import annotations

from ipsec_doctor.model.findings import Code

#: id -> one-line title.
REFERENCES: dict[str, str] = {
    "prereq.clock": "Read the device clock to date log messages against the check window",
    "prereq.config": "Read the running configuration (crypto keys, maps, timers; secrets redacted)",
    "prereq.isakmp": "IKE/ISAKMP is enabled on the device (crypto isakmp enable / charon runs)",
    "prereq.policy": "At least one ISAKMP policy (IKE proposal) is configured",
    "traffic.crypto_map": "The crypto map is applied to the outbound interface",
    "traffic.route": "Interesting traffic is routed to the interface that carries the crypto map",
    "traffic.acl": "The crypto ACL (match address) counts hits for interesting traffic",
    "traffic.source": "The interface that sources the protected traffic is up",
    "ike.route": "The peer (tunnel endpoint) is routable from the device",
    "ike.sa": "The ISAKMP SA with the peer is established (QM_IDLE / READY)",
    "ike.logs": "Phase 1 messages in the log (syslog / debug crypto isakmp)",
    "ike.proposal": "The ISAKMP policies of both peers share encryption, hash, group, auth",
    "ike.auth": "Pre-shared keys exist for the peer and are the same on both ends",
    "ike.peer": "Each end's configured peer address is the other end's real address",
    "ike.nat": "NAT traversal is enabled where a NAT device sits between the peers",
    "ike.dpd": "DPD / keepalive timers suit the link",
    "ike.stability": "The SAs stay the same between two samples (no flapping)",
    "ike.remote_access": "Remote-access client authentication (XAUTH, group, address pool)",
    "ipsec.sa": "Inbound and outbound IPsec SAs are installed for the peer",
    "ipsec.transform": "The two ends share at least one transform set",
    "ipsec.selectors": "The crypto ACLs of the two ends are mirror images (proxy identities)",
    "ipsec.local_address": "The peer addresses this device at its crypto-map interface address",
    "ipsec.peer": "A crypto map entry names the peer that proposes",
    "ipsec.pfs": "PFS settings (set pfs groupN) agree between the peers",
    "ipsec.lifetime": "SA lifetimes agree between the peers",
    "ipsec.acl_overlap": "Crypto ACLs of different map entries do not overlap",
    "data.counters": "Encaps and decaps counters move both ways between two samples",
    "data.engine": "Crypto engine connections and the hardware accelerator work",
    "data.spi": "Both ends use the same SAs (no packets with an invalid SPI)",
    "data.cleartext": "No clear-text packets arrive that the crypto ACL says must be encrypted",
    "data.errors": "The SAs report no send errors",
    "routing.remote_lan": "Traffic for the remote LAN (and decrypted return traffic) is routed",
    "routing.vrf": "VRF tables hold the routes to the peer and the LANs",
    "audit.crypto": "Policies and transform sets in use avoid DES, 3DES, MD5 and DH groups 1/2/5",
    "meta.collection": "Every command needed for a stage was collected and understood",
    "data.healthy": "The tunnel is up and carries traffic both ways",
}

#: The step at which each code is usually found.
CODE_REFERENCE: dict[Code, str] = {
    Code.ISAKMP_DISABLED: "prereq.isakmp",
    Code.NO_ISAKMP_POLICY: "prereq.policy",
    Code.CRYPTO_MAP_NOT_APPLIED: "traffic.crypto_map",
    Code.CRYPTO_MAP_WRONG_INTERFACE: "traffic.route",
    Code.NO_INTERESTING_TRAFFIC: "traffic.acl",
    Code.SOURCE_INTERFACE_DOWN: "traffic.source",
    Code.NO_ROUTE_TO_PEER: "ike.route",
    Code.PHASE1_NO_RESPONSE: "ike.sa",
    Code.PHASE1_PROPOSAL_MISMATCH: "ike.proposal",
    Code.PSK_MISSING: "ike.auth",
    Code.PSK_MISMATCH: "ike.auth",
    Code.PEER_ADDRESS_MISMATCH: "ike.peer",
    Code.NAT_T_NOT_ENABLED: "ike.nat",
    Code.DPD_TOO_AGGRESSIVE: "ike.dpd",
    Code.SA_FLAPPING: "ike.stability",
    Code.TRANSFORM_SET_MISMATCH: "ipsec.transform",
    Code.PROXY_ID_MISMATCH: "ipsec.selectors",
    Code.INVALID_LOCAL_ADDRESS: "ipsec.local_address",
    Code.PEER_NOT_FOUND: "ipsec.peer",
    Code.PFS_MISMATCH: "ipsec.pfs",
    Code.LIFETIME_MISMATCH: "ipsec.lifetime",
    Code.CRYPTO_ACL_OVERLAP: "ipsec.acl_overlap",
    Code.ONE_WAY_TRAFFIC: "data.counters",
    Code.NO_TRAFFIC_ENCRYPTED: "data.counters",
    Code.SPI_OUT_OF_SYNC: "data.spi",
    Code.PACKET_NOT_IPSEC: "data.cleartext",
    Code.SEND_ERRORS: "data.errors",
    Code.HW_CRYPTO_ENGINE_FAULT: "data.engine",
    Code.NO_ROUTE_TO_REMOTE_LAN: "routing.remote_lan",
    Code.VRF_ROUTE_MISSING: "routing.vrf",
    Code.XAUTH_FAILED: "ike.remote_access",
    Code.VPN_GROUP_NOT_FOUND: "ike.remote_access",
    Code.ADDRESS_POOL_FAILURE: "ike.remote_access",
    Code.WEAK_CRYPTO: "audit.crypto",
    Code.TUNNEL_HEALTHY: "data.healthy",
    Code.INSUFFICIENT_DATA: "meta.collection",
}


def reference_title(reference: str) -> str:
    """The one-line title of a step id ("" when unknown)."""
    return REFERENCES.get(reference, "")
