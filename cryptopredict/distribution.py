"""The served distribution from its parameters: the one definition of the served quantiles (standard library only).

Training publishes the quantiles computed here, and the API computes the same ones from the same
stored parameters when a request asks, so the two cannot disagree and the artifact stores a few
numbers a bar instead of every quantile at every bar. In log price, with C the closes (the last one
carried over a missing bar), sigma the per-step volatility known at each close, d Prophet's fitted
one-step change, D its predicted change from the last close T, w(j) the weight on Prophet's change
at a lead of j steps and z(j) the standardised quantile table at that lead:

    history point 0        log C[0] + sigma[0] (z_a(1) - z_0.5(1))
    history point i >= 1   log C[i-1] + w(1) d[i] + sigma[i-1] (z_a(1) - z_0.5(1))
    forecast point T + j   log C[T] + w(j) D[j] + sigma[T] sqrt(j) (z_a(j) - z_0.5(j))

z(j) is interpolated linearly in log(steps) between the stored tables, flat outside them; w(j)
likewise between the scored horizons' weights, and past the longest it falls as longest / j, so
Prophet's contribution stops growing where the evidence stops. A price is exp of its log quantile
to 8 significant digits: what the artifact used to store, served as stored.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Column", "Distribution", "LogCloses", "interpolate_log_steps", "weight_at"]


def _position(x: float, xp: Sequence[float]) -> tuple[int, float, float]:
    """Where `x` falls among the knots `xp` (ascending), for `_interp_at`: (-1 before the first, len(xp) after
    the last, else the knot at or before it), its distance from that knot and the gap to the next one. Found
    once, it serves every column of values at those knots (each level's quantile table)."""
    if x <= xp[0]:
        return (-1, 0.0, 1.0)
    if x >= xp[-1]:
        return (len(xp), 0.0, 1.0)
    j = bisect.bisect_right(xp, x) - 1
    return (j, x - xp[j], xp[j + 1] - xp[j])


def _interp_at(at: tuple[int, float, float], fp: Sequence[float]) -> float:
    """numpy.interp's rule at a `_position`: linear between the knots, flat outside them."""
    j, offset, gap = at
    if j < 0:
        return fp[0]
    if j >= len(fp):
        return fp[-1]
    return (fp[j + 1] - fp[j]) / gap * offset + fp[j]


def interpolate_log_steps(steps: float, at: Sequence[float], values: Sequence[float]) -> float:
    """`values` known at the steps `at` (ascending), read at `steps`: linear in log(steps) between them,
    flat before the first and after the last."""
    return _at_log_steps(steps, [math.log(h) for h in at], values)


def _at_log_steps(steps: float, logs: Sequence[float], values: Sequence[float]) -> float:
    """`interpolate_log_steps` with the knots' logs given (a Distribution takes them once, not at every point)."""
    return _interp_at(_lead(steps, logs), values)


def _lead(steps: float, logs: Sequence[float]) -> tuple[int, float, float]:
    """Where a lead of `steps` falls among knots at the steps whose logs are `logs` (below one step, at one)."""
    return _position(math.log(max(steps, 1.0)), logs)


def weight_at(steps: int, horizon_steps: Sequence[int], weights: Sequence[float]) -> float:
    """The weight on Prophet's predicted change at a lead of `steps`: interpolated in log steps between
    the scored horizons' weights, and past the longest falling as longest / steps."""
    return _weight(steps, horizon_steps, [math.log(h) for h in horizon_steps], weights)


def _weight(steps: int, horizon_steps: Sequence[int], logs: Sequence[float], weights: Sequence[float]) -> float:
    """`weight_at` with the horizons' logs given."""
    w = _at_log_steps(steps, logs, weights)
    longest = horizon_steps[-1]
    return w * longest / max(steps, 1.0) if steps > longest else w


@dataclass(frozen=True, slots=True)
class Distribution:
    """A pair's served distribution: its parameters, and its quantiles at any grid point.

    `log_close[i]` is the log of history point i's close (the last one carried over a missing bar);
    `history_change` None stands for a weight of 0 at one step (then it is never read) and
    `future_change` None for a weight of 0 at every lead.
    """

    levels: tuple[float, ...]
    log_close: Sequence[float]
    sigma: Sequence[float]
    history_change: Sequence[float] | None
    future_change: Sequence[float] | None
    forecast_points: int
    horizon_steps: tuple[int, ...]  # the scored horizons, ascending
    weights: tuple[float, ...]  # the weight on Prophet's change at each of them
    z_steps: tuple[int, ...]  # the leads the standardised quantile tables were measured at, ascending
    z_rows: tuple[tuple[float, ...], ...]  # one table a lead, one value a level
    _median: int = field(init=False, repr=False, compare=False)
    _z_logs: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _h_logs: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _z_columns: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)
    _one: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _w1: float = field(init=False, repr=False, compare=False)
    # The last grid point's frame (`_frame`): what every level shares there, so a request that reads many
    # levels at one point (quantiles=all) computes it once. One tuple, replaced whole (safe across threads).
    _last: list[tuple[Any, ...] | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "_median", self.levels.index(0.5))
        put(self, "_z_logs", tuple(math.log(h) for h in self.z_steps))
        put(self, "_h_logs", tuple(math.log(h) for h in self.horizon_steps))
        put(self, "_z_columns", tuple(zip(*self.z_rows, strict=True)))
        one = [self._z(1, k) for k in range(len(self.levels))]
        put(self, "_one", tuple(z - one[self._median] for z in one))
        put(self, "_w1", self.weight_at(1))
        put(self, "_last", [None])

    @property
    def history_points(self) -> int:
        return len(self.sigma)

    @property
    def points(self) -> int:
        return self.history_points + self.forecast_points

    def weight_at(self, steps: int) -> float:
        """The weight on Prophet's predicted change at a lead of `steps` (`weight_at`)."""
        return _weight(steps, self.horizon_steps, self._h_logs, self.weights)

    def _z(self, steps: int, k: int) -> float:
        return _at_log_steps(steps, self._z_logs, self._z_columns[k])

    def log_quantile(self, i: int, k: int) -> float:
        """Level `k`'s log-price quantile at grid point `i`."""
        frame = self._last[0]
        if frame is None or frame[0] != i:
            frame = self._frame(i)
            self._last[0] = frame
        _, point, scale, at, median = frame
        if at is None:  # a history point: the one-step table
            return point + scale * self._one[k]
        return point + scale * (_interp_at(at, self._z_columns[k]) - median)

    def _frame(self, i: int) -> tuple[Any, ...]:
        """What every level shares at grid point `i`: (i, the median's log price before the spread, the
        spread's scale, where the lead falls among the tables' leads (None at a history point), and the
        median's standardised value there), each computed as `log_quantile` states it."""
        n = self.history_points
        if i < n:
            if i == 0:
                return (i, self.log_close[0], self.sigma[0], None, 0.0)
            point = self.log_close[i - 1]
            if self.history_change is not None:
                point = point + self._w1 * self.history_change[i]
            return (i, point, self.sigma[i - 1], None, 0.0)
        j = i - n + 1
        point = self.log_close[n - 1]
        if self.future_change is not None:
            point = point + self.weight_at(j) * self.future_change[j - 1]
        at = _lead(j, self._z_logs)
        return (i, point, self.sigma[n - 1] * math.sqrt(j), at, _interp_at(at, self._z_columns[self._median]))

    def price(self, i: int, k: int) -> float:
        """Level `k`'s served quantile at grid point `i`, in price, to 8 significant digits."""
        return float(f"{math.exp(self.log_quantile(i, k)):.8g}")

    def columns(self) -> tuple[Column, ...]:
        """One column of prices a level, computed at each grid point when it is read."""
        return tuple(Column(self, k) for k in range(len(self.levels)))

    def grid(self) -> list[list[float]]:
        """Every level's column of prices, computed now (training's copy of what the API serves)."""
        return [[self.price(i, k) for i in range(self.points)] for k in range(len(self.levels))]


class Column(Sequence[float]):
    """One level's served prices at every grid point, computed when read (the grid is not stored)."""

    __slots__ = ("_dist", "_k")

    def __init__(self, dist: Distribution, k: int) -> None:
        self._dist, self._k = dist, k

    def __len__(self) -> int:
        return self._dist.points

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._dist.price(j, self._k) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._dist.price(i, self._k)


class LogCloses(Sequence[float]):
    """The log of each history point's close, the last close carried over a missing bar (None or NaN):
    what the served distribution is laid at, derived the same way on both sides from the closes stored."""

    __slots__ = ("_closes",)

    def __init__(self, closes: Sequence[float | None]) -> None:
        self._closes = closes

    def __len__(self) -> int:
        return len(self._closes)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        j = i
        while j >= 0:
            v = self._closes[j]
            if v is not None and v == v:  # NaN is the one value not equal to itself
                return math.log(v)
            j -= 1
        msg = f"no close at or before point {i}"
        raise IndexError(msg)
