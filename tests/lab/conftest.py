"""The live strongSwan lab (shared/lab/strongswan/lab.sh) as a session fixture.

``strongswan_lab`` brings the lab up once per test module and takes it down at its end; it
skips, saying why, where the lab cannot run: not root, no usable ``ip netns``, ``lab.sh`` not
found, or the Debian packages it needs missing (``lab.sh up`` names them; ``.ci/run`` installs
them with ``.ci/install-lab-packages.sh``). A lab that is already up (a person working with it)
is used as it is and left up.

The lab is one per host (fixed namespace names), so test sessions take turns: the fixture holds
an exclusive lock (``$IPSEC_LAB_LOCK``, default ``/tmp/ipsec-lab.lock``) from before ``up`` to
after ``down`` (module scope: released as soon as the module's lab tests are done), waiting up
to ``$IPSEC_LAB_LOCK_WAIT`` seconds (default 900) for another session, and skips when it must
wait longer.

Where ``lab.sh`` is: ``$IPSEC_LAB_SCRIPT``, else ``../shared/lab/strongswan/lab.sh`` from the
repository root (CI runs in a fresh clone with ``shared/`` beside it), else
``/work/shared/lab/strongswan/lab.sh``.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (
    REPO.parent / "shared" / "lab" / "strongswan" / "lab.sh",
    Path("/work/shared/lab/strongswan/lab.sh"),
)

#: lab.sh messages that mean "this host cannot run the lab" (a skip, not a failure)
_CANNOT = re.compile(
    r"missing tools|must run as root|Operation not permitted|Permission denied|"
    r"neither ESP .* nor /dev/net/tun|cannot open /dev/net/tun",
    re.IGNORECASE,
)


@dataclass
class Lab:
    """A running lab: its script and whether this session started it."""

    script: Path
    started_here: bool
    up_seconds: float = 0.0

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``lab.sh ARGS``; raises with lab.sh's own words when it fails."""
        result = subprocess.run(
            ["bash", str(self.script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"lab.sh {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr[-3000:]}{result.stdout[-2000:]}"
            )
        return result


def find_script() -> Path | None:
    configured = os.environ.get("IPSEC_LAB_SCRIPT")
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    return next((path for path in CANDIDATES if path.is_file()), None)


def skip_reason() -> str | None:
    """Why the live lab cannot run here (None when it may)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the strongSwan lab needs root (network namespaces, nsenter)"
    if shutil.which("ip") is None:
        return "no iproute2 (`ip`): the strongSwan lab needs network namespaces"
    probe = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip() or probe.returncode}"
    if find_script() is None:
        where = os.environ.get("IPSEC_LAB_SCRIPT") or ", ".join(map(str, CANDIDATES))
        return f"lab.sh not found ({where}); set IPSEC_LAB_SCRIPT"
    return None


def _is_up(script: Path) -> bool:
    status = subprocess.run(
        ["bash", str(script), "status"], capture_output=True, text=True, timeout=60, check=False
    )
    return status.returncode == 0


@contextmanager
def lab_lock() -> Iterator[None]:
    """Exclusive use of the host's lab (see the module docstring); skips after the wait."""
    path = Path(os.environ.get("IPSEC_LAB_LOCK", "/tmp/ipsec-lab.lock"))
    wait = float(os.environ.get("IPSEC_LAB_LOCK_WAIT", "900"))
    with path.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip(f"the strongSwan lab is in use by another session ({path})")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def strongswan_lab() -> Iterator[Lab]:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with lab_lock():
        yield from _lab()


def _lab() -> Iterator[Lab]:
    script = find_script()
    assert script is not None
    if _is_up(script):
        yield Lab(script=script, started_here=False)
        return
    up = subprocess.run(
        ["bash", str(script), "up"], capture_output=True, text=True, timeout=300, check=False
    )
    if up.returncode != 0:
        words = (up.stderr + up.stdout).strip()
        if _CANNOT.search(words):
            pytest.skip(f"the strongSwan lab cannot run here: {words.splitlines()[-1]}")
        pytest.fail(f"lab.sh up failed ({up.returncode}): {words[-3000:]}")
    found = re.search(r"lab up in ([\d.]+) s", up.stderr)
    lab = Lab(script=script, started_here=True, up_seconds=float(found[1]) if found else 0.0)
    try:
        yield lab
    finally:
        subprocess.run(
            ["bash", str(script), "down"], capture_output=True, text=True, timeout=300, check=False
        )
