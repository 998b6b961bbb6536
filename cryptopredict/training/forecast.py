"""The served forecast's grid for the artifact: the quantiles at every bar and step, from the closes, their
volatility, Prophet's changes and the weights the backtest chose (`served.grid_quantiles`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryptopredict.errors import TrainingError
from cryptopredict.timeframes import Horizon
from cryptopredict.training import backtest, served
from cryptopredict.training.config import ServedConfig
from cryptopredict.training.model import FitResult

__all__ = ["served_payload"]


def served_payload(
    grid: backtest.Grid,
    fit: FitResult,
    chosen: Mapping[str, backtest.ServedWeight],
    anchor: backtest.Refit,
    horizons: Sequence[Horizon],
    config: ServedConfig,
) -> dict[str, Any]:
    """The served forecast's quantile grid, for the artifact, at the weights the backtest chose (`chosen`):
    `anchor` is the refit at the data end (Prophet's predicted changes after it), `horizons` the
    timeframe's scored ones."""
    lc = grid.log_close
    history = fit.payload["history_points"]
    if lc.size != history:
        msg = f"{fit.payload['symbol']}: the grid of closes has {lc.size} points, the model's history {history}"
        raise TrainingError(msg)
    sigma = backtest.volatility(grid, config)
    fitted = np.log(np.maximum(np.asarray(fit.payload["yhat"][:history], float), 1e-12))
    # Clipped like the forecast's change: a linear-scale fit may dip to (or below) zero.
    limit = backtest.MAX_LOG_CHANGE
    history_change = np.concatenate([[0.0], np.clip(np.diff(fitted), -limit, limit)])
    weights = [chosen[h.name].weight if h.name in chosen else 0.0 for h in horizons]
    errors = {
        h.steps: np.asarray(chosen[h.name].error_z, float)
        for h in horizons
        if h.name in chosen and chosen[h.name].error_z is not None
    }
    q = np.exp(
        served.grid_quantiles(
            lc, sigma, history_change, backtest.predicted_change(anchor), [h.steps for h in horizons], weights, errors
        )
    )
    return {
        "levels": list(served.LEVELS),
        "quantiles": [[float(f"{v:.8g}") for v in q[:, k].tolist()] for k in range(q.shape[1])],
        "weights": {h.name: w for h, w in zip(horizons, weights, strict=True)},
    }
