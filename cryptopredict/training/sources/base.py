"""What a bar source is: a name, its command-line options, a log description and a `load`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from cryptopredict.errors import DataSourceError

if TYPE_CHECKING:
    import pandas as pd

    from cryptopredict.timeframes import Timeframe

__all__ = ["BarRequest", "BarSource", "Unreadable", "utc_timestamp"]


@dataclass(frozen=True, slots=True)
class BarRequest:
    """What a source is asked for: which pairs, from when to when, and whether a pair may be missing."""

    symbols: tuple[str, ...]
    start: str | None = None  # the first bar (--start, else the source's default); None: all it has
    end: str | None = None  # the end, exclusive; None: up to now
    # --skip-invalid: a source leaves out a pair it has no bars for and gives `Unreadable` for bars it
    # could not read, instead of raising (the run reports both as failed pairs).
    skip_invalid: bool = False


@dataclass(frozen=True, slots=True)
class Unreadable:
    """What a source returns in place of a pair's bars it could not read (only with `skip_invalid`): why."""

    reason: str


class BarSource(Protocol):
    """A source of raw market bars; an instance holds its own settings (a frozen dataclass).

    Modules defining sources import pandas and SDKs inside `load`, so `train.py --help` stays light.
    """

    name: ClassVar[str]  # the value of train.py --source
    # The first bar fetched when --start is not given; None: everything the source has.
    default_start: ClassVar[str | None]

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        """Add this source's own flags to the train.py parser (in a group named after it)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BarSource:
        """The source configured from parsed train.py arguments."""

    def describe(self) -> str:
        """Where bars come from, for the log line: 'data (csv)'."""

    def list_symbols(self, timeframe: Timeframe) -> tuple[str, ...]:
        """Every pair this source can give bars of at `timeframe` (for --symbols all), sorted."""

    def load(self, request: BarRequest, timeframe: Timeframe) -> dict[str, pd.DataFrame | Unreadable]:
        """Raw bars of `request.symbols` from `request.start` to `request.end` (validation checks them).

        With `request.skip_invalid` a source leaves out a symbol it has no bars for, and gives `Unreadable`
        for one whose bars it could not read, instead of raising (the run reports both as failed pairs).
        """


def utc_timestamp(value: str | None) -> pd.Timestamp | None:
    """An ISO date or datetime as a UTC timestamp (naive taken as UTC); None stays None."""
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        msg = f"cannot parse {value!r} as a date or datetime"
        raise DataSourceError(msg) from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
