"""Pure checks run on market bars before any fit: columns, timestamps, grid, prices, gaps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict.errors import DataValidationError
from cryptopredict.timeframes import Timeframe
from cryptopredict.training.config import ValidationConfig

__all__ = ["Gap", "ValidatedBars", "ValidationReport", "validate_bars"]

# The columns of `ValidatedBars.frame`, in order, whatever the input called them.
_OUT_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# low <= open/close <= high may be off by this much, relative to `high`, before it counts
# (float noise from upstream aggregation, never a real violation).
_OHLC_RTOL = 1e-9
# A timestamp string must start with an ISO 8601 extended calendar date (YYYY-MM-DD).
_ISO_DATE_RE = r"\d{4}-\d{2}-\d{2}(?:$|[T ])"
# The frame's timestamps are datetime64[ns, UTC]; anything outside that range is refused.
_TS_MIN = pd.Timestamp.min.tz_localize("UTC")
_TS_MAX = pd.Timestamp.max.tz_localize("UTC")
# ValidationConfig is frozen, so one shared default instance is safe.
_DEFAULT_CONFIG = ValidationConfig()


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of missing bars: `start` is the last bar before it, `end` the first bar after."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ISO 8601 UTC strings and an int."""
        return {"start": _iso(self.start), "end": _iso(self.end), "missing": self.missing}


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What validation found in bars that passed: span, short gaps, halts, warning lines."""

    symbol: str
    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    gaps: tuple[Gap, ...]
    zero_volume_rows: int
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ISO strings "YYYY-MM-DDTHH:MM:SSZ", ints and lists."""
        return {
            "symbol": self.symbol,
            "rows": self.rows,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "gaps": [gap.to_dict() for gap in self.gaps],
            "zero_volume_rows": self.zero_volume_rows,
            "warnings": list(self.warnings),
        }


# eq=False: a DataFrame has no truth value, so field-wise == and hash would raise.
@dataclass(frozen=True, slots=True, eq=False)
class ValidatedBars:
    """Bars that passed every check, in canonical form, with the report on them."""

    frame: pd.DataFrame
    report: ValidationReport


def validate_bars(
    raw: pd.DataFrame,
    symbol: str,
    timeframe: Timeframe,
    config: ValidationConfig = _DEFAULT_CONFIG,
    *,
    timestamp_col: str = "timestamp",
    price_cols: tuple[str, str, str, str] = ("open", "high", "low", "close"),
    volume_col: str = "volume",
) -> ValidatedBars:
    """Check market bars before a fit and return them in canonical form, or raise.

    `raw` may hold strings (a CSV read with ``dtype=str``) or typed values (tz-aware datetimes
    and floats from the Alpaca SDK); extra columns are ignored. `price_cols` names the open,
    high, low and close columns, in that order.

    Timestamps must be ISO 8601 text starting with a YYYY-MM-DD date (or datetime values);
    naive ones are taken as UTC, ones with an offset are converted to UTC.

    The checks run in this order; the first that fails raises
    ``DataValidationError(symbol, check, detail, rows)`` with `check` one of:

    ``columns``     a required column is missing (or appears twice);
    ``timestamps``  a timestamp is missing, unparseable or outside 1677..2262;
    ``duplicates``  a timestamp appears more than once (checked before order, so a repeated
                    bar is called a duplicate, not a step backwards);
    ``order``       timestamps go backwards (they must be strictly increasing);
    ``grid``        a bar is off the timeframe's grid (multiples of `timeframe.seconds` since
                    the Unix epoch: 00:00:00 UTC for daily bars, :00:00 for hourly ones);
    ``prices``      a price is not a finite number > 0, or volume not a finite number >= 0;
    ``ohlc``        not low <= open <= high and low <= close <= high, with a relative
                    tolerance of 1e-9 of `high` for float noise;
    ``rows``        fewer than `config.min_rows` rows (an empty frame always fails);
    ``gaps``        a run of missing bars lasts longer than `config.max_gap`.

    `rows` quotes up to `config.example_rows` offending rows as ``"row N (stamp): detail"``,
    where N is the 0-based position in `raw` (for a CSV with a header, file line N + 2).

    Gaps no longer than `config.max_gap` and zero-volume bars (exchange halts) are kept:
    they are listed in the report, with one warning line per kind.

    The returned frame has exactly the columns timestamp (datetime64[ns, UTC]), open, high,
    low, close, volume (float64), a default RangeIndex, and the input's row order.
    """
    if len(price_cols) != 4:
        msg = f"price_cols must name open, high, low and close; got {price_cols!r}"
        raise ValueError(msg)
    source_cols = (timestamp_col, *price_cols, volume_col)
    limit = max(config.example_rows, 0)

    _check_columns(raw, symbol, source_cols, timestamp_col)
    ts = _parse_timestamps(raw[timestamp_col], symbol, timestamp_col, limit)
    ns = ts.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64")
    _check_duplicates(ns, ts, symbol, timeframe, limit)
    _check_order(ns, ts, symbol, timeframe, limit)
    _check_grid(ts, symbol, timeframe, limit)
    values = _parse_numbers(raw, ts, symbol, timeframe, source_cols[1:], limit)
    _check_ohlc(values, ts, symbol, timeframe, limit)

    rows = len(ts)
    needed = max(config.min_rows, 1)
    if rows < needed:
        msg = f"{rows} rows; expected at least {needed}"
        raise DataValidationError(symbol, "rows", msg)

    gaps = _find_gaps(ns, ts, symbol, timeframe, config, limit)
    zero_volume = np.flatnonzero(values[:, 4] == 0)

    warnings: list[str] = []
    if gaps:
        warnings.append(_gap_warning(gaps, timeframe, limit))
    if zero_volume.size:
        stamps = [_stamp(ts.iloc[i], timeframe) for i in zero_volume[:limit]]
        warnings.append(
            f"{zero_volume.size} zero-volume bars (exchange halts?) kept{_listing(stamps, zero_volume.size)}"
        )

    frame = pd.DataFrame({"timestamp": ts})
    for j, name in enumerate(_OUT_COLUMNS[1:]):
        frame[name] = values[:, j]
    report = ValidationReport(
        symbol=symbol,
        rows=rows,
        start=ts.iloc[0],
        end=ts.iloc[-1],
        gaps=tuple(gaps),
        zero_volume_rows=int(zero_volume.size),
        warnings=tuple(warnings),
    )
    return ValidatedBars(frame=frame, report=report)


def _check_columns(raw: pd.DataFrame, symbol: str, required: tuple[str, ...], timestamp_col: str) -> None:
    """Raise "columns" unless every required column is present exactly once."""
    if not isinstance(raw, pd.DataFrame):
        msg = f"expected a pandas DataFrame of bars, got {type(raw).__name__}"
        raise TypeError(msg)
    arrived = list(raw.columns)
    missing = [c for c in required if c not in raw.columns]
    if missing:
        msg = f"The following columns are missing: {missing}; the frame has {arrived}"
        if timestamp_col in missing and timestamp_col in (raw.index.names or []):
            msg += f" ({timestamp_col!r} is in the index; reset_index() first)"
        raise DataValidationError(symbol, "columns", msg)
    doubled = [c for c in dict.fromkeys(required) if arrived.count(c) > 1]
    if doubled:
        msg = f"The following columns appear more than once: {doubled}; the frame has {arrived}"
        raise DataValidationError(symbol, "columns", msg)


def _parse_timestamps(col: pd.Series, symbol: str, name: str, limit: int) -> pd.Series:
    """Parse timestamps to datetime64[ns, UTC] with a RangeIndex, or raise "timestamps"."""
    col = col.reset_index(drop=True)
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
        parsed = pd.to_datetime(col, utc=True)
    else:
        # Text and datetime objects alike go through their string form; numbers never
        # match the date pattern, so they are never taken for epochs.
        text = col.astype("string").str.strip()
        shaped = text.str.match(_ISO_DATE_RE).fillna(False).astype(bool)
        # Stamps with an offset (Z, +hh:mm, -hh) and naive ones are parsed apart: pandas 2.x
        # lets a naive stamp inherit the offset of an earlier one in the same call.
        aware = shaped & text.str.slice(10).str.contains(r"[Z+-]", regex=True).fillna(False).astype(bool)
        parts = [
            pd.to_datetime(text[mask], format="ISO8601", utc=True, errors="coerce")
            for mask in (aware, shaped & ~aware)
            if mask.any()
        ]
        if parts:
            parsed = pd.concat(parts).reindex(text.index)
        else:
            parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    bad = (parsed.isna() | (parsed < _TS_MIN) | (parsed > _TS_MAX)).to_numpy()
    if bad.any():
        where = np.flatnonzero(bad)
        examples = [f"row {i}: {name}={_fmt_value(col.iloc[i])}" for i in where[:limit]]
        msg = (
            f"{where.size} timestamp(s) are missing or not ISO 8601 dates/datetimes in "
            "1677..2262; expected e.g. '2024-01-03' or '2024-01-03T05:00:00Z'"
        )
        raise DataValidationError(symbol, "timestamps", msg, examples)
    return parsed.dt.as_unit("ns")


def _check_duplicates(ns: np.ndarray, ts: pd.Series, symbol: str, timeframe: Timeframe, limit: int) -> None:
    """Raise "duplicates" if any timestamp appears twice, naming each repeat's first row."""
    keys = pd.Series(ns)
    repeated = keys.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return
    where = np.flatnonzero(repeated)
    first = pd.Series(np.arange(ns.size)).groupby(ns).transform("first").to_numpy()
    examples = [f"row {i} ({_stamp(ts.iloc[i], timeframe)}): duplicate of row {first[i]}" for i in where[:limit]]
    msg = f"{where.size} duplicate timestamp(s); expected each bar once"
    raise DataValidationError(symbol, "duplicates", msg, examples)


def _check_order(ns: np.ndarray, ts: pd.Series, symbol: str, timeframe: Timeframe, limit: int) -> None:
    """Raise "order" where a timestamp is earlier than the one before it."""
    back = np.flatnonzero(ns[1:] < ns[:-1]) + 1
    if not back.size:
        return
    examples = [
        f"row {i} ({_stamp(ts.iloc[i], timeframe)}): earlier than row {i - 1} ({_stamp(ts.iloc[i - 1], timeframe)})"
        for i in back[:limit]
    ]
    msg = f"timestamps go backwards {back.size} time(s); expected strictly increasing"
    raise DataValidationError(symbol, "order", msg, examples)


def _check_grid(ts: pd.Series, symbol: str, timeframe: Timeframe, limit: int) -> None:
    """Raise "grid" for bars that are not on a multiple of the timeframe's step."""
    floor = ts.dt.floor(pd.Timedelta(seconds=timeframe.seconds))
    off = (ts != floor).to_numpy()
    if not off.any():
        return
    where = np.flatnonzero(off)
    examples = [
        f"row {i} ({_stamp(ts.iloc[i], timeframe)}): {_clock(ts.iloc[i] - floor.iloc[i])} past the grid"
        for i in where[:limit]
    ]
    msg = f"{where.size} bar(s) are off the {timeframe.name} grid; expected bars {timeframe.grid_words}"
    raise DataValidationError(symbol, "grid", msg, examples)


def _parse_numbers(
    raw: pd.DataFrame,
    ts: pd.Series,
    symbol: str,
    timeframe: Timeframe,
    cols: tuple[str, ...],
    limit: int,
) -> np.ndarray:
    """Return open/high/low/close/volume as an (n, 5) float array, or raise "prices"."""
    values = np.empty((len(ts), len(cols)), dtype="float64")
    for j, name in enumerate(cols):
        values[:, j] = _to_floats(raw[name])
    ok = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        ok[:, :4] &= values[:, :4] > 0
        ok[:, 4] &= values[:, 4] >= 0
    bad_rows = np.flatnonzero(~ok.all(axis=1))
    if not bad_rows.size:
        return values
    examples = []
    for i in bad_rows[:limit]:
        fields = ", ".join(f"{name}={_fmt_value(raw[name].iloc[i])}" for j, name in enumerate(cols) if not ok[i, j])
        examples.append(f"row {i} ({_stamp(ts.iloc[i], timeframe)}): {fields}")
    msg = (
        f"{bad_rows.size} row(s) have a price that is not a finite number > 0 "
        "or a volume that is not a finite number >= 0"
    )
    raise DataValidationError(symbol, "prices", msg, examples)


def _to_floats(col: pd.Series) -> np.ndarray:
    """Column -> float64 array, NaN where a value is not a number; text parses exactly."""
    if pd.api.types.is_bool_dtype(col):
        return np.full(len(col), np.nan)  # True is not a price
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype="float64", na_value=np.nan)
    cells = col.to_numpy(dtype=object)
    try:
        # float() on each cell: correctly rounded, unlike pd.to_numeric's fast text parser
        # (pandas 2.x), which can be one ulp off the value written in the file.
        return cells.astype("float64")
    except (TypeError, ValueError):
        return np.array([_float_or_nan(v) for v in cells], dtype="float64")


def _float_or_nan(value: object) -> float:
    """float(value), or NaN when it is not a number (None, pd.NA, 'abc', a bool)."""
    if isinstance(value, (bool, np.bool_)):
        return np.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def _check_ohlc(values: np.ndarray, ts: pd.Series, symbol: str, timeframe: Timeframe, limit: int) -> None:
    """Raise "ohlc" unless low <= open <= high and low <= close <= high (within tolerance)."""
    o, h, lo, c = values[:, 0], values[:, 1], values[:, 2], values[:, 3]
    tol = _OHLC_RTOL * h
    bad = (lo > np.minimum(o, c) + tol) | (h < np.maximum(o, c) - tol)
    if not bad.any():
        return
    where = np.flatnonzero(bad)
    examples = [
        f"row {i} ({_stamp(ts.iloc[i], timeframe)}): open={float(o[i])!r} "
        f"high={float(h[i])!r} low={float(lo[i])!r} close={float(c[i])!r}"
        for i in where[:limit]
    ]
    msg = f"{where.size} row(s) break low <= open <= high and low <= close <= high (relative tolerance {_OHLC_RTOL:g})"
    raise DataValidationError(symbol, "ohlc", msg, examples)


def _find_gaps(
    ns: np.ndarray,
    ts: pd.Series,
    symbol: str,
    timeframe: Timeframe,
    config: ValidationConfig,
    limit: int,
) -> list[Gap]:
    """Return every run of missing grid steps; raise "gaps" if one outlasts `max_gap`."""
    step_ns = timeframe.seconds * 1_000_000_000
    missing = np.diff(ns) // step_ns - 1
    after = np.flatnonzero(missing > 0) + 1  # the first row after each gap
    if not after.size:
        return []
    counts = missing[after - 1]
    max_gap_ns = pd.Timedelta(config.max_gap).value
    fatal = np.flatnonzero(counts > max_gap_ns // step_ns)  # counts * step > max_gap, no overflow
    if fatal.size:
        examples = [
            f"row {after[k]} ({_stamp(ts.iloc[after[k]], timeframe)}): "
            f"{counts[k]} bars missing after {_stamp(ts.iloc[after[k] - 1], timeframe)}"
            for k in fatal[:limit]
        ]
        longest = int(counts.max())
        msg = (
            f"{fatal.size} gap(s) longer than the allowed {_duration(max_gap_ns)} "
            f"({max_gap_ns // step_ns} {timeframe.name} bars); the longest is {longest} "
            f"missing bars ({_duration(longest * step_ns)})"
        )
        raise DataValidationError(symbol, "gaps", msg, examples)
    return [Gap(start=ts.iloc[i - 1], end=ts.iloc[i], missing=int(n)) for i, n in zip(after, counts, strict=True)]


def _gap_warning(gaps: list[Gap], timeframe: Timeframe, limit: int) -> str:
    """One warning line for the gaps short enough to fit across."""
    step = pd.Timedelta(seconds=timeframe.seconds)
    total = sum(g.missing for g in gaps)
    spans = []
    for g in gaps[:limit]:
        first, last = _stamp(g.start + step, timeframe), _stamp(g.end - step, timeframe)
        span = first if g.missing == 1 else f"{first}..{last}"
        spans.append(f"{span} ({g.missing} bar{'s' if g.missing != 1 else ''})")
    head = f"{len(gaps)} short gap(s), {total} bar(s) missing in all, kept (the fit spans them)"
    return head + _listing(spans, len(gaps))


def _listing(shown: list[str], total: int) -> str:
    """ ": a, b, ..." for a warning line: the items shown, and an ellipsis if there are more."""
    if not shown:
        return ""
    more = ", ..." if total > len(shown) else ""
    return f": {', '.join(shown)}{more}"


def _stamp(ts: pd.Timestamp, timeframe: Timeframe) -> str:
    """Short UTC form for messages: a date for midnight daily bars, else a full ISO stamp."""
    if timeframe.seconds % 86400 == 0 and ts == ts.normalize():
        return ts.strftime("%Y-%m-%d")
    if ts.microsecond or ts.nanosecond:
        return ts.tz_convert("UTC").isoformat().replace("+00:00", "Z")
    return _iso(ts)


def _iso(ts: pd.Timestamp) -> str:
    """ISO 8601 UTC to the second: "YYYY-MM-DDTHH:MM:SSZ"."""
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(delta: pd.Timedelta) -> str:
    """A sub-day offset as HH:MM:SS (with a fraction only when there is one)."""
    seconds, frac_ns = divmod(delta.value, 1_000_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}.{frac_ns:09d}".rstrip("0") if frac_ns else text


def _duration(ns: int) -> str:
    """A span as words: "7 days", "12 days 12 hours", "30 minutes"."""
    seconds = int(ns) // 1_000_000_000
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def _fmt_value(value: object) -> str:
    """Quote a raw cell as it arrived: strings in quotes, numbers bare, missing as nan/None."""
    if isinstance(value, str):
        return repr(str(value))  # str(): numpy 2 spells a np.str_ repr as "np.str_('...')"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float)):
        return repr(value)
    return str(value)
