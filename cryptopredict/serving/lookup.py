"""Answer a time from a precomputed grid: an index, and linear interpolation between grid points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptopredict.artifact import SymbolForecast

__all__ = ["OutOfRange", "Point", "at", "between"]

_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Point:
    """The forecast at one time; `actual_close` is the close of the bar that holds it, if known."""

    date: datetime
    kind: str  # "fitted" inside the data window, "forecast" after it
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


def _point(fc: SymbolForecast, i: int, rem: int, step_us: int, when: datetime) -> Point:
    actual = fc.actual[i] if i < fc.history_points else None
    if rem == 0:
        values = (fc.yhat[i], fc.yhat_lower[i], fc.yhat_upper[i])
        kind = "fitted" if i < fc.history_points else "forecast"
    else:
        w = rem / step_us
        # Rounded like the stored grid: the interpolation adds no digits of its own.
        values = tuple(float(f"{s[i] + (s[i + 1] - s[i]) * w:.10g}") for s in (fc.yhat, fc.yhat_lower, fc.yhat_upper))
        kind = "fitted" if i + 1 < fc.history_points else "forecast"
    return Point(when, kind, values[0], values[1], values[2], actual)


def at(fc: SymbolForecast, when: datetime) -> Point:
    """The forecast at `when` (aware UTC); raises OutOfRange outside the grid."""
    i, rem, step_us = _position(fc, when)
    return _point(fc, i, rem, step_us, when)


def between(fc: SymbolForecast, start: datetime, end: datetime, cap: int) -> list[Point]:
    """Every grid point in [start, end]; raises OutOfRange, or ValueError past `cap` points."""
    i0, rem0, step_us = _position(fc, start)
    i1, _, _ = _position(fc, end)
    first = i0 + (1 if rem0 else 0)
    count = max(0, i1 - first + 1)
    if count > cap:
        msg = f"the range holds {count:,} points, more than the cap of {cap:,}"
        raise ValueError(msg)
    return [_point(fc, i, 0, step_us, fc.start + i * fc.step) for i in range(first, i1 + 1)]
