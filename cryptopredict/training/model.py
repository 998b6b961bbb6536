"""Fit one Prophet model per symbol and precompute its forecast grid."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict.artifact import PairGrid, format_utc
from cryptopredict.errors import TrainingError
from cryptopredict.timeframes import Timeframe
from cryptopredict.training.charts import components_chart, forecast_chart
from cryptopredict.training.config import ModelConfig

__all__ = [
    "FitResult",
    "fit_and_forecast",
    "from_scale",
    "optimiser_converged",
    "quiet_prophet",
    "regular_grid",
    "to_prophet_frame",
]

# How CmdStan's optimiser says it stopped short. Running out of iterations still exits 0
# ("Optimization terminated normally:" then this reason), so cmdstanpy's `converged` attribute,
# which only reads the exit code, stays True; its console output is where the verdict is.
_NOT_CONVERGED = ("Maximum number of iterations hit", "Optimization terminated with error")

# Prophet samples uncertainty for every row at once (uncertainty_samples x rows floats per term);
# predicting in chunks keeps memory flat on 50,000-row hourly grids.
_PREDICT_CHUNK = 8000


def quiet_prophet() -> None:
    """Silence CmdStan's per-chain chatter and Prophet's optional-plotly notice."""
    for name in ("cmdstanpy", "prophet.plot"):
        logging.getLogger(name).disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class FitResult:
    """What one symbol's fit hands to the artifact writer: plain data only."""

    slug: str
    grid: PairGrid  # the grid, as `cryptopredict.artifact` stores it: Prophet's part (its `served` added later)
    model_json: str  # prophet.serialize.model_to_json
    fit_seconds: float
    predict_seconds: float
    converged: bool  # the optimiser's own verdict
    charts: dict[str, bytes]  # "prophet" (Prophet's own forecast) and "components" PNGs


def to_prophet_frame(frame: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Bars -> Prophet's `ds`/`y` frame (naive UTC timestamps; log(close) when scale='log')."""
    ds = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    close = frame["close"].astype(float)
    y = np.log(close) if scale == "log" else close
    return pd.DataFrame({"ds": ds.to_numpy(), "y": y.to_numpy()})


def from_scale(values: np.ndarray, scale: str) -> np.ndarray:
    """Model scale -> USD."""
    return np.exp(values) if scale == "log" else values


def regular_grid(first: pd.Timestamp, last: pd.Timestamp, step: timedelta, ahead: int = 0) -> pd.DatetimeIndex:
    """The grid points from the first bar to the last, `step` apart, then `ahead` more: the model's
    forecast grid and the backtest's grid of closes are both this one."""
    return pd.date_range(first, periods=int((last - first) / step) + 1 + ahead, freq=step)


def _round(values: np.ndarray) -> tuple[float, ...]:
    # Ten significant digits: far below any tolerance that matters (1e-10 relative), and it
    # keeps hourly artifacts a third of the size of full float repr.
    return tuple(float(f"{v:.10g}") for v in values.tolist())


def fit_and_forecast(
    frame: pd.DataFrame,
    symbol: str,
    slug: str,
    timeframe: Timeframe,
    horizon_steps: int,
    config: ModelConfig,
    model_version: str = "dev",
) -> FitResult:
    """Fit Prophet on validated bars, predict every grid point from the first bar to the horizon, draw the charts."""
    quiet_prophet()
    from prophet import Prophet
    from prophet.serialize import model_to_json

    if config.scale not in ("log", "linear"):
        msg = f"unknown scale {config.scale!r}; expected 'log' or 'linear'"
        raise TrainingError(msg)
    train = to_prophet_frame(frame, config.scale)
    t0 = time.perf_counter()
    model = Prophet(**config.prophet_kwargs())
    try:
        model.fit(train)
    except Exception as exc:  # Stan failures surface as RuntimeError or subprocess errors
        msg = f"{symbol}: Prophet fit failed: {exc}"
        raise TrainingError(msg) from exc
    fit_seconds = time.perf_counter() - t0

    step = timedelta(seconds=timeframe.seconds)
    first, last = train["ds"].iloc[0], train["ds"].iloc[-1]
    grid = regular_grid(first, last, step, horizon_steps)
    history_points = len(grid) - horizon_steps
    t1 = time.perf_counter()
    np.random.seed(config.seed)
    parts = [
        model.predict(pd.DataFrame({"ds": grid[i : i + _PREDICT_CHUNK]})) for i in range(0, len(grid), _PREDICT_CHUNK)
    ]
    fc = pd.concat(parts, ignore_index=True)
    predict_seconds = time.perf_counter() - t1

    series = {
        key: from_scale(fc[key].to_numpy(dtype=float), config.scale) for key in ("yhat", "yhat_lower", "yhat_upper")
    }
    for key, values in series.items():
        if not np.all(np.isfinite(values)):
            msg = f"{symbol}: the model produced non-finite {key} values"
            raise TrainingError(msg)
    close = frame.set_index(frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None))["close"]
    actual = close.reindex(grid[:history_points])
    pair_grid = PairGrid(
        symbol=symbol,
        timeframe=timeframe.name,
        step_seconds=timeframe.seconds,
        scale=config.scale,
        start=format_utc(first.tz_localize("UTC")),
        history_points=history_points,
        forecast_points=horizon_steps,
        yhat=_round(series["yhat"]),
        yhat_lower=_round(series["yhat_lower"]),
        yhat_upper=_round(series["yhat_upper"]),
        actual=tuple(None if math.isnan(v) else float(v) for v in actual.to_numpy(dtype=float)),
    )
    log_scale = config.scale == "log"
    charts = {
        "prophet": forecast_chart(
            symbol, timeframe.name, model_version, grid, history_points, actual.to_numpy(dtype=float),
            series["yhat"], series["yhat_lower"], series["yhat_upper"], log_scale,
        ),
        "components": components_chart(symbol, timeframe.name, model_version, fc, history_points, log_scale),
    }  # fmt: skip
    return FitResult(
        slug=slug,
        grid=pair_grid,
        model_json=model_to_json(model),
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        converged=_optimiser_converged(symbol, model),
        charts=charts,
    )


def optimiser_converged(console: str) -> bool:
    """CmdStan's own verdict, read from its console output: False when it ran out of iterations or erred.

    The text is the fit's `stan_fit.runset.stdout_files[0]`. L-BFGS names its reason to stop
    ("Convergence detected: ..."); Newton, used on series under 100 rows, names none and passes.
    """
    return not any(reason in console for reason in _NOT_CONVERGED)


def _optimiser_converged(symbol: str, model: Any) -> bool:
    """CmdStan's verdict on this fit, from its console output (its exit code says nothing about it).

    If cmdstanpy stops keeping that output where it does today, training stops here rather than
    passing every fit unseen.
    """
    history = getattr(model, "history", None)
    if history is not None and history["y"].min() == history["y"].max():
        return True  # Prophet sets a constant series' parameters without running the optimiser: nothing to converge
    try:
        console = Path(model.stan_backend.stan_fit.runset.stdout_files[0]).read_text(errors="replace")
    except (AttributeError, IndexError, TypeError, OSError) as exc:
        msg = f"{symbol}: cannot read CmdStan's console output to tell whether the optimiser converged ({exc})"
        raise TrainingError(msg) from None
    return optimiser_converged(console)
