"""A pair's grid: packed into the two binary files the manifest's header names, and seen back as a forecast.

The grids are packed little-endian floats, each file named in the pair's `GridHeader` with its dtype
and length (values), beside the fields a person reads (symbol, start, step, levels, weights). The
served file holds the served distribution's parameters, the closes first: prices, stored to 8
significant digits and served as stored, so float64 ("<f8") unless a float32 holds every one of them
exactly. The series file holds Prophet's three series as float32 ("<f4"): a forecast whose error is
counted in percent cannot need more than float32's 7 significant digits, to which they are served.

Training hands a pair's grid to the writer as a `PairGrid` (its served distribution a `ServedGrid`), and
`grid_of` gives the same record back from a read forecast, so a pair is carried from one artifact into
another without knowing the files' format.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
import mmap
import sys
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptopredict.artifact.records import (
    SCHEMA_VERSION,
    BacktestRecord,
    GridFile,
    GridFiles,
    GridHeader,
    PairEntry,
    ServedHeader,
)
from cryptopredict.artifact.validation import check_levels
from cryptopredict.distribution import Distribution, LogCloses
from cryptopredict.timeframes import parse_utc

__all__ = [
    "Closes",
    "Float32Digits",
    "PairGrid",
    "ServedGrid",
    "SymbolForecast",
    "columns_of",
    "forecast_of",
    "grid_of",
    "pack_grid",
    "unpacked",
]

# The two binary files of a symbol, by their part of the grid.
PARTS = ("series", "served")
DTYPES = {"<f8": "d", "<f4": "f"}


@dataclass(frozen=True, slots=True)
class ServedGrid:
    """The served distribution of a pair's grid (`cryptopredict.distribution`): the parameters the served file
    and the header store, and the quantiles they give, which training publishes and the artifact does not store.
    Its columns are tuples, built once (by training, or by `grid_of`) and handed on without a copy (a grid
    holds 10,000 points and more); plain data, picklable."""

    # The quantile levels, ascending (0.01 ... 0.99); the median among them.
    levels: tuple[float, ...]
    # By scored horizon name ('1d', '7d', ...): the weight in [0, 1] the served forecast puts on Prophet's change.
    weights: Mapping[str, float]
    # By the same horizon names: the horizon's length in bars.
    horizon_steps: Mapping[str, int]
    # The volatility (of the log close, per bar) known at each history bar; one value a history point.
    sigma: tuple[float, ...]
    # Prophet's fitted one-step log change at each history bar; None when the weight at one step is 0 (unread).
    history_change: tuple[float, ...] | None
    # Prophet's predicted log change from the last close at each step after the data; None where every weight is 0.
    future_change: tuple[float, ...] | None
    # The leads (in bars, ascending) of the standardised quantile tables.
    z_steps: tuple[int, ...]
    # One table a lead of `z_steps`: one standardised quantile a level, ascending.
    z_rows: tuple[tuple[float, ...], ...]
    # The published quantiles: one column of prices a level, a value at every grid point (history, then
    # forecast). What the gate, the track record, the alerts and the charts read; not stored (the API
    # computes the same ones from the parameters above).
    quantiles: tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True)
class PairGrid:
    """A pair's grid as training hands it to `write_artifact` and `grid_of` gives it back: history points
    first, then forecast points, `step_seconds` apart. Packed into the two files by `pack_grid`, every field
    but the columns in the manifest's `GridHeader`. Plain data, picklable (a fit may run on a Dask worker)."""

    symbol: str  # 'BTC/USD'
    timeframe: str  # the bar size's name, '1Day' (cryptopredict.timeframes)
    step_seconds: int  # the bar size, in seconds
    scale: str  # the scale Prophet was fitted on: 'log' or 'linear'
    start: str  # the first grid point (the first bar), UTC as the manifest writes it: '2025-01-01T00:00:00Z'
    history_points: int  # grid points up to the data end (one a bar)
    forecast_points: int  # grid points after it (the horizon in bars)
    # Prophet's own forecast in USD (served with model=prophet) and its interval, at every grid point; stored as
    # float32 to 7 significant digits.
    yhat: tuple[float, ...]
    yhat_lower: tuple[float, ...]
    yhat_upper: tuple[float, ...]
    # The close of each history bar; None where the bar is missing (the first one is present).
    actual: tuple[float | None, ...]
    # The served distribution; None until training has computed it (a fit's grid is Prophet's part alone):
    # the gate refuses such a grid and the writer cannot write it.
    served: ServedGrid | None = None


class _View(Sequence[Any]):
    """A packed column seen value by value through `_see` (the column itself is not copied)."""

    __slots__ = ("_column",)

    def __init__(self, column: Sequence[float]) -> None:
        self._column = column

    @staticmethod
    def _see(v: float) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._see(v) for v in self._column[i]]
        return self._see(self._column[i])

    def __iter__(self) -> Iterator[Any]:
        return map(self._see, self._column)


class Closes(_View):
    """The actual closes of the history bars over a packed column, where NaN stands for a missing bar (None)."""

    __slots__ = ()

    @staticmethod
    def _see(v: float) -> float | None:
        return None if v != v else v  # NaN is the one value not equal to itself


class Float32Digits(_View):
    """A packed float32 column seen as the numbers it stands for: each value to 7 significant digits
    (float32 holds 7; the float64 it widens to would print digits nobody stored, 81928.8671875 for
    81928.87)."""

    __slots__ = ()

    @staticmethod
    def _see(v: float) -> float:
        return float(f"{v:.7g}")


@dataclass(frozen=True, slots=True)
class SymbolForecast:
    """One symbol's precomputed grid: history points first, then forecast points, `step` apart."""

    symbol: str  # 'BTC/USD'
    slug: str  # 'BTC-USD'
    timeframe: str
    step: timedelta
    start: datetime  # the first grid point (the first bar), aware UTC
    history_points: int
    # Prophet's own forecast, as fitted (served with model=prophet); views of the packed grid.
    yhat: Sequence[float]
    yhat_lower: Sequence[float]
    yhat_upper: Sequence[float]
    actual: Sequence[float | None]  # close of each history bar; None where a bar was missing
    # The served forecast: one column of prices per quantile level, ascending, at every grid point.
    levels: tuple[float, ...] = ()
    quantiles: tuple[Sequence[float], ...] = ()
    # The manifest's entry for this symbol (rows, data window, backtest...) and its grid's header (what
    # `grid_of` reads with the columns); None in a forecast made by hand, not read from an artifact.
    entry: PairEntry | None = None
    grid: GridHeader | None = None
    distribution: Distribution | None = None  # what `quantiles` are computed from, when read from an artifact

    @property
    def backtest(self) -> BacktestRecord | None:
        return self.entry.backtest if self.entry is not None else None

    @property
    def points(self) -> int:
        return len(self.yhat)

    @property
    def prophet_digits(self) -> int:
        """The significant digits Prophet's series are served to: float32's 7, or 10 where they are stored as
        float64 (schema 5, or values beyond float32's range)."""
        return 7 if isinstance(self.yhat, Float32Digits) else 10

    def level_index(self, level: float) -> int:
        """Index of a stored level; KeyError when it is not stored."""
        i = bisect.bisect_left(self.levels, level)
        if i == len(self.levels) or abs(self.levels[i] - level) > 1e-12:
            raise KeyError(level)
        return i

    @property
    def history_end(self) -> datetime:
        return self.start + (self.history_points - 1) * self.step

    @property
    def end(self) -> datetime:
        return self.start + (self.points - 1) * self.step


def _pack(values: Sequence[float], exact: bool = True) -> tuple[str, bytes]:
    """Values as packed little-endian floats: float32 when every one of them survives it (`exact`: unchanged;
    else finite where it was), else float64.

    Prices are stored to 8 significant digits and served as stored; a float32 holds about 7, so for
    them it is chosen only where it changes nothing (whole prices, for instance). Prophet's forecast
    is served to float32's 7 digits, so float32 unless a value lies beyond its range."""
    wide = array("d", values)
    packed = wide
    with contextlib.suppress(OverflowError):
        narrow = array("f", wide)
        if array("d", narrow).tobytes() == wide.tobytes() or (not exact and math.isfinite(sum(narrow))):
            packed = narrow
    if sys.byteorder == "big":
        packed.byteswap()
    return ("<f4" if packed.typecode == "f" else "<f8"), packed.tobytes()


def unpacked(data: bytes | mmap.mmap, dtype: str) -> Sequence[float]:
    """A packed file's values, without copying them where the machine is little-endian."""
    if sys.byteorder == "little":
        return memoryview(data).cast(DTYPES[dtype])
    values = array(DTYPES[dtype], bytes(data))
    values.byteswap()
    return values


def columns_of(grid: GridHeader, packed: Mapping[str, bytes]) -> dict[str, Sequence[float]]:
    """Each part's packed bytes seen as floats, in the dtype its header names."""
    files = {"series": grid.files.series, "served": grid.files.served}
    return {part: unpacked(data, files[part].dtype) for part, data in packed.items()}


def pack_grid(slug: str, grid: PairGrid) -> tuple[GridHeader, dict[str, bytes]]:
    """A pair's grid as its header (every field but the columns) and its two packed files by part: Prophet's
    series, and the served distribution's parameters, the closes first (its quantiles are not stored)."""
    try:
        served = grid.served
        if served is None:
            msg = "no served distribution"
            raise ValueError(msg)
        history, future = served.history_change, served.future_change
        columns = {
            # To 7 digits first: the float32 nearest them reads back as the same 7 digits, so a pair carried
            # from one artifact into the next keeps its bytes.
            "series": [float(f"{x:.7g}") for column in (grid.yhat, grid.yhat_lower, grid.yhat_upper) for x in column],
            "served": [
                *(math.nan if x is None else x for x in grid.actual),
                *served.sigma,
                *(history or ()),
                *(future or ()),
            ],
        }
        packed, files = {}, {}
        for part, values in columns.items():
            dtype, packed[part] = _pack(values, exact=part == "served")
            files[part] = GridFile(f"{slug}.{part}.bin", dtype, len(values))
        header = GridHeader(
            symbol=str(grid.symbol),
            timeframe=str(grid.timeframe),
            step_seconds=int(grid.step_seconds),
            scale=str(grid.scale),
            start=str(grid.start),
            history_points=int(grid.history_points),
            forecast_points=int(grid.forecast_points),
            points=len(grid.yhat),
            served=ServedHeader(
                levels=tuple(float(x) for x in served.levels),
                weights={str(k): float(v) for k, v in served.weights.items()},
                horizon_steps={str(k): int(v) for k, v in served.horizon_steps.items()},
                z_steps=tuple(int(h) for h in served.z_steps),
                z_rows=tuple(tuple(float(v) for v in row) for row in served.z_rows),
                history_change=history is not None,
                future_change=future is not None,
            ),
            files=GridFiles(**files),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        msg = f"{slug}: missing or malformed field ({exc!r})"
        raise ValueError(msg) from None
    return header, packed


def grid_of(fc: SymbolForecast) -> PairGrid:
    """The grid `write_artifact` takes, given back from a read forecast (the reader's inverse): a pair's grid
    is carried from one artifact into another without knowing the file format. Its columns are copied out
    of the mapped files (Prophet's to the 7 digits they are served to), so it outlives the artifact read."""
    g, d = fc.grid, fc.distribution
    if g is None or d is None:
        msg = f"{fc.slug}: a forecast made by hand has no grid header to write"
        raise ValueError(msg)
    return PairGrid(
        symbol=g.symbol,
        timeframe=g.timeframe,
        step_seconds=g.step_seconds,
        scale=g.scale,
        start=g.start,
        history_points=g.history_points,
        forecast_points=g.forecast_points,
        yhat=tuple(fc.yhat),
        yhat_lower=tuple(fc.yhat_lower),
        yhat_upper=tuple(fc.yhat_upper),
        actual=tuple(fc.actual),
        served=ServedGrid(
            levels=tuple(g.served.levels),
            weights=dict(g.served.weights),
            horizon_steps=dict(g.served.horizon_steps),
            sigma=tuple(d.sigma),
            history_change=None if d.history_change is None else tuple(d.history_change),
            future_change=None if d.future_change is None else tuple(d.future_change),
            z_steps=tuple(g.served.z_steps),
            z_rows=tuple(tuple(row) for row in g.served.z_rows),
            quantiles=tuple(tuple(column) for column in fc.quantiles),
        ),
    )


def forecast_of(
    slug: str,
    grid: GridHeader,
    parts: Mapping[str, Sequence[float]],
    entry: PairEntry,
    schema: int = SCHEMA_VERSION,
) -> SymbolForecast:
    """A symbol's forecast from its grid header and its two columns of floats, checked: lengths agree,
    Prophet's series finite, the closes positive, and the served distribution's parameters such that
    its quantiles are finite and ascending at every point (volatility positive, tables ascending).
    `schema` 5 lays the closes after Prophet's series instead of first in the served file."""
    try:
        start = parse_utc(grid.start)
    except ValueError as exc:
        msg = f"{slug}: missing or malformed field ({exc!r})"
        raise ValueError(msg) from None
    step = timedelta(seconds=grid.step_seconds)
    n, points, header = grid.history_points, grid.points, grid.served
    if step <= timedelta(0) or not 0 < n <= points or grid.forecast_points != points - n:
        msg = f"{slug}: inconsistent step, history_points or forecast_points"
        raise ValueError(msg)
    series, served = parts["series"], parts["served"]
    if schema == 5:
        series, closes = series[: 3 * points], series[3 * points :]
    else:
        closes, served = served[:n], served[n:]
    if len(series) != 3 * points or len(closes) != n:
        msg = f"{slug}: series lengths differ"
        raise ValueError(msg)
    # A sum is NaN or infinite when any term is (the C loop of sum(), not a Python one per value).
    if not math.isfinite(sum(series)):
        msg = f"{slug}: non-finite values in the forecast"
        raise ValueError(msg)
    prophet = [series[k * points : (k + 1) * points] for k in range(3)]
    if grid.files.series.dtype == "<f4":
        prophet = [Float32Digits(column) for column in prophet]
    yhat, yhat_lower, yhat_upper = prophet
    if not closes[0] > 0 or any(v <= 0 or v == math.inf for v in closes):  # NaN (a missing bar) passes
        msg = f"{slug}: the closes must be positive and finite, the first one present"
        raise ValueError(msg)
    dist = _distribution(slug, header, served, n, grid.forecast_points, closes)
    return SymbolForecast(
        symbol=grid.symbol,
        slug=slug,
        timeframe=grid.timeframe,
        step=step,
        start=start,
        history_points=n,
        yhat=yhat,
        yhat_lower=yhat_lower,
        yhat_upper=yhat_upper,
        actual=Closes(closes),
        levels=header.levels,
        quantiles=dist.columns(),
        entry=entry,
        grid=grid,
        distribution=dist,
    )


def _distribution(
    slug: str, header: ServedHeader, served: Sequence[float], n: int, forecast_points: int, closes: Sequence[float]
) -> Distribution:
    """The served distribution from the header and the packed columns, every parameter checked."""
    check_levels(slug, header.levels)
    size = n + (n if header.history_change else 0) + (forecast_points if header.future_change else 0)
    if len(served) != size:
        msg = f"{slug}: the served distribution's columns do not match its header and the grid"
        raise ValueError(msg)
    sigma = served[:n]
    history = served[n : 2 * n] if header.history_change else None
    future = served[len(served) - forecast_points :] if header.future_change else None
    if not (math.isfinite(sum(served)) and min(sigma) > 0):
        msg = f"{slug}: the served volatility must be positive and every change finite"
        raise ValueError(msg)
    by_steps = sorted(header.horizon_steps, key=lambda name: header.horizon_steps[name])
    steps = tuple(header.horizon_steps[name] for name in by_steps)
    weights = tuple(header.weights.get(name, math.nan) for name in by_steps)
    if (
        not steps
        or set(header.weights) != set(header.horizon_steps)
        or steps[0] < 1
        or any(a >= b for a, b in itertools.pairwise(steps))
        or not all(0 <= w <= 1 for w in weights)
    ):
        msg = f"{slug}: the served weights must be in [0, 1] at distinct horizons of at least one step"
        raise ValueError(msg)
    z_steps, z_rows = header.z_steps, header.z_rows
    if (
        not z_steps
        or len(z_rows) != len(z_steps)
        or z_steps[0] < 1
        or any(a >= b for a, b in itertools.pairwise(z_steps))
        or any(len(row) != len(header.levels) for row in z_rows)
    ):
        msg = f"{slug}: the served quantile tables do not match their leads and the levels"
        raise ValueError(msg)
    bad = next(
        (
            h
            for h, row in zip(z_steps, z_rows, strict=True)
            if not all(math.isfinite(v) for v in row) or any(a > b for a, b in itertools.pairwise(row))
        ),
        None,
    )
    if bad is not None:
        msg = f"{slug}: the served quantile table at {bad} step(s) is not finite and ascending"
        raise ValueError(msg)
    return Distribution(
        levels=header.levels,
        log_close=LogCloses(closes),
        sigma=sigma,
        history_change=history,
        future_change=future,
        forecast_points=forecast_points,
        horizon_steps=steps,
        weights=weights,
        z_steps=z_steps,
        z_rows=z_rows,
    )
