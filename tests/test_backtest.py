"""The backtest's rules: cutoffs, what a refit may see, horizons, and the baselines' arithmetic."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from cryptopredict.training import backtest
from cryptopredict.training.backtest import HORIZONS, Horizon
from cryptopredict.training.config import BacktestConfig, ModelConfig

DAY = pd.Timedelta(days=1)
DAILY = HORIZONS["1Day"]
# Small and fast: few uncertainty samples, no yearly term on a few months of data.
FAST = ModelConfig(uncertainty_samples=200, yearly_seasonality=False)


def _frame(close: np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(close), freq="D")
    return pd.DataFrame({"ds": ds, "y": np.log(close), "close": close})


def _walk(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))


def test_cutoffs_leave_room_for_the_longest_horizon_and_step_back_evenly() -> None:
    """The newest cutoff's 30-day target is the last bar; older cutoffs are `spacing` apart, ascending."""
    ds = pd.Series(pd.date_range("2024-01-01", periods=400, freq="D"))
    cutoffs = backtest.plan_cutoffs(ds, DAY, DAILY, BacktestConfig(cutoffs=5, spacing=pd.Timedelta(days=10)))
    assert len(cutoffs) == 5
    assert cutoffs == sorted(cutoffs)
    assert cutoffs[-1] + 29 * DAY == ds.iloc[-1]
    assert {b - a for a, b in itertools.pairwise(cutoffs)} == {pd.Timedelta(days=10)}


def test_cutoffs_need_enough_history_before_them() -> None:
    """A cutoff with fewer than `min_train_rows` bars before it is not planned."""
    ds = pd.Series(pd.date_range("2024-01-01", periods=120, freq="D"))
    config = BacktestConfig(cutoffs=10, spacing=pd.Timedelta(days=14), min_train_rows=60)
    cutoffs = backtest.plan_cutoffs(ds, DAY, DAILY, config)
    assert cutoffs, "some cutoffs fit"
    assert all(int((ds < c).sum()) >= 60 for c in cutoffs)
    assert len(cutoffs) < 10
    assert backtest.plan_cutoffs(ds.iloc[:80], DAY, DAILY, config) == []


@pytest.mark.parametrize(("timeframe", "step"), [("1Day", DAY), ("1Hour", pd.Timedelta(hours=1))])
def test_every_target_is_at_or_after_its_cutoff_by_the_horizon(timeframe: str, step: pd.Timedelta) -> None:
    """A horizon of h bars targets the bar h-1 steps from the cutoff: its close comes h steps later."""
    cutoff = pd.Timestamp("2025-03-01")
    got = backtest.targets(cutoff, step, HORIZONS[timeframe])
    for h in HORIZONS[timeframe]:
        assert got[h.name] >= cutoff
        assert got[h.name] - cutoff == (h.steps - 1) * step


def test_training_slice_is_strictly_before_the_cutoff() -> None:
    """The rows a refit may use all precede the cutoff, and every earlier row is kept."""
    frame = _frame(_walk(100))
    cutoff = frame["ds"].iloc[70]
    seen = backtest.training_slice(frame, cutoff)
    assert seen["ds"].max() < cutoff
    assert len(seen) == 70


def test_a_refit_is_blind_to_everything_at_or_after_its_cutoff() -> None:
    """Rewriting every price from the cutoff on changes the actuals but not one model forecast."""
    close = _walk(160)
    cutoff = pd.Timestamp("2024-01-01") + 120 * DAY
    poisoned = close.copy()
    poisoned[120:] *= 5.0
    a = backtest.backtest_cutoff(_frame(close), cutoff, DAY, DAILY, FAST)
    b = backtest.backtest_cutoff(_frame(poisoned), cutoff, DAY, DAILY, FAST)
    model_a = [(f.horizon, f.predicted, f.lower, f.upper) for f in a if f.method == "model"]
    model_b = [(f.horizon, f.predicted, f.lower, f.upper) for f in b if f.method == "model"]
    assert model_a == model_b
    assert len(model_a) == 3
    assert [f.actual for f in a] != [f.actual for f in b]
    assert all(f.target >= cutoff for f in a)


def test_baseline_metrics_on_a_straight_line_equal_the_hand_computed_values() -> None:
    """Close = 100 + 2i: naive misses by 2h (MASE h), drift is exact, MAPE is 2h over the target price."""
    close = 100 + 2 * np.arange(150, dtype=float)
    frame = _frame(close)
    cutoffs = [frame["ds"].iloc[100], frame["ds"].iloc[110]]  # 100 and 110 training rows
    forecasts = [f for c in cutoffs for f in backtest.backtest_cutoff(frame, c, DAY, DAILY, FAST)]
    summary = backtest.summarize(forecasts, DAILY)
    assert summary is not None
    for h in DAILY:
        naive, drift = summary["metrics"][h.name]["naive"], summary["metrics"][h.name]["drift"]
        # Targets are rows c + h - 1: prices 100 + 2(c + h - 1) for c in (100, 110).
        targets = [100 + 2 * (c + h.steps - 1) for c in (100, 110)]
        assert naive["mae"] == pytest.approx(2 * h.steps)
        assert naive["mase"] == pytest.approx(h.steps)
        assert naive["mape"] == pytest.approx(np.mean([2 * h.steps / t for t in targets]), rel=1e-5)
        assert drift["mae"] == pytest.approx(0, abs=1e-9)
        assert naive["coverage"] is None
        assert naive["n"] == 2
    assert summary["cutoffs"] == ["2024-04-10T00:00:00Z", "2024-04-20T00:00:00Z"]


def test_drift_extends_the_mean_change_of_the_whole_window() -> None:
    """Drift from [1, 3, 2, 4] moves by (4 - 1) / 3 = 1 per step; naive stays at 4."""
    got = backtest.baseline_forecasts(np.array([1.0, 3.0, 2.0, 4.0]), steps=5)
    assert got == {"naive": 4.0, "drift": 9.0}


def test_coverage_counts_actuals_inside_the_model_interval() -> None:
    """Two of four actuals inside [lower, upper] is 50% coverage; beats_naive compares MAE."""
    c = pd.Timestamp("2025-01-01")
    h = Horizon("1d", 1)
    rows = [
        backtest.Forecast("model", "1d", c, c, actual=a, predicted=10.0, scale=1.0, lower=9.0, upper=11.0)
        for a in (9.5, 10.5, 12.0, 8.0)
    ] + [backtest.Forecast("naive", "1d", c, c, actual=a, predicted=10.0, scale=1.0) for a in (9.5, 10.5, 12.0, 8.0)]
    rows += [backtest.Forecast("drift", "1d", c, c, actual=10.0, predicted=10.0, scale=1.0)]
    summary = backtest.summarize(rows, [h])
    assert summary is not None
    entry = summary["metrics"]["1d"]
    assert entry["model"]["coverage"] == 0.5
    assert entry["model"]["mae"] == pytest.approx(1.25)
    assert entry["beats_naive"] is False  # same MAE as naive is not beating it
