"""The bar sources train.py can read from, by name: add a module, then one line to `SOURCES`."""

from __future__ import annotations

from cryptopredict.training.sources.alpaca import AlpacaSource
from cryptopredict.training.sources.base import BarSource
from cryptopredict.training.sources.csv import CsvSource

__all__ = ["SOURCES", "BarSource"]

# train.py's --source choices, in this order; the first is the default.
SOURCES: dict[str, type[BarSource]] = {
    CsvSource.name: CsvSource,
    AlpacaSource.name: AlpacaSource,
}
