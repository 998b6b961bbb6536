"""Bars from Alpaca's historical crypto data API (the SDK client lives in `alpaca_client`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from cryptopredict.training.sources.base import utc_timestamp

if TYPE_CHECKING:
    import pandas as pd

    from cryptopredict.timeframes import Timeframe
    from cryptopredict.training.config import TrainConfig

__all__ = ["AlpacaSource"]


@dataclass(frozen=True, slots=True)
class AlpacaSource:
    """Bars fetched live from Alpaca (keys from ALPACA_API_KEY / ALPACA_SECRET_KEY, optional for crypto)."""

    name: ClassVar[str] = "alpaca"
    default_start: ClassVar[str | None] = "2021-01-01"

    url: str | None = None  # None: Alpaca's own data API

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        """--alpaca-url (env ALPACA_DATA_URL)."""
        group.add_argument(
            "--alpaca-url",
            default=os.environ.get("ALPACA_DATA_URL") or None,
            help="base URL for Alpaca's data API, e.g. a proxy or a local fake (env ALPACA_DATA_URL)",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AlpacaSource:
        """The data URL given by --alpaca-url."""
        return cls(url=args.alpaca_url)

    def describe(self) -> str:
        """The data URL (or Alpaca), then the source's name."""
        return f"{self.url or 'Alpaca'} ({self.name})"

    def load(self, config: TrainConfig, timeframe: Timeframe) -> dict[str, pd.DataFrame]:
        """All symbols in one request, from the first bar up to --end (or now)."""
        from cryptopredict.training.sources.alpaca_client import fetch_bars

        end = utc_timestamp(config.end)
        return fetch_bars(
            config.symbols,
            timeframe,
            start=utc_timestamp(config.first_bar()).to_pydatetime(),
            end=None if end is None else end.to_pydatetime(),
            url=self.url,
            api_key=os.environ.get("ALPACA_API_KEY") or None,
            secret_key=os.environ.get("ALPACA_SECRET_KEY") or None,
            # Only a fetch that runs up to now ends in a bar that is still forming.
            drop_last=config.end is None,
        )
