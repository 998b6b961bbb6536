"""Bars from Alpaca's historical crypto data API (the SDK client lives in `alpaca_client`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from cryptopredict.errors import DataSourceError
from cryptopredict.training.sources.base import BarRequest, utc_timestamp
from cryptopredict.training.sources.pacing import DEFAULT_MAX_REQUESTS_PER_MINUTE, Pacer

if TYPE_CHECKING:
    import pandas as pd

    from cryptopredict.timeframes import Timeframe

__all__ = ["AlpacaSource"]


@dataclass(frozen=True, slots=True)
class AlpacaSource:
    """Bars fetched live from Alpaca (keys from ALPACA_API_KEY / ALPACA_SECRET_KEY, optional for crypto data,
    needed to list every pair)."""

    name: ClassVar[str] = "alpaca"
    default_start: ClassVar[str | None] = "2021-01-01"

    url: str | None = None  # None: Alpaca's own data API
    # Where the assets list is asked for (--symbols all); None: --alpaca-url if given, else Alpaca's paper API.
    trading_url: str | None = None
    max_requests_per_minute: float = DEFAULT_MAX_REQUESTS_PER_MINUTE
    # One pacer for every request this source makes: the assets list, then every bars page.
    _pacer: Pacer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pacer", Pacer(self.max_requests_per_minute))

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        """--alpaca-url, --alpaca-trading-url (env ALPACA_DATA_URL, ALPACA_TRADING_URL), --max-requests-per-minute."""
        group.add_argument(
            "--alpaca-url",
            default=os.environ.get("ALPACA_DATA_URL") or None,
            help="base URL for Alpaca's data API, e.g. a proxy or a local fake (env ALPACA_DATA_URL)",
        )
        group.add_argument(
            "--alpaca-trading-url",
            default=os.environ.get("ALPACA_TRADING_URL") or None,
            help="base URL for Alpaca's trading API, asked for the assets list by --symbols all "
            "(env ALPACA_TRADING_URL; default: --alpaca-url if given, else Alpaca's paper trading API)",
        )
        group.add_argument(
            "--max-requests-per-minute",
            type=_positive_rate,
            default=DEFAULT_MAX_REQUESTS_PER_MINUTE,
            help="space Alpaca requests at least 60/N seconds apart; the free plan allows 200 "
            f"(default: {DEFAULT_MAX_REQUESTS_PER_MINUTE})",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AlpacaSource:
        """The URLs given by --alpaca-url and --alpaca-trading-url, the pace by --max-requests-per-minute."""
        return cls(
            url=args.alpaca_url,
            trading_url=args.alpaca_trading_url,
            max_requests_per_minute=args.max_requests_per_minute,
        )

    def describe(self) -> str:
        """The data URL (or Alpaca), then the source's name."""
        return f"{self.url or 'Alpaca'} ({self.name})"

    def list_symbols(self, timeframe: Timeframe) -> tuple[str, ...]:
        """Every active, tradable crypto pair quoted in USD, from the trading API's assets list (needs keys)."""
        from cryptopredict.training.sources.alpaca_client import list_usd_pairs

        keys = {name: os.environ.get(name) or None for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")}
        lacking = [name for name, value in keys.items() if value is None]
        if lacking:
            msg = (
                "alpaca: --symbols all asks Alpaca's trading API for the crypto assets, and that API needs keys: "
                f"set {' and '.join(lacking)}"
            )
            raise DataSourceError(msg)
        return list_usd_pairs(
            url=self.trading_url or self.url,
            api_key=keys["ALPACA_API_KEY"],
            secret_key=keys["ALPACA_SECRET_KEY"],
            pacer=self._pacer,
        )

    def load(self, request: BarRequest, timeframe: Timeframe) -> dict[str, pd.DataFrame]:
        """Every symbol in batches of BATCH_SIZE per request, from the first bar up to --end (or now)."""
        from cryptopredict.training.sources.alpaca_client import fetch_bars

        end = utc_timestamp(request.end)
        return fetch_bars(
            request.symbols,
            timeframe,
            start=utc_timestamp(request.start).to_pydatetime(),
            end=None if end is None else end.to_pydatetime(),
            url=self.url,
            api_key=os.environ.get("ALPACA_API_KEY") or None,
            secret_key=os.environ.get("ALPACA_SECRET_KEY") or None,
            # Only a fetch that runs up to now ends in a bar that is still forming.
            drop_last=request.end is None,
            pacer=self._pacer,
            # With --skip-invalid a pair without bars is reported and skipped, not fatal.
            allow_missing=request.skip_invalid,
        )


def _positive_rate(text: str) -> float:
    """--max-requests-per-minute: a positive number."""
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not rate > 0 or rate == float("inf"):
        msg = f"expected a positive number of requests, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return rate
