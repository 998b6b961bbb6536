"""Under CI=true nothing may skip: a missing tool or a skipped test fails the run instead of passing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

_SKIPS = """
import pytest

def test_passes():
    pass

def test_skips():
    pytest.skip("no reason")
"""

_NEEDS_A_MISSING_TOOL = """
from tests.helpers import require_tool

require_tool("cryptopredict-no-such-tool")

def test_uses_the_tool():
    pass
"""


def _pytest(tmp_path: Path, source: str, ci: bool, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest with the project's CI rules (tests/ci_plugin.py) on a generated test file beside a passing one."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_generated.py").write_text(source)
    (tmp_path / "test_other.py").write_text("def test_passes():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_plugin", "-p", "no:cacheprovider", "-c",
         str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), *args, str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("ci", "code"), [(False, 0), (True, 1)], ids=["local", "ci"])
def test_a_skipped_test_fails_the_session_only_under_ci(tmp_path: Path, ci: bool, code: int) -> None:
    """One pass and one skip: exit 0 locally; under CI=true exit 1 with a line naming the skipped test."""
    proc = _pytest(tmp_path, _SKIPS, ci)
    assert proc.returncode == code, proc.stdout
    assert "2 passed, 1 skipped" in proc.stdout
    named = "test_generated.py::test_skips" in proc.stdout
    assert named is ci, proc.stdout


@pytest.mark.parametrize(("ci", "code"), [(False, 0), (True, 2)], ids=["local", "ci"])
def test_a_missing_tool_skips_locally_and_fails_under_ci(tmp_path: Path, ci: bool, code: int) -> None:
    """require_tool of an absent program skips its module locally; under CI=true it fails collection, naming it."""
    proc = _pytest(tmp_path, _NEEDS_A_MISSING_TOOL, ci)
    assert proc.returncode == code, proc.stdout
    if ci:
        assert "CI=true: cryptopredict-no-such-tool is not installed" in proc.stdout
    else:
        assert "1 passed, 1 skipped" in proc.stdout


def test_a_skip_on_xdists_workers_fails_the_session_as_make_test_runs_it(tmp_path: Path) -> None:
    """`make test` runs on two workers: a skip in a worker still fails the session, named, under CI=true."""
    proc = _pytest(tmp_path, _SKIPS, True, "-n", "2", "--dist", "loadfile")
    assert proc.returncode == 1, proc.stdout
    assert "2 passed, 1 skipped" in proc.stdout
    assert "test_generated.py::test_skips" in proc.stdout


def test_a_clean_run_under_ci_passes(tmp_path: Path) -> None:
    """With nothing skipped, CI=true changes nothing: exit 0."""
    proc = _pytest(tmp_path, "def test_also_passes():\n    pass\n", ci=True)
    assert proc.returncode == 0, proc.stdout
