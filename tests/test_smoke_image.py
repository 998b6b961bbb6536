"""scripts/smoke-image.sh, the image's own smoke test in the workflow, with a stand-in `docker` that runs api.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptopredict.serving import create_app
from tests.helpers import GOLDEN, ROOT, free_port

pytestmark = pytest.mark.server  # what every test here needs (tests/conftest.py)

IMAGE = "ghcr.io/acme/cryptopredict:1.4.2-20261204101500"

# `docker run --detach --publish 127.0.0.1:PORT:8080 IMAGE` serves the golden artifact on PORT (what the
# image would serve); `docker rm --force ID` stops it. Each call is written to calls.log.
_DOCKER = """#!/bin/sh
echo "$@" >> "{state}/calls.log"
case "$1" in
run)
    port="$(echo "$4" | cut -d: -f2)"
    "{python}" "{root}/api.py" --artifact "{golden}" --port "$port" --host 127.0.0.1 >/dev/null 2>&1 &
    echo $! > "{state}/pid"
    echo container-1 ;;
rm)
    kill "$(cat "{state}/pid")" ;;
esac
"""


def _smoke(tmp_path: Path, version: str, generation: str, tries: int = 60) -> subprocess.CompletedProcess[str]:
    """Run smoke-image.sh IMAGE with the stand-in docker first on PATH, polling `tries` times 0.5 s apart."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(_DOCKER.format(state=tmp_path, python=sys.executable, root=ROOT, golden=GOLDEN))
    docker.chmod(0o755)
    # The golden artifact's data ends in 2025: "today" for /bitcoin?date= is a day it serves.
    (bin_dir / "date").write_text("#!/bin/sh\necho 2025-03-01\n")
    (bin_dir / "date").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "VERSION": version,
        "GENERATION": generation,
        "SMOKE_PORT": str(free_port()),
        "SMOKE_TRIES": str(tries),
        "SMOKE_WAIT": "0.5",
    }
    return subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "smoke-image.sh"), IMAGE],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _golden_health() -> dict:
    return create_app({"artifact_dir": str(GOLDEN), "live_prices": "off"}).test_client().get("/healthz").get_json()


def test_the_image_serving_this_runs_model_passes_and_is_removed(tmp_path: Path) -> None:
    """The run's image answers /healthz with its version and generation and /bitcoin: exit 0, container removed."""
    health = _golden_health()
    proc = _smoke(tmp_path, health["model_version"], health["generation"])
    assert proc.returncode == 0, proc.stderr
    assert f"passed: {health['model_version']} generation {health['generation']} is serving" in proc.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0].startswith("run --detach --publish 127.0.0.1:")
    assert calls[0].endswith(f":8080 {IMAGE}")
    assert calls[-1] == "rm --force container-1"


def test_an_image_serving_another_generation_fails_in_one_line_and_is_removed(tmp_path: Path) -> None:
    """An image whose artifact is not this run's fails, naming what it serves; the container is removed anyway."""
    health = _golden_health()
    proc = _smoke(tmp_path, health["model_version"], "gen-20261204T101500Z-bbbbbbbb", tries=20)
    assert proc.returncode == 1
    assert "::error title=Smoke test failed::" in proc.stderr
    assert f"is serving {health['model_version']} {health['generation']} instead of" in proc.stderr
    assert (tmp_path / "calls.log").read_text().splitlines()[-1] == "rm --force container-1"
