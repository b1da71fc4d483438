"""JSON output of `check` and `analyze`: one document per run (schema: report.schema.json).

Contract: :func:`render_json` serialises a Report exactly as :meth:`Report.to_dict` shapes it;
:func:`load_schema` returns the JSON schema shipped in the package, which tests validate
every scenario's output against.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ipsec_doctor.model.report import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


def load_schema() -> dict[str, Any]:
    text = resources.files("ipsec_doctor.report").joinpath("report.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema
