"""Tests of ipsec_doctor.collect."""
