"""The served forecast's grid for the artifact: the quantiles at every bar and step, from the closes, their
volatility, Prophet's changes and the weights the backtest chose: the parameters the artifact stores
(`cryptopredict.distribution`), and the quantiles they give."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cryptopredict.artifact import ServedGrid
from cryptopredict.distribution import LogCloses
from cryptopredict.errors import TrainingError
from cryptopredict.timeframes import Horizon
from cryptopredict.training import backtest, served
from cryptopredict.training.config import ServedConfig
from cryptopredict.training.model import FitResult

__all__ = ["served_grid"]


def served_grid(
    grid: backtest.Grid,
    fit: FitResult,
    chosen: Mapping[str, backtest.ServedWeight],
    anchor: backtest.Refit,
    horizons: Sequence[Horizon],
    config: ServedConfig,
) -> ServedGrid:
    """The served forecast's quantile grid, for the artifact, at the weights the backtest chose (`chosen`):
    `anchor` is the refit at the data end (Prophet's predicted changes after it), `horizons` the
    timeframe's scored ones."""
    lc = grid.log_close
    history = fit.grid.history_points
    if lc.size != history:
        msg = f"{fit.grid.symbol}: the grid of closes has {lc.size} points, the model's history {history}"
        raise TrainingError(msg)
    sigma = backtest.volatility(grid, config)
    fitted = np.log(np.maximum(np.asarray(fit.grid.yhat[:history], float), 1e-12))
    # Clipped like the forecast's change: a linear-scale fit may dip to (or below) zero.
    limit = backtest.MAX_LOG_CHANGE
    history_change = np.concatenate([[0.0], np.clip(np.diff(fitted), -limit, limit)])
    weights = [chosen[h.name].weight if h.name in chosen else 0.0 for h in horizons]
    errors = {
        h.steps: np.asarray(chosen[h.name].error_z, float)
        for h in horizons
        if h.name in chosen and chosen[h.name].error_z is not None
    }
    horizon_steps = [h.steps for h in horizons]
    tables = served.served_tables(lc, sigma, horizon_steps, errors)
    # Laid at the closes as the artifact stores them, the way the API reads them (cryptopredict.distribution).
    log_close = LogCloses(fit.grid.actual)
    future = backtest.predicted_change(anchor)
    dist = served.distribution(log_close, sigma, history_change, future, horizon_steps, weights, tables)
    return ServedGrid(
        levels=tuple(served.LEVELS),
        weights={h.name: w for h, w in zip(horizons, weights, strict=True)},
        horizon_steps={h.name: h.steps for h in horizons},
        # The parameters the artifact stores, and the quantiles they give (for the gate, the ledger,
        # the alerts and the charts; the artifact does not store them).
        sigma=tuple(dist.sigma),
        history_change=None if dist.history_change is None else tuple(dist.history_change),
        future_change=None if dist.future_change is None else tuple(dist.future_change),
        z_steps=tuple(dist.z_steps),
        z_rows=tuple(tuple(row) for row in dist.z_rows),
        quantiles=tuple(tuple(column) for column in dist.grid()),
    )
