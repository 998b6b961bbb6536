"""A newcomer's first commands say plainly what they need: `make` finds Python 3.11 to 3.13, the image build names
its needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, require_tool

NEED_SUPPORTED = (
    "make: cryptopredict needs Python 3.11, 3.12 or 3.13 (its lock files are for those): install one, "
    "or run make PYTHON=/path/to/python3.13"
)


def _fake_python(bin_dir: Path, name: str, minor: int) -> None:
    """A stand-in interpreter that answers make's version check as Python 3.`minor` would."""
    supported = 11 <= minor <= 13
    _fake(bin_dir, name, "exit 0" if supported else "exit 1")


def _fake(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def _make(tmp_path: Path, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The project's Makefile, copied to tmp_path (so no .venv lands in the checkout), run with only `path` as PATH."""
    make = require_tool("make")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "requirements-dev.txt", tmp_path / "requirements-dev.txt")
    return subprocess.run(
        [make, "--no-print-directory", *args], cwd=tmp_path, env={"PATH": path},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_make_takes_python3_when_it_is_311_and_there_is_no_python311(tmp_path: Path) -> None:
    """With no python3.11 on PATH, a python3 that is 3.11 is the one make uses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())  # the suite's own Python: 3.11
    proc = _make(tmp_path, str(bin_dir), "--eval", "show: ; $(info $(PYTHON))", "show")
    assert proc.stdout.splitlines()[0] == str(bin_dir / "python3"), proc.stderr


def test_make_prefers_a_supported_python3_then_the_newest_supported_python3x(tmp_path: Path) -> None:
    """A python3 of 3.10 is passed over for python3.13, then python3.12; a python3 of 3.12 wins over both."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir, "python3", 10)
    _fake_python(bin_dir, "python3.11", 11)
    _fake_python(bin_dir, "python3.12", 12)
    show = ("--eval", "show: ; $(info $(PYTHON))", "show")
    assert _make(tmp_path, str(bin_dir), *show).stdout.splitlines()[0] == str(bin_dir / "python3.12")
    _fake_python(bin_dir, "python3.13", 13)
    assert _make(tmp_path, str(bin_dir), *show).stdout.splitlines()[0] == str(bin_dir / "python3.13")
    _fake_python(bin_dir, "python3", 12)
    assert _make(tmp_path, str(bin_dir), *show).stdout.splitlines()[0] == str(bin_dir / "python3")
    explicit = _make(tmp_path, str(bin_dir), *show, f"PYTHON={bin_dir / 'python3.11'}")
    assert explicit.stdout.splitlines()[0] == str(bin_dir / "python3.11")


def test_make_without_a_supported_python_stops_with_one_plain_line(tmp_path: Path) -> None:
    """A python3 and a python3.14 that are not 3.11 to 3.13: make stops before any venv, saying which it needs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir, "python3", 10)
    _fake_python(bin_dir, "python3.14", 14)
    proc = _make(tmp_path, str(bin_dir), ".venv/.installed-dev")
    assert proc.returncode != 0
    assert proc.stderr.splitlines()[0] == NEED_SUPPORTED
    assert not (tmp_path / ".venv").exists()
    wrong = _make(tmp_path, str(bin_dir), ".venv/.installed-dev", f"PYTHON={bin_dir / 'python3.14'}")
    assert wrong.stderr.splitlines()[0] == NEED_SUPPORTED


def test_build_image_names_everything_it_needs_in_one_line_and_builds_nothing(tmp_path: Path) -> None:
    """Not root and neither buildah nor debootstrap: one line listing all three, exit 1, before any build step."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "id", "echo 1000")  # an ordinary user
    for tool in ("dirname", "sed"):  # what the script runs before its checks
        (bin_dir / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "build-image.sh"), "cryptopredict:never-built"],
        env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    needs = "root, buildah (scripts/install-system-packages.sh), debootstrap (scripts/install-system-packages.sh)"
    if not Path("/etc/debian_version").exists():
        needs = needs.replace("root, ", "root, a Debian host with a bookworm apt source, ")
    assert proc.stderr.splitlines() == [f"build-image: error: needs {needs}"]
