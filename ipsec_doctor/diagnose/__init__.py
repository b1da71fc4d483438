"""ipsec_doctor.diagnose: the pure decision tree (rules by stage, earliest failing stage first).

from ipsec_doctor.diagnose import diagnose, diagnose_tunnels, Settings
findings = diagnose(view)                 # list[Finding], report order
results = diagnose_tunnels(views)         # list[TunnelResult], one per tunnel
"""

from ipsec_doctor.diagnose.context import Settings
from ipsec_doctor.diagnose.engine import diagnose, diagnose_tunnels
from ipsec_doctor.diagnose.references import CODE_REFERENCE, REFERENCES

__all__ = ["CODE_REFERENCE", "REFERENCES", "Settings", "diagnose", "diagnose_tunnels"]
