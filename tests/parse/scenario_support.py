"""Read a scenario device folder into a DeviceCapture the way the plan runner would (test aid).

The plan is walked to a fixed point: each round parses what was read, derives the plan
variables (:func:`ipsec_doctor.parse.derive.derive_variables`) and reads the files the new
commands name (exact command first, then the wider outputs the plan lists). Texts are redacted
as the collect layer does; a file whose text is an IOS refusal (``% Invalid input detected``)
becomes a REJECTED capture, like a live run.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ipsec_doctor.collect.redaction import redact
from ipsec_doctor.model.capture import CommandCapture, DeviceCapture, Outcome, command_filename
from ipsec_doctor.model.lookup import candidate_commands
from ipsec_doctor.parse import parse_device
from ipsec_doctor.parse.derive import derive_variables
from ipsec_doctor.platforms.loader import load_platform
from ipsec_doctor.resources import data_dir

SCENARIOS = data_dir("scenarios")


def scenario_names() -> list[str]:
    return sorted(p.name for p in SCENARIOS.iterdir() if (p / "scenario.yaml").is_file())


def scenario(name: str) -> dict[str, object]:
    data = yaml.safe_load((SCENARIOS / name / "scenario.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def device_meta(folder: Path) -> dict[str, object]:
    data = yaml.safe_load((folder / "device.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def peer_for(name: str, device: str) -> str:
    """The peer ``device`` is checked for: the scenario's peer for the first device, else the
    first address of the first device."""
    meta = scenario(name)
    devices = [str(d) for d in meta.get("devices", [])]  # type: ignore[attr-defined]
    if not devices or device == devices[0]:
        return str(meta["peer"])
    first = device_meta(SCENARIOS / name / devices[0])
    return str(first["addresses"][0])  # type: ignore[index]


def _read(path: Path, command: str, sample: int) -> CommandCapture:
    text = redact(path.read_text(encoding="utf-8"))
    refused = text.lstrip().startswith(("% Invalid input", "% Ambiguous", "% Incomplete"))
    return CommandCapture(
        command=command,
        sample=sample,
        outcome=Outcome.REJECTED if refused else Outcome.OK,
        raw=text,
        error=text.strip().splitlines()[0] if refused else "",
    )


def load_device(folder: Path, peer: str) -> DeviceCapture:
    meta = device_meta(folder)
    platform = load_platform(str(meta["platform"]))
    capture = DeviceCapture(
        name=folder.name, platform=platform.name, hostname=str(meta.get("hostname", ""))
    )
    wider = platform.wider_patterns()
    variables: dict[str, str] = {"peer": peer}
    for _round in range(5):
        before = len(capture.captures)
        for entry in platform.commands:
            rendered = entry.render(variables)
            if rendered is not None:
                commands = candidate_commands(rendered, wider)
            else:
                commands = [w for w in entry.wider if "{" not in w]
            for sample in range(1, entry.samples + 1):
                for command in commands:
                    if capture.get(command, sample) is not None:
                        break
                    path = folder / command_filename(command, sample)
                    if path.is_file():
                        capture.captures.append(_read(path, command, sample))
                        break
        variables = derive_variables(parse_device(capture, peer), peer)
        if len(capture.captures) == before:
            break
    return capture
