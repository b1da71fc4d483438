"""ipsec_doctor.workflow: collect → parse → diagnose → Report, shared by every mode."""
