"""Every training setting, with its typed default, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["BacktestConfig", "GateConfig", "ModelConfig", "TrainConfig", "ValidationConfig"]


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """Checks run on market bars before any fit."""

    min_rows: int = 60
    # A gap longer than this (missing bars in a row, as time) fails the symbol; shorter ones are
    # reported and Prophet fits across them.
    max_gap: timedelta = timedelta(days=7)
    # How many offending rows an error message quotes.
    example_rows: int = 5


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Prophet's settings. `scale="log"` fits log(close) so no forecast or interval goes negative."""

    scale: str = "log"  # "log" or "linear" (the original raw-price model)
    interval_width: float = 0.8
    uncertainty_samples: int = 1000
    # 0.5 and 0.95 won the backtest on the bundled sample (python -m cryptopredict.training.compare;
    # README "Model quality"): a flexible trend that may turn until near the end of the history.
    # Prophet's defaults (0.05, 0.8) keep the last 20% free of changepoints, so the trend cannot
    # follow a recent turn.
    changepoint_prior_scale: float = 0.5
    changepoint_range: float = 0.95
    seasonality_mode: str = "additive"
    yearly_seasonality: bool | str = "auto"
    weekly_seasonality: bool | str = "auto"
    daily_seasonality: bool | str = "auto"
    # Uncertainty is sampled once at train time with this seed: same data, same artifact.
    seed: int = 0

    def prophet_kwargs(self) -> dict[str, object]:
        """Keyword arguments for `prophet.Prophet(...)`."""
        return {
            "interval_width": self.interval_width,
            "uncertainty_samples": self.uncertainty_samples,
            "changepoint_prior_scale": self.changepoint_prior_scale,
            "changepoint_range": self.changepoint_range,
            "seasonality_mode": self.seasonality_mode,
            "yearly_seasonality": self.yearly_seasonality,
            "weekly_seasonality": self.weekly_seasonality,
            "daily_seasonality": self.daily_seasonality,
        }


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Rolling-origin evaluation: how many cutoffs, how far apart, how much history each needs."""

    cutoffs: int = 8
    # Time between neighbouring cutoffs (the newest leaves room for the longest horizon after it).
    spacing: timedelta = timedelta(days=14)
    min_train_rows: int = 60


@dataclass(frozen=True, slots=True)
class GateConfig:
    """When a trained model is refused (training exits non-zero and writes no artifact)."""

    # The 80% interval must hold at least this share of backtest actuals, over all horizons.
    # Nominal is 80%. On the bundled sample the defaults hold 67% (BTC/USD) and 38% (ETH/USD);
    # Prophet's own defaults held 0% on BTC/USD. Below a quarter is broken, not just crypto.
    min_coverage: float = 0.25
    # Against --baseline-artifact: refuse a candidate whose mean MASE over the horizons exceeds
    # the production model's by more than this factor.
    max_mase_ratio: float = 1.10


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One training run: what to fetch, how to fit it, where to write the artifact."""

    source: str
    symbols: tuple[str, ...]
    timeframe: str = "1Day"
    out: str = "artifacts"
    csv_dir: str = "data"
    start: str = "2021-01-01"
    end: str | None = None
    alpaca_url: str | None = None
    horizon_days: int | None = None  # None: the timeframe's default (365 days daily, 90 hourly)
    model_version: str = "dev"
    workers: int | None = None  # None: one process per symbol, at most the number of cores
    baseline_artifact: str | None = None  # the production artifact to compare with, if any
    model: ModelConfig = field(default_factory=ModelConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    gate: GateConfig = field(default_factory=GateConfig)
