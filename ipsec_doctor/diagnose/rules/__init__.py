"""ipsec_doctor.diagnose.rules."""
