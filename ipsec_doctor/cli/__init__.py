"""ipsec_doctor.cli."""
