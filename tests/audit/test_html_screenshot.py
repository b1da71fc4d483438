"""The HTML report opens in headless Chromium (Debian's ``chromium``) and renders its summary.

Skipped with a reason when no Chromium is installed (``.ci/install-test-packages.sh``
installs it). The screenshot is kept in the test's temporary folder; the test checks that
Chromium rendered a page (a PNG of the requested size, not blank) and that the summary's
colours (the red of "down", the green of "healthy") are on it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from ipsec_doctor.audit.model import TunnelStatus
from ipsec_doctor.report.audit_html import STATUS_COLOUR, render_audit_html
from tests.audit.report_data import sample_report

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of a non-interlaced 8-bit PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    idat = b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6)
    step = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    rows: list[bytes] = []
    stride = width * step
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - step] if x >= step else 0
            up = previous[x]
            corner = previous[x - step] if x >= step else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + pred) & 0xFF
        rows.append(
            bytes(line) if step == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)
        )
        previous = line
    return width, height, rows


def _rgb(colour: str) -> bytes:
    return bytes.fromhex(colour.lstrip("#"))


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/install-test-packages.sh)"
)
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "audit.html"
    page.write_text(render_audit_html(sample_report()), encoding="utf-8")
    shot = tmp_path / "audit.png"
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,900",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), result.stderr[-2000:]
    width, height, rows = png_pixels(shot)
    assert (width, height) == (1200, 900)
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert len(pixels) > 50  # text, cards and a chart, not a blank page
    assert _rgb(STATUS_COLOUR[TunnelStatus.DOWN]) in pixels  # the "down" card and badge
    assert _rgb(STATUS_COLOUR[TunnelStatus.HEALTHY]) in pixels  # the "healthy" card
