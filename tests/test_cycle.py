"""Where Prophet really beats the last close, the run ships with weight on it and a band that holds 70-90%."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptopredict.artifact import read_artifact
from tests.helpers import run_cli

pytestmark = pytest.mark.training  # what every test here needs (tests/conftest.py)

# Two seeded daily cycles under a 0.2%-a-day random walk: the yearly one, and a 120-day one.
CYCLES = {"BTC-USD": (0.35, 365.25, 0), "ETH-USD": (0.20, 120.0, 1)}


def _write_cycles(where: Path, days: int = 2600) -> None:
    t = np.arange(days)
    for slug, (amplitude, period, seed) in CYCLES.items():
        walk = np.cumsum(np.random.default_rng(seed).normal(0, 0.002, days))
        close = np.exp(10 + amplitude * np.sin(2 * np.pi * t / period) + walk)
        pd.DataFrame({
            "timestamp": pd.date_range("2019-01-01", periods=days, freq="D").strftime("%Y-%m-%d"),
            "open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0,
        }).to_csv(where / f"{slug}.daily.csv", index=False)  # fmt: skip


def test_a_cycle_prophet_can_forecast_ships_with_weight_and_a_calibrated_band(tmp_path: Path) -> None:
    """Both cycles train through train.py: gate passed, weights above 0 at 1-30 days, gated coverage in 70-90%."""
    _write_cycles(tmp_path)
    out = tmp_path / "artifacts"
    proc = run_cli(
        "train.py", "--source", "csv", "--csv-dir", str(tmp_path), "--symbols", "BTC/USD,ETH/USD",
        "--timeframe", "1Day", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    artifact = read_artifact(out)
    assert artifact.gate is not None
    assert artifact.gate.passed
    gated = [c for c in artifact.gate.checks if c.name.startswith("coverage") and "too few" not in c.detail]
    assert {c.name for c in gated if c.symbol == "BTC/USD"} >= {"coverage 1d", "coverage 7d"}
    for check in gated:
        held = int(check.detail.split("held ")[1].split("%")[0])
        assert 70 <= held <= 90, check
    for slug in CYCLES:
        record = artifact.forecasts[slug].backtest
        assert record is not None
        for horizon in ("1d", "7d", "30d"):
            score = record.metrics[horizon]
            assert score.weight > 0, (slug, horizon)
            assert score.nested.weighted_cutoffs
            assert score.skill.mape_ratio < 0.8
            assert "of Prophet's predicted change" in score.summary
    manifest = json.loads((out / "manifest.json").read_text())
    served = manifest["symbols"]["BTC-USD"]["backtest"]["metrics"]["7d"]
    # The band is the forecast's own: its errors were far smaller than a 7-day return.
    assert served["error_z"] is not None
