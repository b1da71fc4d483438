"""What a device has configured, as far as choosing commands goes: the plan's ``when`` words.

Contract: a platform plan entry may carry ``when: <feature>`` (or a list, meaning any of them);
the plan runner runs it only when the device has that feature or when it is not known yet
(unknown is not absent). The parse layer decides the features from earlier outputs
(:func:`ipsec_doctor.parse.derive.device_features`); the loader validates the words against
this vocabulary. Add names freely; never rename one (plans in the field use them).
"""

from __future__ import annotations

from enum import StrEnum


class Feature(StrEnum):
    """A configuration trait that makes some show commands meaningful."""

    CRYPTO_MAP = "crypto_map"  # policy-based: crypto map entries (IOS) are configured
    TUNNEL_PROTECTION = "tunnel_protection"  # route-based: a tunnel interface with an IPsec profile
    IKEV1 = "ikev1"  # IKEv1 (ISAKMP) policies, keys or maps that use it
    IKEV2 = "ikev2"  # IKEv2 proposals, policies, keyrings or profiles
