"""ipsec-doctor: IPsec site-to-site VPN troubleshooting over SSH."""

__version__ = "0.1.0"
