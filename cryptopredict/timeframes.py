"""Timeframes, symbol spellings and the one time format, shared by both halves (standard library only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["TIMEFRAMES", "Timeframe", "format_utc", "get_timeframe", "parse_utc", "slug_to_symbol", "symbol_to_slug"]


def format_utc(t: datetime) -> str:
    """An aware datetime as 'YYYY-MM-DDTHH:MM:SSZ' (the artifact's and the ledger's one time format)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(s: str) -> datetime:
    """Inverse of `format_utc`; ValueError for anything else."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar size: its Alpaca name, its step in seconds, its CSV suffix and default horizon."""

    name: str
    seconds: int
    file_suffix: str
    default_horizon_days: int

    @property
    def default_horizon_steps(self) -> int:
        return self.default_horizon_days * 86400 // self.seconds


TIMEFRAMES: dict[str, Timeframe] = {
    "1Day": Timeframe("1Day", 86400, "daily", 365),
    "1Hour": Timeframe("1Hour", 3600, "hourly", 90),
}

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,12}/[A-Z]{2,6}$")
_SLUG_RE = re.compile(r"^[A-Z0-9]{1,12}-[A-Z]{2,6}$")


def get_timeframe(name: str) -> Timeframe:
    """Return the timeframe called `name`, or raise ValueError naming the valid ones."""
    try:
        return TIMEFRAMES[name]
    except KeyError:
        msg = f"unknown timeframe {name!r}; expected one of {', '.join(TIMEFRAMES)}"
        raise ValueError(msg) from None


def symbol_to_slug(symbol: str) -> str:
    """'BTC/USD' -> 'BTC-USD' (the spelling used in URLs and file names)."""
    sym = symbol.strip().upper()
    if not _SYMBOL_RE.match(sym):
        msg = f"invalid symbol {symbol!r}; expected a pair like 'BTC/USD'"
        raise ValueError(msg)
    return sym.replace("/", "-")


def slug_to_symbol(slug: str) -> str:
    """'BTC-USD' -> 'BTC/USD'; raises ValueError for anything that is not a pair."""
    s = slug.strip().upper()
    if not _SLUG_RE.match(s):
        msg = f"invalid symbol {slug!r}; expected a pair like 'BTC-USD'"
        raise ValueError(msg)
    return s.replace("-", "/")
