"""The served forecast: the last close, moved by Prophet only as far as it earned, with calibrated quantiles.

Everything here is plain numpy on log closes laid on the timeframe's regular grid (index i is the
close of grid point i). An *origin* is the last bar a forecast may see; a horizon of h steps
targets origin + h.

- Point: log F(T, h) = log C_T + w(h) * delta(T, h), where delta is Prophet's predicted log change
  from the origin's bar to the target's (a refit that saw bars up to T only), and w(h) in [0, 1]
  is the weight that change earned out of sample (`choose_weight`; 0 is the naive forecast).
- Distribution: log Q_a(T, h) = log F(T, h) + sigma_T * sqrt(h) * (z_a(h) - z_0.5(h)), where
  sigma_T is the exponentially weighted per-step volatility known at T and z_a(h) the empirical
  a-quantile of past h-step log returns, each divided by its own origin's sigma * sqrt(h)
  (`z_table`), or, where the weight is above 0, of the weighted forecast's own past errors scaled
  the same way (`error_z`). Its median is the point; quantiles never cross and never go negative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cryptopredict.distribution import Distribution, weight_at

__all__ = [
    "LEVELS",
    "WEIGHTS",
    "WeightChoice",
    "block_bootstrap_ci",
    "choose_weight",
    "diebold_mariano",
    "distribution",
    "error_z",
    "ewma_volatility",
    "grid_quantiles",
    "normal_z",
    "pinball",
    "quantiles",
    "return_quantiles",
    "served_tables",
    "student_t_cdf",
    "z_table",
]

# Published quantile levels: 1%, 2.5%, 5%...95% in 5% steps, 97.5%, 99%. 10% and 90% are the
# 80% interval; 50% is the point forecast.
LEVELS: tuple[float, ...] = (0.01, 0.025, *(round(0.05 * k, 2) for k in range(1, 20)), 0.975, 0.99)
MEDIAN = LEVELS.index(0.5)
LOW, HIGH = LEVELS.index(0.1), LEVELS.index(0.9)
# Candidate weights for Prophet's predicted change.
WEIGHTS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(11))
# Steps of volatility history needed before an origin's sigma is trusted.
_BURN_IN = 30
# Past errors needed before a weighted forecast's band rests on them (a weight needs 20 outcomes).
_MIN_ERRORS = 20
# ...and the newest this many of them, in time order, are what it rests on.
_RECENT_ERRORS = 40


def ewma_volatility(log_close: np.ndarray, halflife: float) -> np.ndarray:
    """Per-step volatility known at each close: sqrt of the exponentially weighted mean squared return.

    `out[i]` uses returns up to close i only; `out[0]` repeats `out[1]` (no return yet).
    """
    r = np.diff(log_close)
    if r.size == 0:
        return np.full(log_close.shape, math.nan)
    alpha = 1 - 0.5 ** (1 / halflife)
    var = np.empty(r.size)
    # The first returns get their plain running mean square (no return after i is used), so the
    # first weeks do not rest on one return's square; then the exponential weighting takes over.
    acc = 0.0
    for i, x in enumerate(r):
        acc = acc + (x * x - acc) / (i + 1) if i < _BURN_IN else acc + alpha * (x * x - acc)
        var[i] = acc
    sigma = np.sqrt(np.maximum(var, 1e-12))
    return np.concatenate([sigma[:1], sigma])


def _known_origins(origin: int, steps: int) -> np.ndarray:
    """Past origins t (after the burn-in) whose `steps`-step outcome, at t + steps, is known at `origin`."""
    return np.arange(_BURN_IN, origin - steps + 1)


def z_table(
    log_close: np.ndarray, sigma: np.ndarray, origin: int, steps: int, levels: Sequence[float] = LEVELS
) -> np.ndarray | None:
    """Empirical quantiles of standardised `steps`-step log returns whose outcome is known at `origin`.

    Uses every past origin t with `_BURN_IN <= t` and `t + steps <= origin`; None when fewer than
    `_BURN_IN` such returns exist.
    """
    t = _known_origins(origin, steps)
    if t.size < _BURN_IN:
        return None
    z = (log_close[t + steps] - log_close[t]) / (sigma[t] * math.sqrt(steps))
    return np.quantile(z, levels)


def error_z(
    log_origin: np.ndarray,
    delta: np.ndarray,
    log_actual: np.ndarray,
    sigma_origin: np.ndarray,
    steps: int,
    weight: float,
    levels: Sequence[float] = LEVELS,
) -> np.ndarray | None:
    """Empirical quantiles of the weighted point's newest past errors (arrays in time order), each divided by
    its origin's sigma * sqrt(h).

    The spread of a forecast with skill: where Prophet's change earned a weight, the band comes from
    how far that forecast actually missed, not from how far the price moved. None with fewer than
    `_MIN_ERRORS` errors.
    """
    if log_actual.size < _MIN_ERRORS:
        return None
    # The newest errors only: a model refitted on a growing history misses by less as it learns the
    # pattern, so its early errors overstate today's (on a synthetic yearly cycle all of them made the
    # 7-day band hold 96%, the newest 40 88%; on a 120-day cycle 40 kept 7-30 days inside 70-90% too).
    recent = slice(-_RECENT_ERRORS, None)
    log_origin, delta, log_actual, sigma_origin = (
        np.asarray(a)[recent] for a in (log_origin, delta, log_actual, sigma_origin)
    )
    n = log_actual.size
    err = log_actual - (log_origin + weight * delta)
    # Split-conformal's finite-sample correction: the next error falls beyond the empirical a-quantile
    # of n past ones more often than a says; widening each tail by a factor (n + 1) / n restores it.
    lv = np.asarray(levels, float)
    adjusted = np.clip(np.where(lv > 0.5, lv * (n + 1) / n, 1 - (1 - lv) * (n + 1) / n), 0.0, 1.0)
    return np.quantile(err / (sigma_origin * math.sqrt(steps)), adjusted)


def return_quantiles(log_close: np.ndarray, origin: int, steps: int, levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Empirical quantiles of raw `steps`-step log returns known at `origin` (the naive benchmark's spread).

    The same past origins as `z_table`'s; the backtest asks only where `z_table` found enough of them.
    """
    t = _known_origins(origin, steps)
    return np.quantile(log_close[t + steps] - log_close[t], levels)


def quantiles(log_point, sigma, steps, z: np.ndarray) -> np.ndarray:
    """Log-price quantiles around a point: the point is the median, the spread sigma * sqrt(h) * (z - z_median).

    Broadcasts: with arrays of points, sigmas and steps as columns (shape (n, 1)) and z of shape
    (levels,) or (n, levels), one row of quantiles per point.
    """
    return log_point + sigma * np.sqrt(steps) * (z - z[..., MEDIAN, None])


def pinball(log_actual: float, log_q: np.ndarray, levels: Sequence[float] = LEVELS) -> float:
    """Mean pinball (quantile) loss over the levels, on log prices: a proper score for the whole distribution."""
    lv = np.asarray(levels)
    d = log_actual - log_q
    return float(np.mean(np.maximum(lv * d, (lv - 1) * d)))


def student_t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with a whole number of degrees of freedom, exact.

    The finite series of Abramowitz and Stegun 26.7.3-4 in theta = atan(t / sqrt(df)); no library
    here offers it (scipy is not a dependency), and with whole df the series is exact, not approximate.
    """
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # odd: A = (2/pi) (theta + sin cos (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ... up to c2^((df-3)/2)))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    else:  # even: A = sin (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ... up to c2^((df-2)/2))
        term = total = 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        inside = math.sin(theta) * total
    return 0.5 + math.copysign(inside, t) / 2


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, lag: int) -> tuple[float, float]:
    """Diebold-Mariano test that forecast a has lower expected loss than b.

    Returns (statistic, one-sided p-value). The variance of the loss difference is Newey-West with
    a Bartlett kernel over `lag` autocovariances (overlapping h-step forecasts are correlated),
    and the statistic carries Harvey, Leybourne and Newbold's (1997) small-sample correction,
    compared, as they prescribe, with Student's t with n - 1 degrees of freedom. A statistic well
    below 0 favours a.
    """
    d = np.asarray(loss_a, float) - np.asarray(loss_b, float)
    n = d.size
    if n < 2:
        return math.nan, 1.0
    dc = d - d.mean()
    var = float(np.dot(dc, dc)) / n
    for k in range(1, min(lag, n - 1) + 1):
        var += 2 * (1 - k / (lag + 1)) * float(np.dot(dc[k:], dc[:-k])) / n
    if var <= 0:
        return (0.0, 0.5) if d.mean() == 0 else (math.copysign(math.inf, d.mean()), float(d.mean() > 0))
    h = lag + 1
    hln = math.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 1.0) / n)
    stat = hln * float(d.mean()) / math.sqrt(var / n)
    return stat, student_t_cdf(stat, n - 1)


@dataclass(frozen=True, slots=True)
class WeightChoice:
    """The weight given to Prophet's change at one horizon, and the evidence for it."""

    weight: float
    n: int  # past forecasts the choice was made on
    best: float  # the weight with the lowest loss, before the significance test
    dm_stat: float
    p_value: float


def choose_weight(
    log_origin: np.ndarray,
    delta: np.ndarray,
    log_actual: np.ndarray,
    lag: int,
    alpha: float,
    min_n: int,
) -> WeightChoice:
    """The weight in WEIGHTS with the lowest mean absolute log error, kept only if it beats naive
    (w = 0) by a one-sided Diebold-Mariano test at level `alpha`, on at least `min_n` forecasts
    whose outcomes do not overlap (n / (lag + 1)).
    """
    n = int(log_actual.size)
    if n / (lag + 1) < min_n:
        return WeightChoice(0.0, n, 0.0, math.nan, 1.0)
    naive_loss = np.abs(log_actual - log_origin)
    losses = [np.abs(log_actual - (log_origin + w * delta)) for w in WEIGHTS]
    best = int(np.argmin([loss.mean() for loss in losses]))
    if WEIGHTS[best] == 0:
        return WeightChoice(0.0, n, 0.0, math.nan, 1.0)
    stat, p = diebold_mariano(losses[best], naive_loss, lag)
    weight = WEIGHTS[best] if p < alpha else 0.0
    return WeightChoice(weight, n, WEIGHTS[best], stat, p)


def block_bootstrap_ci(
    values: Sequence[np.ndarray],
    statistic,
    block: int,
    *,
    resamples: int = 400,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A moving-block bootstrap interval for `statistic(*columns)` over rows in time order.

    Blocks of `block` consecutive rows keep the overlap between neighbouring forecasts; the same
    row indices are drawn for every column. None with fewer than two blocks of rows, or where the
    statistic is undefined (a ratio to a zero error: a stablecoin's).
    """
    cols = [np.asarray(v, float) for v in values]
    n = cols[0].size
    block = max(1, min(block, n))
    if n < 2 * block:
        return None
    rng = np.random.default_rng(seed)
    starts_max = n - block + 1
    k = math.ceil(n / block)
    out = np.empty(resamples)
    for b in range(resamples):
        starts = rng.integers(0, starts_max, size=k)
        idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        out[b] = statistic(*(c[idx] for c in cols))
    lo, hi = np.quantile(out, [(1 - level) / 2, (1 + level) / 2])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return float(lo), float(hi)


def normal_z(levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Standard normal quantiles: the fallback where the history is too short for empirical ones."""
    from statistics import NormalDist

    return np.array([NormalDist().inv_cdf(p) for p in levels])


def served_tables(
    log_close: np.ndarray,
    sigma: np.ndarray,
    horizons: Sequence[int],
    error_tables: Mapping[int, np.ndarray] | None = None,
) -> tuple[list[int], np.ndarray]:
    """The standardised quantile tables the served forecast after the last close rests on: the leads
    they were measured at (ascending) and one row a lead. Return quantiles at the scored horizons on
    every return known at the last close; `error_tables` (by steps) replace them where the weight is
    above 0 (`error_z` of the backtest's errors); the normal's where the history is too short for any."""
    origin = log_close.size - 1
    tables = {h: z_table(log_close, sigma, origin, h) for h in horizons} | dict(error_tables or {})
    known = [h for h in horizons if tables[h] is not None]
    if not known:
        return [1], normal_z()[None, :]
    return known, np.stack([tables[h] for h in known])


def distribution(
    log_close: Sequence[float],
    sigma: np.ndarray,
    history_change: np.ndarray,
    future_change: np.ndarray,
    horizons: Sequence[int],
    weights: Sequence[float],
    tables: tuple[Sequence[int], np.ndarray],
) -> Distribution:
    """The served distribution (`cryptopredict.distribution`, the arithmetic the API serves with) from
    numpy's parameters; a change no weight reads is left out (None), as the artifact leaves it out."""
    steps, rows = tables
    keep_history = weight_at(1, horizons, weights) != 0
    return Distribution(
        levels=LEVELS,
        log_close=log_close if not isinstance(log_close, np.ndarray) else [float(v) for v in log_close],
        sigma=[float(v) for v in sigma],
        history_change=[float(v) for v in history_change] if keep_history else None,
        future_change=[float(v) for v in future_change] if any(weights) else None,
        forecast_points=int(future_change.size),
        horizon_steps=tuple(int(h) for h in horizons),
        weights=tuple(float(w) for w in weights),
        z_steps=tuple(int(h) for h in steps),
        z_rows=tuple(tuple(float(v) for v in row) for row in rows),
    )


def grid_quantiles(
    log_close: np.ndarray,
    sigma: np.ndarray,
    history_change: np.ndarray,
    future_change: np.ndarray,
    horizons: Sequence[int],
    weights: Sequence[float],
    error_tables: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Log-price quantiles (rows: grid points, columns: LEVELS) of the served forecast.

    History points hold the one-step-ahead forecast made from the bar before (the first point, its
    own close); `history_change[i]` is Prophet's fitted log change from point i-1 to i.
    Forecast points j = 1..H after the last close T hold the forecast from T, with
    `future_change[j-1]` Prophet's predicted log change from T to T + j. The quantile tables are
    `served_tables`; the arithmetic is `cryptopredict.distribution`'s, the API's own.
    """
    tables = served_tables(log_close, sigma, horizons, error_tables)
    dist = distribution(log_close, sigma, history_change, future_change, horizons, weights, tables)
    return np.array([[dist.log_quantile(i, k) for k in range(len(LEVELS))] for i in range(dist.points)])
