"""Fixtures of the runbook tests (helpers live in tests/runbook/support.py)."""

from tests.runbook.support import audit_dir

__all__ = ["audit_dir"]
