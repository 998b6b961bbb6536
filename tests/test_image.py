"""The real Dockerfile, built with buildah here: it trains, and its slim api image serves, as non-root."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers import (
    IMAGE_RUN_ID,
    IMAGE_TAG,
    IMAGE_TRAINING,
    ROOT,
    free_port,
    http_get,
    require_tool,
    start_image_build,
    stop,
)

BUILDAH = ("buildah", "--storage-driver", "vfs")

require_tool("buildah")
pytestmark = pytest.mark.slow  # builds both stages of the Dockerfile: minutes


def _buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False)


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
    # chroot isolation shares the host's network: the server is reachable on 127.0.0.1.
    server = subprocess.Popen(
        [*BUILDAH, "run", "--isolation", "chroot", "--env", f"PORT={port}", "--env", "HOST=127.0.0.1",
         container, "--", "/venv/bin/python", "api.py"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = http_get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        if health is None:
            pytest.fail(f"the image's server did not answer in 60 s: {stop(server)[-3000:]}")
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


def _manifest_in(image: str, path: str) -> dict:
    ctr = _buildah("from", "--pull-never", image).stdout.strip()
    assert ctr, f"buildah from {image} failed"
    try:
        proc = _buildah("run", "--isolation", "chroot", ctr, "--", "cat", path)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    finally:
        _buildah("rm", ctr)


def test_a_build_with_another_run_id_trains_a_new_model_against_the_first_as_production(image: str) -> None:
    """The train stage built again with a new RUN_ID really trains again: another generation, its run id.
    Given the first api image as production (as the workflow passes the image tagged production), it
    compares with that model and carries its track record forward.

    A build cache that replayed the train stage (what a scheduled retrain would get without a
    run-unique value) would hand back the first artifact, and this test would fail.
    """
    first = _manifest_in(f"{image}-train", "/artifacts/manifest.json")
    assert first["run_id"] == IMAGE_RUN_ID
    again = subprocess.run(
        ["/bin/bash", "scripts/build-image.sh", "cryptopredict:test-again"],
        env={
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **IMAGE_TRAINING,
            "RUN_ID": "image-test-run-2",
            "TARGETS": "train api",
            "PRODUCTION_IMAGE": f"localhost/{image}",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    second = _manifest_in("cryptopredict:test-again-train", "/artifacts/manifest.json")
    assert second["run_id"] == "image-test-run-2"
    assert second["generation"] != first["generation"]
    assert second["trained_at"] >= first["trained_at"]
    # The first build's artifact was the champion: compared with, its forecasts carried forward.
    assert "production: model image-test" in again.stderr
    assert second["production"]["generation"] == first["generation"]
    vs = [c for c in second["gate"]["checks"] if c["name"] == "vs production"]
    assert len(vs) == 2
    assert all("against production image-test's" in c["detail"] for c in vs), vs
    ledger = _manifest_in("cryptopredict:test-again-train", f"/artifacts/{second['generation']}/ledger.json")
    # Same data end as the first run: its published forecasts stay, none is published twice.
    assert {e["generation"] for e in ledger["entries"]} == {first["generation"]}
    assert len(ledger["entries"]) == 10
    # The second api image verified its artifact at build time and serves it.
    assert _manifest_in("cryptopredict:test-again", "/app/artifacts/manifest.json")["run_id"] == "image-test-run-2"
    # The api image of the first build serves the first build's own run.
    served = _manifest_in(image, "/app/artifacts/manifest.json")
    assert served["run_id"] == IMAGE_RUN_ID
    _buildah("rmi", "cryptopredict:test-again", "cryptopredict:test-again-train")
