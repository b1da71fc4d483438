"""ipsec_doctor.lab."""
