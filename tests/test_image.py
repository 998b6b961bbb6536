"""The real Dockerfile, built with buildah here: it trains, and its slim api image serves, as non-root."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    IMAGE_RUN_ID,
    IMAGE_TAG,
    IMAGE_TRAINING,
    ROOT,
    Registry,
    await_healthy,
    free_port,
    http_get,
    local_registry,
    require_tool,
    start_image_build,
    stop,
)
from tests.render_stand_in import KEY, SERVICE, RenderStandIn

require_tool("buildah")
SKOPEO = require_tool("skopeo")
# The driver scripts/build-image.sh builds with (overlay where the kernel allows it, else vfs).
DRIVER = subprocess.run(
    ["/bin/bash", str(ROOT / "scripts" / "buildah-storage.sh")], capture_output=True, text=True, check=True
).stdout.strip()
BUILDAH = ("buildah", "--storage-driver", DRIVER)
pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.server]  # builds both stages of the Dockerfile: minutes


# `buildah run --isolation chroot` first copies its own binary into a sealed memfd; the kernel can
# answer that seal with EBUSY for a moment (seen on CI). Nothing in the image has run yet, so that one
# failure is retried; any other failure is the test's to judge.
REEXEC_FLAKE = "sealing memfd copy"


def _buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    for _ in range(3):
        proc = subprocess.run([*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode == 0 or REEXEC_FLAKE not in proc.stderr:
            break
    return proc


def _serve(ctr: str, port: int, wait: float, what: str) -> subprocess.Popen:
    """The container's api.py (its own CMD's program) serving on 127.0.0.1:`port`, once /healthz answers
    200. Waits up to `wait` s, as Render does, however long a busy machine takes (a readiness wait, not a
    timed check); a server that exits or never answers fails here, by name, with what it printed."""
    # chroot isolation shares the host's network: the server is reachable on 127.0.0.1.
    command = [*BUILDAH, "run", "--isolation", "chroot", "--env", f"PORT={port}", "--env", "HOST=127.0.0.1",
               ctr, "--", "/venv/bin/python", "api.py"]  # fmt: skip
    for _ in range(3):
        # A file, not a pipe: a long-running server's log must never fill a pipe nobody reads.
        with tempfile.TemporaryFile("w+") as log:
            server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
            if await_healthy(server, f"http://127.0.0.1:{port}", wait):
                return server
            stop(server)
            log.seek(0)
            printed = log.read()
        if REEXEC_FLAKE not in printed:
            break
    pytest.fail(f"{what}'s api.py did not answer /healthz in {wait:.0f} s: {printed[-3000:]}")


@pytest.fixture(scope="module")
def image() -> str:
    """Both stages built by scripts/build-image.sh, started when the session began (a fresh machine
    also makes the base image)."""
    build = start_image_build()
    _, err = build.communicate(timeout=900)
    assert build.returncode == 0, err[-4000:]
    return IMAGE_TAG


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    ctr = _buildah("from", "--pull-never", image).stdout.strip()
    assert ctr, "buildah from failed"
    yield ctr
    _buildah("rm", ctr)


def _inspect(image: str) -> dict:
    proc = _buildah("inspect", "--type", "image", image)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_api_image_serves_healthz_and_the_original_bitcoin_contract(container: str) -> None:
    """The image's own CMD, as its own user, answers /healthz with the baked model version and /bitcoin."""
    port = free_port()
    server = _serve(container, port, wait=300, what="the image")
    try:
        health = http_get(f"http://127.0.0.1:{port}/healthz")
        assert health.status == 200
        assert health.json()["model_version"] == "image-test"
        r = http_get(f"http://127.0.0.1:{port}/bitcoin?date=2026-06-01")
        assert r.status == 200
        body = r.json()
        assert set(body) == {"date", "prediction", "prediction_low", "prediction_high"}
        assert 0 < body["prediction_low"] <= body["prediction"] <= body["prediction_high"]
    finally:
        stop(server)


def test_the_api_image_runs_as_a_numeric_non_root_user(container: str) -> None:
    """Processes in the image run as uid 10001, not root."""
    proc = _buildah(
        "run", "--isolation", "chroot", container, "--", "/venv/bin/python", "-c", "import os; print(os.getuid())"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "10001"


@pytest.mark.parametrize("module", ["pandas", "prophet", "numpy", "matplotlib", "alpaca"])
def test_the_api_image_has_none_of_the_training_stack(container: str, module: str) -> None:
    """The runtime image cannot import pandas, Prophet, numpy, matplotlib or alpaca-py."""
    proc = _buildah("run", "--isolation", "chroot", container, "--", "/venv/bin/python", "-c", f"import {module}")
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr


def test_the_worker_image_runs_dask_with_the_training_stack_as_non_root(image: str) -> None:
    """The worker target (TAG-worker) runs `dask worker` as uid 10001; distributed, Prophet and the package import,
    and the older `dask-scheduler` / `dask-worker` commands (Dask's Helm chart) answer."""
    worker = f"{image}-worker"
    config = _inspect(worker)["Docker"]["config"]
    assert config["User"] == "10001:10001"
    assert not config.get("Entrypoint")
    assert config["Cmd"][:2] == ["dask", "worker"]
    ctr = _buildah("from", "--pull-never", worker).stdout.strip()
    assert ctr, f"buildah from {worker} failed"
    try:
        code = "import os, distributed, prophet, cryptopredict.training.cluster; print(os.getuid())"
        proc = _buildah("run", "--isolation", "chroot", ctr, "--", "/venv/bin/python", "-c", code)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "10001"
        for command in (["/venv/bin/dask", "worker"], ["/venv/bin/dask-worker"], ["/venv/bin/dask-scheduler"]):
            proc = _buildah("run", "--isolation", "chroot", ctr, "--", *command, "--version")
            assert proc.returncode == 0, proc.stderr
    finally:
        _buildah("rm", ctr)


def test_the_image_metadata_says_what_it_is(image: str) -> None:
    """OCI labels carry the model version; the port, health check, user and exec-form CMD are set."""
    config = _inspect(image)["Docker"]["config"]
    assert config["Labels"]["org.opencontainers.image.version"] == "image-test"
    assert config["Labels"]["org.opencontainers.image.revision"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["/venv/bin/python", "api.py"]
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])


def test_the_runtime_image_is_a_fraction_of_the_train_stage(image: str) -> None:
    """The api image is under half the train stage's size (both printed for the README); most of
    what remains is the Debian base with Python itself."""
    sizes = {}
    for name in (image, f"{image}-train"):
        proc = _buildah("images", "--json", name)
        assert proc.returncode == 0, proc.stderr
        number, unit = json.loads(proc.stdout)[0]["size"].split()  # e.g. "185 MB"
        sizes[name] = float(number) * {"kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    print(f"image sizes: api {sizes[image] / 1e6:.0f} MB, train stage {sizes[f'{image}-train'] / 1e6:.0f} MB")
    assert sizes[image] * 2 < sizes[f"{image}-train"]


def _run_in(image: str, *command: str) -> str:
    ctr = _buildah("from", "--pull-never", image).stdout.strip()
    assert ctr, f"buildah from {image} failed"
    try:
        proc = _buildah("run", "--isolation", "chroot", ctr, "--", *command)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    finally:
        _buildah("rm", ctr)


def _manifest_in(image: str, path: str) -> dict:
    return json.loads(_run_in(image, "cat", path))


REPO = "acme/cryptopredict"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on 127.0.0.1, standing in for GHCR."""
    with local_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


class BuildahRender(RenderStandIn):
    """Render whose deploys run the pushed image for real: pulled from the registry by buildah, its own
    api.py serving on `port` (the service's public address), one deploy at a time."""

    def __init__(self, port: int) -> None:
        super().__init__(version="image-test")
        self.port = port
        self.containers: dict[str, str] = {}
        self.pulled: set[str] = set()  # images pulled from the registry, removed again at the end
        self.service: subprocess.Popen | None = None  # the deployed image's api.py

    def start_deploy(self, deploy: str, image: str) -> None:
        pulled = _buildah("from", "--tls-verify=false", f"docker://{image}", timeout=600)
        assert pulled.returncode == 0, pulled.stderr
        self.containers[deploy] = pulled.stdout.strip().splitlines()[-1]
        self.pulled.add(image)

    def switch_to(self, deploy: str) -> None:
        if self.service is not None:
            stop(self.service)
        if deploy not in self.containers:  # what ran before this test: nothing to start
            return
        # 500 s: under the deploy script's RENDER_HTTP_TIMEOUT (600 s here).
        self.service = _serve(self.containers[deploy], self.port, wait=500, what=f"deploy {deploy}")
        self.live = deploy

    def stop_all(self) -> None:
        if self.service is not None:
            stop(self.service)
        for ctr in self.containers.values():
            _buildah("rm", ctr)
        # Each run's registry has its own port, so its pulled images would pile up (each a copy in the store).
        for image in self.pulled:
            _buildah("rmi", image)


def _script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / name), *args],
        env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def _push(image: str, target: str) -> None:
    pushed = _buildah("push", "--quiet", "--tls-verify=false", image, f"docker://{target}", timeout=600)
    assert pushed.returncode == 0, pushed.stderr


def _outputs(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and not line.startswith("::"))


def _digest(ref: str) -> str:
    """The digest the registry gives for `ref` (the sha256 of its manifest's bytes)."""
    raw = subprocess.run(
        [SKOPEO, "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"], capture_output=True, check=True
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_two_runs_of_the_workflow_through_a_real_registry_and_render(
    image: str, registry: Registry, tmp_path: Path
) -> None:
    """The workflow's steps in order, twice, as a fork's first run and a later one with a new RUN_ID.

    Run 1 finds no champion, is pushed, deployed through Render's API (the stand-in runs the pushed
    image), smoke-tested and tagged production. Run 2 resolves production to run 1's digest, builds
    its challenger against it (the named context, pulled from the registry), really trains again
    (a replayed train stage would hand back run 1's artifact), carries run 1's published forecasts,
    is pushed; a deploy whose smoke test fails rolls back and leaves production where it was; then
    it is deployed, answers /healthz with its own generation, and becomes production.
    """
    env = {**registry.env, "HOME": str(tmp_path)}
    production = f"{registry.host}/{REPO}:production"
    render = BuildahRender(free_port()).start()
    deploy_env = {
        **env, "RENDER_API_URL": f"{render.url}/v1", "RENDER_API_KEY": KEY, "RENDER_SERVICE_ID": SERVICE,
        "PUBLIC_URL": f"http://127.0.0.1:{render.port}", "VERSION": "image-test", "RENDER_HTTP_TIMEOUT": "600",
        "RENDER_POLL_WAIT": "0", "RENDER_POLL_TRIES": "5", "SMOKE_TRIES": "3", "SMOKE_WAIT": "1",
    }  # fmt: skip
    try:
        # Run 1: a first run.
        first = _manifest_in(f"{image}-train", "/artifacts/manifest.json")
        assert first["run_id"] == IMAGE_RUN_ID
        # The api image serves the very artifact its train stage made (not a second training), without the
        # files kept for the record (the train stage, and so the report, has them).
        assert _manifest_in(image, "/app/artifacts/manifest.json")["generation"] == first["generation"]
        trained = set(_run_in(f"{image}-train", "ls", f"/artifacts/{first['generation']}").split())
        shipped = set(_run_in(image, "ls", f"/app/artifacts/{first['generation']}").split())
        record = {"report.md"} | {
            f"{s}.{kind}" for s in ("BTC-USD", "ETH-USD") for kind in ("prophet.json", "backtest.png")
        }
        assert record <= trained
        assert shipped == trained - record
        assert {"BTC-USD.served.bin", "BTC-USD.series.bin", "BTC-USD.forecast.png"} <= shipped
        champion = _script("resolve-champion.sh", production, env=env)
        assert champion.returncode == 0, champion.stderr
        assert _outputs(champion) == {}
        assert "a first run" in champion.stderr
        run1 = f"{registry.host}/{REPO}:image-test-run-1"
        _push(image, run1)
        shipped = _script("render-deploy.sh", env={**deploy_env, "IMAGE": run1, "GENERATION": first["generation"]})
        assert shipped.returncode == 0, shipped.stderr
        tagged = _script("tag-production.sh", run1, production, env=env)
        assert tagged.returncode == 0, tagged.stderr
        run1_digest = tagged.stdout.strip()

        # Run 2: production is run 1, by digest; the challenger is built against it.
        champion = _script("resolve-champion.sh", production, env=env)
        assert champion.returncode == 0, champion.stderr
        pinned = f"{registry.host}/{REPO}@{run1_digest}"
        assert _outputs(champion) == {"image": pinned, "context": f"production=docker-image://{pinned}"}
        build_env = {**env, **IMAGE_TRAINING, "RUN_ID": "image-test-run-2", "TARGETS": "train api"}
        again = _script("build-image.sh", "cryptopredict:test-again", env={**build_env, "PRODUCTION_IMAGE": pinned})
        assert again.returncode == 0, again.stderr[-4000:]
        second = _manifest_in("cryptopredict:test-again-train", "/artifacts/manifest.json")
        assert second["run_id"] == "image-test-run-2"
        assert second["generation"] != first["generation"]
        assert second["trained_at"] >= first["trained_at"]
        # Run 1's artifact was the champion: compared with, its forecasts carried forward.
        assert "production: model image-test" in again.stderr
        assert second["production"]["generation"] == first["generation"]
        vs = [c for c in second["gate"]["checks"] if c["name"] == "vs production"]
        assert len(vs) == 2
        assert all("against production image-test's" in c["detail"] for c in vs), vs
        ledger = _manifest_in("cryptopredict:test-again-train", f"/artifacts/{second['generation']}/ledger.json")
        # Same data end as the first run: its published forecasts stay, none is published twice.
        assert {e["generation"] for e in ledger["entries"]} == {first["generation"]}
        assert len(ledger["entries"]) == 10
        served = _manifest_in("cryptopredict:test-again", "/app/artifacts/manifest.json")
        assert served["generation"] == second["generation"]
        run2 = f"{registry.host}/{REPO}:image-test-run-2"
        _push("cryptopredict:test-again", run2)

        # A deploy whose smoke test fails (it expects another generation) rolls back, and is never tagged.
        failed = _script("render-deploy.sh", env={**deploy_env, "IMAGE": run2, "GENERATION": "gen-not-this-run"})
        assert failed.returncode == 1
        assert "rolling back to deploy dep-1" in failed.stderr
        assert _digest(production) == run1_digest
        assert http_get(f"http://127.0.0.1:{render.port}/healthz").json()["generation"] == first["generation"]

        # The real deploy: run 2 serves its own generation, then becomes production.
        shipped = _script("render-deploy.sh", env={**deploy_env, "IMAGE": run2, "GENERATION": second["generation"]})
        assert shipped.returncode == 0, shipped.stderr
        health = http_get(f"http://127.0.0.1:{render.port}/healthz").json()
        assert (health["run_id"], health["generation"]) == ("image-test-run-2", second["generation"])
        tagged = _script("tag-production.sh", run2, production, env=env)
        assert tagged.returncode == 0, tagged.stderr
        assert tagged.stdout.strip() != run1_digest
        assert _digest(run2) == tagged.stdout.strip()
        for printed in (shipped.stdout + shipped.stderr, failed.stdout + failed.stderr):
            assert KEY not in printed
            assert SERVICE not in printed
    finally:
        render.stop_all()
        render.close()
        _buildah("rmi", "cryptopredict:test-again", "cryptopredict:test-again-train")
