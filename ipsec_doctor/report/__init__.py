"""ipsec_doctor.report."""
