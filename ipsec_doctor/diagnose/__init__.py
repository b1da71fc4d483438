"""ipsec_doctor.diagnose."""
