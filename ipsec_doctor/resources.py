"""Where the packaged data lives: one resolver for every data directory the tool reads.

Contract:
- :func:`data_dir` returns the directory of one kind of packaged data as a real filesystem
  path (TextFSM needs real files), or raises :class:`~ipsec_doctor.errors.ConfigError` naming
  every place it looked.
- Kinds: ``templates`` (TextFSM templates + ``index``), ``platforms`` (platform YAML),
  ``runbooks`` (runbook YAML), ``scenarios`` (the lab's capture folders).
- It works from a source checkout and from an installed (non-editable) wheel:

  * ``textfsm_templates/`` and ``runbooks/`` stay at the top of the repository (the layout the
    product card fixes). ``ipsec_doctor/_data/textfsm_templates`` and
    ``ipsec_doctor/_data/runbooks`` are relative symlinks to them; setuptools follows the
    links when it builds a wheel (``package-data`` in pyproject.toml), so an installed
    package carries real copies at those paths.
  * ``platforms`` and ``scenarios`` live inside the package already
    (``ipsec_doctor/platforms``, ``ipsec_doctor/lab/scenarios``).

  The lookup tries the in-package path first and then the top-level checkout directory, so a
  checkout whose symlinks were lost (an archive without links) still works.
- The environment variable ``IPSEC_DOCTOR_<KIND>_DIR`` (e.g. ``IPSEC_DOCTOR_TEMPLATES_DIR``)
  overrides the lookup, for site-specific templates or runbooks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from ipsec_doctor.errors import ConfigError

DataKind = Literal["templates", "platforms", "runbooks", "scenarios"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DIR = _PACKAGE_DIR.parent

#: For each kind: the places to look, best first (in-package path, then checkout path).
_CANDIDATES: dict[str, tuple[Path, ...]] = {
    "templates": (
        _PACKAGE_DIR / "_data" / "textfsm_templates",
        _CHECKOUT_DIR / "textfsm_templates",
    ),
    "platforms": (_PACKAGE_DIR / "platforms",),
    "runbooks": (
        _PACKAGE_DIR / "_data" / "runbooks",
        _CHECKOUT_DIR / "runbooks",
    ),
    "scenarios": (_PACKAGE_DIR / "lab" / "scenarios",),
}


def data_dir(kind: DataKind) -> Path:
    """The directory holding the packaged data of ``kind`` (see the module docstring)."""
    if kind not in _CANDIDATES:
        raise ConfigError(f"unknown data kind {kind!r}; known: {', '.join(sorted(_CANDIDATES))}")
    override = os.environ.get(f"IPSEC_DOCTOR_{kind.upper()}_DIR")
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise ConfigError(f"IPSEC_DOCTOR_{kind.upper()}_DIR={override!r} is not a directory")
        return path
    for candidate in _CANDIDATES[kind]:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in _CANDIDATES[kind])
    raise ConfigError(f"packaged data {kind!r} not found; looked in: {looked}")
