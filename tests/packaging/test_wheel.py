"""The built wheel carries every data file the tool loads at run time, and works installed.

Once per session:

- the working tree is copied to a temporary directory (without ``.git``, ``.venv``, caches,
  ``build/`` and ``*.egg-info``; with its symlinks, which setuptools follows), its Python
  files are compiled (as in any checkout where Python has run: bytecode must not ship), and
  ``pip wheel --no-deps --no-build-isolation --no-index`` builds the wheel there, offline,
  with the setuptools of the interpreter running the tests (about 6 s). Building from a copy
  leaves no ``build/`` or ``*.egg-info`` in the checkout and no stale ``build/lib`` in the
  wheel.
- a fresh venv (``--without-pip``) gets the wheel through this interpreter's pip
  (``pip --python``); the runtime dependencies are made importable by a ``.pth`` file naming
  the site-packages directories of this interpreter (where ``pip install -e '.[dev]'`` put
  them). A ``.pth`` line only adds a directory to ``sys.path`` after the venv's own
  site-packages, so the ``.pth`` files inside it (the editable install's finder) do not run
  and ``ipsec_doctor`` is the wheel's copy, which the tests check.

The expected file list is derived from the source tree: every file under the package
directory (following the ``_data`` symlinks), and, for each data kind of
``ipsec_doctor.resources``, every file of the directory it resolves to in the checkout under
the in-package path it has in an installed wheel.

A missing prerequisite (pip, setuptools or wheel, a runtime dependency, venv creation) skips
with the reason.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from ipsec_doctor import resources
from ipsec_doctor.diagnose import fixes, messages
from ipsec_doctor.model.report import Report
from tests.e2e.scenario_support import golden_view

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ipsec_doctor"

#: Top-level entries of the working tree the wheel build never reads.
_NOT_COPIED = {".git", ".venv", "build", "dist", "tests", "benchmarks", "docs"}
#: Anywhere in the tree: caches, bytecode, build leftovers.
_NEVER_COPIED = (
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
)

#: Bundled scenarios run through the installed CLI: a crypto-map (IKEv1) tunnel and an IKEv2
#: VTI, so the templates and converters of both families are exercised.
GOLDEN_SCENARIOS = ("psk-mismatch", "ikev2-auth-failed")

#: Variables that would make the installed tool read something other than its own files.
_ENV_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "NTC_TEMPLATES_DIR")


def _run(
    args: Sequence[str | Path], *, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _ENV_DROPPED and not re.fullmatch(r"IPSEC_DOCTOR_\w+_DIR", k)
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _skip_unless_module(name: str, why: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not importable by {sys.executable}: {why}")


def _runtime_dependencies() -> list[str]:
    """Distribution names of ``[project].dependencies`` in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = []
    for requirement in project.get("dependencies", []):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, f"cannot read the requirement {requirement!r}"
        names.append(match.group(1))
    return names


def _dependency_dirs() -> list[str]:
    """Where this interpreter finds the runtime dependencies (skip when one is missing)."""
    dirs: list[str] = []
    for name in _runtime_dependencies():
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(
                f"runtime dependency {name} is not installed for {sys.executable} "
                "(pip install -e '.[dev]')"
            )
        dirs.append(str(Path(str(dist.locate_file(""))).resolve()))
    # Their own dependencies (paramiko, ruamel.yaml ...) live in the same site directories.
    dirs += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if any(Path(n).match(p) for p in _NEVER_COPIED)}
    if Path(directory).resolve() == ROOT:
        ignored |= _NOT_COPIED & set(names)
    return ignored


def _files_below(directory: Path) -> set[PurePosixPath]:
    """Every file below ``directory`` (symlinks followed), relative, without bytecode."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for filename in filenames:
            if not filename.endswith((".pyc", ".pyo")):
                relative = Path(dirpath, filename).relative_to(directory)
                found.add(PurePosixPath(relative.as_posix()))
    return found


@dataclass(frozen=True)
class Built:
    wheel: Path
    source: Path  # the copy of the working tree the wheel was built from
    names: frozenset[str] = field(repr=False)  # the wheel's file list


@dataclass(frozen=True)
class Installed:
    venv: Path
    site_packages: Path
    cli: Path
    workdir: Path  # an empty directory outside the source tree, for the CLI's cwd

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    _skip_unless_module("pip", "needed to build and install the wheel")
    _skip_unless_module("setuptools", "the build backend (pip install -e '.[dev]' installs it)")
    _skip_unless_module("wheel", "setuptools needs it to build a wheel (pip install wheel)")
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_copy_ignore)
    compiled = _run([sys.executable, "-m", "compileall", "-q", PACKAGE], cwd=source)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    out = base / "dist"
    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            out,
            source,
        ],
        cwd=base,
        timeout=300,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    wheels = sorted(out.glob("ipsec_doctor-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}, found {wheels}"
    with zipfile.ZipFile(wheels[0]) as archive:
        names = frozenset(archive.namelist())
    yield Built(wheel=wheels[0], source=source, names=names)


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    pip_version = tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version("pip"))[:2])
    if pip_version < (22, 3):
        pytest.skip(f"pip {importlib.metadata.version('pip')} has no --python (22.3+ needed)")
    dependency_dirs = _dependency_dirs()
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base)
    if made.returncode != 0:
        pytest.skip(f"python -m venv failed: {made.stderr.strip() or made.stdout.strip()}")
    python = venv / "bin" / "python"
    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            built.wheel,
        ],
        cwd=base,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base
    )
    site_packages = Path(purelib.stdout.strip())
    assert (site_packages / PACKAGE).is_dir(), purelib.stdout + purelib.stderr
    (site_packages / "_ipsec_doctor_test_dependencies.pth").write_text(
        "".join(f"{d}\n" for d in dependency_dirs), encoding="utf-8"
    )
    workdir = base / "work"
    workdir.mkdir()
    return Installed(
        venv=venv, site_packages=site_packages, cli=venv / "bin" / "ipsec-doctor", workdir=workdir
    )


def _in_package(kind: str) -> PurePosixPath:
    """Where ``data_dir(kind)`` is in an installed wheel, relative to site-packages: its
    candidate inside the package directory."""
    candidates = resources._CANDIDATES[kind]
    inside = [c for c in candidates if c.is_relative_to(resources._PACKAGE_DIR)]
    assert inside, f"{kind}: no in-package candidate in {candidates}: a wheel cannot find it"
    return PurePosixPath(inside[0].relative_to(resources._CHECKOUT_DIR).as_posix())


def _wheel_files(built: Built, prefix: PurePosixPath) -> set[PurePosixPath]:
    return {
        PurePosixPath(n).relative_to(prefix)
        for n in built.names
        if not n.endswith("/") and PurePosixPath(n).is_relative_to(prefix)
    }


def test_wheel_holds_exactly_the_package_tree(built: Built) -> None:
    """Every module and data file of ``ipsec_doctor/`` (symlinked data included), and nothing
    else: no bytecode, no build leftovers."""
    expected = _files_below(built.source / PACKAGE)
    in_wheel = _wheel_files(built, PurePosixPath(PACKAGE))
    missing = sorted(map(str, expected - in_wheel))
    assert not missing, f"missing from the wheel: {missing}"
    extra = sorted(map(str, in_wheel - expected))
    assert not extra, f"in the wheel but not in the source: {extra[:20]} ({len(extra)})"
    assert not [n for n in built.names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    top_level = {PurePosixPath(n).parts[0] for n in built.names}
    dist_info = {t for t in top_level if t.endswith(".dist-info")}
    assert top_level - dist_info == {PACKAGE}, f"unexpected top-level entries: {top_level}"
    with zipfile.ZipFile(built.wheel) as archive:
        entry_points = [
            archive.read(n).decode() for n in built.names if n.endswith("/entry_points.txt")
        ]
    assert any(re.search(r"^ipsec-doctor\s*=", e, re.M) for e in entry_points), entry_points


@pytest.mark.parametrize("kind", sorted(resources._CANDIDATES))
def test_wheel_holds_every_file_resources_resolves(built: Built, kind: str) -> None:
    """``data_dir(kind)`` in an installed wheel is the in-package candidate: it must carry the
    files the checkout serves for that kind (from whichever candidate the checkout resolves)."""
    candidates = resources._CANDIDATES[kind]
    wheel_dir = _in_package(kind)
    in_copy = [built.source / c.relative_to(resources._CHECKOUT_DIR) for c in candidates]
    served = next((c for c in in_copy if c.is_dir()), None)
    assert served is not None, f"{kind}: none of {in_copy} exists in the checkout"
    expected = _files_below(served)
    assert expected, f"{kind}: {served} is empty"
    missing = sorted(str(wheel_dir / f) for f in expected - _wheel_files(built, wheel_dir))
    assert not missing, f"{kind}: missing from the wheel: {missing}"


def test_wheel_holds_every_template_its_indexes_name(built: Built) -> None:
    templates = _in_package("templates")
    shipped = _wheel_files(built, templates)
    indexes = [f for f in shipped if f.name.startswith("index")]
    assert PurePosixPath("index") in indexes
    with zipfile.ZipFile(built.wheel) as archive:
        texts = {i: archive.read(str(templates / i)).decode() for i in indexes}
    for index, text in texts.items():
        for line in text.splitlines():
            first = line.split(",", 1)[0].strip()
            if not first or first.startswith("#") or first == "Template":
                continue
            for template in first.split(":"):
                assert PurePosixPath(template) in shipped, f"{index} names {template}"


def test_installed_package_reads_its_own_data(installed: Installed) -> None:
    """From the venv, every data kind, the fix texts, the message table and the report schema
    resolve inside its site-packages (not the checkout)."""
    kinds = sorted(resources._CANDIDATES)
    script = (
        "import json, ipsec_doctor\n"
        "from importlib import resources\n"
        "from ipsec_doctor.resources import data_dir\n"
        "def file(package, name):\n"
        "    path = resources.files(package).joinpath(name)\n"
        "    return str(path) if path.is_file() else None\n"
        "print(json.dumps({\n"
        "    'module': ipsec_doctor.__file__,\n"
        f"    'kinds': {{k: str(data_dir(k)) for k in {kinds!r}}},\n"
        "    'files': [\n"
        f"        file({fixes.FIXES_PACKAGE!r}, {fixes.FIXES_FILE!r}),\n"
        f"        file({messages.TABLE_PACKAGE!r}, {messages.TABLE_FILE!r}),\n"
        "        file('ipsec_doctor.report', 'report.schema.json'),\n"
        "    ],\n"
        "}))\n"
    )
    result = _run([installed.python, "-c", script], cwd=installed.workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout)
    inside = installed.site_packages / PACKAGE
    assert Path(found["module"]).is_relative_to(inside), found["module"]
    for kind, path in found["kinds"].items():
        assert Path(path).is_relative_to(inside), f"{kind} resolved to {path}"
        assert any(Path(path).iterdir()), f"{kind}: {path} is empty"
    for path in found["files"]:
        assert path is not None and Path(path).is_relative_to(inside), found["files"]


def test_installed_cli_lists_the_bundled_lab_and_runbooks(installed: Installed) -> None:
    scenarios = sorted(
        p.name
        for p in (installed.site_packages / _in_package("scenarios")).iterdir()
        if (p / "scenario.yaml").is_file()
    )
    listed = _run([installed.cli, "lab", "list"], cwd=installed.workdir)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines() if line.strip()] == scenarios
    runbooks = _run([installed.cli, "runbook", "--list"], cwd=installed.workdir)
    assert runbooks.returncode == 0, runbooks.stdout + runbooks.stderr
    shipped = installed.site_packages / _in_package("runbooks")
    names = sorted(p.stem for p in shipped.glob("*.yaml"))
    assert names, f"no runbook in {shipped}"
    for name in names:
        assert re.search(rf"^{re.escape(name)}\s", runbooks.stdout, re.M), runbooks.stdout


@pytest.mark.parametrize("scenario", GOLDEN_SCENARIOS)
def test_installed_cli_analyze_matches_the_golden(installed: Installed, scenario: str) -> None:
    """``ipsec-doctor analyze`` of the installed copy of a bundled scenario, run from outside
    the source tree, reports exactly its golden findings (``expected.json``)."""
    folder = installed.site_packages / _in_package("scenarios") / scenario
    assert (folder / "expected.json").is_file(), f"{scenario}: no golden in the wheel"
    golden = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    result = _run([installed.cli, "analyze", folder, "--format", "json"], cwd=installed.workdir)
    critical = any(f["severity"] == "critical" for f in golden)
    assert result.returncode == (1 if critical else 0), result.stdout[-2000:] + result.stderr
    document = json.loads(result.stdout)
    if importlib.util.find_spec("jsonschema") is not None:
        import jsonschema

        schema_path = installed.site_packages / PACKAGE / "report" / "report.schema.json"
        jsonschema.validate(document, json.loads(schema_path.read_text(encoding="utf-8")))
    assert golden_view(Report.from_dict(document)) == golden
