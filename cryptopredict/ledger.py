"""The track record: every forecast a production model published, and how it turned out (stdlib only).

Each training run publishes, per pair and scored horizon, the served forecast made at its data end
(the last close, the 23 quantiles at the target time). The ledger carries those entries from
artifact to artifact: a run reads the ledger of the artifact in production, scores every entry
whose target time is now inside its own data against the actual close, adds its own forecasts, and
writes the result into its artifact (`ledger.json`, checksummed with every other file). An artifact
that never reached production is never read again, so only forecasts that were served stay in it.

Bounded: an entry whose target is more than `RETENTION_DAYS` before the newest data end is
dropped, and at most `MAX_PER_SERIES` entries are kept per pair and horizon (the newest).
One entry per pair, horizon and origin: a retrain on the same data end keeps the first published.

Scores are derived from the entry and the actual close, never stored, so they cannot disagree
with what was published: error of the median, the last close's error from the same origin,
whether the 80% band (10% to 90% quantile) held the close, and the mean pinball loss over the
published quantiles on log prices (the backtest's quantile score).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptopredict.timeframes import format_utc, parse_utc

__all__ = [
    "LEDGER_VERSION",
    "MAX_PER_SERIES",
    "RETENTION_DAYS",
    "Entry",
    "Ledger",
    "parse_ledger",
    "summarize",
]

LEDGER_VERSION = 1
RETENTION_DAYS = 730
MAX_PER_SERIES = 1000


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        msg = f"{what} is not a time string"
        raise ValueError(msg)
    try:
        return parse_utc(value)
    except ValueError:
        msg = f"{what} {value[:40]!r} is not a UTC time like 2025-01-31T00:00:00Z"
        raise ValueError(msg) from None


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        msg = f"{what} must be a positive finite number"
        raise ValueError(msg)
    return float(value)


def _text(value: Any, what: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
        msg = f"{what} must be a short printable string"
        raise ValueError(msg)
    return value


@dataclass(frozen=True, slots=True)
class Entry:
    """One published forecast: a pair's served distribution for one target, made at one origin."""

    symbol: str  # 'BTC/USD'
    horizon: str  # '7d'
    origin: datetime  # the last bar the model saw
    target: datetime  # the bar forecast
    origin_close: float  # that last close: the naive forecast from the same origin
    quantiles: tuple[float, ...]  # at the ledger's levels, ascending
    generation: str  # the artifact that published it
    model_version: str
    actual: float | None = None  # the close at the target, once a later run has it
    scored_by: str | None = None  # the generation that scored it

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.symbol, self.horizon, self.origin)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "horizon": self.horizon,
            "origin": format_utc(self.origin),
            "target": format_utc(self.target),
            "origin_close": self.origin_close,
            "quantiles": list(self.quantiles),
            "generation": self.generation,
            "model_version": self.model_version,
            "actual": self.actual,
            "scored_by": self.scored_by,
        }


@dataclass(frozen=True, slots=True)
class Ledger:
    """Published forecasts with the quantile levels they are stated at; the constructor keeps the
    entries ordered (oldest origin first), so every ledger made from another is ordered too."""

    levels: tuple[float, ...]
    entries: tuple[Entry, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", _ordered(self.entries))

    @property
    def median_index(self) -> int:
        return self.levels.index(0.5)

    def band_indices(self) -> tuple[int, int]:
        """Where the 80% band's ends (the 10% and 90% quantiles) sit among the levels."""
        return self.levels.index(0.1), self.levels.index(0.9)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "levels": list(self.levels),
            "entries": [e.to_json() for e in self.entries],
        }

    def publish(self, new: Iterable[Entry]) -> Ledger:
        """Add forecasts just published; one already there for the same pair, horizon and origin stays."""
        have = {e.key for e in self.entries}
        added = [e for e in new if e.key not in have]
        for e in added:
            if len(e.quantiles) != len(self.levels):
                msg = f"{e.symbol} {e.horizon}: {len(e.quantiles)} quantiles for {len(self.levels)} levels"
                raise ValueError(msg)
        return replace(self, entries=(*self.entries, *added))

    def score(self, closes: Mapping[str, Sequence[tuple[datetime, float]]], generation: str) -> tuple[Ledger, int]:
        """Score every pending entry whose target is inside the data now known.

        `closes` maps a pair to its (bar time, close) pairs in time order. The actual is the close
        of the bar at the target time, or where that bar is missing, the last close before it.
        Returns the new ledger and how many entries were scored now.
        """
        scored = 0
        out = []
        for e in self.entries:
            bars = closes.get(e.symbol)
            if e.actual is None and bars and bars[-1][0] >= e.target:
                i = bisect.bisect_right(bars, e.target, key=lambda b: b[0]) - 1
                if i >= 0 and bars[i][0] > e.origin:
                    e = replace(e, actual=float(bars[i][1]), scored_by=generation)
                    scored += 1
            out.append(e)
        return replace(self, entries=tuple(out)), scored

    def bound(self, newest: datetime) -> Ledger:
        """Drop entries whose target is over RETENTION_DAYS before `newest`, then all but the newest
        MAX_PER_SERIES of each pair and horizon."""
        oldest = newest - timedelta(days=RETENTION_DAYS)
        kept = [e for e in self.entries if e.target >= oldest]
        per: dict[tuple[str, str], list[Entry]] = {}
        for e in kept:
            per.setdefault((e.symbol, e.horizon), []).append(e)
        # Each series is in origin order already: the ledger's entries are.
        kept = [e for series in per.values() for e in series[-MAX_PER_SERIES:]]
        return replace(self, entries=tuple(kept))

    def series(self, symbol: str) -> dict[str, list[Entry]]:
        """A pair's entries by horizon, horizons in order of length, entries oldest first."""
        out: dict[str, list[Entry]] = {}
        for e in sorted((e for e in self.entries if e.symbol == symbol), key=lambda e: (e.target - e.origin, e.origin)):
            out.setdefault(e.horizon, []).append(e)
        return out

    @property
    def symbols(self) -> list[str]:
        return sorted({e.symbol for e in self.entries})

    def scores(self, e: Entry) -> dict[str, Any] | None:
        """An entry's scores, or None while its target is still ahead."""
        if e.actual is None:
            return None
        median = e.quantiles[self.median_index]
        lo, hi = self.band_indices()
        log_actual = math.log(e.actual)
        pinball = sum(
            max(p * d, (p - 1) * d)
            for p, d in ((p, log_actual - math.log(q)) for p, q in zip(self.levels, e.quantiles, strict=True))
        ) / len(self.levels)
        return {
            "error": median - e.actual,
            "abs_pct_error": abs(median - e.actual) / e.actual,
            "naive_abs_pct_error": abs(e.origin_close - e.actual) / e.actual,
            "in_80": e.quantiles[lo] <= e.actual <= e.quantiles[hi],
            "pinball": pinball,
        }


def _ordered(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(sorted(entries, key=lambda e: (e.origin, e.symbol, e.target)))


def summarize(ledger: Ledger, entries: Sequence[Entry]) -> dict[str, Any]:
    """One pair and horizon's record: how many published, scored, pending, and how the scored did."""
    scored = [s for s in (ledger.scores(e) for e in entries) if s is not None]
    n = len(scored)
    out: dict[str, Any] = {
        "published": len(entries),
        "scored": n,
        "pending": len(entries) - n,
        "mape": None,
        "naive_mape": None,
        "mape_ratio": None,
        "coverage_80": None,
        "pinball": None,
    }
    if n == 0:
        out["summary"] = f"{len(entries)} published, none scored yet: their target times are still ahead"
        return out
    mape = sum(s["abs_pct_error"] for s in scored) / n
    naive = sum(s["naive_abs_pct_error"] for s in scored) / n
    held = sum(1 for s in scored if s["in_80"])
    ratio = mape / naive if naive > 0 else None
    out.update(
        mape=mape,
        naive_mape=naive,
        mape_ratio=ratio,
        coverage_80=held / n,
        pinball=sum(s["pinball"] for s in scored) / n,
    )
    shown = "" if ratio is None else f" (x{ratio:.2f})"
    out["summary"] = (
        f"{n} of {len(entries)} published forecasts scored: MAPE {mape:.2%} against the last close's "
        f"{naive:.2%}{shown}; the 80% band held {held} of {n}"
    )
    return out


def parse_ledger(obj: Any) -> Ledger:
    """A ledger from its JSON form; ValueError naming the first thing wrong."""
    if not isinstance(obj, dict):
        msg = "the ledger is not a JSON object"
        raise ValueError(msg)
    if obj.get("version") != LEDGER_VERSION:
        msg = f"unknown ledger version {obj.get('version')!r} (this code reads {LEDGER_VERSION})"
        raise ValueError(msg)
    raw_levels = obj.get("levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        msg = "'levels' must be a non-empty list"
        raise ValueError(msg)
    levels = tuple(_positive(x, "a level") for x in raw_levels)
    if any(not 0 < p < 1 for p in levels) or any(a >= b for a, b in itertools.pairwise(levels)):
        msg = "'levels' must rise strictly inside (0, 1)"
        raise ValueError(msg)
    if not {0.1, 0.5, 0.9} <= set(levels):
        msg = "'levels' must include 0.1, 0.5 and 0.9"
        raise ValueError(msg)
    raw_entries = obj.get("entries")
    if not isinstance(raw_entries, list):
        msg = "'entries' must be a list"
        raise ValueError(msg)
    entries = []
    seen = set()
    for i, raw in enumerate(raw_entries):
        try:
            e = _parse_entry(raw, len(levels))
        except ValueError as exc:
            msg = f"entry {i}: {exc}"
            raise ValueError(msg) from None
        if e.key in seen:
            msg = f"entry {i}: a second entry for {e.symbol} {e.horizon} from {format_utc(e.origin)}"
            raise ValueError(msg)
        seen.add(e.key)
        entries.append(e)
    return Ledger(levels=levels, entries=tuple(entries))


def _parse_entry(raw: Any, n_levels: int) -> Entry:
    if not isinstance(raw, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    origin, target = _time(raw.get("origin"), "origin"), _time(raw.get("target"), "target")
    if target <= origin:
        msg = "target is not after origin"
        raise ValueError(msg)
    quantiles = raw.get("quantiles")
    if not isinstance(quantiles, list) or len(quantiles) != n_levels:
        msg = f"'quantiles' must list {n_levels} prices"
        raise ValueError(msg)
    qs = tuple(_positive(q, "a quantile") for q in quantiles)
    if any(a > b for a, b in itertools.pairwise(qs)):
        msg = "quantiles cross"
        raise ValueError(msg)
    actual = None if raw.get("actual") is None else _positive(raw["actual"], "'actual'")
    scored_by = _text(raw.get("scored_by"), "'scored_by'", optional=True)
    if (actual is None) != (scored_by is None):
        msg = "'actual' and 'scored_by' must be given together"
        raise ValueError(msg)
    return Entry(
        symbol=str(_text(raw.get("symbol"), "'symbol'")),
        horizon=str(_text(raw.get("horizon"), "'horizon'")),
        origin=origin,
        target=target,
        origin_close=_positive(raw.get("origin_close"), "'origin_close'"),
        quantiles=qs,
        generation=str(_text(raw.get("generation"), "'generation'")),
        model_version=str(_text(raw.get("model_version"), "'model_version'")),
        actual=actual,
        scored_by=scored_by,
    )
