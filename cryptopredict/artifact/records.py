"""The manifest as typed records: every section a frozen dataclass, written and read by one pair of functions.

`to_json(record)` gives the JSON form the manifest stores; `from_json(Record, value)` reads it back,
checking every field against the record's annotation (ValueError naming the first bad field, by its
path). The two are driven by the same annotations, so a field cannot be written without being read,
nor read under another name: a record's JSON keys are its field names, in order.

Annotations the codec knows: str, int, float (any finite number; a bool is neither), bool, None, a
union of those, `tuple[T, ...]` (a JSON list), `Mapping[str, T]` (a JSON object, order kept) and
another record. Every field is present in the JSON form, None where it has no value.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from cryptopredict.timeframes import parse_utc

__all__ = [
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "BacktestRecord",
    "BandScore",
    "Carried",
    "GapRecord",
    "GateCheck",
    "GateRecord",
    "GridFile",
    "GridFiles",
    "GridHeader",
    "HorizonName",
    "HorizonScore",
    "Manifest",
    "ModelSettings",
    "NestedScore",
    "PairEntry",
    "PointScore",
    "Production",
    "ServedHeader",
    "ServedScore",
    "Skill",
    "ValidationRecord",
    "WeightEvidence",
    "WeightsUsed",
    "from_json",
    "to_json",
]

# 2: each grid also holds the served forecast's quantiles ("served"), beside Prophet's own series.
# 3: a backtest horizon's "served" is the forecast as served (the final weight); the nested weighting
#    procedure that was "served" in 2 is "nested", with its weighted cutoffs; "weight_basis" says why.
# 4: the grids are packed binary files ("grids" in the manifest) instead of one JSON file a symbol.
# 5: every section is a typed record (this module), every field present; the manifest carries the
#    SHA-256 of its own canonical content ("digest"); the track-record summary is no longer copied
#    into it (the ledger it names is the one source); the served forecast is stored as its
#    distribution's parameters (cryptopredict.distribution), not as quantiles at every point.
# 6: the closes move to the served file, first (they are the distribution's first parameter), and
#    Prophet's three series are float32, served to 7 significant digits; the files an entry or the
#    manifest names for the record (Prophet's model, the backtest chart, the report) may be absent:
#    the API's copy of an artifact leaves them out (`artifact.copy_served`). Version 5 is still read.
SCHEMA_VERSION = 6
# The versions this code reads: 5's grids are laid out as they were (the closes after Prophet's series).
READABLE_VERSIONS = (5, 6)

R = TypeVar("R")


# --------------------------------------------------------------------------- the run's sections


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Prophet's settings for the run (training's ModelConfig as the manifest states it)."""

    scale: str
    interval_width: float
    uncertainty_samples: int
    changepoint_prior_scale: float
    changepoint_range: float
    seasonality_mode: str
    yearly_seasonality: bool | str
    weekly_seasonality: bool | str
    daily_seasonality: bool | str
    seed: int


@dataclass(frozen=True, slots=True)
class GapRecord:
    """A run of missing bars in a pair's history."""

    start: str
    end: str
    missing: int


@dataclass(frozen=True, slots=True)
class ValidationRecord:
    """What validation found in a pair's bars: span, short gaps, halts, warning lines."""

    symbol: str
    rows: int
    start: str
    end: str
    gaps: tuple[GapRecord, ...]
    zero_volume_rows: int
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PointScore:
    """One forecasting method's figures over a horizon's backtest cutoffs (None: not finite, or none)."""

    mae: float | None
    mape: float | None
    mase: float | None  # None where a window's closes never moved
    coverage: float | None  # share of actual closes inside its 80% interval; None without one
    n: int


@dataclass(frozen=True, slots=True)
class BandScore:
    """A method with a quantile band (naive): its point figures and its mean pinball loss."""

    mae: float | None
    mape: float | None
    mase: float | None
    coverage: float | None
    pinball: float | None
    n: int


@dataclass(frozen=True, slots=True)
class ServedScore:
    """The forecast as served (the final weight at every cutoff): point figures and its band's record."""

    mae: float | None
    mape: float | None
    mase: float | None
    coverage: float | None
    coverage_n: int  # cutoffs whose band was the one served
    coverage_independent: int
    pinball: float | None
    n: int


@dataclass(frozen=True, slots=True)
class NestedScore:
    """The nested procedure (the weight chosen at each cutoff on outcomes known before it)."""

    mae: float | None
    mape: float | None
    mase: float | None
    coverage: float | None
    pinball: float | None
    n: int
    mape_ratio: float | None  # its MAPE over naive's; None when naive never erred
    mape_ratio_ci90: tuple[float | None, ...] | None
    weighted_cutoffs: int


@dataclass(frozen=True, slots=True)
class WeightEvidence:
    """What the served weight was chosen on."""

    n: int
    independent: int
    needed: int
    best: float | None
    dm_stat: float | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class WeightsUsed:
    """The nested procedure's weights over the cutoffs."""

    mean: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Skill:
    """The served forecast against naive, from the same cutoffs."""

    # Served MAPE over naive's, from unrounded errors (None when naive never erred): the champion's measure.
    mape_ratio: float | None
    mape_ratio_ci90: tuple[float | None, ...] | None
    prophet_mape_ratio: float | None
    pinball_ratio: float | None
    dm_stat: float | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class HorizonScore:
    """One backtested horizon: the served forecast, the nested procedure that set its weight, the baselines."""

    steps: int
    independent: int  # cutoffs whose outcome windows do not overlap
    served: ServedScore
    nested: NestedScore
    prophet: PointScore
    naive: BandScore
    drift: PointScore
    weight: float  # the share of Prophet's predicted change served
    weight_basis: str
    error_z: tuple[float | None, ...] | None
    weight_evidence: WeightEvidence
    weights_used: WeightsUsed
    skill: Skill
    coverage_ci90: tuple[float | None, ...] | None
    beats_naive: bool
    summary: str


@dataclass(frozen=True, slots=True)
class HorizonName:
    name: str
    steps: int


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    """A pair's backtest: its cutoffs and settings, and the scores by horizon name, shortest first."""

    cutoffs: tuple[str, ...]
    spacing_seconds: int
    window: int
    horizons: tuple[HorizonName, ...]
    metrics: Mapping[str, HorizonScore]


@dataclass(frozen=True, slots=True)
class Carried:
    """A pair served from an earlier model: which trained it, when, for how many runs, and why."""

    model_version: str
    trained_at: str
    runs: int
    reason: str

    def age_days(self, trained_at: str) -> float:
        """How many days before a run (trained at `trained_at`) this forecast was trained."""
        return (parse_utc(trained_at) - parse_utc(self.trained_at)).total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class PairEntry:
    """One served pair's entry: its data window, validation, fit, backtest, files, and provenance."""

    symbol: str
    rows: int
    data_start: str
    data_end: str
    forecast_end: str
    horizon_steps: int
    validation: ValidationRecord
    fit_seconds: float
    converged: bool
    model_file: str | None  # Prophet's fitted model, for the record
    backtest: BacktestRecord | None  # None when not backtested
    charts: Mapping[str, str] = field(default_factory=dict)  # kind -> file name
    backtest_chart: str | None = None
    carried: Carried | None = None  # None for a pair trained by this run


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One rule of the promotion gate applied to one symbol: did it pass, and the figures behind the verdict."""

    symbol: str
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class GateRecord:
    """The promotion gate's verdict: on the run, on each pair, and every check."""

    passed: bool
    refusal: str | None
    pairs: Mapping[str, str]  # symbol -> "fresh", "carried" or "left out"
    max_failed_share: float
    checks: tuple[GateCheck, ...]


@dataclass(frozen=True, slots=True)
class Production:
    """The artifact in production that a run was compared with (the champion)."""

    model_version: str
    generation: str
    run_id: str | None
    trained_at: str
    data_end: Mapping[str, str]  # by symbol
    # Per pair and horizon, the champion's served MAPE over naive's (the gate compares on it).
    skill: Mapping[str, Mapping[str, float | None]]


# --------------------------------------------------------------------------- the grids' headers


@dataclass(frozen=True, slots=True)
class ServedHeader:
    """The served distribution's parameters other than its columns (`cryptopredict.distribution`): the
    levels (ascending), the weight on Prophet's change at each scored horizon and that horizon's steps,
    the standardised quantile tables (one row a lead, one value a level), and whether the packed file
    holds Prophet's fitted one-step changes and its predicted changes after the data (only where a
    weight above 0 reads them)."""

    levels: tuple[float, ...]
    weights: Mapping[str, float]
    horizon_steps: Mapping[str, int]
    z_steps: tuple[int, ...]
    z_rows: tuple[tuple[float, ...], ...]
    history_change: bool
    future_change: bool


@dataclass(frozen=True, slots=True)
class GridFile:
    """One packed file of a grid: its name, dtype ("<f8" or "<f4") and length in values."""

    file: str
    dtype: str
    length: int


@dataclass(frozen=True, slots=True)
class GridFiles:
    series: GridFile  # Prophet's yhat, yhat_lower, yhat_upper (schema 5: then the closes)
    # The served distribution's columns: the close at each history point (NaN: no bar; schema 5: not
    # here), the volatility at each, then (if the header says so) Prophet's fitted change at each, then
    # its predicted change at each forecast point.
    served: GridFile


@dataclass(frozen=True, slots=True)
class GridHeader:
    """A pair's grid: every field but its columns, which are in the files it names."""

    symbol: str
    timeframe: str
    step_seconds: int
    scale: str
    start: str
    history_points: int
    forecast_points: int
    points: int
    served: ServedHeader
    files: GridFiles


# --------------------------------------------------------------------------- the manifest


@dataclass(frozen=True, slots=True)
class Manifest:
    """The whole manifest: the run's identity and settings, its verdicts, and every pair's entry and grid.

    A writer fills `generation`, `grids` and `files` (write_artifact); what it is given there is replaced.
    """

    model_version: str
    trained_at: str  # "YYYY-MM-DDTHH:MM:SSZ"
    timeframe: str
    run_id: str | None = None
    source: str = ""
    step_seconds: int = 0
    model_config: ModelSettings | None = None
    libraries: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds by step
    gate: GateRecord | None = None
    production: Production | None = None
    ledger: str | None = None  # the track record's file
    report: str | None = None  # the training report's file
    alerts: str | None = None  # the alert states' file
    # The pairs this artifact does not serve (failed, and not in production to carry), each with why.
    skipped: Mapping[str, str] = field(default_factory=dict)
    symbols: Mapping[str, PairEntry] = field(default_factory=dict)  # by slug
    schema_version: int = SCHEMA_VERSION
    generation: str = ""
    grids: Mapping[str, GridHeader] = field(default_factory=dict)  # by slug
    files: Mapping[str, str] = field(default_factory=dict)  # name -> SHA-256

    @property
    def trained(self) -> datetime:
        return parse_utc(self.trained_at)

    @property
    def named_files(self) -> tuple[str, ...]:
        """Every file the manifest names by its role: the report, the ledger and the alert states, and each
        pair's fitted model, backtest chart and charts. Each must be among `files` (the writer and the reader
        refuse a manifest naming one it has no checksum for)."""
        names = [self.report, self.ledger, self.alerts]
        for e in self.symbols.values():
            names += [e.model_file, e.backtest_chart, *e.charts.values()]
        return tuple(n for n in names if n)

    @property
    def record_files(self) -> frozenset[str]:
        """The files kept for the record, which the API never reads: each pair's fitted Prophet model and
        backtest chart, and the training report. An artifact may lack them (the API's copy leaves them
        out); where one is present it is checked against its checksum like every other file."""
        names = {self.report} | {n for e in self.symbols.values() for n in (e.model_file, e.backtest_chart)}
        return frozenset(n for n in names if n)


# --------------------------------------------------------------------------- the codec


def to_json(value: Any) -> Any:
    """A record (or a value inside one) as JSON-ready data: records are objects, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    return value


def from_json(kind: type[R], value: Any, path: str = "") -> R:
    """`value` (parsed JSON) read as a `kind` record, every field checked; ValueError naming the first bad one."""
    return _read(kind, value, path)


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind, vars(sys.modules[kind.__module__]))


def _where(path: str) -> str:
    return path or "the value"


def _read(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _read(option, value, path)
            except ValueError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            msg = f"{_where(path)} is {_shown(value)}, not an object"
            raise ValueError(msg)
        names = [f.name for f in dataclasses.fields(tp)]
        extra = [k for k in value if k not in names]
        if extra:
            msg = f"{path + '.' if path else ''}{extra[0]} is not a field this code reads"
            raise ValueError(msg)
        hints = _hints(tp)
        args = {}
        for name in names:
            where = f"{path}.{name}" if path else name
            if name not in value:
                msg = f"{where} is missing"
                raise ValueError(msg)
            args[name] = _read(hints[name], value[name], where)
        return tp(**args)
    if origin is tuple:
        if not isinstance(value, list):
            msg = f"{_where(path)} is {_shown(value)}, not a list"
            raise ValueError(msg)
        (item, _) = typing.get_args(tp)
        return tuple(_read(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            msg = f"{_where(path)} is {_shown(value)}, not an object"
            raise ValueError(msg)
        _, item = typing.get_args(tp)
        return {k: _read(item, v, f"{path}.{k}") for k, v in value.items()}
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        what = "a number"
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = "a whole number"
    elif tp in (str, bool):
        ok = isinstance(value, tp)
        what = f"a {tp.__name__}"
    elif tp is type(None):
        ok = value is None
        what = "null"
    else:  # pragma: no cover - an annotation this codec does not know is a bug in a record
        msg = f"{path}: the codec cannot read {tp!r}"
        raise TypeError(msg)
    if not ok:
        msg = f"{_where(path)} is {_shown(value)}, not {what}"
        raise ValueError(msg)
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
