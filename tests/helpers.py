"""Shared test helpers: free ports, a real API server process, HTTP calls to it, the tools a test needs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
GOLDEN = Path(__file__).resolve().parent / "golden" / "artifact"


def on_ci() -> bool:
    """True when the run is CI's (CI=true): there a missing tool or a skipped test fails the run."""
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str) -> str:
    """The tool's path; when it is missing, skip the caller's tests, or under CI=true fail the run.

    Called at module level in a test file, so a missing tool is decided once, at collection.
    """
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (scripts/install-system-packages.sh)"
        if on_ci():
            pytest.fail(f"CI=true: {msg}", pytrace=False)
        pytest.skip(msg, allow_module_level=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def http_get(url: str, method: str = "GET", headers: Mapping[str, str] | None = None, timeout: float = 10) -> Reply:
    req = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def await_healthy(proc: subprocess.Popen, base: str, wait: float) -> bool:
    """Poll `base`/healthz until it answers 200 (True), or until `proc` exits or `wait` s pass (False).

    A readiness wait, not a timed check: `wait` only bounds how long a server that never comes up is
    waited for."""
    deadline = time.monotonic() + wait
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if http_get(base + "/healthz", timeout=2).status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def api_server(
    artifact: Path, python: str = sys.executable, env: Mapping[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[str]:
    """Run `api.py` as a real Waitress server on a free 127.0.0.1 port; yield its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [python, str(ROOT / "api.py"), "--artifact", str(artifact), "--port", str(port), "--host", "127.0.0.1"],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not await_healthy(proc, base, 30):
            if proc.poll() is not None:
                raise RuntimeError(f"api.py exited with {proc.returncode}: {proc.stdout.read()}")
            raise RuntimeError("api.py did not answer /healthz within 30 s")
        yield base
    finally:
        stop(proc)


IMAGE_TAG = "cryptopredict:test"
_image_build: subprocess.Popen | None = None


IMAGE_RUN_ID = "image-test-run-1"
# What the image tests' builds train: the bundled daily sample from 2023 with 12 backtest cutoffs
# (too few to gate on, so the gate reports; the default 120 on five years is minutes per build).
IMAGE_TRAINING = {"MODEL_VERSION": "image-test", "START": "2023-01-01", "BACKTEST_CUTOFFS": "12"}


def start_image_build() -> subprocess.Popen:
    """Start scripts/build-image.sh in the background once per session (see conftest.py)."""
    global _image_build
    if _image_build is None:
        _image_build = subprocess.Popen(
            ["/bin/bash", str(ROOT / "scripts" / "build-image.sh"), IMAGE_TAG],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "RUN_ID": IMAGE_RUN_ID,
                **IMAGE_TRAINING,
            },
        )
    return _image_build


def stop(proc: subprocess.Popen, timeout: float = 10) -> str:
    """Terminate a server (kill it if it lingers), close its pipes; return what it printed."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def run_cli(
    script: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """Run `train.py` or `api.py` the way a user does; capture what they would see."""
    return subprocess.run(
        [python, str(ROOT / script), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Registry:
    """A real OCI registry (Debian's docker-registry, distribution v2) on 127.0.0.1, standing in for GHCR."""

    host: str  # "127.0.0.1:PORT": image names are f"{host}/owner/repo:tag"
    proc: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """What the scripts need to talk to it: plain HTTP (Debian's skopeo 1.9 reads no per-call registries.conf)."""
        return {"REGISTRY_TLS_VERIFY": "false"}


@contextmanager
def local_registry(root: Path) -> Iterator[Registry]:
    """Start docker-registry on a free 127.0.0.1 port with its storage under `root`; stop it after."""
    binary = require_tool("docker-registry")
    port = free_port()
    config = root / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_get(f"http://127.0.0.1:{port}/v2/", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: {stop(proc)}")
            time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", proc)
    finally:
        stop(proc)


# --------------------------------------------------------------------------- artifacts written or edited by tests


def pair_entry(symbol: str = "BTC/USD", backtest: Mapping | None = None, **fields: object):
    """A manifest entry for a pair of a hand-made grid (one bar on 2025-01-01), with `backtest` (JSON form) read
    into its record."""
    from cryptopredict.artifact import BacktestRecord, PairEntry, ValidationRecord, from_json

    day = "2025-01-01T00:00:00Z"
    return PairEntry(
        **{
            "symbol": symbol,
            "rows": 1,
            "data_start": day,
            "data_end": day,
            "forecast_end": day,
            "horizon_steps": 1,
            "validation": ValidationRecord(symbol, 1, day, day, (), 0, ()),
            "fit_seconds": 0.0,
            "converged": True,
            "model_file": None,
            "backtest": from_json(BacktestRecord, backtest) if backtest is not None else None,
            **fields,
        }
    )


def manifest_doc(path: Path) -> dict:
    """An artifact's manifest.json as parsed JSON, for a test to edit (then `rewrite_manifest`)."""
    from cryptopredict.artifact import MANIFEST_NAME

    return json.loads((path / MANIFEST_NAME).read_text())


def rewrite_manifest(path: Path, doc: dict) -> None:
    """Write an edited manifest with its digest made right again: only a check deeper than the digest can
    catch the edit."""
    from cryptopredict.artifact import MANIFEST_NAME, canonical_digest

    (path / MANIFEST_NAME).write_text(json.dumps({**doc, "digest": canonical_digest(doc)}))


def file_of(artifact, name: str) -> Path:
    """The path of a file an artifact lists (its checksum was verified when it was read)."""
    assert name in artifact.manifest.files, name
    return artifact.generation_dir / name


def as_schema_5(path: Path) -> None:
    """Lay an artifact's grids out as schema 5 did, in place: Prophet's series as float64 followed by the
    closes, and the served file without them; the manifest's lengths, checksums and digest made right."""
    import hashlib
    from array import array

    doc = manifest_doc(path)
    gen = path / doc["generation"]
    for grid in doc["grids"].values():
        files, n = grid["files"], grid["history_points"]
        series_spec, served_spec = files["series"], files["served"]
        served = array("d" if served_spec["dtype"] == "<f8" else "f", (gen / served_spec["file"]).read_bytes())
        series = array(
            "d", array("f" if series_spec["dtype"] == "<f4" else "d", (gen / series_spec["file"]).read_bytes())
        )
        series.extend(served[:n])
        served = array("d", served[n:])
        for spec, values in ((series_spec, series), (served_spec, served)):
            (gen / spec["file"]).write_bytes(values.tobytes())
            spec.update(dtype="<f8", length=len(values))
            doc["files"][spec["file"]] = hashlib.sha256(values.tobytes()).hexdigest()
    doc["schema_version"] = 5
    rewrite_manifest(path, {k: v for k, v in doc.items() if k != "digest"})


def quantile_grid(
    quantiles: list[list[float]] | tuple[tuple[float, ...], ...],
    yhat: list[float] | tuple[float, ...],
    lower: list[float] | tuple[float, ...],
    upper: list[float] | tuple[float, ...],
    history_points: int = 1,
    levels: tuple[float, ...] = (0.1, 0.5, 0.9),
    symbol: str = "BTC/USD",
    start: str = "2025-01-01T00:00:00Z",
    close: float = 100.0,
):
    """A daily `PairGrid` with Prophet's series and the served quantiles given (one column a level), `close` at
    each history point, and the served distribution's parameters, which the gate and the alerts do not
    read, left empty."""
    from cryptopredict.artifact import PairGrid, ServedGrid

    return PairGrid(
        symbol=symbol,
        timeframe="1Day",
        step_seconds=86400,
        scale="log",
        start=start,
        history_points=history_points,
        forecast_points=len(yhat) - history_points,
        yhat=tuple(yhat),
        yhat_lower=tuple(lower),
        yhat_upper=tuple(upper),
        actual=(close,) * history_points,
        served=ServedGrid(levels, {}, {}, (), None, None, (), (), tuple(tuple(c) for c in quantiles)),
    )
