"""Read market bars from CSV files named like `BTC-USD.daily.csv` (the bundled sample's format)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cryptopredict.errors import DataSourceError
from cryptopredict.timeframes import Timeframe, slug_to_symbol, symbol_to_slug
from cryptopredict.training.sources.base import BarRequest, Unreadable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CsvSource", "csv_path", "read_bars"]


@dataclass(frozen=True, slots=True)
class CsvSource:
    """Bars from a folder of `<BTC-USD>.<daily|hourly>.csv` files, read whole unless --start says otherwise."""

    name: ClassVar[str] = "csv"
    default_start: ClassVar[str | None] = None

    dir: str = "data"

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        """--csv-dir."""
        default = cls().dir
        group.add_argument(
            "--csv-dir", default=default, help=f"folder of <BTC-USD>.<daily|hourly>.csv files (default: {default})"
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CsvSource:
        """The folder given by --csv-dir."""
        return cls(dir=args.csv_dir)

    def describe(self) -> str:
        """The folder, then the source's name."""
        return f"{self.dir} ({self.name})"

    def list_symbols(self, timeframe: Timeframe) -> tuple[str, ...]:
        """Every pair with a file for the timeframe (`BTC-USD.hourly.csv` for 1Hour), sorted."""
        suffix = f".{timeframe.file_suffix}.csv"
        folder = Path(self.dir)
        if not folder.is_dir():
            msg = f"no folder {self.dir} to list pairs from"
            raise DataSourceError(msg)
        symbols = []
        for path in sorted(folder.glob(f"*{suffix}")):
            try:
                symbols.append(slug_to_symbol(path.name[: -len(suffix)]))
            except ValueError:
                continue  # not a pair's file (e.g. notes.hourly.csv)
        if not symbols:
            msg = f"no <PAIR>{suffix} files in {self.dir} ({timeframe.name} bars)"
            raise DataSourceError(msg)
        return tuple(symbols)

    def load(self, request: BarRequest, timeframe: Timeframe) -> dict[str, pd.DataFrame | Unreadable]:
        """Every row of each symbol's file (validation applies --start and --end)."""
        return read_bars(self.dir, request.symbols, timeframe, skip_invalid=request.skip_invalid)


def csv_path(csv_dir: str | Path, symbol: str, timeframe: Timeframe) -> Path:
    """Where the bars of `symbol` at `timeframe` live: `<dir>/BTC-USD.daily.csv`."""
    return Path(csv_dir) / f"{symbol_to_slug(symbol)}.{timeframe.file_suffix}.csv"


def read_bars(
    csv_dir: str | Path, symbols: Sequence[str], timeframe: Timeframe, *, skip_invalid: bool = False
) -> dict[str, pd.DataFrame | Unreadable]:
    """Read each symbol's file as strings, untouched: validation parses and checks every value.

    A missing or unreadable file raises; with `skip_invalid` a missing file is a pair without bars
    (left out of the result) and an unreadable one is `Unreadable`, and the other files are still read.
    """
    import pandas as pd

    out: dict[str, pd.DataFrame | Unreadable] = {}
    for symbol in symbols:
        path = csv_path(csv_dir, symbol, timeframe)
        try:
            out[symbol] = pd.read_csv(path, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            if skip_invalid:
                continue
            present = sorted(p.name for p in Path(csv_dir).glob("*.csv")) if Path(csv_dir).is_dir() else []
            msg = f"{symbol}: no file {path}" + (
                f" (found: {', '.join(present)})" if present else f" ({csv_dir} has no CSV files)"
            )
            raise DataSourceError(msg) from None
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            why = f"cannot read {path}: {str(exc).strip().splitlines()[0]}"
            if skip_invalid:
                out[symbol] = Unreadable(why)
                continue
            msg = f"{symbol}: {why}"
            raise DataSourceError(msg) from None
    return out
