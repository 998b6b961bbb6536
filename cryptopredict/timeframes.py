"""Timeframes, symbol spellings and the one time format, shared by both halves (standard library only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "TIMEFRAMES",
    "Horizon",
    "Timeframe",
    "format_utc",
    "get_timeframe",
    "parse_utc",
    "slug_to_symbol",
    "symbol_to_slug",
]


def format_utc(t: datetime) -> str:
    """An aware datetime as 'YYYY-MM-DDTHH:MM:SSZ' (the artifact's and the ledger's one time format)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(s: str) -> datetime:
    """Inverse of `format_utc`; ValueError for anything else."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Horizon:
    """A forecast distance, named for people ("7d") and counted in bars."""

    name: str
    steps: int


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar size and every fact that depends on it, in one place.

    Bars of every timeframe run round the clock on a fixed grid: multiples of `seconds` since the
    Unix epoch (crypto trades all day, every day), which validation checks and gaps are counted on.
    """

    name: str  # Alpaca's name, and the CLI's
    seconds: int
    file_suffix: str  # in CSV file names: BTC-USD.<file_suffix>.csv
    default_horizon_days: int
    # Alpaca's TimeFrameUnit member name (a plain string: this module imports no SDK).
    alpaca_unit: str
    # The distances the backtest scores and the served forecast is weighted at.
    horizons: tuple[Horizon, ...]
    # Backtest defaults (BacktestConfig.for_timeframe): days between cutoffs, the fewest bars a
    # refit may see, and the trailing window of bars each refit sees.
    backtest_spacing_days: int
    backtest_min_train_rows: int
    backtest_window: int

    def horizon_steps(self, days: int) -> int:
        """Bars in a horizon of `days` days (whole bars, rounded down)."""
        return days * 86400 // self.seconds

    @property
    def grid_words(self) -> str:
        """Where bars of this timeframe sit, in words, for error messages."""
        if self.seconds % 86400 == 0:
            return "at 00:00:00 UTC"
        if self.seconds == 3600:
            return "on the hour (:00:00) UTC"
        return f"at multiples of {self.seconds}s since 1970-01-01T00:00:00Z"


TIMEFRAMES: dict[str, Timeframe] = {
    "1Day": Timeframe(
        "1Day",
        86400,
        "daily",
        365,
        alpaca_unit="Day",
        horizons=(Horizon("1d", 1), Horizon("7d", 7), Horizon("30d", 30), Horizon("90d", 90), Horizon("180d", 180)),
        backtest_spacing_days=15,
        backtest_min_train_rows=365,
        backtest_window=4 * 365 + 1,
    ),
    "1Hour": Timeframe(
        "1Hour",
        3600,
        "hourly",
        90,
        alpaca_unit="Hour",
        horizons=(Horizon("1h", 1), Horizon("24h", 24), Horizon("168h", 168), Horizon("720h", 720)),
        backtest_spacing_days=7,
        backtest_min_train_rows=60 * 24,
        backtest_window=90 * 24,
    ),
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
