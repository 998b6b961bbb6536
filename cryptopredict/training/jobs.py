"""The independent tasks of a training run, as plain records, and the functions workers run on them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from cryptopredict.errors import CryptopredictError
from cryptopredict.timeframes import Timeframe, symbol_to_slug
from cryptopredict.training import backtest
from cryptopredict.training.config import ModelConfig
from cryptopredict.training.model import FitResult, fit_and_forecast

__all__ = ["FitJob", "JobFailed", "RefitJob", "run_fit", "run_refit", "try_fit", "try_refit"]

R = TypeVar("R")


# eq=False: a DataFrame has no truth value, so field-wise == and hash would raise.
@dataclass(frozen=True, slots=True, eq=False)
class FitJob:
    """Fit one symbol on all its bars and predict its grid up to the horizon."""

    symbol: str
    frame: pd.DataFrame  # validated bars
    timeframe: Timeframe
    horizon_steps: int
    model: ModelConfig
    model_version: str


@dataclass(frozen=True, slots=True, eq=False)
class RefitJob:
    """Refit one symbol on the bars before `cutoff`: a backtest cutoff, or the anchor at the data end."""

    symbol: str
    frame: pd.DataFrame  # backtest.backtest_frame of the validated bars
    cutoff: pd.Timestamp
    step: pd.Timedelta
    steps: Sequence[int]
    model: ModelConfig
    window: int
    # The served forecast's anchor (a refit on all the data) needs no intervals.
    anchor: bool = False


def run_fit(job: FitJob) -> FitResult:
    """Run a fit job (in a worker process)."""
    return fit_and_forecast(
        job.frame,
        job.symbol,
        symbol_to_slug(job.symbol),
        job.timeframe,
        job.horizon_steps,
        job.model,
        job.model_version,
    )


def run_refit(job: RefitJob) -> backtest.Refit:
    """Run a refit job (in a worker process)."""
    return backtest.refit(job.frame, job.cutoff, job.step, job.steps, job.model, job.window, intervals=not job.anchor)


@dataclass(frozen=True, slots=True)
class JobFailed:
    """A job that raised, returned as its result: with --skip-invalid its pair fails, not the run."""

    reason: str


def _attempt(symbol: str, run: Callable[[], R]) -> R | JobFailed:
    try:
        return run()
    except Exception as exc:  # any failure of one pair's job is that pair's, reported by name
        reason = str(exc).removeprefix(f"{symbol}: ") or type(exc).__name__
        return JobFailed(reason if isinstance(exc, CryptopredictError) else f"{type(exc).__name__}: {reason}")


def try_fit(job: FitJob) -> FitResult | JobFailed:
    """`run_fit`, with a failure returned as `JobFailed` instead of raised (in a worker process)."""
    return _attempt(job.symbol, lambda: run_fit(job))


def try_refit(job: RefitJob) -> backtest.Refit | JobFailed:
    """`run_refit`, with a failure returned as `JobFailed` instead of raised (in a worker process)."""
    return _attempt(job.symbol, lambda: run_refit(job))
