"""Rolling-origin backtest: Prophet refitted at each cutoff, scored with the served forecast and the baselines.

A cutoff is the instant a forecast is made: a refit sees only bars stamped before it, and its
*origin* is the grid point just before the cutoff (the last bar a user asking then would have).
A horizon of h steps targets the bar stamped origin + h steps, i.e. cutoff + (h-1) steps.

The refits are the expensive part and run in worker processes (`refit`); they return plain
numbers. Everything after them (weights, quantiles, metrics) is cheap numpy on the driver
(`score`), and is nested: what is used at a cutoff was chosen on outcomes known before it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict.artifact import format_utc
from cryptopredict.errors import TrainingError
from cryptopredict.timeframes import Horizon
from cryptopredict.training import served
from cryptopredict.training.config import BacktestConfig, ModelConfig, ServedConfig
from cryptopredict.training.model import from_scale, regular_grid, to_prophet_frame

__all__ = [
    "MAX_LOG_CHANGE",
    "WEIGHT_BASES",
    "Backtest",
    "Grid",
    "Horizon",
    "Refit",
    "ServedWeight",
    "beats_naive",
    "choose_served",
    "evaluate",
    "grid_of",
    "plan_cutoffs",
    "predicted_change",
    "refit",
    "score",
    "served_weight",
    "training_slice",
    "volatility",
]


# Clip Prophet's predicted log change: a fit that runs away (e^5 = x148) is not a forecast.
MAX_LOG_CHANGE = 5.0


@dataclass(frozen=True, slots=True)
class Grid:
    """A pair's closes on the timeframe's regular grid; a missing bar carries the previous close."""

    start: pd.Timestamp  # naive UTC
    step: pd.Timedelta
    close: np.ndarray  # USD
    present: np.ndarray  # bool: a real bar at this grid point

    @property
    def log_close(self) -> np.ndarray:
        return np.log(self.close)

    def index(self, ts: pd.Timestamp) -> int:
        return int((ts - self.start) / self.step)


def grid_of(frame: pd.DataFrame, step: pd.Timedelta) -> Grid:
    """`frame` with `ds` (naive UTC) and `close` -> its regular grid."""
    ds = pd.DatetimeIndex(frame["ds"])
    full = regular_grid(ds[0], ds[-1], step)
    close = pd.Series(frame["close"].to_numpy(float), index=ds).reindex(full)
    return Grid(ds[0], step, close.ffill().to_numpy(float), close.notna().to_numpy())


def plan_cutoffs(
    ds: pd.Series, step: pd.Timedelta, horizons: Sequence[Horizon], config: BacktestConfig
) -> list[pd.Timestamp]:
    """Cutoffs over the end of the history, newest last, each with room for every horizon after it.

    The newest cutoff leaves exactly the longest horizon of data after it; older ones step back
    `config.spacing` at a time. A cutoff needs `config.min_train_rows` bars before it.
    """
    if ds.empty or config.cutoffs < 1:
        return []
    longest = max(h.steps for h in horizons)
    newest = ds.iloc[-1] - (longest - 1) * step
    cutoffs = []
    for k in range(config.cutoffs):
        cutoff = newest - k * pd.Timedelta(config.spacing)
        if int((ds < cutoff).sum()) < config.min_train_rows:
            break
        cutoffs.append(cutoff)
    return sorted(cutoffs)


def training_slice(frame: pd.DataFrame, cutoff: pd.Timestamp, window: int = 0) -> pd.DataFrame:
    """The rows a refit at `cutoff` may see: strictly before it, the last `window` of them (0: all)."""
    seen = frame[frame["ds"] < cutoff]
    return seen.iloc[-window:] if window else seen


@dataclass(frozen=True, slots=True)
class Refit:
    """What one refit hands back: Prophet's forecasts from one origin, in USD, plain data only."""

    cutoff: pd.Timestamp
    steps: tuple[int, ...]
    at_origin: float  # Prophet's yhat at the origin bar
    yhat: tuple[float, ...]  # at origin + each of `steps`
    lower: tuple[float, ...] | None
    upper: tuple[float, ...] | None


def predicted_change(r: Refit) -> np.ndarray:
    """Prophet's predicted log change from the origin to each target (clipped)."""
    floor = 1e-12 * max(abs(r.at_origin), 1.0)
    ratio = np.maximum(np.asarray(r.yhat), floor) / max(r.at_origin, floor)
    return np.clip(np.log(ratio), -MAX_LOG_CHANGE, MAX_LOG_CHANGE)


def refit(
    frame: pd.DataFrame,
    cutoff: pd.Timestamp,
    step: pd.Timedelta,
    steps: Sequence[int],
    config: ModelConfig,
    window: int = 0,
    intervals: bool = True,
) -> Refit:
    """Fit Prophet (cold) on the bars before `cutoff` and forecast the origin and origin + each of `steps`.

    `frame` has columns `ds` (naive UTC) and `y` (on the model's scale). A cold start: a warm
    start from the full fit would carry parameters learned from data after the cutoff, and from
    the previous cutoff it measured no faster here (0.33 s vs 0.35 s a refit on BTC/USD).
    """
    from prophet import Prophet

    train = training_slice(frame, cutoff, window)
    if len(train) < 2:
        msg = f"backtest refit at {format_utc(cutoff.tz_localize('UTC'))}: fewer than 2 bars before it"
        raise TrainingError(msg)
    model = Prophet(**{**config.prophet_kwargs(), **({} if intervals else {"uncertainty_samples": 0})})
    try:
        model.fit(train[["ds", "y"]])
    except Exception as exc:  # Stan failures surface as RuntimeError or subprocess errors
        msg = f"backtest refit at {format_utc(cutoff.tz_localize('UTC'))} failed: {exc}"
        raise TrainingError(msg) from exc
    origin = cutoff - step
    np.random.seed(config.seed)
    fc = model.predict(pd.DataFrame({"ds": [origin] + [origin + s * step for s in steps]}))
    yhat = from_scale(fc["yhat"].to_numpy(float), config.scale)
    bounds = None
    if intervals:
        bounds = tuple(
            tuple(float(v) for v in from_scale(fc[k].to_numpy(float)[1:], config.scale))
            for k in ("yhat_lower", "yhat_upper")
        )
    return Refit(
        cutoff=cutoff,
        steps=tuple(int(s) for s in steps),
        at_origin=float(yhat[0]),
        yhat=tuple(float(v) for v in yhat[1:]),
        lower=bounds[0] if bounds else None,
        upper=bounds[1] if bounds else None,
    )


def backtest_frame(bars: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Validated bars -> the frame a refit needs: `ds`, `y` on the model's scale, and `close` in USD."""
    frame = to_prophet_frame(bars, scale)
    frame["close"] = bars["close"].to_numpy(dtype=float)
    return frame


# --------------------------------------------------------------------------- scoring (driver side)


def _window_stats(close: np.ndarray, origin: int, window: int) -> tuple[float, float]:
    """(mean absolute one-step change, mean change) of the closes a refit at this origin saw."""
    first = max(0, origin - window + 1) if window else 0
    seen = close[first : origin + 1]
    if seen.size < 2:
        return math.nan, 0.0
    diffs = np.diff(seen)
    return float(np.mean(np.abs(diffs))), float(np.mean(diffs))


def _point_metrics(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> dict[str, float | None]:
    err = np.abs(actual - predicted)
    # A window whose closes never moved (a stablecoin) has no one-step error to scale by: no MASE.
    scaled = bool(np.all(np.isfinite(scale) & (scale > 0)))
    return {
        "mae": float(np.mean(err)),
        "mape": float(np.mean(err / actual)),
        "mase": float(np.mean(err / scale)) if scaled else None,
    }


def _inside(low: np.ndarray, value: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Where `value` lies in its interval, edges included (a stablecoin's zero-width band covers its close)."""
    return (low <= value) & (value <= high)


def beats_naive(weight: float, nested_ratio: float, p_value: float, alpha: float) -> bool:
    """A horizon "beats naive" when it serves some of Prophet's change, and the procedure that chose it, nested,
    had a lower MAPE than the last close (`nested_ratio` < 1) with a Diebold-Mariano p-value under `alpha`."""
    return bool(weight > 0 and nested_ratio < 1 and p_value < alpha)


def _mape_ratio(actual: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    eb = float(np.mean(np.abs(actual - b) / actual))
    return float(np.mean(np.abs(actual - a) / actual)) / eb if eb > 0 else math.nan


@dataclass(frozen=True, slots=True)
class _Rows:
    """One horizon's scored cutoffs, in time order (arrays aligned)."""

    origin: np.ndarray  # grid index of each origin
    delta: np.ndarray  # Prophet's predicted log change
    prophet: np.ndarray  # Prophet's own yhat, lower, upper (n, 3), USD


def _rows(grid: Grid, refits: Sequence[Refit], h: Horizon) -> _Rows:
    origins, deltas, prophet = [], [], []
    for r in refits:
        origin = grid.index(r.cutoff - grid.step)
        target = origin + h.steps
        if h.steps not in r.steps or target >= grid.close.size or not grid.present[target]:
            continue
        k = r.steps.index(h.steps)
        origins.append(origin)
        deltas.append(float(predicted_change(r)[k]))
        lo = r.lower[k] if r.lower else math.nan
        hi = r.upper[k] if r.upper else math.nan
        prophet.append((r.yhat[k], lo, hi))
    order = np.argsort(origins, kind="stable")
    return _Rows(
        np.asarray(origins, int)[order],
        np.asarray(deltas, float)[order],
        np.asarray(prophet, float).reshape(-1, 3)[order],
    )


def overlap_lag(h: Horizon, spacing_steps: float) -> int:
    """Neighbouring cutoffs whose h-step outcomes overlap: the autocorrelation lag for DM and the block length."""
    return max(0, math.ceil(h.steps / max(spacing_steps, 1.0)) - 1)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def volatility(grid: Grid, config: ServedConfig) -> np.ndarray:
    """The per-step volatility known at each close of `grid`: `served.ewma_volatility` at the configured half-life."""
    return served.ewma_volatility(grid.log_close, config.volatility_halflife(grid.step))


@dataclass(frozen=True, slots=True)
class ServedWeight:
    """What the artifact serves at one horizon: the weight on Prophet's change, why, and the band's error table."""

    choice: served.WeightChoice  # its weight is the one served: 0 where the nested backtest did not earn it
    basis: str  # one of WEIGHT_BASES
    # Where the weight is above 0: standardised quantiles (LEVELS) of the served point's errors, at the
    # six significant digits the manifest publishes them, so the band served is the table stated.
    error_z: tuple[float, ...] | None

    @property
    def weight(self) -> float:
        return self.choice.weight


@dataclass(frozen=True, slots=True)
class Backtest:
    """A pair's scored backtest: the report the manifest stores, and the typed choices the artifact serves."""

    summary: dict[str, Any] | None  # None when no refit has a scored target
    weights: Mapping[str, ServedWeight]  # by horizon name, the scored horizons only


@dataclass(frozen=True, slots=True)
class _Nested:
    """One horizon's scored cutoffs and, at those with enough history, the nested procedure's forecasts."""

    rows: _Rows
    lag: int
    keep: np.ndarray  # row indices with enough history for quantiles
    log_point: np.ndarray  # the nested procedure's log point at each kept row
    weights: np.ndarray  # the weight it used there
    q_nested: np.ndarray  # its log quantiles
    q_naive: np.ndarray  # the naive benchmark's


def _nested(
    grid: Grid, sigma: np.ndarray, refits: Sequence[Refit], h: Horizon, lag: int, config: ServedConfig
) -> _Nested:
    rows = _rows(grid, refits, h)
    return _Nested(rows, lag, *served_forecasts(grid, sigma, rows, h, lag, config))


def choose_served(grid: Grid, sigma: np.ndarray, nested: _Nested, h: Horizon, config: ServedConfig) -> ServedWeight:
    """The weight the artifact serves at one horizon: `served.choose_weight` on every scored cutoff,
    kept only where the nested procedure earned it (`served_weight`), with its band's error table."""
    lc, rows, idx, lag = grid.log_close, nested.rows, nested.keep, nested.lag
    origin = rows.origin[idx]
    y = lc[origin + h.steps]
    final, basis = served_weight(
        served.choose_weight(
            lc[rows.origin], rows.delta, lc[rows.origin + h.steps], lag, config.weight_alpha, config.min_weight_evidence
        ),
        nested.weights,
        np.abs(y - nested.log_point),
        np.abs(y - lc[origin]),
        lag,
        config.min_weight_evidence,
    )
    # The artifact's band at this horizon when the weight is above 0: the errors on every cutoff.
    if final.weight == 0:
        return ServedWeight(final, basis, None)
    z = served.error_z(lc[origin], rows.delta[idx], y, sigma[origin], h.steps, final.weight)
    return ServedWeight(final, basis, None if z is None else tuple(_round([float(v) for v in z])))


def _entry(
    grid: Grid,
    sigma: np.ndarray,
    nested: _Nested,
    choice: ServedWeight,
    h: Horizon,
    backtest: BacktestConfig,
    config: ServedConfig,
) -> dict[str, Any]:
    """One horizon's figures, unrounded: the served forecast (the chosen weight at every cutoff), the
    nested procedure, Prophet as fitted, naive and drift."""
    lc, close = grid.log_close, grid.close
    rows, idx, lag, weights = nested.rows, nested.keep, nested.lag, nested.weights
    final = choice.choice
    origin = rows.origin[idx]
    actual = close[origin + h.steps]
    y = lc[origin + h.steps]
    stats = np.array([_window_stats(close, int(o), backtest.window) for o in origin])
    scale, drift_step = stats[:, 0], stats[:, 1]
    naive = close[origin]
    drift = naive + h.steps * drift_step
    nested_point = np.exp(nested.log_point)
    # The forecast as the artifact serves it: the final weight at every cutoff, with the same
    # nested quantile spread (the spread does not depend on the point).
    served_log = lc[origin] + final.weight * rows.delta[idx]
    point = np.exp(served_log)
    prophet = rows.prophet[idx]
    return_spread = nested.q_nested - nested.log_point[:, None]
    spread, banded = _served_spread(lc, origin, rows.delta[idx], sigma, h.steps, final.weight, return_spread)
    qs = served_log[:, None] + spread
    qn, qp = nested.q_naive, nested.q_nested
    covered = _inside(qs[:, served.LOW], y, qs[:, served.HIGH])[banded]
    covered_nested = _inside(qp[:, served.LOW], y, qp[:, served.HIGH])
    covered_naive = _inside(qn[:, served.LOW], y, qn[:, served.HIGH])
    has_interval = np.isfinite(prophet[:, 1])
    covered_prophet = _inside(prophet[:, 1], actual, prophet[:, 2])
    pin = np.array([served.pinball(y[i], qs[i]) for i in range(y.size)])
    pin_nested = np.array([served.pinball(y[i], qp[i]) for i in range(y.size)])
    pin_naive = np.array([served.pinball(y[i], qn[i]) for i in range(y.size)])
    dm_stat, dm_p = served.diebold_mariano(np.abs(y - np.log(nested_point)), np.abs(y - np.log(naive)), lag)
    block = lag + 1
    ratio = _mape_ratio(actual, point, naive)
    nested_ratio = _mape_ratio(actual, nested_point, naive)
    return {
        "steps": h.steps,
        # Forecasts whose outcome windows do not overlap: what the figures really rest on.
        "independent": int(y.size // (lag + 1)),
        # The forecast the artifact serves: the final weight, the nested quantile spread.
        "served": {
            **_point_metrics(actual, point, scale),
            "coverage": float(np.mean(covered)) if covered.size else None,
            # Cutoffs whose band was the one served (above weight 0: enough errors known before them).
            "coverage_n": int(covered.size),
            "coverage_independent": int(covered.size // (lag + 1)),
            "pinball": float(np.mean(pin)),
            "n": int(y.size),
        },
        # The procedure, nested: at each cutoff the weight chosen on outcomes known before it.
        # Its loss against naive is what sets the served weight to 0.
        "nested": {
            **_point_metrics(actual, nested_point, scale),
            "coverage": float(np.mean(covered_nested)),
            "pinball": float(np.mean(pin_nested)),
            "n": int(y.size),
            "mape_ratio": nested_ratio,
            "mape_ratio_ci90": served.block_bootstrap_ci((actual, nested_point, naive), _mape_ratio, block),
            "weighted_cutoffs": int(np.sum(weights > 0)),
        },
        "prophet": {
            **_point_metrics(actual, prophet[:, 0], scale),
            "coverage": float(np.mean(covered_prophet[has_interval])) if has_interval.any() else None,
            "n": int(y.size),
        },
        "naive": {
            **_point_metrics(actual, naive, scale),
            "coverage": float(np.mean(covered_naive)),
            "pinball": float(np.mean(pin_naive)),
            "n": int(y.size),
        },
        "drift": {**_point_metrics(actual, drift, scale), "coverage": None, "n": int(y.size)},
        "weight": final.weight,
        "weight_basis": choice.basis,
        # Standardised quantiles (LEVELS) of the served point's errors: its band where the weight is above 0.
        "error_z": None if choice.error_z is None else list(choice.error_z),
        "weight_evidence": {
            "n": final.n,
            "independent": int(final.n // (lag + 1)),
            "needed": config.min_weight_evidence,
            "best": final.best,
            "dm_stat": final.dm_stat,
            "p_value": final.p_value,
        },
        "weights_used": {"mean": float(np.mean(weights)), "max": float(np.max(weights))},
        "skill": {
            "mape_ratio": ratio,
            "mape_ratio_ci90": served.block_bootstrap_ci((actual, point, naive), _mape_ratio, block),
            "prophet_mape_ratio": _mape_ratio(actual, prophet[:, 0], naive),
            "pinball_ratio": float(np.mean(pin) / np.mean(pin_naive)) if np.mean(pin_naive) > 0 else None,
            # Diebold-Mariano of the nested procedure against naive: out-of-sample evidence only.
            "dm_stat": dm_stat,
            "p_value": dm_p,
        },
        "coverage_ci90": served.block_bootstrap_ci((covered,), np.mean, block),
        "beats_naive": beats_naive(final.weight, nested_ratio, dm_p, config.weight_alpha),
    }


def score(
    grid: Grid,
    refits: Sequence[Refit],
    horizons: Sequence[Horizon],
    backtest: BacktestConfig,
    config: ServedConfig,
) -> Backtest:
    """Score every horizon over the refits: the report (`evaluate`) and the weights the artifact serves.

    The served forecast at each cutoff uses the weight `served.choose_weight` picks from the
    cutoffs before it whose outcome was already known, and quantiles from returns known then.
    The weight served is chosen on every scored cutoff (`choose_served`), typed, never read back
    out of the rounded report.
    """
    sigma = volatility(grid, config)
    spacing_steps = pd.Timedelta(backtest.spacing) / grid.step
    metrics: dict[str, Any] = {}
    weights: dict[str, ServedWeight] = {}
    cutoffs: set[pd.Timestamp] = set()
    for h in horizons:
        nested = _nested(grid, sigma, refits, h, overlap_lag(h, spacing_steps), config)
        if not nested.keep.size:
            continue
        choice = weights[h.name] = choose_served(grid, sigma, nested, h, config)
        entry = _entry(grid, sigma, nested, choice, h, backtest, config)
        entry["summary"] = sentence(h.name, entry)
        metrics[h.name] = _round(entry)
        cutoffs.update(refits_for(grid, nested.rows.origin[nested.keep]))
    if not metrics:
        return Backtest(None, {})
    summary = {
        "cutoffs": [format_utc(c.tz_localize("UTC")) for c in sorted(cutoffs)],
        "spacing_seconds": int(pd.Timedelta(backtest.spacing).total_seconds()),
        "window": backtest.window,
        "horizons": [{"name": h.name, "steps": h.steps} for h in horizons if h.name in metrics],
        "metrics": metrics,
    }
    return Backtest(summary, weights)


def evaluate(
    grid: Grid,
    refits: Sequence[Refit],
    horizons: Sequence[Horizon],
    backtest: BacktestConfig,
    config: ServedConfig,
) -> dict[str, Any] | None:
    """The backtest's report alone (`score`'s summary): every horizon's figures for the manifest."""
    return score(grid, refits, horizons, backtest, config).summary


# Why a horizon's served weight is what it is (the manifest's `weight_basis`).
WEIGHT_BASES = ("earned", "no_skill", "too_few", "unscored", "nested_loss")


def served_weight(
    choice: served.WeightChoice,
    nested_weights: np.ndarray,
    nested_loss: np.ndarray,
    naive_loss: np.ndarray,
    lag: int,
    min_n: int,
) -> tuple[served.WeightChoice, str]:
    """The weight the artifact serves at one horizon, and its basis (one of WEIGHT_BASES).

    `choice` is the weight chosen on every scored cutoff. It ships only where the nested backtest
    scored it: a weight the nested procedure never used at any cutoff ("unscored"), or a procedure
    whose mean absolute log error was not below the last close's ("nested_loss"), serves 0.
    """
    if choice.weight == 0:
        return choice, "too_few" if choice.n / (lag + 1) < min_n else "no_skill"
    if not np.any(np.asarray(nested_weights) > 0):
        return replace(choice, weight=0.0), "unscored"
    if float(np.mean(nested_loss)) >= float(np.mean(naive_loss)):
        return replace(choice, weight=0.0), "nested_loss"
    return choice, "earned"


def _served_spread(
    lc: np.ndarray,
    origin: np.ndarray,
    delta: np.ndarray,
    sigma: np.ndarray,
    steps: int,
    weight: float,
    return_spread: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The served band's log spread around the point at each cutoff (time order), and where it is the served one.

    At weight 0 the served band is the return band (`return_spread`) everywhere. Above 0 it comes
    from the weighted point's errors whose outcome was known at the cutoff (`served.error_z`);
    cutoffs with too few such errors keep the return band and are marked False.
    """
    if weight == 0:
        return return_spread, np.ones(origin.size, bool)
    spread, banded = return_spread.copy(), np.zeros(origin.size, bool)
    for k, o in enumerate(origin):
        known = int(np.sum(origin[:k] + steps <= o))  # rows are in time order: a prefix
        past = origin[:known]
        z = served.error_z(lc[past], delta[:known], lc[past + steps], sigma[past], steps, weight)
        if z is not None:
            spread[k] = served.quantiles(0.0, float(sigma[o]), steps, z)
            banded[k] = True
    return spread, banded


def served_forecasts(
    grid: Grid, sigma: np.ndarray, rows: _Rows, h: Horizon, lag: int, config: ServedConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The served forecast at each scored cutoff, made with what was known at that cutoff only.

    Returns, for the rows that have enough history for quantiles: their row indices, the served
    log point, the weight used, the served log quantiles and the naive benchmark's (the last close
    with the empirical quantiles of past h-step returns).
    """
    lc = grid.log_close
    keep, points, weights, q_served, q_naive = [], [], [], [], []
    for k, origin in enumerate(rows.origin):
        z = served.z_table(lc, sigma, int(origin), h.steps)
        if z is None:
            continue
        # Rows are in time order, so the cutoffs whose outcome was known by this origin are a prefix.
        known = int(np.sum(rows.origin[:k] + h.steps <= origin))
        past = rows.origin[:known]
        choice = served.choose_weight(
            lc[past], rows.delta[:known], lc[past + h.steps], lag, config.weight_alpha, config.min_weight_evidence
        )
        point = lc[origin] + choice.weight * rows.delta[k]
        if choice.weight > 0:
            # A point with skill misses by less than the price moves: its band from its own past errors.
            err = served.error_z(lc[past], rows.delta[:known], lc[past + h.steps], sigma[past], h.steps, choice.weight)
            z = z if err is None else err
        keep.append(k)
        weights.append(choice.weight)
        points.append(point)
        q_served.append(served.quantiles(point, float(sigma[origin]), h.steps, z))
        q_naive.append(lc[origin] + served.return_quantiles(lc, int(origin), h.steps))
    return (
        np.asarray(keep, int),
        np.asarray(points, float),
        np.asarray(weights, float),
        np.asarray(q_served, float),
        np.asarray(q_naive, float),
    )


def refits_for(grid: Grid, origins: np.ndarray) -> list[pd.Timestamp]:
    """The cutoffs (origin + one step) of the given grid origins."""
    return [grid.start + (int(o) + 1) * grid.step for o in origins]


def sentence(horizon: str, entry: Mapping[str, Any]) -> str:
    """One plain sentence on what the served forecast is at this horizon, and why (the evidence named)."""
    n = entry["served"]["n"]
    cutoffs = f"{n} past cutoff{'s' if n != 1 else ''}"
    w = entry["weight"]
    ev = entry["weight_evidence"]
    nested = entry["nested"]
    basis = entry["weight_basis"]
    prophet = f"Prophet's error x{entry['skill']['prophet_mape_ratio']:.2f} the last close's"
    last = f"at {horizon} this forecast is the last close"
    if basis == "too_few":
        return (
            f"{last}: too few independent outcomes to weigh Prophet's predicted change ({ev['independent']} "
            f"non-overlapping of {ev['needed']} needed, on {cutoffs}; {prophet})"
        )
    if basis == "unscored":
        return (
            f"{last}: Prophet's predicted change earned weight {ev['best']:.1f} on {cutoffs}, but too few "
            f"independent outcomes were known before any cutoff to score that weight out of sample ({prophet})"
        )
    if basis == "nested_loss":
        return (
            f"{last}: choosing Prophet's weight from the outcomes known before each cutoff lost to it out of "
            f"sample (MAPE x{nested['mape_ratio']:.3f} the last close's on {cutoffs}; {prophet})"
        )
    if w == 0:
        return f"{last}: Prophet's predicted change did not beat it on {cutoffs} ({prophet})"
    return (
        f"at {horizon} this forecast moves the last close by {w:.0%} of Prophet's predicted change, which beat "
        f"the last close on {ev['n']} past cutoffs (Diebold-Mariano p = {ev['p_value']:.3f}) and, weighed "
        f"out of sample, at {nested['weighted_cutoffs']} of them (MAPE x{nested['mape_ratio']:.3f} the last close's)"
    )
