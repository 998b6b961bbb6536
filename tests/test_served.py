"""The served forecast's statistics, and proof that its weighting is not hard-wired to naive."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptopredict.distribution import weight_at
from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training import backtest, served
from cryptopredict.training.config import BacktestConfig, ModelConfig, ServedConfig

DAY = pd.Timedelta(days=1)


def test_published_levels_run_from_1_to_99_percent_with_5_percent_steps_and_the_median() -> None:
    """23 levels: 1%, 2.5%, 5%..95% every 5%, 97.5%, 99%; 10%/50%/90% are where the interval and point read."""
    assert len(served.LEVELS) == 23
    assert served.LEVELS[:3] == (0.01, 0.025, 0.05)
    assert served.LEVELS[-3:] == (0.95, 0.975, 0.99)
    assert (served.LEVELS[served.LOW], served.LEVELS[served.MEDIAN], served.LEVELS[served.HIGH]) == (0.1, 0.5, 0.9)


def test_pinball_loss_matches_the_hand_computed_value() -> None:
    """Actual 0 against quantiles -1, 0, 1 at 10/50/90%: losses 0.1, 0, 0.1, mean 1/15."""
    assert served.pinball(0.0, np.array([-1.0, 0.0, 1.0]), [0.1, 0.5, 0.9]) == pytest.approx(0.2 / 3)
    # Below a low quantile the loss is (1 - a) per unit: 0.9 for 0 against a 10% quantile of 1.
    assert served.pinball(0.0, np.array([1.0]), [0.1]) == pytest.approx(0.9)


def test_diebold_mariano_matches_the_hand_computed_statistic() -> None:
    """Differences -1, 1, -1, -1: mean -0.5, variance 0.75, HLN factor sqrt(0.75): statistic -1, p = t_3(-1)."""
    stat, p = served.diebold_mariano(np.array([0.0, 2.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0]), lag=0)
    assert stat == pytest.approx(-1.0)
    # t with 3 degrees of freedom at -1: 1/2 - (pi/6 + sin(pi/6) cos(pi/6)) / pi (the normal's would be 0.158655).
    assert p == pytest.approx(0.195501, abs=1e-6)


def test_diebold_mariano_counts_the_overlap_of_neighbouring_forecasts() -> None:
    """Differences -1, 1, -1, -1 at lag 1: variance 0.75 plus the Bartlett-weighted first autocovariance
    2 * 1/2 * (-0.3125) = 0.4375, HLN factor sqrt(0.375): statistic -0.925820."""
    stat, _ = served.diebold_mariano(np.array([0.0, 2.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0, 1.0]), lag=1)
    assert stat == pytest.approx(-0.5 * math.sqrt(0.375) / math.sqrt(0.4375 / 4))


def test_diebold_mariano_does_not_find_skill_in_overlapping_noise() -> None:
    """Loss differences of overlapping 7-step forecasts with no real edge: at 5% the test rejects in at most
    15% of 400 samples (without the Newey-West terms it rejects in about 25%)."""
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(400):
        d = np.convolve(rng.normal(size=126), np.ones(7), "valid")  # neighbours share 6 of 7 shocks
        rejected += served.diebold_mariano(d, np.zeros(d.size), lag=6)[1] < 0.05
    assert rejected / 400 < 0.15


def test_weights_interpolate_in_log_horizon_and_fade_past_the_longest() -> None:
    """Weights 0 at 1 step and 1 at 10: 0.5 at sqrt(10) steps; at 20 steps 1 * 10/20."""
    got = [weight_at(steps, [1, 10], [0.0, 1.0]) for steps in (1.0, math.sqrt(10), 10.0, 20.0)]
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 0.5])


def test_the_volatility_uses_only_returns_up_to_each_close() -> None:
    """Changing a later close leaves every earlier volatility as it was."""
    lc = np.log(100 + np.arange(50.0))
    a = served.ewma_volatility(lc, 10)
    lc2 = lc.copy()
    lc2[30:] += 0.5
    b = served.ewma_volatility(lc2, 10)
    np.testing.assert_array_equal(a[:30], b[:30])
    assert b[30] > a[30]


def test_grid_quantiles_never_cross_never_go_negative_and_widen() -> None:
    """On a noisy series every grid row ascends, prices stay positive, and the forecast band widens with the step."""
    rng = np.random.default_rng(0)
    lc = np.cumsum(rng.standard_t(3, 800) * 0.03) + 5
    sigma = served.ewma_volatility(lc, 30)
    q = served.grid_quantiles(lc, sigma, np.zeros(800), rng.normal(0, 0.1, 365), [1, 7, 30, 90, 180], [0.3] * 5)
    assert q.shape == (800 + 365, 23)
    assert np.all(np.diff(q, axis=1) >= 0)
    assert np.all(np.isfinite(np.exp(q)))
    width = q[800:, served.HIGH] - q[800:, served.LOW]
    assert width[179] > width[29] > width[0]


def test_a_weight_needs_a_significant_win_over_naive() -> None:
    """A change that predicts the outcome earns weight 1; a change that is noise earns 0."""
    rng = np.random.default_rng(1)
    origin = np.zeros(200)
    move = rng.normal(0, 0.02, 200)
    right = served.choose_weight(origin, move, origin + move, lag=0, alpha=0.05, min_n=20)
    assert right.weight == 1.0
    assert right.p_value < 0.001
    noise = served.choose_weight(origin, rng.normal(0, 0.02, 200), origin + move, lag=0, alpha=0.05, min_n=20)
    assert noise.weight == 0.0
    few = served.choose_weight(origin[:30], move[:30], move[:30], lag=4, alpha=0.05, min_n=20)
    assert few.weight == 0.0  # 30 overlapping forecasts are 6 independent ones
    assert few.n == 30


def test_a_lower_loss_without_a_significant_win_earns_no_weight() -> None:
    """Every close rises by 1; a change right 11 times and wrong 9 has the lowest loss at weight 1 (0.9 against
    the last close's 1.0), but Diebold-Mariano's p = 0.33: weight 0. Right 18 times of 20, it earns weight 1."""
    origin, actual = np.zeros(20), np.ones(20)
    lucky = served.choose_weight(origin, np.array([1.0, -1.0] * 9 + [1.0, 1.0]), actual, lag=0, alpha=0.05, min_n=20)
    assert (lucky.weight, lucky.best) == (0.0, 1.0)
    assert lucky.p_value == pytest.approx(0.333132, abs=1e-6)
    skilled = served.choose_weight(origin, np.array([1.0] * 18 + [-1.0] * 2), actual, lag=0, alpha=0.05, min_n=20)
    assert (skilled.weight, skilled.best) == (1.0, 1.0)
    assert skilled.p_value < 0.001
    assert skilled.dm_stat < 0
    # Significance is p strictly below alpha: at p = alpha the change earns nothing.
    edge = served.choose_weight(origin, np.array([1.0, -1.0] * 9 + [1.0, 1.0]), actual, 0, lucky.p_value, 20)
    assert edge.weight == 0.0


def test_the_return_tables_use_only_outcomes_known_at_the_origin() -> None:
    """Closes after the origin never change its standardised or raw return quantiles; the close at the origin
    (the newest outcome known) does."""
    rng = np.random.default_rng(3)
    lc = np.cumsum(rng.normal(0, 0.02, 400)) + 5
    origin, steps = 250, 7
    later = lc.copy()
    later[origin + 1 :] += rng.normal(0, 1.0, 400 - origin - 1)
    now = lc.copy()
    now[origin] += 10.0
    tables = {}
    for name, closes in (("base", lc), ("later", later), ("now", now)):
        sigma = served.ewma_volatility(closes, 30)
        tables[name] = (served.z_table(closes, sigma, origin, steps), served.return_quantiles(closes, origin, steps))
    for k in range(2):
        np.testing.assert_array_equal(tables["later"][k], tables["base"][k])
        assert tables["now"][k][-1] > tables["base"][k][-1]


# A quick, honest backtest on synthetic daily closes: 40 cutoffs a week apart, refits on a year.
_CONFIG = BacktestConfig(cutoffs=40, spacing=pd.Timedelta(days=7), min_train_rows=200, window=365)
_MODEL = ModelConfig(uncertainty_samples=0, yearly_seasonality=False, changepoint_prior_scale=0.05)


def _backtest(close: np.ndarray) -> dict:
    frame = backtest.backtest_frame(
        pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=close.size, freq="D", tz="UTC"),
                      "close": close}), "log")  # fmt: skip
    horizons = TIMEFRAMES["1Day"].horizons[:2]  # 1d and 7d
    cutoffs = backtest.plan_cutoffs(frame["ds"], DAY, horizons, _CONFIG)
    refits = [backtest.refit(frame, c, DAY, [1, 7], _MODEL, _CONFIG.window, intervals=False) for c in cutoffs]
    summary = backtest.evaluate(backtest.grid_of(frame, DAY), refits, horizons, _CONFIG, ServedConfig())
    assert summary is not None
    return summary["metrics"]


def test_where_prophet_has_skill_it_gets_weight_and_beats_naive() -> None:
    """A strong weekly pattern plus small noise: Prophet earns weight at 1 day, and the served forecast beats naive."""
    rng = np.random.default_rng(7)
    t = np.arange(700)
    close = np.exp(4.6 + 0.0005 * t + 0.04 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.005, t.size))
    metrics = _backtest(close)
    one = metrics["1d"]
    assert one["weight"] > 0.5
    assert one["skill"]["mape_ratio"] < 0.9
    assert one["served"]["mape"] < one["naive"]["mape"]
    assert one["beats_naive"] is True
    assert "of Prophet's predicted change" in one["summary"]


def test_on_a_random_walk_the_weight_falls_to_zero() -> None:
    """Closes that are a random walk: Prophet earns no weight, and the served forecast is naive at every horizon."""
    rng = np.random.default_rng(11)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, 700)))
    metrics = _backtest(close)
    for entry in metrics.values():
        assert entry["weight"] == 0.0
        assert entry["weights_used"]["max"] <= 0.3
        assert entry["skill"]["mape_ratio"] == pytest.approx(1.0, abs=0.02)
        assert "is the last close" in entry["summary"]


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [(12.706, 1, 0.975), (4.303, 2, 0.975), (3.182, 3, 0.975), (2.015, 5, 0.95), (2.228, 10, 0.975),
     (-1.697, 30, 0.05), (0.0, 7, 0.5), (2.617, 120, 0.995)],
)  # fmt: skip
def test_student_t_cdf_matches_the_printed_tables(t: float, df: int, p: float) -> None:
    """The exact series reproduces Student's t table values (3 decimals printed) for odd and even degrees of freedom."""
    assert served.student_t_cdf(t, df) == pytest.approx(p, abs=1e-4)


def test_diebold_mariano_is_judged_on_student_t_with_n_minus_1_degrees_of_freedom() -> None:
    """On 8 forecasts the HLN statistic's p-value is the t(7) tail, larger than the normal's would be."""
    a = np.array([0.1, 0.3, 0.2, 0.5, 0.1, 0.4, 0.2, 0.3])
    b = a + np.array([0.2, 0.1, 0.3, 0.0, 0.2, 0.1, 0.25, 0.05])
    stat, p = served.diebold_mariano(a, b, lag=0)
    assert p == pytest.approx(served.student_t_cdf(stat, 7))
    assert p > 0.5 * (1 + math.erf(stat / math.sqrt(2)))


def test_a_weighted_forecasts_band_rests_on_its_newest_40_errors_widened_for_the_next_one() -> None:
    """50 errors k/100 of the point log 0 + 0.5 * delta, over sigma 2 * sqrt(4): the newest 40 are (10..49)/400, and
    a level a reads the empirical a * 41/40 quantile above the median, 1 - (1 - a) * 41/40 at or below it."""
    k = np.arange(50.0)
    delta = np.sin(k) + 2.0
    args = (np.zeros(50), delta, k / 100 + 0.5 * delta, np.full(50, 2.0), 4, 0.5)
    z = served.error_z(*args)
    assert z is not None

    def at(p: float) -> float:  # the quantile of (10 + 39 u) / 400 at u = p, linear between the 40 points
        return (10 + 39 * min(max(p, 0.0), 1.0)) / 400

    for level in (0.01, 0.1, 0.5, 0.9, 0.99):
        p = level * 41 / 40 if level > 0.5 else 1 - (1 - level) * 41 / 40
        assert z[served.LEVELS.index(level)] == pytest.approx(at(p)), level
    assert served.error_z(*(a[:20] if isinstance(a, np.ndarray) else a for a in args)) is not None
    assert served.error_z(*(a[:19] if isinstance(a, np.ndarray) else a for a in args)) is None


def test_the_bootstrap_resamples_whole_blocks_from_every_start_and_is_reproducible() -> None:
    """On rows 0..19 in blocks of 5 every resample keeps 16 of its 19 neighbouring pairs consecutive, row 0 is
    drawn as a block start, the same data give the same interval, and fewer than two blocks give none."""
    rows = np.arange(20.0)

    def consecutive(v: np.ndarray) -> float:
        return float(np.mean(np.diff(v) == 1))

    lo, _ = served.block_bootstrap_ci((rows,), consecutive, 5)
    assert lo >= 16 / 19
    assert served.block_bootstrap_ci((rows,), np.min, 5)[0] == 0.0
    assert served.block_bootstrap_ci((rows,), np.mean, 5) == served.block_bootstrap_ci((rows,), np.mean, 5)
    assert served.block_bootstrap_ci((rows, rows), lambda a, b: float(np.max(np.abs(a - b))), 5) == (0.0, 0.0)
    assert served.block_bootstrap_ci((rows[:9],), np.mean, 5) is None
    assert served.block_bootstrap_ci((rows[:10],), np.mean, 5) is not None
    assert served.block_bootstrap_ci((rows[:3],), np.mean, 0) is not None  # a block of 0 rows is one row


def test_the_bootstrap_interval_widens_with_its_level() -> None:
    """Level 0 is the resamples' median twice; the 50% interval lies strictly inside the 90% one."""
    rows = np.random.default_rng(0).normal(size=60)
    lo0, hi0 = served.block_bootstrap_ci((rows,), np.mean, 3, level=0.0)
    lo5, hi5 = served.block_bootstrap_ci((rows,), np.mean, 3, level=0.5)
    lo9, hi9 = served.block_bootstrap_ci((rows,), np.mean, 3)
    assert lo0 == hi0
    assert lo9 < lo5 < lo0 < hi5 < hi9


def test_grid_quantiles_anchor_history_at_the_previous_close_and_the_forecast_at_the_last() -> None:
    """Weights 0.2 at 1 step and 0.8 at 7: a history point's median is the previous log close + 0.2 x Prophet's
    fitted change; forecast step j's is the last log close + w(j) x its predicted change; both bands are
    sigma x sqrt(j) x the spread of the standardised j-step returns known at the last close."""
    rng = np.random.default_rng(5)
    lc = np.cumsum(rng.normal(0, 0.02, 300)) + 5
    sigma = served.ewma_volatility(lc, 30)
    change, future = rng.normal(0, 0.01, 300), rng.normal(0, 0.05, 10)
    q = served.grid_quantiles(lc, sigma, change, future, [1, 7], [0.2, 0.8])
    mid, lo, hi = served.MEDIAN, served.LOW, served.HIGH
    np.testing.assert_allclose(q[1:300, mid], lc[:-1] + 0.2 * change[1:])
    assert q[0, mid] == lc[0]
    w = np.array([weight_at(j, [1, 7], [0.2, 0.8]) for j in range(1, 11)])
    np.testing.assert_allclose(q[300:, mid], lc[-1] + w * future)
    z1, z7 = (served.z_table(lc, sigma, 299, h) for h in (1, 7))
    np.testing.assert_allclose(q[1:300, hi] - q[1:300, lo], sigma[:-1] * (z1[hi] - z1[lo]))
    np.testing.assert_allclose(q[300, hi] - q[300, lo], sigma[-1] * (z1[hi] - z1[lo]))
    np.testing.assert_allclose(q[306, hi] - q[306, lo], sigma[-1] * math.sqrt(7) * (z7[hi] - z7[lo]))


def test_grid_quantiles_on_a_short_history_fall_back_to_the_normal() -> None:
    """40 closes hold no return table: the next step's band is sigma x the normal's 10-90% spread (2 x 1.2816)."""
    lc = np.cumsum(np.random.default_rng(6).normal(0, 0.02, 40)) + 5
    sigma = served.ewma_volatility(lc, 30)
    q = served.grid_quantiles(lc, sigma, np.zeros(40), np.zeros(3), [1, 7], [0.0, 0.0])
    assert q[40, served.HIGH] - q[40, served.LOW] == pytest.approx(sigma[-1] * 2 * 1.281552, rel=1e-6)


def test_the_volatility_is_a_running_mean_square_for_30_returns_then_halves_a_shock_every_halflife() -> None:
    """Returns 0.1 then 0.3: sigma 0.1 twice (the first close repeats the second), then sqrt(0.05); with 30
    returns of 0.02, a 0.1 shock and 0.02 again at half-life 10, the excess variance halves in 10 steps."""
    np.testing.assert_allclose(served.ewma_volatility(np.array([0.0, 0.1, 0.4]), 10), [0.1, 0.1, math.sqrt(0.05)])
    assert served.ewma_volatility(np.array([0.0, 0.1]), 10) == pytest.approx([0.1, 0.1])
    single = served.ewma_volatility(np.array([4.0]), 10)
    assert single.shape == (1,)
    assert np.isnan(single).all()
    r = np.full(60, 0.02)
    r[30] = 0.1
    var = served.ewma_volatility(np.concatenate([[0.0], np.cumsum(r)]), 10)[1:] ** 2
    alpha = 1 - 0.5 ** (1 / 10)
    assert var[29] == pytest.approx(0.0004)
    assert var[30] == pytest.approx(0.0004 + alpha * (0.01 - 0.0004))
    assert var[40] - 0.0004 == pytest.approx((var[30] - 0.0004) / 2)


def test_no_weight_states_no_evidence() -> None:
    """Too few outcomes, or a change always the wrong way (best weight 0): weight 0, best 0, no statistic, p = 1."""
    origin, actual = np.zeros(40), np.ones(40)
    for choice in (
        served.choose_weight(origin, np.ones(40), actual, lag=4, alpha=0.05, min_n=20),
        served.choose_weight(origin, -np.ones(40), actual, lag=0, alpha=0.05, min_n=20),
    ):
        assert (choice.weight, choice.n, choice.best, choice.p_value) == (0.0, 40, 0.0, 1.0)
        assert math.isnan(choice.dm_stat)


def test_student_t_is_certain_at_the_infinities() -> None:
    """P(T <= +inf) = 1 and P(T <= -inf) = 0 for odd and even degrees of freedom."""
    for df in (1, 2, 3):
        assert (served.student_t_cdf(math.inf, df), served.student_t_cdf(-math.inf, df)) == (1.0, 0.0)


def test_return_tables_standardise_by_sigma_sqrt_h_after_the_burn_in() -> None:
    """Log returns of 0.01 a step: every standardised 4-step return is 0.04 / (0.01 * 2) = 2; a table needs 30
    past origins (origin 63 has them, 62 not); raw tables start after 30 burn-in returns, however wild."""
    lc = np.arange(120) * 0.01
    sigma = served.ewma_volatility(lc, 10)
    np.testing.assert_allclose(served.z_table(lc, sigma, 100, 4), 2.0)
    assert served.z_table(lc, sigma, 63, 4) is not None
    assert served.z_table(lc, sigma, 62, 4) is None
    wild = np.concatenate([[0.0], np.cumsum(np.r_[np.full(30, 0.5), np.full(89, 0.01)])])
    np.testing.assert_allclose(served.return_quantiles(wild, 100, 1), 0.01)


def test_quantiles_centre_any_table_on_the_point() -> None:
    """A table whose median is 1: the point is the median, the 90% level 1.2816 x sigma sqrt(h) above it."""
    q = served.quantiles(np.log(100), 0.1, 4, served.normal_z() + 1)
    assert q[served.MEDIAN] == pytest.approx(np.log(100))
    assert q[served.HIGH] - q[served.MEDIAN] == pytest.approx(0.2 * 1.281552, abs=1e-6)


def test_diebold_mariano_at_its_edges() -> None:
    """Two differences -1, -3 give -2 (p = 1/2 - atan(2)/pi); one gives none; equal losses give 0 and p 1/2; a
    constant difference is infinitely significant; a lag past n - 1 uses every autocovariance (-1.154701)."""
    stat, p = served.diebold_mariano(np.array([0.0, 0.0]), np.array([1.0, 3.0]), lag=0)
    assert (stat, p) == pytest.approx((-2.0, 0.5 - math.atan(2) / math.pi))
    assert math.isnan(served.diebold_mariano(np.array([0.0]), np.array([1.0]), lag=0)[0])
    assert served.diebold_mariano(np.array([0.0]), np.array([1.0]), lag=0)[1] == 1.0
    ones = np.ones(3)
    assert served.diebold_mariano(ones, ones, lag=1) == (0.0, 0.5)
    assert served.diebold_mariano(ones * 0, ones, lag=1) == (-math.inf, 0.0)
    assert served.diebold_mariano(ones * 2, ones, lag=1) == (math.inf, 1.0)
    stat, _ = served.diebold_mariano(np.array([0.0, 2.0, 0.0, 0.0]), np.ones(4), lag=3)
    assert stat == pytest.approx(-0.25 / math.sqrt(0.1875 / 4))


def test_the_distribution_keeps_prophets_changes_only_where_a_weight_reads_them() -> None:
    """No weight at 1 step: the fitted changes are left out; no weight anywhere: the predicted ones too; and the
    backtest's error tables replace the return tables at their horizons."""
    rng = np.random.default_rng(7)
    lc = np.cumsum(rng.normal(0, 0.02, 300)) + 5
    sigma = served.ewma_volatility(lc, 30)
    change, future = rng.normal(0, 0.01, 300), rng.normal(0, 0.05, 10)
    tables = served.served_tables(lc, sigma, [1, 7])

    def dist(weights: list[float]) -> object:
        return served.distribution(lc, sigma, change, future, [1, 7], weights, tables)

    assert (dist([0.0, 0.0]).history_change, dist([0.0, 0.0]).future_change) == (None, None)
    later = dist([0.0, 0.5])
    assert later.history_change is None
    assert later.future_change == pytest.approx(list(future))
    assert dist([0.5, 0.5]).history_change == pytest.approx(list(change))
    errors = np.linspace(-3.0, 3.0, len(served.LEVELS))
    q = served.grid_quantiles(lc, sigma, change, future, [1, 7], [0.0, 0.5], {7: errors})
    lo, hi = served.LOW, served.HIGH
    assert q[306, hi] - q[306, lo] == pytest.approx(sigma[-1] * math.sqrt(7) * (errors[hi] - errors[lo]))
