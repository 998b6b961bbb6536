"""What ships the product: the Dockerfile and workflow pass their linters, versions bump as promised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

BIN = Path(sys.executable).parent
WORKFLOW = ROOT / ".github" / "workflows" / "retrain-and-deploy.yml"


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint, every rule on, reports no finding."""
    proc = _run(BIN / "hadolint", "Dockerfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    """zizmor's offline audits (pinning, injection, permissions, credentials) report no finding."""
    proc = _run(BIN / "zizmor", "--offline", "--no-progress", ROOT / ".github" / "workflows")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout + proc.stderr


def test_the_workflow_matches_githubs_schema() -> None:
    """check-jsonschema validates the workflow against the GitHub Actions workflow schema."""
    proc = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_to_a_full_commit_sha() -> None:
    """Each `uses:` names a 40-hex-digit commit with its version in a comment, never a moving tag."""
    uses = [line.split("uses:", 1)[1].strip() for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert len(uses) >= 8
    for ref in uses:
        _, _, rest = ref.partition("@")
        sha, _, comment = rest.partition(" # ")
        assert len(sha) == 40, ref
        assert all(c in "0123456789abcdef" for c in sha), ref
        assert comment.startswith("v"), ref


def test_the_train_stage_runs_on_the_build_platform_and_the_api_stage_as_non_root() -> None:
    """FROM --platform=$BUILDPLATFORM for training; a numeric USER, exec-form CMD and HEALTHCHECK for the API."""
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS train" in text
    api = text.split("AS api", 1)[1]
    user = next(line.split()[1] for line in api.splitlines() if line.startswith("USER "))
    assert all(part.isdigit() and int(part) > 0 for part in user.split(":"))
    assert 'CMD ["/venv/bin/python", "api.py"]' in api
    assert "HEALTHCHECK" in api
    assert "requirements-train.txt" not in api
    assert "ARG ALPACA" not in text
    assert "ENV ALPACA" not in text


def _repo(tmp_path: Path, tags: list[str], message: str) -> Path:
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    _run("git", "init", "-q", "--bare", origin, cwd=tmp_path)
    _run("git", "init", "-q", "-b", "main", work, cwd=tmp_path)
    git = ("git", "-c", "user.name=t", "-c", "user.email=t@example.test")
    for i, tag in enumerate(tags):
        _run(*git, "commit", "-q", "--allow-empty", "-m", f"release {i}", cwd=work)
        _run(*git, "tag", "-a", tag, "-m", tag, cwd=work)
    _run(*git, "commit", "-q", "--allow-empty", "-m", message, cwd=work)
    _run("git", "remote", "add", "origin", origin, cwd=work)
    return work


@pytest.mark.parametrize(
    ("tags", "message", "expected"),
    [
        ([], "first", "0.0.1"),
        (["v1.2.3"], "fix a thing", "1.2.4"),
        (["v1.2.3"], "add a pair #minor", "1.3.0"),
        (["v1.2.3"], "new artifact schema\n\n#major", "2.0.0"),
        (["v1.2.3", "v1.10.0", "v1.9.9"], "fix", "1.10.1"),
    ],
)
def test_a_push_bumps_and_pushes_the_semantic_version_tag(tmp_path: Path, tags, message, expected) -> None:
    """On push the latest vX.Y.Z is bumped (patch, or #minor/#major from the message) and pushed."""
    work = _repo(tmp_path, tags, message)
    proc = _run("bash", ROOT / "scripts" / "next-version.sh", "push", cwd=work)
    assert proc.returncode == 0, proc.stderr
    out = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert out["version"] == expected
    assert len(out["stamp"]) == 14
    assert out["stamp"].isdigit()
    remote = _run("git", "ls-remote", "--tags", "origin", cwd=work).stdout
    assert f"refs/tags/v{expected}" in remote


def test_a_scheduled_run_reuses_the_latest_tag_and_pushes_nothing(tmp_path: Path) -> None:
    """Schedule and dispatch retrain the current version: no new tag."""
    work = _repo(tmp_path, ["v0.4.1"], "anything #major")
    proc = _run("bash", ROOT / "scripts" / "next-version.sh", "schedule", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "version=0.4.1" in proc.stdout
    assert _run("git", "ls-remote", "--tags", "origin", cwd=work).stdout == ""
