"""The rules, grouped by the stage they judge, in the order the engine runs them.

A rule is ``Callable[[Tunnel], list[Finding]]``: pure, reads typed state only, never raises
on ``None`` sections (unknown) and stays silent where it cannot judge.
"""

from __future__ import annotations

from collections.abc import Callable

from ipsec_doctor.diagnose.context import Tunnel
from ipsec_doctor.diagnose.rules import audit, data, ike, ipsec, prereq, routing, traffic
from ipsec_doctor.model.findings import Finding, Stage

Rule = Callable[[Tunnel], list[Finding]]

RULES: dict[Stage, list[Rule]] = {
    Stage.PREREQ: list(prereq.RULES),
    Stage.TRAFFIC: list(traffic.RULES),
    Stage.IKE: list(ike.RULES),
    Stage.IPSEC: list(ipsec.RULES),
    Stage.DATA: list(data.RULES),
    Stage.ROUTING: list(routing.RULES),
    Stage.AUDIT: list(audit.RULES),
}

__all__ = ["RULES", "Rule"]
