"""What ships the product: the Dockerfile and workflow pass their linters, versions bump as promised."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
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
    # The train stage is built on train-env, which the Dask worker image shares.
    assert "FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS train-env\n" in text
    assert "FROM train-env AS train\n" in text
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


def _workflow() -> dict:
    import yaml

    return yaml.safe_load(WORKFLOW.read_text())


def _build_args(step: dict) -> dict[str, str]:
    return dict(line.split("=", 1) for line in step["with"]["build-args"].strip().splitlines())


def _builds() -> list[dict]:
    """The build-and-push job's image builds, in order."""
    steps = _workflow()["jobs"]["build-and-push"]["steps"]
    return [s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action")]


def _trained_builds() -> list[dict]:
    """The builds that train (the report) or serve what was trained (the api image): all but the worker's."""
    return [b for b in _builds() if b["with"]["target"] != "worker"]


# Every argument the train stage declares: equal in both builds of a run, so the api build reuses it.
TRAIN_ARGS = (
    "SOURCE", "SYMBOLS", "TIMEFRAME", "START", "MODEL_VERSION", "RUN_ID", "BACKTEST_CUTOFFS", "SKIP_INVALID",
    "MAX_FAILED_SHARE",
)  # fmt: skip


def test_every_run_trains_afresh_and_its_api_build_reuses_that_training() -> None:
    """A run-unique RUN_ID reaches the train stage's RUN; both builds of a run pass the same train arguments."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    train = dockerfile.split(" AS train\n", 1)[1].split("\nFROM ", 1)[0]
    declared = [line.split()[1].split("=")[0] for line in train.splitlines() if line.startswith("ARG ")]
    assert sorted(declared) == sorted(TRAIN_ARGS)
    run = train[train.index("RUN --mount=type=secret") :]
    assert '--run-id "$RUN_ID"' in run
    assert train.index("ARG RUN_ID") < train.index("RUN --mount=type=secret")
    builds = _trained_builds()
    assert [b["with"]["target"] for b in builds] == ["report", "api"]
    args = [_build_args(b) for b in builds]
    assert {k: args[0][k] for k in TRAIN_ARGS} == {k: args[1][k] for k in TRAIN_ARGS}
    # Unique to the run: the stamp next-version.sh prints at every run, scheduled ones included.
    assert "needs.version.outputs.stamp" in args[0]["RUN_ID"]


def test_the_train_step_uses_a_dask_cluster_only_when_its_secret_is_set() -> None:
    """Both builds pass the secret DASK_SCHEDULER_ADDRESS (never a build argument) and the train stage
    hands it to train.py as its environment default for --cluster; an empty secret trains in the stage."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    train = dockerfile.split(" AS train\n", 1)[1].split("\nFROM ", 1)[0]
    run = train[train.index("RUN --mount=type=secret") :]
    assert "--mount=type=secret,id=dask_scheduler_address" in run
    assert 'DASK_SCHEDULER_ADDRESS="$(cat /run/secrets/dask_scheduler_address 2>/dev/null || true)"' in run
    for build in _trained_builds():
        assert "dask_scheduler_address=${{ secrets.DASK_SCHEDULER_ADDRESS }}" in build["with"]["secrets"]
        assert "DASK" not in build["with"]["build-args"]


def test_the_dask_compose_file_runs_scheduler_and_workers_from_the_worker_image() -> None:
    """deploy/dask-compose.yml matches the Compose spec; its scheduler and workers use one image, the
    Dockerfile's worker target, which runs `dask worker` as a numeric non-root user."""
    compose = ROOT / "deploy" / "dask-compose.yml"
    proc = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import yaml

    services = yaml.safe_load(compose.read_text())["services"]
    assert services["scheduler"]["image"] == services["worker"]["image"]
    assert services["scheduler"]["command"][:2] == ["dask", "scheduler"]
    assert services["worker"]["environment"]["DASK_SCHEDULER_ADDRESS"] == "tcp://scheduler:8786"
    worker = (ROOT / "Dockerfile").read_text().split("FROM train-env AS worker\n", 1)[1].split("\nFROM ", 1)[0]
    assert 'CMD ["dask", "worker", ' in worker
    assert "ENTRYPOINT" not in worker  # Dask's Helm chart passes the command as the container's args
    assert "USER 10001:10001" in worker


def test_the_worker_image_is_pushed_from_the_runs_commit_tagged_like_the_api_image_before_training() -> None:
    """The worker target is pushed to <repository>-worker as X.Y.Z and X.Y.Z-stamp (the api image's tags but
    `latest`), before the train step so a refused or cluster-refused run still publishes the image to roll to."""
    steps = _workflow()["jobs"]["build-and-push"]["steps"]
    names = [s.get("name") for s in steps]
    builds = _builds()
    assert [b["with"]["target"] for b in builds] == ["worker", "report", "api"]
    worker = builds[0]
    assert worker["with"]["push"] is True
    assert worker["with"]["context"] == "."
    assert "platforms" not in worker["with"]  # the runner's own, like the train stage it shares train-env with
    assert worker["with"]["tags"] == "${{ steps.worker-meta.outputs.tags }}"
    assert worker["with"]["labels"] == "${{ steps.worker-meta.outputs.labels }}"
    metas = {s["id"]: s["with"] for s in steps if str(s.get("uses", "")).startswith("docker/metadata-action")}
    assert metas["worker-meta"]["images"] == metas["meta"]["images"] + "-worker"
    api_tags = set(metas["meta"]["tags"].split())
    assert set(metas["worker-meta"]["tags"].split()) == api_tags - {"type=raw,value=latest"}
    assert metas["worker-meta"]["flavor"] == "latest=false"
    assert steps.index(worker) < names.index("Train and gate")
    summary = steps[steps.index(worker) + 1]
    assert summary["env"]["TAGS"] == "${{ steps.worker-meta.outputs.tags }}"
    assert summary["run"].rstrip().endswith('>> "$GITHUB_STEP_SUMMARY"')
    assert "${{" not in summary["run"]


def test_the_compose_file_and_the_helm_values_name_the_published_worker_image() -> None:
    """deploy/dask-compose.yml takes WORKER_IMAGE (a published X.Y.Z-stamp tag) and the Helm values of the
    docs' "Scaling out" page name the same package and tag form the workflow pushes."""
    compose = (ROOT / "deploy" / "dask-compose.yml").read_text()
    assert "WORKER_IMAGE=ghcr.io/<you>/<fork>-worker:X.Y.Z-YYYYMMDDHHMMSS" in compose
    scaling = (ROOT / "docs" / "scaling-out.md").read_text()
    assert scaling.startswith("# Scaling out\n")
    assert scaling.count("image: {repository: ghcr.io/<you>/<fork>-worker, tag: X.Y.Z-YYYYMMDDHHMMSS}") == 2
    assert "does not build or push the worker image" not in scaling


def test_both_builds_of_a_run_train_against_the_same_champion_and_only_a_deployed_image_becomes_it() -> None:
    """The production image, pinned by digest, is the named context `production` of both builds; the
    train stage reads its artifact as --baseline-artifact; the deploy job tags production only after
    the smoke test."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AS production\n" in dockerfile
    train = dockerfile.split(" AS train\n", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY --from=production /app/artifacts/ /production/" in train
    assert "--baseline-artifact /production" in train
    steps = _workflow()["jobs"]["build-and-push"]["steps"]
    names = [s.get("name") for s in steps]
    builds = _trained_builds()
    assert [b["with"]["build-contexts"] for b in builds] == ["${{ steps.production.outputs.context }}"] * 2
    assert names.index("The image in production") < names.index("Train and gate") < names.index("Gate decision")
    assert names.index("Gate decision") < names.index("Build and push the API image")
    champion = next(s for s in steps if s.get("name") == "The image in production")
    assert champion["run"] == 'bash scripts/resolve-champion.sh "$IMAGE"'
    assert champion["env"]["IMAGE"] == "ghcr.io/${{ github.repository }}:production"
    deploy = _workflow()["jobs"]["deploy"]["steps"]
    smoke = next(i for i, s in enumerate(deploy) if "render-deploy.sh" in str(s.get("run")))
    tag = next(i for i, s in enumerate(deploy) if s.get("name") == "Tag the deployed image as production")
    assert smoke < tag
    assert deploy[tag]["run"] == 'bash scripts/tag-production.sh "$IMAGE" "$PRODUCTION"'


def _verdict(tmp_path: Path, status: str, files: dict[str, str], production: str = "") -> tuple:
    out = tmp_path / "train-output"
    out.mkdir()
    (out / "status").write_text(status + "\n")
    for name, text in files.items():
        (out / name).write_text(text)
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    proc = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(ROOT / "scripts" / "train-verdict.sh"), str(out)],
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs),
             "PRODUCTION_IMAGE": production},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    read = lambda p: p.read_text() if p.exists() else ""  # noqa: E731
    return proc, read(summary), read(outputs)


def test_a_refused_challenger_fails_the_run_in_one_line_with_its_report_in_the_summary(tmp_path: Path) -> None:
    reason = "the gate refused the run, no artifact written: no pair passed (1 of 1 failed): BTC/USD: vs production"
    proc, summary, outputs = _verdict(
        tmp_path,
        "1",
        {"train.log": f"loading...\ntrain.py: error: {reason}\n", "rejected-report.md": "## Gate: **refused**\n"},
        production="ghcr.io/o/r@sha256:abc",
    )
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines() == [f"::error title=Challenger not promoted::{reason}"]
    assert "Champion: `ghcr.io/o/r@sha256:abc`" in summary
    assert "## Gate: **refused**" in summary
    assert f"**Not promoted: production is untouched.** {reason}" in summary
    assert "generation=" not in outputs


def test_a_promoted_first_run_says_so_and_outputs_its_generation(tmp_path: Path) -> None:
    manifest = '{"generation": "gen-20260101T000000Z-0123abcd"}'
    proc, summary, outputs = _verdict(tmp_path, "0", {"manifest.json": manifest, "report.md": "## Gate: **passed**\n"})
    assert proc.returncode == 0, proc.stderr
    assert "this is a first run" in summary
    assert "## Gate: **passed**" in summary
    assert outputs == "generation=gen-20260101T000000Z-0123abcd\n"


def test_each_run_gets_its_own_stamp(tmp_path: Path) -> None:
    """Two scheduled runs of the same version print different stamps (the RUN_ID and the image tag)."""
    work = _repo(tmp_path, ["v0.4.1"], "anything")
    first = _run("bash", ROOT / "scripts" / "next-version.sh", "schedule", cwd=work).stdout
    time.sleep(1.1)
    second = _run("bash", ROOT / "scripts" / "next-version.sh", "schedule", cwd=work).stdout
    stamp = [line for line in first.splitlines() if line.startswith("stamp=")]
    assert stamp
    assert stamp != [line for line in second.splitlines() if line.startswith("stamp=")]


def test_the_deploy_ships_the_runs_own_tag_and_checks_the_runs_generation() -> None:
    """Render deploys X.Y.Z-stamp, and the smoke test is handed the generation this run trained."""
    jobs = _workflow()["jobs"]
    env = next(s for s in jobs["deploy"]["steps"] if "render-deploy.sh" in str(s.get("run")))["env"]
    assert env["IMAGE"].endswith(":${{ needs.version.outputs.version }}-${{ needs.version.outputs.stamp }}")
    assert env["GENERATION"] == "${{ needs.build-and-push.outputs.generation }}"
    assert jobs["build-and-push"]["outputs"]["generation"] == "${{ steps.trained.outputs.generation }}"


def test_alerts_are_posted_only_after_the_image_became_production_and_never_fail_the_deploy() -> None:
    """The alert step comes after the smoke test and the production tag, runs the deployed image's own module,
    passes each webhook secret by name only, and cannot fail the deploy."""
    deploy = _workflow()["jobs"]["deploy"]["steps"]
    names = [s.get("name") for s in deploy]
    post = deploy[names.index("Post alerts")]
    assert names.index("Deploy to Render, wait, smoke-test") < names.index("Tag the deployed image as production")
    assert names.index("Tag the deployed image as production") < names.index("Post alerts") == len(deploy) - 1
    assert post["continue-on-error"] is True
    assert "if" not in post  # only when every step before it passed: never for a refused or failed deploy
    hooks = ("DISCORD_WEBHOOK_URL", "SLACK_WEBHOOK_URL", "ALERTS_WEBHOOK_URL")
    assert {k: post["env"][k] for k in hooks} == {k: f"${{{{ secrets.{k} }}}}" for k in hooks}
    render = deploy[names.index("Deploy to Render, wait, smoke-test")]
    assert post["env"]["IMAGE"] == render["env"]["IMAGE"]
    run = post["run"]
    assert all(f"-e {k} " in run for k in ("PUBLIC_URL", *hooks))  # by name: the value never on a command line
    assert '"$IMAGE" /venv/bin/python -m cryptopredict.alerts --artifact /app/artifacts --summary -' in run
    assert run.endswith('>> "$GITHUB_STEP_SUMMARY"')
    assert "${{" not in run  # no expression expanded into the script
    dockerfile = (ROOT / "Dockerfile").read_text()
    api = dockerfile.split(" AS api\n", 1)[1]
    assert "COPY cryptopredict/alerts ./cryptopredict/alerts" in api
    assert "COPY alerts.toml ./" in dockerfile.split(" AS train\n", 1)[1].split("\nFROM ", 1)[0]
