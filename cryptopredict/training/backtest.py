"""Rolling-origin backtest of a symbol's model against naive and drift baselines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict.artifact import format_utc
from cryptopredict.errors import TrainingError
from cryptopredict.training.config import BacktestConfig, ModelConfig
from cryptopredict.training.model import from_scale, to_prophet_frame

__all__ = [
    "HORIZONS",
    "Forecast",
    "Horizon",
    "backtest_cutoff",
    "backtest_frame",
    "baseline_forecasts",
    "plan_cutoffs",
    "summarize",
    "targets",
    "training_slice",
]

# A cutoff is the instant a forecast is made: a refit sees only bars stamped before it, and a
# horizon of h steps targets the bar stamped cutoff + (h-1) steps, whose close comes h steps
# after the cutoff. So "1d" is the very next daily close, as a user asking today would get.


@dataclass(frozen=True, slots=True)
class Horizon:
    """A forecast distance, named for people ("7d") and counted in bars."""

    name: str
    steps: int


HORIZONS: Mapping[str, tuple[Horizon, ...]] = {
    "1Day": (Horizon("1d", 1), Horizon("7d", 7), Horizon("30d", 30)),
    "1Hour": (Horizon("1h", 1), Horizon("24h", 24), Horizon("168h", 168)),
}

METHODS = ("model", "naive", "drift")


@dataclass(frozen=True, slots=True)
class Forecast:
    """One method's forecast of one target bar from one cutoff (prices in USD)."""

    method: str
    horizon: str
    cutoff: pd.Timestamp
    target: pd.Timestamp
    actual: float
    predicted: float
    # Mean absolute one-step change of the training window: the MASE denominator.
    scale: float
    lower: float | None = None
    upper: float | None = None


def backtest_frame(bars: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Validated bars -> the frame a refit needs: `ds`, `y` on the model's scale, and `close` in USD."""
    frame = to_prophet_frame(bars, scale)
    frame["close"] = bars["close"].to_numpy(dtype=float)
    return frame


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


def training_slice(frame: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The rows a refit at `cutoff` may see: strictly before it."""
    return frame[frame["ds"] < cutoff]


def targets(cutoff: pd.Timestamp, step: pd.Timedelta, horizons: Sequence[Horizon]) -> dict[str, pd.Timestamp]:
    """The bar each horizon forecasts from `cutoff`."""
    return {h.name: cutoff + (h.steps - 1) * step for h in horizons}


def baseline_forecasts(history: np.ndarray, steps: int) -> dict[str, float]:
    """Naive (the last close) and drift (the last close plus `steps` times the mean change)."""
    last = float(history[-1])
    drift = (last - float(history[0])) / (len(history) - 1) if len(history) > 1 else 0.0
    return {"naive": last, "drift": last + steps * drift}


def _naive_scale(history: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(history)))) if len(history) > 1 else math.nan


def backtest_cutoff(
    frame: pd.DataFrame,
    cutoff: pd.Timestamp,
    step: pd.Timedelta,
    horizons: Sequence[Horizon],
    config: ModelConfig,
    init: Mapping[str, Any] | None = None,
) -> list[Forecast]:
    """Refit on the bars before `cutoff` and forecast every horizon, with the baselines beside it.

    `frame` has columns `ds` (naive UTC), `y` (on the model's scale) and `close` (USD). `init`
    warm-starts the optimiser from the full fit's parameters, which makes each refit several
    times faster and lands on the same optimum.
    """
    from prophet import Prophet

    train = training_slice(frame, cutoff)
    wanted = targets(cutoff, step, horizons)
    truth = frame.set_index("ds")["close"]
    present = {name: ts for name, ts in wanted.items() if ts in truth.index}
    if len(train) < 2 or not present:
        return []
    model = Prophet(**config.prophet_kwargs())
    try:
        model.fit(train[["ds", "y"]], **({"init": dict(init)} if init else {}))
    except Exception as exc:  # Stan failures surface as RuntimeError or subprocess errors
        msg = f"backtest refit at {format_utc(cutoff.tz_localize('UTC'))} failed: {exc}"
        raise TrainingError(msg) from exc
    np.random.seed(config.seed)
    fc = model.predict(pd.DataFrame({"ds": list(present.values())})).set_index("ds")
    history = train["close"].to_numpy(dtype=float)
    scale = _naive_scale(history)
    steps = {h.name: h.steps for h in horizons}
    out: list[Forecast] = []
    for name, ts in present.items():
        actual = float(truth[ts])
        row = fc.loc[ts]
        yhat, lower, upper = from_scale(row[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(float), config.scale)
        out.append(Forecast("model", name, cutoff, ts, actual, float(yhat), scale, float(lower), float(upper)))
        for method, value in baseline_forecasts(history, steps[name]).items():
            out.append(Forecast(method, name, cutoff, ts, actual, value, scale))
    return out


def _metrics(rows: Sequence[Forecast]) -> dict[str, float | None]:
    err = np.array([abs(r.actual - r.predicted) for r in rows])
    actual = np.array([abs(r.actual) for r in rows])
    scale = np.array([r.scale for r in rows])
    covered = [r.lower <= r.actual <= r.upper for r in rows if r.lower is not None and r.upper is not None]
    return {
        "mae": float(np.mean(err)),
        "mape": float(np.mean(err / actual)),
        "mase": float(np.mean(err / scale)),
        "coverage": float(np.mean(covered)) if covered else None,
        "n": len(rows),
    }


def summarize(forecasts: Sequence[Forecast], horizons: Sequence[Horizon]) -> dict[str, Any] | None:
    """The artifact's `backtest` record: cutoffs, horizons, and per horizon each method's metrics."""
    if not forecasts:
        return None
    metrics: dict[str, Any] = {}
    for h in horizons:
        per_method = {m: [f for f in forecasts if f.horizon == h.name and f.method == m] for m in METHODS}
        if not per_method["model"]:
            continue
        entry: dict[str, Any] = {m: {k: _round(v) for k, v in _metrics(rows).items()} for m, rows in per_method.items()}
        entry["beats_naive"] = entry["model"]["mae"] < entry["naive"]["mae"]
        metrics[h.name] = entry
    cutoffs = sorted({f.cutoff for f in forecasts})
    return {
        "cutoffs": [format_utc(c.tz_localize("UTC")) for c in cutoffs],
        "horizons": [{"name": h.name, "steps": h.steps} for h in horizons if h.name in metrics],
        "metrics": metrics,
    }


def _round(value: float | int | None) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return float(f"{value:.6g}")
