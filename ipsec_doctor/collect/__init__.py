"""ipsec_doctor.collect."""
