"""Lanes: each test is marked by what it needs, and `make check` selects the fast lane from those marks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, require_tool

MAKEFILE = (ROOT / "Makefile").read_text()
FAST = re.search(r"^FAST := (.+)$", MAKEFILE, re.MULTILINE).group(1)
FAST_IGNORE = re.search(r"^FAST_IGNORE := (.+)$", MAKEFILE, re.MULTILINE).group(1).split()

_SYNTHETIC = """
import pytest

def test_plain():
    pass

def test_on_the_session_artifact(artifact):
    pass

def test_on_the_live_server(live_server):
    pass

@pytest.mark.server
def test_with_a_server_of_its_own():
    pass

@pytest.mark.training
def test_with_a_training_run_of_its_own():
    pass

@pytest.mark.image
def test_with_the_image():
    pass
"""

# Prints each collected test's marks: one collection shows what the conftest marked.
_SHOW_MARKS = """
def pytest_collection_finish(session):
    for item in session.items:
        print("MARKS", item.name, ",".join(sorted({m.name for m in item.iter_markers()})))
"""


def _collect(folder: Path, *args: str) -> str:
    """What `pytest --collect-only` prints for `folder` with the project's settings and `args` (no test runs)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-c",
         str(ROOT / "pyproject.toml"), "--rootdir", str(folder), *args, str(folder)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{folder}"}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


def test_each_test_is_marked_by_the_fixtures_and_marks_it_needs(tmp_path: Path) -> None:
    """Under the project's conftest, a test on the session's artifact is `training`, one on its server
    `server` and `training`, a test's own marks stay, a test that needs nothing is `unit`; make check's
    expression selects the plain test and the one with a server of its own."""
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_synthetic.py").write_text(_SYNTHETIC)
    (tmp_path / "show_marks.py").write_text(_SHOW_MARKS)
    lines = _collect(tmp_path, "-p", "show_marks").splitlines()
    marks = dict(line.split()[1:] for line in lines if line.startswith("MARKS "))
    assert marks == {
        "test_plain": "unit",
        "test_on_the_session_artifact": "training",
        "test_on_the_live_server": "server,training",
        "test_with_a_server_of_its_own": "server",
        "test_with_a_training_run_of_its_own": "training",
        "test_with_the_image": "image",
    }
    fast = _collect(tmp_path, "-m", FAST)
    assert sorted(line.split("::")[1] for line in fast.splitlines() if "::" in line) == [
        "test_plain", "test_with_a_server_of_its_own",
    ]  # fmt: skip


@pytest.mark.image
def test_the_files_the_fast_lane_does_not_collect_hold_none_of_its_tests() -> None:
    """Every test in FAST_IGNORE's files needs a training run, the image or is slow: ignoring them loses nothing."""
    for tool in ("/usr/bin/chromium", "buildah", "skopeo", "wrk"):  # what those files need to be imported
        require_tool(tool)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", FAST, *FAST_IGNORE],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stdout[-3000:]  # 5: no test selected
    deselected = re.search(r"(\d+) deselected", proc.stdout)
    assert deselected is not None, proc.stdout[-3000:]
    assert int(deselected.group(1)) >= 10


def test_the_docs_name_the_fast_lanes_selection() -> None:
    """docs/tests.md quotes the marker expression make check runs, and the README the command."""
    assert f'`-m "{FAST}"`' in (ROOT / "docs" / "tests.md").read_text()
    assert "`make check` is the fast lane" in (ROOT / "README.md").read_text()
