"""Every training setting, with its typed default, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["ModelConfig", "TrainConfig", "ValidationConfig"]


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
    changepoint_prior_scale: float = 0.05
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
            "seasonality_mode": self.seasonality_mode,
            "yearly_seasonality": self.yearly_seasonality,
            "weekly_seasonality": self.weekly_seasonality,
            "daily_seasonality": self.daily_seasonality,
        }


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
    model: ModelConfig = field(default_factory=ModelConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
