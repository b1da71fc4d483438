"""ipsec_doctor.platforms."""
