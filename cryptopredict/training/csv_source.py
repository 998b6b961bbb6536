"""Read market bars from CSV files named like `BTC-USD.daily.csv` (the bundled sample's format)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cryptopredict.errors import DataSourceError
from cryptopredict.timeframes import Timeframe, symbol_to_slug

__all__ = ["csv_path", "read_bars"]


def csv_path(csv_dir: str | Path, symbol: str, timeframe: Timeframe) -> Path:
    """Where the bars of `symbol` at `timeframe` live: `<dir>/BTC-USD.daily.csv`."""
    return Path(csv_dir) / f"{symbol_to_slug(symbol)}.{timeframe.file_suffix}.csv"


def read_bars(csv_dir: str | Path, symbols: Sequence[str], timeframe: Timeframe) -> dict[str, pd.DataFrame]:
    """Read each symbol's file as strings, untouched: validation parses and checks every value."""
    out: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        path = csv_path(csv_dir, symbol, timeframe)
        try:
            out[symbol] = pd.read_csv(path, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            present = sorted(p.name for p in Path(csv_dir).glob("*.csv")) if Path(csv_dir).is_dir() else []
            msg = f"{symbol}: no file {path}" + (
                f" (found: {', '.join(present)})" if present else f" ({csv_dir} has no CSV files)"
            )
            raise DataSourceError(msg) from None
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            msg = f"{symbol}: cannot read {path}: {str(exc).strip().splitlines()[0]}"
            raise DataSourceError(msg) from None
    return out
