"""The served weight: scored out of sample before it ships, set to 0 by the nested procedure's loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training import backtest, gate
from cryptopredict.training.config import BacktestConfig, GateConfig, ServedConfig
from tests.helpers import quantile_grid
from tests.test_backtest import _fake_refits

GATE = GateConfig()
# A sound one-point grid: only the backtest's checks are under test here.
GRID = quantile_grid(((0.9,), (1.0,), (1.1,)), [1.0], [0.9], [1.1], symbol="X/USD", close=1.0)
ONE_BAR = {"1Day": pd.Timedelta(days=1), "1Hour": pd.Timedelta(hours=1)}


def _walk(n: int, step: pd.Timedelta, sd: float, seed: int = 0) -> backtest.Grid:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, sd, n)))
    ds = pd.date_range("2018-01-01", periods=n, freq=step)
    return backtest.grid_of(pd.DataFrame({"ds": ds, "close": close}), step)


def _evaluate(grid: backtest.Grid, timeframe: str, change, settings: BacktestConfig | None = None) -> dict:
    """Score fake refits (Prophet's change given by `change(origin, steps)`) over the timeframe's default cutoffs."""
    settings = settings or BacktestConfig().for_timeframe(timeframe)
    horizons = TIMEFRAMES[timeframe].horizons
    ds = pd.Series(grid.start + np.arange(grid.close.size) * grid.step)
    cutoffs = backtest.plan_cutoffs(ds, grid.step, horizons, settings)
    origins = [grid.index(c - grid.step) for c in cutoffs]
    refits = _fake_refits(grid, origins, [h.steps for h in horizons], change)
    summary = backtest.evaluate(grid, refits, horizons, settings, ServedConfig())
    assert summary is not None
    return summary


@pytest.mark.parametrize("timeframe", ["1Day", "1Hour"])
def test_no_weight_ships_unscored_for_a_perfect_or_a_useless_predictor(timeframe: str) -> None:
    """At every horizon of both timeframes a weight above 0 was scored by the nested backtest; useless serves 0."""
    step = ONE_BAR[timeframe]
    settings = BacktestConfig().for_timeframe(timeframe)
    longest = TIMEFRAMES[timeframe].horizons[-1].steps
    n = int(settings.cutoffs * (settings.spacing / step)) + longest + settings.min_train_rows + 10
    grid = _walk(n, step, 0.03 if timeframe == "1Day" else 0.006)
    lc = grid.log_close
    perfect = _evaluate(grid, timeframe, lambda o, s: lc[o + s] - lc[o])
    rng = np.random.default_rng(5)
    useless = _evaluate(grid, timeframe, lambda o, s: rng.normal(0, 0.03 * np.sqrt(s)))
    for name, entry in perfect["metrics"].items():
        assert (entry["weight"] > 0) == (entry["nested"]["weighted_cutoffs"] > 0 and entry["weight_basis"] == "earned")
        if entry["weight"] > 0:
            assert entry["served"]["mape"] < 0.2 * entry["naive"]["mape"], name
        else:
            # Not "did not beat it": the evidence was too thin to score a weight out of sample.
            assert entry["weight_basis"] in {"unscored", "too_few"}, name
            assert "too few independent outcomes" in entry["summary"], name
            assert entry["served"]["mape"] == pytest.approx(entry["naive"]["mape"]), name
    assert perfect["metrics"][TIMEFRAMES[timeframe].horizons[0].name]["weight"] == 1.0
    for name, entry in useless["metrics"].items():
        assert entry["weight"] == 0.0, name
        assert entry["skill"]["mape_ratio"] == pytest.approx(1.0), name
    for summary in (perfect, useless):
        checks = gate.check_symbol("X/USD", GRID, summary, True, GATE)
        assert not [c for c in checks if c.name.startswith("skill") and not c.passed]


def test_a_losing_nested_procedure_serves_naive_there_and_the_run_passes() -> None:
    """1d: the weight chosen on all cutoffs wins but lost chosen before each; served at 0, loss shown, gate passed."""
    step = pd.Timedelta(days=1)
    settings = BacktestConfig(cutoffs=120, spacing=pd.Timedelta(days=7), min_train_rows=200, window=0)
    rng = np.random.default_rng(2)
    n = 200 + 7 * 120 + 7
    returns = rng.normal(0, 0.01, n)
    first = n - 7 - 7 * 119 - 1  # the newest cutoff's origin is n - 8; they step back 7 days
    origins = first + 7 * np.arange(120)
    # The first 20 outcomes are big and Prophet called them all; then it is wrong slightly more often than right.
    returns[origins[:20] + 1] = rng.choice([-0.06, 0.06], 20)
    wrong = set(rng.choice(np.arange(20, 120), 56, replace=False).tolist())
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(returns[1:])]))
    ds = pd.date_range("2018-01-01", periods=n, freq="D")
    grid = backtest.grid_of(pd.DataFrame({"ds": ds, "close": close}), step)
    lc = grid.log_close
    sign = {int(o): (-1.0 if k in wrong else 1.0) for k, o in enumerate(origins)}
    horizons = TIMEFRAMES["1Day"].horizons[:2]
    refits = _fake_refits(
        grid,
        [int(o) for o in origins],
        [1, 7],
        lambda o, s: (sign[o] if s == 1 else 1.0) * (lc[o + s] - lc[o]),
    )
    summary = backtest.evaluate(grid, refits, horizons, settings, ServedConfig())
    assert summary is not None
    one, seven = summary["metrics"]["1d"], summary["metrics"]["7d"]
    assert one["weight_evidence"]["best"] == 1.0
    assert one["weight_evidence"]["p_value"] < 0.05
    assert one["nested"]["mape_ratio"] > 1
    assert one["nested"]["weighted_cutoffs"] > 0
    assert one["weight"] == 0.0
    assert one["weight_basis"] == "nested_loss"
    assert f"x{one['nested']['mape_ratio']:.3f}" in one["summary"]
    assert seven["weight"] == 1.0
    assert seven["weight_basis"] == "earned"
    checks = gate.check_symbol("X/USD", GRID, summary, True, GATE)
    skill = {c.name: c for c in checks if c.name.startswith("skill")}
    assert all(c.passed for c in skill.values())
    assert "served at weight 0" in skill["skill 1d"].detail
    assert f"x{one['nested']['mape_ratio']:.3f}" in skill["skill 1d"].detail
