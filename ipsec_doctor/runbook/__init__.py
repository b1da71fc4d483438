"""ipsec_doctor.runbook."""
