"""The gate's error rates on bands, measured on simulated outcomes of the real layouts; a band broken on purpose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptopredict.training import cli, served
from cryptopredict.training.gate_error_rates import LAYOUTS, Layout, measure, outside_window


def test_the_layouts_are_the_backtests_defaults() -> None:
    """Daily: 120 cutoffs 15 bars apart, 90d rests on 20 independent outcomes; hourly: 168 bars apart, 720h on 24."""
    daily, hourly, short = LAYOUTS
    assert (daily.cutoffs, daily.spacing, short.cutoffs, hourly.spacing) == (120, 15, 20, 168)
    assert [daily.independent(h) for h in daily.horizons] == [120, 120, 60, 20, 10]
    assert [hourly.independent(h) for h in hourly.horizons] == [120, 120, 120, 24]
    assert [short.independent(h) for h in short.horizons] == [20, 20, 10, 3, 1]


@pytest.fixture(scope="module")
def error_rates() -> dict[str, list]:
    """Refusal rates of 1,500 simulated pair-runs per layout, at true coverages 80%, 60% and 95% (seeded)."""
    return {layout.name: measure(layout, (0.8, 0.6, 0.95), 1500, seed=1) for layout in LAYOUTS}


def test_a_calibrated_band_is_refused_in_at_most_one_pair_run_in_a_hundred(error_rates) -> None:
    """At every layout the coverage test refuses at most 1% of calibrated pair-runs, where the old window refused
    over 5% on daily and hourly bars and over 20% with 20 cutoffs."""
    for name, (calibrated, _, _) in error_rates.items():
        assert calibrated.coverage == 0.8
        assert calibrated.refused <= 0.01, name
    window = {name: rates[0].window_refused for name, rates in error_rates.items()}
    assert min(window.values()) > 0.05
    assert window[LAYOUTS[2].name] > 0.2


def test_a_broken_band_is_refused_in_nine_pair_runs_of_ten_where_the_outcomes_allow(error_rates) -> None:
    """Bands truly holding 60% or 95% are refused in at least 90% of pair-runs on the default layouts, mostly
    at the short horizons; with 20 cutoffs, or at 90 days and 720 hours, the outcomes are too few for that."""
    for layout in LAYOUTS[:2]:
        for broken in error_rates[layout.name][1:]:
            assert broken.refused >= 0.9, (layout.name, broken.coverage)
            shortest = layout.horizons[0].name
            assert broken.by_horizon[shortest] >= 0.9
    daily, hourly = error_rates[LAYOUTS[0].name], error_rates[LAYOUTS[1].name]
    assert daily[1].by_horizon["90d"] < 0.5
    assert daily[2].by_horizon["90d"] < 0.1
    assert hourly[1].by_horizon["720h"] < 0.5
    short = error_rates[LAYOUTS[2].name]
    assert short[0].gated == ("1d", "7d")
    assert short[1].refused < 0.6
    # 20 outcomes all inside the band happen by chance to a calibrated band in 1.2% of runs: not refusable.
    assert short[2].refused == 0.0


def test_the_old_window_is_measured_on_the_same_outcomes() -> None:
    """The window refuses a hit rate outside 70%-90% and nothing inside, edges included."""
    assert [outside_window(r) for r in (0.69, 0.7, 0.8, 0.9, 0.91)] == [True, False, False, False, True]
    tiny = Layout("tiny", 20, 1, LAYOUTS[0].horizons[:1])
    (rates,) = measure(tiny, (0.8,), 400, seed=2)
    assert rates.runs == 400
    # A calibrated band's hit rate over 20 outcomes is outside 70%-90% by chance about one time in six.
    assert 0.1 < rates.window_refused < 0.25


def _random_walk_csv(folder: Path) -> Path:
    """A seeded random walk of 1,100 daily closes with Student-t(4) returns (1.5% a day): what the served band
    is calibrated for."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(0.015 * rng.standard_t(4, 1100) / np.sqrt(2.0)))
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2021-01-01", periods=close.size, freq="1D", tz="UTC"),
        "open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0,
    })  # fmt: skip
    folder.mkdir()
    frame.to_csv(folder / "RW-USD.daily.csv", index=False)
    return folder


@pytest.mark.training
def test_a_band_broken_on_purpose_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real fits of a random walk, 40 cutoffs: the band as served passes; with every served quantile's spread
    scaled by 0.5, train.py refuses the run, naming the band's hit rate and its p-value, and writes no artifact."""
    argv = ["--csv-dir", str(_random_walk_csv(tmp_path / "csv")), "--symbols", "RW/USD", "--horizon-days", "30"]
    argv += ["--backtest-cutoffs", "40", "--workers", "1", "--out"]
    assert cli.main([*argv, str(tmp_path / "sound")]) == 0, capsys.readouterr().err
    sound = json.loads((tmp_path / "sound" / "manifest.json").read_text())["gate"]["checks"]
    assert all(c["passed"] for c in sound)
    assert {"coverage 1d", "coverage 7d"} <= {c["name"] for c in sound}
    real = served.quantiles

    def halved(log_point, sigma, steps, z: np.ndarray) -> np.ndarray:
        return log_point + 0.5 * (real(log_point, sigma, steps, z) - log_point)

    monkeypatch.setattr(served, "quantiles", halved)
    capsys.readouterr()
    assert cli.main([*argv, str(tmp_path / "broken")]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        "the gate refused the run, no artifact written: no pair passed (1 of 1 failed): RW/USD: coverage 1d: " in line
    )
    # 38 of the 40 cutoffs have enough past returns to make a band from (served.z_table).
    held = re.search(
        r"coverage 1d: 80% band held (\d+)% of 38 closes \(38 independent\): refused, p [<=] [\d.e-]+ ", line
    )
    assert held, line
    assert int(held[1]) < 65
    assert not (tmp_path / "broken" / "manifest.json").exists()
