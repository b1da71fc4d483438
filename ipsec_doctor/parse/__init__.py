"""ipsec_doctor.parse."""
