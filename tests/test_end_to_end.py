"""The product as a user runs it: train.py on the bundled sample, then api.py over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, api_server, free_port, http_get, run_cli

pytestmark = [pytest.mark.training, pytest.mark.server]  # what every test here needs (tests/conftest.py)


def test_train_then_serve_over_http(tmp_path: Path) -> None:
    """train.py on a slice of the sample, then api.py as a real Waitress server answers the public contract."""
    out = tmp_path / "artifacts"
    proc = run_cli(
        "train.py",
        "--source",
        "csv",
        "--csv-dir",
        "data/",
        "--symbols",
        "BTC/USD,ETH/USD",
        "--timeframe",
        "1Day",
        "--start",
        "2024-06-01",
        "--out",
        str(out),
        "--model-version",
        "e2e-1",
    )
    assert proc.returncode == 0, proc.stderr
    with api_server(out) as base:
        health = http_get(base + "/healthz").json()
        manifest = json.loads((out / "manifest.json").read_text())
        assert health == {
            "status": "ok",
            "model_version": "e2e-1",
            "trained_at": manifest["trained_at"],
            "generation": manifest["generation"],
            "run_id": None,
            "symbols": ["BTC-USD", "ETH-USD"],
            "live_prices": {"state": "off"},  # LIVE_PRICES unset: answers rest on the artifact
        }
        r = http_get(base + "/bitcoin?date=2026-06-01")
        assert r.status == 200
        assert r.json()["prediction"] > 0
        assert http_get(base + "/v1/forecast/ETH-USD?date=2025-07-04").json()["actual_close"] == 2508.7
        assert "server" not in r.headers  # no version banner


def test_waitress_serve_call_entry_point(tmp_path: Path) -> None:
    """`waitress-serve --call api:create_app` serves the artifact named by ARTIFACT_DIR."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "waitress", "--listen", f"127.0.0.1:{port}", "--call", "api:create_app"],
        cwd=ROOT,
        env={**os.environ, "ARTIFACT_DIR": str(ROOT / "tests" / "golden" / "artifact")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "waitress-serve did not come up"
                time.sleep(0.1)
        assert r.json()["model_version"] == "golden-4"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_train_from_alpaca_then_serve(tmp_path: Path) -> None:
    """train.py --source alpaca through the real SDK against a local fake (ALPACA_DATA_URL), then serve."""
    from tests.fake_alpaca import FakeAlpaca, random_walk_bars

    bars = random_walk_bars(["BTC/USD", "ETH/USD"], periods=400, start="2024-01-01")
    out = tmp_path / "artifacts"
    with FakeAlpaca(bars, page_size=150) as fake:
        proc = run_cli(
            "train.py", "--source", "alpaca", "--symbols", "BTC/USD,ETH/USD", "--timeframe", "1Day",
            "--start", "2024-01-01", "--out", str(out), "--horizon-days", "30",
            env={"ALPACA_DATA_URL": fake.url, "NO_PROXY": "127.0.0.1"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert len(fake.requests) > 1  # paginated
        assert all("BTC/USD,ETH/USD" in r.query.get("symbols", "") for r in fake.requests)
    with api_server(out) as base:
        symbols = {s["symbol"]: s for s in http_get(base + "/v1/symbols").json()["symbols"]}
        # 400 bars were served; the newest, still forming on a live fetch, was dropped.
        assert symbols["BTC-USD"]["rows"] == 399
        assert symbols["BTC-USD"]["data_end"] == "2025-02-02T00:00:00Z"
        doc = http_get(base + "/v1/forecast/BTC-USD?date=2024-06-01").json()
        assert doc["actual_close"] == float(bars["BTC/USD"]["close"].iloc[152])  # 2024-06-01 is day 152


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_retrain_that_meets_faults_never_touches_the_served_artifact(tmp_path: Path) -> None:
    """Against the fake Alpaca: a 503 storm, a NaN page and an unknown pair each exit 1 in one line;
    the artifact from the last good run stays byte for byte, and the bundled sample is never used."""
    import math

    from tests.fake_alpaca import FakeAlpaca, Reply, random_walk_bars

    bars = random_walk_bars(["BTC/USD"], periods=200, start="2024-01-01")
    out = tmp_path / "artifacts"
    args = ("train.py", "--source", "alpaca", "--start", "2024-01-01", "--out", str(out), "--horizon-days", "30")

    def nan_close(page: dict) -> dict:
        page["bars"]["BTC/USD"][3]["c"] = math.nan
        return page

    faults = {
        "503 storm": (("--symbols", "BTC/USD"), Reply(status=503, headers={"Retry-After": "0"}), None),
        "NaN price": (("--symbols", "BTC/USD"), Reply(edit=nan_close), 1),
        "unknown pair": (("--symbols", "BTC/USD,NOPE/USD"), None, None),
    }
    with FakeAlpaca(bars, page_size=100) as fake:
        env = {"ALPACA_DATA_URL": fake.url, "NO_PROXY": "127.0.0.1"}
        good = run_cli(*args, "--symbols", "BTC/USD", env=env)
        assert good.returncode == 0, good.stderr
        before = _snapshot(out)
        for name, (symbols, reply, times) in faults.items():
            if reply is not None:
                fake.inject(reply, times=times)
            proc = run_cli(*args, *symbols, env=env)
            fake.clear()
            assert proc.returncode == 1, (name, proc.stderr)
            last = proc.stderr.strip().splitlines()[-1]
            assert last.startswith("train.py: error: "), (name, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert "data/" not in proc.stderr
            assert _snapshot(out) == before, name
