"""The backtest's rules: cutoffs, what a refit may see, horizons, the baselines' arithmetic, nesting."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training import backtest
from cryptopredict.training.backtest import Horizon, Refit
from cryptopredict.training.config import BacktestConfig, ModelConfig, ServedConfig

DAY = pd.Timedelta(days=1)
DAILY = TIMEFRAMES["1Day"].horizons
# Small and fast: few uncertainty samples, no yearly term on a few months of data.
FAST = ModelConfig(uncertainty_samples=200, yearly_seasonality=False)


def _frame(close: np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(close), freq="D")
    return pd.DataFrame({"ds": ds, "y": np.log(close), "close": close})


def _walk(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))


def test_daily_and_hourly_horizons_are_the_ones_the_forecast_is_judged_on() -> None:
    """Daily bars are scored 1, 7, 30, 90 and 180 days ahead; hourly bars 1, 24, 168 and 720 hours."""
    assert [(h.name, h.steps) for h in DAILY] == [("1d", 1), ("7d", 7), ("30d", 30), ("90d", 90), ("180d", 180)]
    assert [h.steps for h in TIMEFRAMES["1Hour"].horizons] == [1, 24, 168, 720]


def test_defaults_give_over_a_hundred_cutoffs_on_the_bundled_sample() -> None:
    """Daily defaults: 120 cutoffs 15 days apart, refits on 4 years, a year of history at least."""
    config = BacktestConfig().for_timeframe("1Day")
    assert (config.cutoffs, config.spacing, config.min_train_rows, config.window) == (
        120,
        pd.Timedelta(days=15),
        365,
        1461,
    )
    hourly = BacktestConfig().for_timeframe("1Hour")
    assert (hourly.spacing, hourly.window) == (pd.Timedelta(days=7), 90 * 24)
    ds = pd.Series(pd.date_range("2017-11-09", "2025-07-04", freq="D"))  # ETH/USD's sample
    assert len(backtest.plan_cutoffs(ds, DAY, DAILY, config)) == 120


def test_cutoffs_leave_room_for_the_longest_horizon_and_step_back_evenly() -> None:
    """The newest cutoff's 180-day target is the last bar; older cutoffs are `spacing` apart, ascending."""
    ds = pd.Series(pd.date_range("2024-01-01", periods=400, freq="D"))
    config = BacktestConfig(cutoffs=5, spacing=pd.Timedelta(days=10), min_train_rows=60)
    cutoffs = backtest.plan_cutoffs(ds, DAY, DAILY, config)
    assert len(cutoffs) == 5
    assert cutoffs == sorted(cutoffs)
    assert cutoffs[-1] + 179 * DAY == ds.iloc[-1]
    assert {b - a for a, b in itertools.pairwise(cutoffs)} == {pd.Timedelta(days=10)}


def test_cutoffs_need_enough_history_before_them() -> None:
    """A cutoff with fewer than `min_train_rows` bars before it is not planned."""
    ds = pd.Series(pd.date_range("2024-01-01", periods=300, freq="D"))
    config = BacktestConfig(cutoffs=10, spacing=pd.Timedelta(days=14), min_train_rows=60)
    cutoffs = backtest.plan_cutoffs(ds, DAY, DAILY, config)
    assert cutoffs, "some cutoffs fit"
    assert all(int((ds < c).sum()) >= 60 for c in cutoffs)
    assert len(cutoffs) < 10
    assert backtest.plan_cutoffs(ds.iloc[:200], DAY, DAILY, config) == []


def test_training_slice_is_strictly_before_the_cutoff_and_trails_by_the_window() -> None:
    """The rows a refit may use all precede the cutoff; a window keeps only the newest of them."""
    frame = _frame(_walk(100))
    cutoff = frame["ds"].iloc[70]
    seen = backtest.training_slice(frame, cutoff)
    assert seen["ds"].max() < cutoff
    assert len(seen) == 70
    windowed = backtest.training_slice(frame, cutoff, window=30)
    assert list(windowed["ds"]) == list(frame["ds"].iloc[40:70])


def test_a_refit_is_blind_to_everything_at_or_after_its_cutoff() -> None:
    """Rewriting every price from the cutoff on changes not one forecast, and the origin is the bar before."""
    close = _walk(160)
    cutoff = pd.Timestamp("2024-01-01") + 120 * DAY
    poisoned = close.copy()
    poisoned[120:] *= 5.0
    a = backtest.refit(_frame(close), cutoff, DAY, [1, 7, 30], FAST)
    b = backtest.refit(_frame(poisoned), cutoff, DAY, [1, 7, 30], FAST)
    assert (a.at_origin, a.yhat, a.lower, a.upper) == (b.at_origin, b.yhat, b.lower, b.upper)
    assert len(a.yhat) == 3
    # A cold start: the same refit twice gives the same numbers (no state carried between refits).
    assert backtest.refit(_frame(close), cutoff, DAY, [1, 7, 30], FAST).yhat == a.yhat


def test_a_refit_on_a_steady_exponential_predicts_its_growth() -> None:
    """Close = 100 * 1.01^i: Prophet's predicted log change over h days is h * log(1.01), within 5%."""
    close = 100 * 1.01 ** np.arange(200)
    r = backtest.refit(_frame(close), pd.Timestamp("2024-01-01") + 150 * DAY, DAY, [1, 7, 30], FAST)
    np.testing.assert_allclose(backtest.predicted_change(r), np.array([1, 7, 30]) * math.log(1.01), rtol=0.05)


def _fake_refits(grid: backtest.Grid, origins: list[int], steps: list[int], change) -> list[Refit]:
    """Refits whose Prophet forecast from each origin moves the close by change(origin, h) in log."""
    out = []
    for o in origins:
        yhat = tuple(float(grid.close[o] * math.exp(change(o, s))) for s in steps)
        out.append(Refit(grid.start + (o + 1) * grid.step, tuple(steps), float(grid.close[o]), yhat, yhat, yhat))
    return out


def test_baseline_metrics_on_a_straight_line_equal_the_hand_computed_values() -> None:
    """Close = 100 + 2i: naive misses by 2h (MASE h), drift is exact, MAPE is 2h over the target price."""
    close = 100 + 2 * np.arange(400, dtype=float)
    grid = backtest.grid_of(_frame(close), DAY)
    origins = [200, 210]
    horizons = (Horizon("1d", 1), Horizon("7d", 7))
    refits = _fake_refits(grid, origins, [1, 7], lambda o, s: 0.0)
    config = BacktestConfig(cutoffs=2, spacing=pd.Timedelta(days=10), min_train_rows=60, window=0)
    summary = backtest.evaluate(grid, refits, horizons, config, ServedConfig())
    assert summary is not None
    # Naive repeats the close at the origin, so it misses by the line's rise over the horizon: 2 per day.
    # Targets are closes 100 + 2 * (origin + h): 1d -> 502 and 522, 7d -> 514 and 534.
    expected = {
        # name: (MAE, MASE = MAE / the mean one-day move of 2, MAPE)
        "1d": (2.0, 1.0, 0.00390774),  # (2/502 + 2/522) / 2 = (0.00398406 + 0.00383142) / 2
        "7d": (14.0, 7.0, 0.0267273),  # (14/514 + 14/534) / 2 = (0.0272374 + 0.0262172) / 2
    }
    for name, (mae, mase, mape) in expected.items():
        entry = summary["metrics"][name]
        naive, drift = entry["naive"], entry["drift"]
        assert naive["mae"] == pytest.approx(mae)
        assert naive["mase"] == pytest.approx(mase)
        assert naive["mape"] == pytest.approx(mape, rel=1e-5)
        assert drift["mae"] == pytest.approx(0, abs=1e-6)
        assert entry["served"]["n"] == 2
        # Prophet "predicted" no change here: it misses exactly as naive does.
        assert entry["prophet"]["mae"] == pytest.approx(mae)
        # Two outcomes earn Prophet no weight, so the served forecast is naive too: both ratios are 1.
        assert entry["weight"] == 0.0
        assert entry["served"]["mape"] == pytest.approx(mape, rel=1e-5)
        assert (entry["skill"]["mape_ratio"], entry["skill"]["prophet_mape_ratio"]) == pytest.approx((1.0, 1.0))
    assert summary["cutoffs"] == ["2024-07-20T00:00:00Z", "2024-07-30T00:00:00Z"]


def test_the_weight_used_at_a_cutoff_is_chosen_on_earlier_outcomes_only() -> None:
    """A perfect Prophet earns weight only once 20 earlier outcomes show it; later closes change nothing before."""
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 700)))
    grid = backtest.grid_of(_frame(close), DAY)
    lc = grid.log_close
    origins = list(range(100, 600, 5))
    refits = _fake_refits(grid, origins, [1], lambda o, s: lc[o + s] - lc[o])  # knows the future
    h = Horizon("1d", 1)
    rows = backtest._rows(grid, refits, h)
    sigma = np.full(lc.size, 0.02)
    keep, points, weights, _, _ = backtest.served_forecasts(grid, sigma, rows, h, 0, ServedConfig())
    assert keep.size == len(origins)
    assert np.all(weights[:20] == 0)  # fewer than 20 outcomes known: no weight yet
    assert weights[-1] == 1.0
    # Later prices rewritten: every forecast made before them is unchanged.
    cut = origins[50]
    altered = close.copy()
    altered[cut + 1 :] *= 1.5
    grid2 = backtest.grid_of(_frame(altered), DAY)
    rows2 = backtest._rows(grid2, refits, h)  # the same Prophet forecasts
    _, points2, weights2, _, _ = backtest.served_forecasts(grid2, sigma, rows2, h, 0, ServedConfig())
    np.testing.assert_array_equal(weights2[:50], weights[:50])
    np.testing.assert_allclose(points2[:51], points[:51])
