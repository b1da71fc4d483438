"""Loaded before collector processes start (by the forkserver, or by the audit before it
forks them): collector processes are forked warm.

Contract:
- Importing this module (or :func:`warm`) loads, once per process, what every collector process
  would otherwise load for itself after it starts (each of its threads at once, while the caches are
  still empty): the CLI's modules (a forked process runs the parent's main module again, whose
  imports are then found loaded), the audit and the converters, every packaged platform's data
  (plan, signatures), both TextFSM indexes (ntc-templates' compiles ~1,000 expressions) and the
  diagnosis tables (fixes, event codes).
- It never raises: anything that fails here is left for the collector process to load (and
  report) as before; the forkserver must start whatever the data says.
"""

from __future__ import annotations

import contextlib
import functools
import importlib


def _plan_commands(platform: str) -> list[str]:
    """Every command of the platform's plan, variables filled with stand-ins (an address for
    an address, a name for a name: the template index matches either the same way)."""
    from ipsec_doctor.platforms.loader import load_platform

    commands: list[str] = []
    for entry in load_platform(platform).commands:
        values = {v: "192.0.2.1" if v in _ADDRESS_VARIABLES else "X" for v in entry.variables}
        commands.append(entry.render(values) or entry.command)
        commands.extend(w for w in entry.wider if "{" not in w)
    return commands


#: Plan variables that hold an address (the others hold names).
_ADDRESS_VARIABLES = frozenset({"peer", "local_lan", "remote_lan", "local_address"})


@functools.cache
def warm() -> None:
    """Load what every collector process needs (see the module contract); once per process."""
    for name in (
        "ipsec_doctor.cli.main",
        "ipsec_doctor.audit.runner",
        "ipsec_doctor.parse.derive",
    ):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from ipsec_doctor.parse import converter_module
        from ipsec_doctor.platforms.loader import available_platforms, load_platform

        for platform in available_platforms():
            with contextlib.suppress(Exception):
                load_platform(platform)
                converter_module(platform)
    with contextlib.suppress(Exception):
        from ipsec_doctor.parse.textfsm_parser import _index, _template_dirs, precompile

        for _source, directory in _template_dirs():
            _index(directory)
        for platform in available_platforms():
            with contextlib.suppress(Exception):
                precompile(load_platform(platform).textfsm_platform, _plan_commands(platform))
    for module, loader in (
        ("ipsec_doctor.diagnose.fixes", "load_fixes"),
        ("ipsec_doctor.diagnose.messages", "load_event_codes"),
    ):
        with contextlib.suppress(Exception):
            getattr(importlib.import_module(module), loader)()


warm()
