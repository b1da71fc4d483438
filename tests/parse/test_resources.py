"""One resolver for packaged data, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsec_doctor.errors import ConfigError
from ipsec_doctor.resources import data_dir


def test_checkout_dirs() -> None:
    assert (data_dir("templates") / "index").is_file()
    assert (data_dir("platforms") / "cisco_ios.yaml").is_file()
    assert data_dir("runbooks").is_dir()


def test_templates_ship_inside_the_package() -> None:
    """The wheel carries ipsec_doctor/_data/textfsm_templates (a link in the checkout)."""
    package = Path(__file__).resolve().parents[2] / "ipsec_doctor" / "_data"
    assert (package / "textfsm_templates" / "index").is_file()
    assert (package / "runbooks").is_dir()


def test_override_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPSEC_DOCTOR_TEMPLATES_DIR", str(tmp_path))
    assert data_dir("templates") == tmp_path
    monkeypatch.setenv("IPSEC_DOCTOR_TEMPLATES_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not a directory"):
        data_dir("templates")
    with pytest.raises(ConfigError, match="unknown data kind"):
        data_dir("nope")  # type: ignore[arg-type]
