"""Text -> typed state: TextFSM lookup, one converter module per platform, logs.

Contract:
- :func:`parse_device` is the one entry point for a device: it picks the converter module
  ``ipsec_doctor.parse.<converter>`` named by the platform's data (``converter:`` in
  ``platforms/<platform>.yaml``, default the platform name) from ``DeviceCapture.platform`` and
  returns its :class:`~ipsec_doctor.model.state.DeviceState`. It never raises for command
  problems (they become ``state.problems``); an unknown platform is a
  :class:`~ipsec_doctor.errors.ConfigError`. A device that failed as a whole (``capture.error``
  and no captures) gives a state with only ``unreachable`` set.
- A converter module provides ``parse_device(capture, peer) -> DeviceState`` and
  ``convert_command(plan_id, command, text, *, device, sample, peer, platform)
  -> (rows, typed value)``, and may list the plan ids it understands in ``SECTIONS`` and
  offer ``convert_value`` (the same arguments, the typed value alone, shared with its
  ``parse_device``).
- Other entry points: :func:`ipsec_doctor.parse.textfsm_parser.parse_output` (rows of one
  output), :func:`ipsec_doctor.parse.logs.classify_log_text` (a log file),
  :func:`ipsec_doctor.parse.derive.derive_variables` (plan variables between commands),
  :func:`ipsec_doctor.parse.one_command.parse_one` (``ipsec-doctor parse``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.model.capture import DeviceCapture
from ipsec_doctor.model.state import DeviceState
from ipsec_doctor.platforms.loader import load_platform

__all__ = ["converter_module", "parse_device"]


def converter_module(platform: str) -> ModuleType:
    """The converter module of ``platform`` (named by its platform data)."""
    loaded = load_platform(platform)
    name = f"ipsec_doctor.parse.{loaded.converter}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        raise ConfigError(
            f"{platform}: converter module {name!r} does not exist (platforms/{platform}.yaml)"
        ) from error


def parse_device(capture: DeviceCapture, peer: str | None = None) -> DeviceState:
    """The typed state of one device, by its platform's converter (see the module docstring)."""
    if capture.error and not capture.captures:
        return DeviceState(
            name=capture.name,
            platform=capture.platform,
            hostname=capture.hostname,
            unreachable=capture.error,
        )
    state = converter_module(capture.platform).parse_device(capture, peer)
    if not isinstance(state, DeviceState):
        raise ConfigError(f"{capture.platform}: converter returned {type(state).__name__}")
    return state
