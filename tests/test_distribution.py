"""The served distribution from its parameters: the one arithmetic training publishes and the API serves."""

from __future__ import annotations

import math

import pytest

from cryptopredict.distribution import Distribution, LogCloses, interpolate_log_steps, weight_at

LEVELS = (0.1, 0.5, 0.9)


def _dist(history: bool = True, future: bool = True) -> Distribution:
    """Three bars closing 100, 110, 121; two forecast steps; weights 0.5 at 1 step and 1.0 at 2."""
    return Distribution(
        levels=LEVELS,
        log_close=[math.log(100), math.log(110), math.log(121)],
        sigma=[0.1, 0.2, 0.3],
        history_change=[0.0, 0.05, -0.02] if history else None,
        future_change=[0.1, 0.2] if future else None,
        forecast_points=2,
        horizon_steps=(1, 2),
        weights=(0.5, 1.0),
        z_steps=(1, 2),
        z_rows=((-1.0, 0.0, 1.0), (-2.0, 0.0, 3.0)),
    )


def test_values_between_knots_are_linear_in_log_steps_and_flat_outside() -> None:
    """Knots 1.0, 3.0 and -1.0 at 2, 8 and 32 steps: halfway in log steps at 4 and 16, a quarter of the way at
    2 x 2**0.5 (log steps, not steps), flat beyond."""
    at, values = [2, 8, 32], [1.0, 3.0, -1.0]
    assert interpolate_log_steps(4, at, values) == pytest.approx(2.0, rel=1e-12)
    assert interpolate_log_steps(2 * 2**0.5, at, values) == pytest.approx(1.5, rel=1e-12)
    assert interpolate_log_steps(16, at, values) == pytest.approx(1.0, rel=1e-12)
    assert interpolate_log_steps(8, at, values) == 3.0
    assert [interpolate_log_steps(s, at, values) for s in (0.5, 1, 2)] == [1.0, 1.0, 1.0]
    assert [interpolate_log_steps(s, at, values) for s in (32, 64)] == [-1.0, -1.0]


def test_the_weight_interpolates_between_horizons_and_falls_past_the_longest() -> None:
    """Weights 0.2 at 2 steps and 0.6 at 8: 0.4 at 4, 0.2 below 2, 0.6 at 8, then 0.6 x 8 / steps."""
    assert weight_at(4, [2, 8], [0.2, 0.6]) == pytest.approx(0.4, rel=1e-12)
    assert weight_at(1, [2, 8], [0.2, 0.6]) == 0.2
    assert weight_at(8, [2, 8], [0.2, 0.6]) == 0.6
    assert weight_at(16, [2, 8], [0.2, 0.6]) == pytest.approx(0.3, rel=1e-12)
    assert weight_at(7, [1, 7], [0.2, 0.3]) == 0.3  # at the longest, its own weight: not 0.3 x 7 / 7
    assert _dist().weight_at(3) == pytest.approx(1.0 * 2 / 3, rel=1e-12)


def test_each_point_is_the_forecast_made_the_bar_before_or_from_the_last_close() -> None:
    """History: the previous close moved by w(1) x Prophet's fitted change, sigma of the bar before x z(1);
    forecast step j: the last close moved by w(j) x the predicted change, sigma at the last close x sqrt(j) x z(j)."""
    d = _dist()
    spread = [-1.0, 0.0, 1.0]
    expected = [
        [math.log(100) + 0.1 * z for z in spread],
        [math.log(100) + 0.5 * 0.05 + 0.1 * z for z in spread],
        [math.log(110) + 0.5 * -0.02 + 0.2 * z for z in spread],
        [math.log(121) + 0.5 * 0.1 + 0.3 * z for z in spread],
        [math.log(121) + 1.0 * 0.2 + 0.3 * math.sqrt(2) * z for z in (-2.0, 0.0, 3.0)],
    ]
    got = [[d.log_quantile(i, k) for k in range(3)] for i in range(d.points)]
    assert got == [pytest.approx(row, rel=1e-12) for row in expected]
    assert d.price(4, 2) == float(f"{math.exp(expected[4][2]):.8g}")
    assert (d.history_points, d.points) == (3, 5)


def test_leads_between_the_tables_read_them_linearly_in_log_steps() -> None:
    """Tables at 1, 4 and 16 steps and 20 forecast steps: at every lead each level's spread from the median is
    its table read by `interpolate_log_steps` (between two tables, at one, past the last), whether the levels
    at a point are read together (quantiles=all) or one level along the whole grid."""
    d = Distribution(
        levels=LEVELS,
        log_close=[math.log(100), math.log(120)],
        sigma=[0.1, 0.2],
        history_change=None,
        future_change=[0.01 * j for j in range(1, 21)],
        forecast_points=20,
        horizon_steps=(1, 8),
        weights=(0.25, 0.75),
        z_steps=(1, 4, 16),
        z_rows=((-1.0, 0.1, 1.0), (-1.5, 0.0, 2.0), (-3.0, -0.2, 2.5)),
    )
    columns = list(zip(*d.z_rows, strict=True))
    for j in range(1, 21):
        median = interpolate_log_steps(j, d.z_steps, columns[1])
        point = math.log(120) + weight_at(j, d.horizon_steps, d.weights) * 0.01 * j
        expected = [point + 0.2 * math.sqrt(j) * (interpolate_log_steps(j, d.z_steps, c) - median) for c in columns]
        assert [d.log_quantile(1 + j, k) for k in range(3)] == pytest.approx(expected, rel=1e-13, abs=1e-13), j
    # Two steps is halfway from 1 to 4 in log steps: the 90% table 1.5 there, the median 0.05.
    assert d.log_quantile(3, 2) - d.log_quantile(3, 1) == pytest.approx(0.2 * math.sqrt(2) * 1.45, rel=1e-12)
    fresh = Distribution(**{f: getattr(d, f) for f in ("levels", "log_close", "sigma", "history_change",
                                                        "future_change", "forecast_points", "horizon_steps",
                                                        "weights", "z_steps", "z_rows")})  # fmt: skip
    # Its first read, at history point 1: the close before and its volatility, the one-step table.
    assert [fresh.log_quantile(1, k) for k in range(3)] == [math.log(100) + 0.1 * z for z in (-1.1, 0.0, 0.9)]
    by_point = [[d.log_quantile(i, k) for k in range(3)] for i in range(d.points)]
    by_level = [[d.log_quantile(i, k) for i in range(d.points)] for k in range(3)]
    assert by_point == [list(row) for row in zip(*by_level, strict=True)]


def test_changes_no_weight_reads_can_be_left_out() -> None:
    """Without Prophet's changes the medians are the previous close before the data end and the last after it."""
    d = _dist(history=False, future=False)
    medians = [d.log_quantile(i, 1) for i in range(5)]
    assert medians == [math.log(100), math.log(100), math.log(110), math.log(121), math.log(121)]


def test_the_grid_and_the_columns_are_the_same_prices() -> None:
    """grid() (training's copy) and the columns the API reads give the same price at every point and level."""
    d = _dist()
    columns = d.columns()
    assert [list(c) for c in columns] == d.grid()
    assert [len(c) for c in columns] == [5, 5, 5]
    column = columns[2]
    assert column[-1] == column[4] == d.price(4, 2)
    assert column[1:3] == [d.price(1, 2), d.price(2, 2)]
    with pytest.raises(IndexError, match=r"^5$"):
        column[5]
    with pytest.raises(IndexError):
        column[-6]
    with pytest.raises(IndexError):  # one past the end, where nothing else would fail
        _dist(history=False, future=False).columns()[0][5]


def test_a_missing_close_carries_the_one_before() -> None:
    """NaN and None stand for a missing bar: its log close is the last one present; none before is an error."""
    closes = LogCloses([100.0, math.nan, None, 121.0])
    assert list(closes) == [math.log(100)] * 3 + [math.log(121)]
    assert closes[-1] == math.log(121)
    assert closes[1:3] == [math.log(100)] * 2
    with pytest.raises(IndexError, match="no close at or before point 0"):
        LogCloses([math.nan, 5.0])[0]
    assert len(closes) == 4


def test_tables_of_another_width_are_refused() -> None:
    """A quantile table with fewer values than levels is a broken parameter set, not a shorter grid."""
    with pytest.raises(ValueError, match="zip"):
        Distribution(LEVELS, [0.0], [0.1], None, None, 1, (1,), (0.0,), (1, 2), ((-1.0, 0.0, 1.0), (-1.0, 1.0)))


def test_the_levels_at_a_point_share_one_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every level shares at a point (the median, the spread's scale, where the lead falls among the
    tables) is computed once for all the levels read there in a row (quantiles=all), again at another point."""
    calls: list[int] = []
    frame = Distribution._frame

    def counted(self: Distribution, i: int) -> tuple:
        calls.append(i)
        return frame(self, i)

    monkeypatch.setattr(Distribution, "_frame", counted)
    d = _dist()
    values = [d.log_quantile(i, k) for i in (1, 4) for k in range(3)]
    assert calls == [1, 4]
    assert [d.log_quantile(1, k) for k in range(3)] == values[:3]
    assert calls == [1, 4, 1]
