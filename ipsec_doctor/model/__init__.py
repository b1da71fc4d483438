"""ipsec_doctor.model."""
