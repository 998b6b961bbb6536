"""Answer a time from a precomputed grid: an index, and linear interpolation between grid points.

Two forecasts are served from the grid: "served" (the default: anchored at the last close, with
calibrated quantiles) and "prophet" (Prophet's own yhat and 80% interval, as fitted).

The served forecast after the data may be re-anchored at a live price (`cryptopredict.serving.anchor`):
for a target t after the live anchor's grid time g, with price P,

    median(t)   = P * M(t) / M(g)          M: the artifact's median path, starting at the last close
    quantile(t) = median(t) * R(t - g)     R: the artifact's quantile / median at that lead

R at a whole number of steps k is read off grid point data end + k; between two such leads it is
interpolated linearly, and below one step it is the one-step ratio to the power sqrt(lead) (the
square-root law the artifact's bands follow, whose spread is zero at lead 0). With the artifact's
own anchor every answer is the grid's numbers, unchanged.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptopredict import quantiles
from cryptopredict.artifact import SymbolForecast

__all__ = [
    "OutOfRange",
    "Point",
    "at",
    "between",
    "check_levels",
    "last_close",
    "median_path",
    "probability_at",
    "probability_below",
    "quantiles_at",
    "spread",
]

_US = timedelta(microseconds=1)


class Anchor(Protocol):
    """What a lookup reads of an anchor (`serving.anchor.Anchor`, which builds on this module's grid
    reading, so this module does not import it): whether it is live, the grid time it stands for, and
    the factor it moves the artifact's median path by."""

    @property
    def live(self) -> bool: ...

    @property
    def grid(self) -> datetime: ...

    @property
    def scale(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Point:
    """The forecast at one time; `actual_close` is the close of the bar that holds it, if known."""

    date: datetime
    # "fitted" inside the data window, "forecast" after it; "elapsed" after the data but at or before
    # a live anchor: that bar has closed since, and the answer is the artifact's forecast for it.
    kind: str
    prediction: float
    prediction_low: float
    prediction_high: float
    actual_close: float | None


class OutOfRange(ValueError):
    """The time lies before the first bar or past the horizon."""

    def __init__(self, fc: SymbolForecast) -> None:
        self.first, self.last = fc.start, fc.end
        super().__init__(f"outside the served range {fc.start.isoformat()} .. {fc.end.isoformat()}")


def _position(fc: SymbolForecast, when: datetime) -> tuple[int, int, int]:
    """Grid index at or before `when`, and the remainder in microseconds out of one step."""
    step_us = fc.step // _US
    offset_us = (when - fc.start) // _US
    i, rem = divmod(offset_us, step_us)
    if offset_us < 0 or i >= fc.points or (i == fc.points - 1 and rem):
        raise OutOfRange(fc)
    return i, rem, step_us


def _columns(fc: SymbolForecast, model: str) -> tuple[Sequence[float], Sequence[float], Sequence[float]]:
    """(prediction, low, high) columns: the served median and 10%/90% quantiles, or Prophet's own."""
    if model == "prophet":
        return fc.yhat, fc.yhat_lower, fc.yhat_upper
    q = fc.quantiles
    return q[fc.level_index(0.5)], q[fc.level_index(0.1)], q[fc.level_index(0.9)]


def _value(column: Sequence[float], i: int, rem: int, step_us: int, digits: int = 10) -> float:
    if rem == 0:
        return column[i]
    # Rounded like the stored grid (Prophet's float32 series to their 7 digits): the interpolation adds no
    # digits of its own.
    return float(f"{column[i] + (column[i + 1] - column[i]) * (rem / step_us):.{digits}g}")


def _live(when: datetime, anchor: Anchor | None) -> bool:
    """Whether `when` is answered from a live anchor: a target after its grid time (so after the data)."""
    return anchor is not None and anchor.live and when > anchor.grid


def _point(
    fc: SymbolForecast, i: int, rem: int, step_us: int, when: datetime, model: str, anchor: Anchor | None
) -> Point:
    actual = fc.actual[i] if i < fc.history_points else None
    kind = "fitted" if i + (1 if rem else 0) < fc.history_points else "forecast"
    if kind == "forecast" and model == "served" and anchor is not None and anchor.live:
        if when > anchor.grid:
            columns = (fc.level_index(0.5), fc.level_index(0.1), fc.level_index(0.9))
            mid, low, high = _live_levels(fc, anchor, when, columns)
            return Point(when, kind, mid, low, high, actual)
        kind = "elapsed"
    digits = fc.prophet_digits if model == "prophet" else 10
    mid, low, high = (_value(c, i, rem, step_us, digits) for c in _columns(fc, model))
    return Point(when, kind, mid, low, high, actual)


def at(fc: SymbolForecast, when: datetime, model: str = "served", anchor: Anchor | None = None) -> Point:
    """The forecast at `when` (aware UTC), re-anchored at a live `anchor` if given; OutOfRange outside the grid."""
    i, rem, step_us = _position(fc, when)
    return _point(fc, i, rem, step_us, when, model, anchor)


def _all_levels(fc: SymbolForecast, when: datetime, anchor: Anchor | None = None) -> list[float]:
    i, rem, step_us = _position(fc, when)
    if _live(when, anchor):
        return _live_levels(fc, anchor, when, range(len(fc.levels)))  # type: ignore[arg-type]
    return [_value(c, i, rem, step_us) for c in fc.quantiles]


def last_close(fc: SymbolForecast) -> float:
    """The last known close of the data: what the served forecast after the data is anchored at."""
    return next(v for v in reversed(fc.actual) if v is not None)


def median_path(fc: SymbolForecast, when: datetime) -> float:
    """The artifact's served median after the data, starting at the last close at the data end."""
    i, rem, step_us = _position(fc, when)
    median = fc.quantiles[fc.level_index(0.5)]
    end = fc.history_points - 1
    if i < end:
        msg = "the median path starts at the data end"
        raise ValueError(msg)
    here = last_close(fc) if i == end else median[i]
    if not rem:
        return here
    return here + (median[i + 1] - here) * (rem / step_us)


def spread(fc: SymbolForecast, lead: timedelta, columns: Sequence[int]) -> list[float]:
    """Quantile / median at `lead` after the data end, for each stored level index in `columns`."""
    step_us = fc.step // _US
    k, rem = divmod(lead // _US, step_us)
    end = fc.history_points - 1
    median = fc.quantiles[fc.level_index(0.5)]

    def ratio(j: int, n: int) -> float:
        return fc.quantiles[j][end + n] / median[end + n]

    if k == 0:  # below one step: the square-root law from zero spread at lead 0
        root = math.sqrt(rem / step_us)
        return [math.exp(root * math.log(ratio(j, 1))) for j in columns]
    if not rem:
        return [ratio(j, k) for j in columns]
    f = rem / step_us
    return [ratio(j, k) + (ratio(j, k + 1) - ratio(j, k)) * f for j in columns]


def _live_levels(fc: SymbolForecast, anchor: Anchor, when: datetime, columns: Sequence[int]) -> list[float]:
    """The served forecast at `when` re-anchored at a live anchor, at the stored level indices `columns`."""
    mid = anchor.scale * median_path(fc, when)
    return [float(f"{mid * r:.10g}") for r in spread(fc, when - anchor.grid, columns)]


def check_levels(fc: SymbolForecast, levels: Sequence[float]) -> None:
    """Raise ValueError naming the first level outside the stored ones (no extrapolation)."""
    stored = fc.levels
    for p in levels:
        if not stored[0] <= p <= stored[-1]:
            msg = f"{p:g} is outside the published levels {stored[0]:g} to {stored[-1]:g}"
            raise ValueError(msg)


def quantiles_at(
    fc: SymbolForecast, when: datetime, levels: Sequence[float], anchor: Anchor | None = None
) -> list[float]:
    """The served forecast's price at each level in [first stored, last stored] (ValueError outside).

    A level between two stored ones is interpolated linearly in log price, which keeps every
    answer positive and the answers in the order of their levels.
    """
    check_levels(fc, levels)
    stored = fc.levels
    values = _all_levels(fc, when, anchor)
    out = []
    for p in levels:
        k = min(bisect.bisect_left(stored, p), len(stored) - 1)
        if abs(stored[k] - p) < 1e-12:
            out.append(values[k])
            continue
        lo, hi = k - 1, k
        t = (p - stored[lo]) / (stored[hi] - stored[lo])
        out.append(float(f"{math.exp(math.log(values[lo]) + t * math.log(values[hi] / values[lo])):.10g}"))
    return out


def probability_below(
    fc: SymbolForecast, when: datetime, price: float, anchor: Anchor | None = None
) -> tuple[float, str]:
    """P(close <= price) under the served forecast, and "exact", "at most" or "at least"
    (`cryptopredict.quantiles.probability_below`)."""
    return quantiles.probability_below(fc.levels, _all_levels(fc, when, anchor), price)


def probability_at(
    fc: SymbolForecast, when: datetime, side: str, price: float, anchor: Anchor | None = None
) -> tuple[float, str]:
    """P(close above `price`) or P(close at or below it) at `when` under the served forecast, and whether it is
    exact or a bound (`cryptopredict.quantiles.probability`)."""
    return quantiles.probability(fc.levels, _all_levels(fc, when, anchor), price, side)


def between(
    fc: SymbolForecast,
    start: datetime,
    end: datetime,
    cap: int,
    model: str = "served",
    anchor: Anchor | None = None,
    every: int = 1,
) -> list[Point]:
    """Every `every`th grid point in [start, end] from the first; raises OutOfRange, or ValueError past `cap` points."""
    i0, rem0, step_us = _position(fc, start)
    i1, _, _ = _position(fc, end)
    first = i0 + (1 if rem0 else 0)
    indices = range(first, i1 + 1, every)
    if len(indices) > cap:
        msg = f"the range holds {len(indices):,} points, more than the cap of {cap:,}"
        raise ValueError(msg)
    return [_point(fc, i, 0, step_us, fc.start + i * fc.step, model, anchor) for i in indices]
