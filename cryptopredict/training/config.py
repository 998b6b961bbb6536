"""Every training setting, with its typed default, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from cryptopredict.timeframes import get_timeframe
from cryptopredict.training.sources import BarSource
from cryptopredict.training.sources.base import BarRequest
from cryptopredict.training.sources.csv import CsvSource

__all__ = [
    "BacktestConfig",
    "ClusterConfig",
    "GateConfig",
    "ModelConfig",
    "ServedConfig",
    "TrainConfig",
    "ValidationConfig",
]


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
    # Prophet's own defaults won the 120-cutoff backtest on the bundled sample (python -m
    # cryptopredict.training.compare; README "Model quality"): Prophet's MAPE 2.71x naive's on
    # average, against 2.89-3.75x for a more flexible trend (prior 0.5, range 0.95). No setting
    # earned Prophet weight in the served forecast.
    changepoint_prior_scale: float = 0.05
    changepoint_range: float = 0.8
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
    """Rolling-origin evaluation: how many cutoffs, how far apart, how much history each refit sees.

    None means the timeframe's default (`for_timeframe`): on daily bars 120 cutoffs 15 days apart,
    each refit on the last 4 years before it (at least one year); on hourly bars 7 days apart, each
    refit on the last 90 days, at least 60. A trailing window keeps each refit's cost flat (a
    4,000-bar daily refit takes 0.5 s here, a 1,461-bar one about 0.25 s; a 50,000-bar hourly fit
    a minute, a 2,160-bar one about a second) and lets the trend follow the recent market.
    """

    cutoffs: int = 120
    # Time between neighbouring cutoffs (the newest leaves room for the longest horizon after it).
    spacing: timedelta | None = None
    min_train_rows: int | None = None
    window: int | None = None  # bars each refit sees, the newest; 0: all before the cutoff

    def for_timeframe(self, timeframe: str) -> BacktestConfig:
        """These settings with every None replaced by the timeframe's default (on `Timeframe`)."""
        tf = get_timeframe(timeframe)
        return BacktestConfig(
            cutoffs=self.cutoffs,
            spacing=self.spacing if self.spacing is not None else timedelta(days=tf.backtest_spacing_days),
            min_train_rows=self.min_train_rows if self.min_train_rows is not None else tf.backtest_min_train_rows,
            window=self.window if self.window is not None else tf.backtest_window,
        )


@dataclass(frozen=True, slots=True)
class ServedConfig:
    """How the served forecast is built from Prophet and the closes (cryptopredict.training.served)."""

    # Half-life of the exponentially weighted volatility that scales the quantiles.
    volatility_halflife_days: float = 30.0
    # Prophet's predicted change gets weight only if it beat the last close with a one-sided
    # Diebold-Mariano p-value under this, on at least `min_weight_evidence` past forecasts whose
    # outcomes do not overlap (at 180 days with cutoffs 15 days apart, 12 cutoffs count as one).
    weight_alpha: float = 0.05
    min_weight_evidence: int = 20

    def volatility_halflife(self, step: timedelta) -> float:
        """The half-life counted in bars of `step`."""
        return self.volatility_halflife_days * 86400 / step.total_seconds()


@dataclass(frozen=True, slots=True)
class GateConfig:
    """When a trained model is refused (training exits non-zero and writes no artifact)."""

    # At every backtested horizon the served forecast's MAPE may be at most this times naive's.
    max_mape_ratio: float = 1.02
    # ...and its 80% band must hold a share of the actual closes that chance explains: an exact
    # binomial test against 80% on the independent outcomes refuses below this p-value, Holm-corrected
    # over the pair's horizons, so a calibrated band is refused in at most this share of pair-runs.
    coverage_alpha: float = 0.01
    # A band holding less than this share is refused whatever the test says (nonsense, not chance).
    coverage_floor: float = 0.40
    # Below this many scored forecasts with non-overlapping outcomes at a horizon, its figures are
    # too noisy to refuse a model on (120 cutoffs 15 days apart give 120 at 1 and 7 days, 60 at 30,
    # 20 at 90 and 10 at 180 days: the 180-day figures are reported, not gated).
    min_independent: int = 20
    # Against --baseline-artifact (the champion): refuse a candidate whose served MAPE over naive's,
    # averaged over the horizons both backtested, exceeds the champion's by more than this factor.
    max_vs_production: float = 1.10
    # A pair that fails is carried forward from production or left out, and the rest are served; but
    # when more than this share of the pairs fails, the run is refused (train.py --max-failed-share)...
    max_failed_share: float = 0.25
    # ...provided at least this many failed: one failed pair is one market, even in a run of two.
    min_failed_pairs: int = 2


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Where the fits and refits run instead of the local pool: a Dask scheduler, and how long to wait for it."""

    address: str | None = None  # e.g. tcp://scheduler:8786; None: the local pool, no Dask at all
    # An unreachable scheduler fails the run after this many seconds, not after a hung build.
    connect_timeout: float = 10.0
    # A cluster may start before its workers: wait this long for the first one to join.
    worker_timeout: float = 120.0
    # A job that raises is run again this many times (a lost worker's jobs are moved to another
    # worker by the scheduler itself, up to its own allowed-failures).
    retries: int = 2


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One training run: what to fetch, how to fit it, where to write the artifact.

    These defaults are train.py's and compare's: both build their parsers from them.
    """

    source: BarSource = field(default_factory=CsvSource)
    # None: every pair the source lists (train.py --symbols all), resolved when the run starts.
    symbols: tuple[str, ...] | None = ("BTC/USD", "ETH/USD")
    # A pair without bars, with unreadable or invalid bars, or whose fit fails is reported and judged a
    # failed pair (carried from production or left out) instead of failing the run.
    skip_invalid: bool = False
    timeframe: str = "1Day"
    out: str = "artifacts"
    start: str | None = None  # None: the source's default (`first_bar`)
    end: str | None = None
    horizon_days: int | None = None  # None: the timeframe's default (365 days daily, 90 hourly)
    model_version: str = "dev"
    # What identifies the run that trained (the workflow passes X.Y.Z-YYYYMMDDHHMMSS): stamped in
    # the manifest and reported by /healthz, so a deploy can tell its model from the previous one.
    run_id: str | None = None
    # Processes for the fits and the backtest refits (one pool for both); None: the number of cores.
    workers: int | None = None
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    baseline_artifact: str | None = None  # the production artifact to compare with, if any
    alert_rules: str | None = None  # the watch rules' TOML file (cryptopredict.alerts); None: no rules
    model: ModelConfig = field(default_factory=ModelConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    served: ServedConfig = field(default_factory=ServedConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def first_bar(self) -> str | None:
        """--start, else the source's default start (None: all the bars the source has)."""
        return self.start if self.start is not None else self.source.default_start

    def bar_request(self) -> BarRequest:
        """What the source is asked for: the pairs, --start (or the source's default), --end, --skip-invalid."""
        return BarRequest(
            symbols=self.symbols or (), start=self.first_bar(), end=self.end, skip_invalid=self.skip_invalid
        )

    def worker_count(self) -> int:
        """--workers, else one process per core."""
        return self.workers or os.cpu_count() or 1
