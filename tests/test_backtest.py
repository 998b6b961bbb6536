"""The backtest's rules: cutoffs, what a refit may see, horizons, the baselines' arithmetic, nesting."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cryptopredict.errors import TrainingError
from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training import backtest, served
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


def test_no_history_or_a_single_cutoff_plans_what_it_says() -> None:
    """No bars plan no cutoff; one asked for is the newest, exactly."""
    config = BacktestConfig(cutoffs=1, spacing=pd.Timedelta(days=10), min_train_rows=60)
    assert backtest.plan_cutoffs(pd.Series([], dtype="datetime64[ns]"), DAY, DAILY, config) == []
    ds = pd.Series(pd.date_range("2024-01-01", periods=400, freq="D"))
    assert backtest.plan_cutoffs(ds, DAY, DAILY, config) == [ds.iloc[-1] - 179 * DAY]
    assert backtest.plan_cutoffs(ds, DAY, DAILY, replace(config, cutoffs=0)) == []


def test_min_train_rows_counts_the_bars_strictly_before_a_cutoff() -> None:
    """400 daily bars: the newest cutoff (bar 220) has 220 bars before it, so 220 is enough and 221 is not."""
    ds = pd.Series(pd.date_range("2024-01-01", periods=400, freq="D"))
    newest = ds.iloc[220]
    config = BacktestConfig(cutoffs=1, spacing=pd.Timedelta(days=10), min_train_rows=220)
    assert backtest.plan_cutoffs(ds, DAY, DAILY, config) == [newest]
    assert backtest.plan_cutoffs(ds, DAY, DAILY, replace(config, min_train_rows=221)) == []


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


def test_a_refit_is_prophets_own_forecast_from_the_bar_before_the_cutoff() -> None:
    """Prophet fitted by hand on the last 60 bars before the cutoff, asked at the origin (the bar before the
    cutoff) and 1, 7 and 30 steps on, gives exactly the refit's point, lower and upper, back in USD."""
    from prophet import Prophet

    frame = _frame(_walk(160))
    cutoff = frame["ds"].iloc[120]
    reference = Prophet(**FAST.prophet_kwargs()).fit(frame.iloc[60:120][["ds", "y"]])
    np.random.seed(FAST.seed)
    origin = cutoff - DAY
    fc = reference.predict(pd.DataFrame({"ds": [origin, origin + DAY, origin + 7 * DAY, origin + 30 * DAY]}))
    r = backtest.refit(frame, cutoff, DAY, [1, 7, 30], FAST, window=60)
    assert (r.cutoff, r.steps) == (cutoff, (1, 7, 30))
    assert r.at_origin == float(np.exp(fc["yhat"].iloc[0]))
    assert r.yhat == tuple(float(v) for v in np.exp(fc["yhat"].to_numpy()[1:]))
    assert r.lower == tuple(float(v) for v in np.exp(fc["yhat_lower"].to_numpy()[1:]))
    assert r.upper == tuple(float(v) for v in np.exp(fc["yhat_upper"].to_numpy()[1:]))
    assert all(lo < y < hi for lo, y, hi in zip(r.lower, r.yhat, r.upper, strict=True))
    # The window is what the refit saw: all 120 bars give another fit.
    assert backtest.refit(frame, cutoff, DAY, [1, 7, 30], FAST).yhat != r.yhat
    # Without intervals: the same points, no bounds.
    bare = backtest.refit(frame, cutoff, DAY, [1, 7, 30], FAST, window=60, intervals=False)
    np.testing.assert_allclose(bare.yhat, r.yhat, rtol=1e-9)
    assert (bare.lower, bare.upper) == (None, None)


def test_a_refit_that_cannot_be_made_fails_in_one_line_naming_its_cutoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two bars before the cutoff are enough; one is refused by name; a fit Prophet refuses says why. The
    cutoff is named in UTC whatever the machine's time zone."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        frame = _frame(_walk(12))
        assert len(backtest.refit(frame, frame["ds"].iloc[2], DAY, [1], FAST).yhat) == 1
        with pytest.raises(TrainingError) as few:
            backtest.refit(frame, frame["ds"].iloc[1], DAY, [1], FAST)
        assert str(few.value) == "backtest refit at 2024-01-02T00:00:00Z: fewer than 2 bars before it"
        broken = frame.assign(y=frame["y"].where(frame.index != 5, np.inf))
        with pytest.raises(TrainingError) as failed:
            backtest.refit(broken, frame["ds"].iloc[10], DAY, [1], FAST)
        assert str(failed.value) == "backtest refit at 2024-01-11T00:00:00Z failed: Found infinity in column y."
        assert isinstance(failed.value.__cause__, ValueError)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


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


def test_the_drift_step_and_the_mase_scale_come_from_the_closes_the_refit_saw() -> None:
    """(mean absolute one-step change, mean change) over the closes up to the origin, the last `window`
    of them (0: all); one close has no change: (nan, 0)."""
    close = np.array([10.0, 12.0, 9.0, 13.0, 8.0, 14.0])  # changes +2, -3, +4, -5, +6
    stats = backtest._window_stats
    assert stats(close, 4, 0) == (3.5, -0.5)  # 10 12 9 13 8
    assert stats(close, 4, 3) == (4.5, -0.5)  # 9 13 8
    assert stats(close, 4, 2) == (5.0, -5.0)  # 13 8
    assert stats(close, 1, 5) == (2.0, 2.0)  # a window longer than the history: 10 12
    scale, drift = stats(close, 0, 0)
    assert math.isnan(scale)
    assert drift == 0.0


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


# --------------------------------------------------------------------------- the report, as published


def _refits_with_band(grid: backtest.Grid, origins: list[int], steps: list[int], change) -> list[Refit]:
    """`_fake_refits` with Prophet's own interval 3% either side of its point."""
    out = []
    for r in _fake_refits(grid, origins, steps, change):
        out.append(replace(r, lower=tuple(0.97 * v for v in r.yhat), upper=tuple(1.03 * v for v in r.yhat)))
    return out


def _named(schema: dict, components: dict) -> dict:
    """A schema with its reference followed (a named component) and a nullable one's object half taken."""
    while True:
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema


def _undocumented(value, schema: dict, components: dict, where: str = "backtest") -> list[str]:
    """Every key of the report, at every level, that the published schema (its components named) does not name."""
    schema = _named(schema, components)
    if isinstance(value, list):
        items = schema.get("items", {})
        return [u for i, v in enumerate(value) for u in _undocumented(v, items, components, f"{where}[{i}]")]
    if not isinstance(value, dict):
        return []
    named = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    out = []
    for key, v in value.items():
        if key in named:
            out += _undocumented(v, named[key], components, f"{where}.{key}")
        elif isinstance(extra, dict):
            out += _undocumented(v, extra, components, f"{where}.{key}")
        else:
            out.append(f"{where}.{key}")
    return out


def _assert_published(summary: dict) -> None:
    """The report is what the API documents: valid against the published Backtest schema, every key named."""
    from jsonschema import Draft202012Validator

    from cryptopredict.serving.openapi import document

    components = document("test")["components"]
    # The component by reference, in a root that holds the others it names.
    Draft202012Validator({"$ref": "#/components/schemas/Backtest", "components": components}).validate(summary)
    assert _undocumented(summary, components["schemas"]["Backtest"], components["schemas"]) == []


SKILLED_H = (Horizon("never", 10_000), Horizon("1d", 1), Horizon("3d", 3), Horizon("7d", 7))


@pytest.fixture  # not shared between tests: mutmut ties a function to the tests that call it, setup included
def skilled() -> tuple[backtest.Grid, list[Refit], BacktestConfig, backtest.Backtest]:
    """A random walk near $20; Prophet's change is the true change at 1 and 7 days (times 0.9, plus noise) and
    noise alone at 3 days; refits every day, each seeing 50 bars. A horizon longer than the data scores nothing."""
    rng = np.random.default_rng(3)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, 700)))
    grid = backtest.grid_of(_frame(close), DAY)
    lc = grid.log_close
    noise = np.random.default_rng(4).normal(0, 0.01, (700, 8))

    def change(o: int, s: int) -> float:
        return noise[o, s] * 3 if s == 3 else 0.9 * (lc[o + s] - lc[o]) + noise[o, s]

    refits = _refits_with_band(grid, list(range(50, 600)), [1, 3, 7], change)
    config = BacktestConfig(cutoffs=500, spacing=DAY, min_train_rows=60, window=50)
    return grid, refits, config, backtest.score(grid, refits, SKILLED_H, config, ServedConfig())


def test_a_skilled_horizon_serves_prophets_change_with_its_own_error_band(skilled) -> None:
    """Where Prophet's change earned a weight, the band's error table is the served point's errors on every
    scored cutoff at that weight, published as chosen; the report says so, and a horizon with no scored
    cutoff is left out without ending the others."""
    grid, refits, _, bt = skilled
    assert bt.summary is not None
    assert [h["name"] for h in bt.summary["horizons"]] == ["1d", "3d", "7d"]
    sigma = backtest.volatility(grid, ServedConfig())
    lc = grid.log_close
    for name, steps, lag in (("1d", 1, 0), ("7d", 7, 6)):
        h = Horizon(name, steps)
        choice = bt.weights[name]
        assert choice.weight > 0
        assert choice.basis == "earned"
        nested = backtest._nested(grid, sigma, refits, h, lag, ServedConfig())
        origin = nested.rows.origin[nested.keep]
        y = lc[origin + steps]
        z = served.error_z(lc[origin], nested.rows.delta[nested.keep], y, sigma[origin], steps, choice.weight)
        assert z is not None
        assert choice.error_z == tuple(backtest._round([float(v) for v in z]))
        entry = bt.summary["metrics"][name]
        assert entry["error_z"] == list(choice.error_z)
        assert entry["weight"] == backtest._round(choice.weight)
        assert entry["beats_naive"] is True
        assert entry["summary"].startswith(f"at {name} this forecast moves the last close by")
        assert 0 < entry["nested"]["weighted_cutoffs"] == int(np.sum(nested.weights > 0))
        # The served band, 80% nominal, covers most outcomes; and its pinball ratio is the two published losses'.
        assert 0.6 < entry["served"]["coverage"] < 1.0
        assert entry["skill"]["pinball_ratio"] == pytest.approx(
            entry["served"]["pinball"] / entry["naive"]["pinball"], rel=1e-5
        )
        # Overlapping outcomes (lag) count once per lag + 1 cutoffs.
        assert entry["independent"] == entry["served"]["n"] // (lag + 1)
        assert entry["served"]["coverage_independent"] == entry["served"]["coverage_n"] // (lag + 1)
        assert entry["weight_evidence"]["independent"] == entry["weight_evidence"]["n"] // (lag + 1)
        # Diebold-Mariano and the bootstrap use that lag: blocks of lag + 1.
        actual, naive = grid.close[origin + steps], grid.close[origin]
        nested_point = np.exp(nested.log_point)
        dm = served.diebold_mariano(np.abs(y - nested.log_point), np.abs(y - lc[origin]), lag)
        assert [entry["skill"]["dm_stat"], entry["skill"]["p_value"]] == backtest._round(list(dm))
        point = np.exp(lc[origin] + choice.weight * nested.rows.delta[nested.keep])
        ci = served.block_bootstrap_ci((actual, point, naive), backtest._mape_ratio, lag + 1)
        assert entry["skill"]["mape_ratio_ci90"] == backtest._round(ci)
        ci = served.block_bootstrap_ci((actual, nested_point, naive), backtest._mape_ratio, lag + 1)
        assert entry["nested"]["mape_ratio_ci90"] == backtest._round(ci)
        # Prophet as fitted is scored on its point, not its interval's edge.
        yhat = nested.rows.prophet[nested.keep, 0]
        assert entry["prophet"]["mae"] == pytest.approx(float(np.mean(np.abs(actual - yhat))), rel=1e-5)
        assert entry["skill"]["prophet_mape_ratio"] == pytest.approx(
            backtest._mape_ratio(actual, yhat, naive), rel=1e-5
        )
        lower, upper = nested.rows.prophet[nested.keep, 1], nested.rows.prophet[nested.keep, 2]
        inside = (lower <= actual) & (actual <= upper)
        assert 0 < inside.mean() < 1
        assert entry["prophet"]["coverage"] == pytest.approx(float(inside.mean()), rel=1e-5)
    _assert_published(bt.summary)


def test_a_horizon_without_skill_serves_the_nested_band_and_the_window_sets_mase_and_drift(skilled) -> None:
    """At 3 days Prophet is noise: weight 0 at every cutoff, so the served forecast is the nested procedure's
    point and band exactly. MASE divides by the mean one-day move over the refit's 50-bar window, and drift
    extends that window's mean move."""
    grid, _, _, bt = skilled
    entry = bt.summary["metrics"]["3d"]
    assert entry["weight"] == 0.0
    assert entry["weights_used"] == {"mean": 0.0, "max": 0.0}
    assert entry["nested"]["weighted_cutoffs"] == 0
    assert entry["error_z"] is None
    assert entry["beats_naive"] is False
    for key in ("coverage", "pinball", "mae", "mape"):
        assert entry["served"][key] == entry["nested"][key]
    assert entry["served"]["coverage_n"] == entry["served"]["n"]
    # By hand: the scored origins are the refits' with a known 3-day outcome and enough history.
    origins = np.array([grid.index(c) - 1 for c in pd.DatetimeIndex(bt.summary["cutoffs"]).tz_localize(None)])
    origins = origins[-entry["served"]["n"] :]
    close = grid.close
    actual, naive = close[origins + 3], close[origins]
    moves = [np.diff(close[o - 49 : o + 1]) for o in origins]
    scale = np.array([np.mean(np.abs(m)) for m in moves])
    drift = naive + 3 * np.array([np.mean(m) for m in moves])
    assert scale.max() < 1  # a $20 coin: a MASE scale under a dollar is still a scale
    assert entry["naive"]["mase"] == pytest.approx(float(np.mean(np.abs(actual - naive) / scale)), rel=1e-5)
    assert entry["drift"]["mae"] == pytest.approx(float(np.mean(np.abs(actual - drift))), rel=1e-5)
    assert entry["drift"]["mase"] == pytest.approx(float(np.mean(np.abs(actual - drift) / scale)), rel=1e-5)


def test_a_stablecoin_is_covered_by_its_zero_width_bands_and_has_no_scale_or_ratio() -> None:
    """Closes that never move: every band (served, nested, naive, Prophet's) is the close itself and covers it;
    MASE, the MAPE ratios and the pinball ratio have nothing to divide by and are published as null."""
    grid = backtest.grid_of(_frame(np.ones(400)), DAY)
    refits = _fake_refits(grid, list(range(100, 350, 5)), [1, 7], lambda o, s: 0.0)
    config = BacktestConfig(cutoffs=50, spacing=pd.Timedelta(days=5), min_train_rows=60, window=0)
    summary = backtest.evaluate(grid, refits, (Horizon("1d", 1), Horizon("7d", 7)), config, ServedConfig())
    assert summary is not None
    for entry in summary["metrics"].values():
        for name in ("served", "nested", "naive", "prophet"):
            assert entry[name]["coverage"] == 1.0, name
        for name in ("served", "nested", "naive", "prophet", "drift"):
            assert (entry[name]["mae"], entry[name]["mase"]) == (0.0, None), name
        assert entry["skill"]["mape_ratio"] is None
        assert entry["skill"]["prophet_mape_ratio"] is None
        assert entry["nested"]["mape_ratio"] is None
        assert entry["skill"]["pinball_ratio"] is None
        assert entry["skill"]["mape_ratio_ci90"] is None
        assert entry["nested"]["mape_ratio_ci90"] is None
        assert entry["coverage_ci90"] == [1.0, 1.0]
        assert entry["weight"] == 0.0
    _assert_published(summary)


def test_inside_an_interval_includes_its_edges() -> None:
    """Coverage counts a value on either edge as inside, and one beyond either edge as outside."""
    low, high = np.array([1.0, 1.0, 1.0, 1.0, 2.0]), np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    value = np.array([1.0, 2.0, 0.5, 2.5, 2.0])
    assert backtest._inside(low, value, high).tolist() == [True, True, False, False, True]


def test_the_autocorrelation_lag_counts_the_neighbouring_cutoffs_whose_outcomes_overlap() -> None:
    """h steps ahead, cutoffs `spacing` steps apart: ceil(h / spacing) - 1 neighbours overlap (spacing under
    one step counts as one)."""
    lag = backtest.overlap_lag
    assert lag(Horizon("1d", 1), 1.0) == 0
    assert lag(Horizon("7d", 7), 1.0) == 6
    assert lag(Horizon("7d", 7), 0.5) == 6
    assert lag(Horizon("7d", 7), 2.0) == 3
    assert lag(Horizon("30d", 30), 15.0) == 1
    assert lag(Horizon("31d", 31), 15.0) == 2
    assert lag(Horizon("1d", 1), 15.0) == 0


@pytest.mark.parametrize(
    ("weight", "ratio", "p", "beats"),
    [
        (0.5, 0.9, 0.01, True),
        (0.0, 0.9, 0.01, False),  # served nothing of Prophet's change
        (0.5, 1.0, 0.01, False),  # no lower error
        (0.5, 1.5, 0.01, False),
        (0.5, 0.9, 0.05, False),  # not significant at alpha = 0.05
        (0.5, 0.9, 0.2, False),
    ],
)
def test_beats_naive_needs_a_weight_a_lower_error_and_significance(weight, ratio, p, beats) -> None:
    assert backtest.beats_naive(weight, ratio, p, 0.05) is beats


def test_no_scored_horizon_gives_no_report_and_no_weights() -> None:
    """Refits whose targets all lie past the data score nothing: no report, no served weights."""
    grid = backtest.grid_of(_frame(_walk(200)), DAY)
    refits = _fake_refits(grid, [190, 195], [30], lambda o, s: 0.0)
    config = BacktestConfig(cutoffs=2, spacing=pd.Timedelta(days=5), min_train_rows=60)
    result = backtest.score(grid, refits, (Horizon("30d", 30),), config, ServedConfig())
    assert (result.summary, dict(result.weights)) == (None, {})


def test_the_served_band_at_a_cutoff_uses_only_the_errors_known_before_it(skilled) -> None:
    """Above weight 0 each cutoff's band comes from the served point's errors whose outcome was known by its
    origin (origin + h <= it); with none yet known it keeps the return band and is not counted as banded.
    At weight 0 the return band is the served one everywhere."""
    grid, refits, _, bt = skilled
    lc, steps = grid.log_close, 7
    sigma = backtest.volatility(grid, ServedConfig())
    nested = backtest._nested(grid, sigma, refits, Horizon("7d", steps), 6, ServedConfig())
    origin, delta = nested.rows.origin[nested.keep], nested.rows.delta[nested.keep]
    ret = nested.q_nested - nested.log_point[:, None]
    for weight in (bt.weights["7d"].weight, 1.0, 0.4):
        spread, banded = backtest._served_spread(lc, origin, delta, sigma, steps, weight, ret)
        assert banded.any()
        assert not banded.all()
        for k, o in enumerate(origin):
            past = origin[origin + steps <= o]
            z = served.error_z(lc[past], delta[: past.size], lc[past + steps], sigma[past], steps, weight)
            if z is None:
                assert not banded[k]
                np.testing.assert_array_equal(spread[k], ret[k])
            else:
                assert banded[k]
                np.testing.assert_allclose(spread[k], served.quantiles(0.0, float(sigma[o]), steps, z))
    spread, banded = backtest._served_spread(lc, origin, delta, sigma, steps, 0.0, ret)
    np.testing.assert_array_equal(spread, ret)
    assert banded.all()


@pytest.mark.parametrize(
    ("weight", "n", "nested_loss", "served", "basis"),
    [
        (0.0, 39, 1.0, 0.0, "too_few"),  # 39 cutoffs at lag 1: 19.5 independent, under 20
        (0.0, 40, 1.0, 0.0, "no_skill"),  # 20 independent: enough, and no weight won
        (0.6, 40, 1.0, 0.0, "nested_loss"),  # the nested procedure's loss equals naive's: not below it
        (0.6, 40, 0.99, 0.6, "earned"),
    ],
)
def test_the_served_weight_and_why(weight, n, nested_loss, served, basis) -> None:
    """The basis published beside each horizon's weight, at its boundaries."""
    choice = backtest.served.WeightChoice(weight, n, weight, 2.5, 0.01)
    final, why = backtest.served_weight(choice, np.array([0.0, 0.6]), np.full(4, nested_loss), np.ones(4), 1, 20)
    assert (final.weight, why) == (served, basis)
    assert why in backtest.WEIGHT_BASES


def test_unscored_weight_is_served_as_zero() -> None:
    """A weight the nested procedure never used at any cutoff is not served."""
    choice = backtest.served.WeightChoice(0.6, 40, 0.6, 2.5, 0.01)
    final, why = backtest.served_weight(choice, np.zeros(3), np.zeros(4), np.ones(4), 1, 20)
    assert (final.weight, why) == (0.0, "unscored")


_EVIDENCE = {"independent": 3, "needed": 20, "best": 0.6, "n": 40, "p_value": 0.0123}
_PROPHET = "Prophet's error x1.23 the last close's"


@pytest.mark.parametrize(
    ("basis", "weight", "n", "text"),
    [
        (
            "too_few", 0.0, 1,
            "at 1d this forecast is the last close: too few independent outcomes to weigh Prophet's predicted "
            f"change (3 non-overlapping of 20 needed, on 1 past cutoff; {_PROPHET})",
        ),
        (
            "unscored", 0.0, 2,
            "at 1d this forecast is the last close: Prophet's predicted change earned weight 0.6 on 2 past cutoffs, "
            "but too few independent outcomes were known before any cutoff to score that weight out of sample "
            f"({_PROPHET})",
        ),
        (
            "nested_loss", 0.0, 2,
            "at 1d this forecast is the last close: choosing Prophet's weight from the outcomes known before each "
            f"cutoff lost to it out of sample (MAPE x1.023 the last close's on 2 past cutoffs; {_PROPHET})",
        ),
        (
            "no_skill", 0.0, 2,
            "at 1d this forecast is the last close: Prophet's predicted change did not beat it on 2 past "
            f"cutoffs ({_PROPHET})",
        ),
        (
            "earned", 0.6, 2,
            "at 1d this forecast moves the last close by 60% of Prophet's predicted change, which beat the last "
            "close on 40 past cutoffs (Diebold-Mariano p = 0.012) and, weighed out of sample, at 12 of them "
            "(MAPE x1.023 the last close's)",
        ),
    ],
)  # fmt: skip
def test_each_basis_has_its_sentence(basis: str, weight: float, n: int, text: str) -> None:
    """The plain sentence published for each horizon names its evidence, in words, for every basis."""
    entry = {
        "served": {"n": n},
        "weight": weight,
        "weight_basis": basis,
        "weight_evidence": _EVIDENCE,
        "nested": {"mape_ratio": 1.0234, "weighted_cutoffs": 12},
        "skill": {"prophet_mape_ratio": 1.2345},
    }
    assert backtest.sentence("1d", entry) == text


@pytest.mark.parametrize("evidence", [20, 10])
def test_the_nested_forecast_at_each_cutoff_is_made_from_what_was_known_then(skilled, evidence: int) -> None:
    """At each scored cutoff, in time order: the weight is `choose_weight` on the earlier cutoffs whose outcome
    was known by its origin (origin + h <= it); the point moves the last close by that weight; the band is
    the point's own past errors where the weight is above 0 and they are enough, else the standardised
    return table; naive's band is the empirical past returns. Cutoffs too early for a return table are
    skipped, and the later ones still scored. With a weight allowed on 10 outcomes, some weighted cutoffs
    have too few errors for a band of their own (20) and keep the return table."""
    grid, refits, _, _ = skilled
    lc, config = grid.log_close, replace(ServedConfig(), min_weight_evidence=evidence)
    sigma = backtest.volatility(grid, config)
    for h, lag in ((Horizon("7d", 7), 6), (Horizon("1d", 1), 0), (Horizon("3d", 3), 2)):
        rows = backtest._rows(grid, refits, h)
        keep, points, weights, q_served, q_naive = backtest.served_forecasts(grid, sigma, rows, h, lag, config)
        assert keep[0] > 0  # the first origins lack a return table
        assert keep[-1] == rows.origin.size - 1
        assert served.z_table(lc, sigma, int(rows.origin[keep[0] - 1]), h.steps) is None
        used_errors = fell_back = 0
        for i, k in enumerate(keep):
            o = int(rows.origin[k])
            past = rows.origin[rows.origin + h.steps <= o]
            delta = rows.delta[: past.size]
            choice = served.choose_weight(
                lc[past], delta, lc[past + h.steps], lag, config.weight_alpha, config.min_weight_evidence
            )
            assert weights[i] == choice.weight
            assert points[i] == lc[o] + choice.weight * rows.delta[k]
            z = served.z_table(lc, sigma, o, h.steps)
            if choice.weight > 0:
                err = served.error_z(lc[past], delta, lc[past + h.steps], sigma[past], h.steps, choice.weight)
                if err is not None:
                    z, used_errors = err, used_errors + 1
                else:
                    fell_back += 1
            np.testing.assert_array_equal(q_served[i], served.quantiles(points[i], float(sigma[o]), h.steps, z))
            np.testing.assert_array_equal(q_naive[i], lc[o] + served.return_quantiles(lc, o, h.steps))
        # Prophet's change earns weight at 1 and 7 days (bands from its errors), never at 3 (return bands).
        assert (used_errors > 0) == (h.name != "3d")
        assert (np.max(weights) > 0) == (h.name != "3d")
        assert (fell_back > 0) == (evidence == 10 and h.name == "1d")  # at 7 days 10 independent = 70 errors


def test_a_refit_is_scored_only_where_its_target_bar_exists() -> None:
    """A target past the last bar, or on a grid point with no bar (a gap carried forward), is not scored;
    the other refits still are, in time order."""
    close = _walk(120)
    frame = _frame(close).drop(index=[100])  # no bar on day 100
    grid = backtest.grid_of(frame, DAY)
    assert grid.close.size == 120
    assert not grid.present[100]
    assert grid.close[100] == grid.close[99]
    assert grid.present[[99, 101]].all()
    # Origins 119 (target 120: past the end), 99 (target 100: the gap), 90, 50, 118 (target 119: the last bar).
    refits = _fake_refits(grid, [119, 99, 90, 50, 118], [1], lambda o, s: 0.01)
    rows = backtest._rows(grid, refits, Horizon("1d", 1))
    assert rows.origin.tolist() == [50, 90, 118]
    np.testing.assert_allclose(rows.delta, [0.01, 0.01, 0.01])


def test_prophets_predicted_change_is_clipped_both_ways() -> None:
    """A fit that runs away (x1e6 or /1e6 in a step) is read as a change of at most e^5 either way."""
    r = Refit(pd.Timestamp("2024-01-02"), (1, 2, 3), 1.0, (1e6, 1e-6, 2.0), None, None)
    np.testing.assert_allclose(backtest.predicted_change(r), [5.0, -5.0, math.log(2.0)])


def test_a_weight_earned_before_any_band_could_be_scored_serves_without_an_error_table() -> None:
    """A perfect Prophet earns weight 1 on 36 daily cutoffs, but only the last 11 have a return table, too
    few errors for a band of its own: no error table is published, and the served coverage, counted on
    banded cutoffs only, has none to count (null, not a mean of nothing)."""
    close = _walk(80, seed=5)
    grid = backtest.grid_of(_frame(close), DAY)
    lc = grid.log_close
    refits = _refits_with_band(grid, list(range(35, 71)), [1], lambda o, s: lc[o + s] - lc[o])
    config = BacktestConfig(cutoffs=36, spacing=DAY, min_train_rows=5, window=0)
    result = backtest.score(grid, refits, (Horizon("1d", 1),), config, ServedConfig())
    choice = result.weights["1d"]
    assert (choice.weight, choice.basis, choice.error_z) == (1.0, "earned", None)
    entry = result.summary["metrics"]["1d"]
    assert entry["served"]["n"] == 11
    assert (entry["served"]["coverage"], entry["served"]["coverage_n"], entry["error_z"]) == (None, 0, None)
    _assert_published(result.summary)
