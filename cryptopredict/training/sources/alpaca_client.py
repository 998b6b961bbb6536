"""Fetch crypto market bars from Alpaca's historical data API through the official alpaca-py SDK."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cryptopredict.errors import DataSourceError
from cryptopredict.timeframes import Timeframe
from cryptopredict.training.sources.pacing import Pacer

with warnings.catch_warnings():
    # alpaca.data imports alpaca.trading.stream, which imports `websockets.legacy`; websockets >= 14
    # warns about that at import time. We never use the SDK's streaming, and the warning (an error
    # under `-W error`) is not ours to fix, so it is silenced for this import only.
    warnings.filterwarnings("ignore", message=r"websockets\.legacy is deprecated", category=DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical.crypto import CryptoHistoricalDataClient
    from alpaca.data.requests import CryptoBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import AssetClass, AssetStatus
    from alpaca.trading.requests import GetAssetsRequest

__all__ = ["BATCH_SIZE", "fetch_bars", "list_usd_pairs"]

_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
_RAW_KEYS = {"timestamp": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
_DEFAULT_URL = "https://data.alpaca.markets"
# The assets list lives on the trading API, which (unlike crypto data) always needs keys. The SDK
# defaults to the paper host; the list of crypto assets is the same on both.
_DEFAULT_TRADING_URL = "https://paper-api.alpaca.markets"

# Symbols per bars request. Alpaca's rate limit counts requests, and a page holds up to 10,000
# bars counted across the request's symbols, so a request costs ceil(its bars / 10,000) pages:
# batching saves the one partly filled last page each symbol alone would cost (most of the cost
# for a short window). 20 keeps the URL short (~200 characters of symbols) and bounds what one
# failed batch loses; 60 pairs take 3 batches.
BATCH_SIZE = 20

# Retries happen below the SDK, in urllib3 on the requests session (see _Session): alpaca-py's
# own loop (RESTClient._request) sleeps a fixed time and ignores Retry-After, so it is switched
# off (_make_client). 500/502/503 join 429/504: for a read-only GET they are transient far more
# often than not. A Retry-After is honoured up to _MAX_RETRY_AFTER_SECONDS: a hostile or
# mistaken "Retry-After: 3600" must not stall a build for an hour. Tests lower the waits.
_RETRY_ATTEMPTS = 3
_RETRY_WAIT_SECONDS: float = 3  # backoff factor when the server gives no Retry-After
_MAX_RETRY_AFTER_SECONDS: float = 60
_RETRY_STATUS_CODES = (429, 500, 502, 503, 504)

# The SDK sends requests without a timeout (a stalled server would hang training forever) and does
# not retry connection errors at all; both are fixed at the transport (requests/urllib3) level.
_TIMEOUT_SECONDS: tuple[float, float] = (10.0, 60.0)  # (connect, read)
_TRANSPORT_RETRIES = 2
_TRANSPORT_BACKOFF: float = 0.5

# For turning requests/urllib3 exception reprs and HTML error pages into one short line.
_TAG_RE = re.compile(r"<[^>]*>")
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")
_OSERROR_RE = re.compile(r"\w+Error\(-?\d+, '([^']+)'\)")
_SHORT_READ_RE = re.compile(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)")


def fetch_bars(
    symbols: Sequence[str],
    timeframe: Timeframe,
    *,
    start: datetime,
    end: datetime | None = None,
    url: str | None = None,
    api_key: str | None = None,
    secret_key: str | None = None,
    drop_last: bool = True,
    batch_size: int = BATCH_SIZE,
    pacer: Pacer | None = None,
    allow_missing: bool = False,
) -> dict[str, pd.DataFrame]:
    """Return one raw frame of bars per symbol (columns timestamp, open, high, low, close, volume).

    Symbols go `batch_size` to a request and the SDK follows every page, because Alpaca's rate
    limit counts requests, not bars; `pacer` spaces the requests (default: at most
    DEFAULT_MAX_REQUESTS_PER_MINUTE). Rows keep the API's order, duplicates included: the
    validation step must see what Alpaca really sent. The newest bar of a live fetch is still
    forming, so `drop_last` drops each symbol's newest bar (pass False when `end` is in the past
    and every bar is final). A symbol without (complete) bars is an error, or with `allow_missing`
    left out of the result for the caller to report. Naive datetimes are taken as UTC; `end=None`
    means now. Keys are optional for crypto data. Every failure is a DataSourceError whose one-line
    message names the symbols and the host.
    """
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        raise DataSourceError("alpaca: no symbols requested")
    base = (url or _DEFAULT_URL).rstrip("/")
    split = urlsplit(base)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise DataSourceError(f"alpaca: invalid data URL {base!r}; expected http(s)://host[:port]")
    host = f"{split.hostname}:{split.port or (443 if split.scheme == 'https' else 80)}"
    if bool(api_key) != bool(secret_key):
        raise DataSourceError("alpaca: give both api_key and secret_key, or neither")
    try:
        tf = TimeFrame(1, TimeFrameUnit[timeframe.alpaca_unit])
    except KeyError:
        raise DataSourceError(f"alpaca: unsupported timeframe {timeframe.name!r}") from None
    start_utc = _as_utc(start)
    end_utc = _as_utc(end) if end is not None else None
    if end_utc is not None and end_utc <= start_utc:
        raise DataSourceError(f"alpaca: start {_fmt(start_utc)} is not before end {_fmt(end_utc)}")

    if batch_size < 1:
        raise DataSourceError(f"alpaca: batch size must be at least 1, got {batch_size}")
    window = f"between {_fmt(start_utc)} and {_fmt(end_utc) if end_utc else 'now'}"
    client = _make_client(
        CryptoHistoricalDataClient, url=base, api_key=api_key, secret_key=secret_key, pacer=pacer or Pacer()
    )
    raw: dict[str, object] = {}
    try:
        for first in range(0, len(wanted), batch_size):
            batch = wanted[first : first + batch_size]
            where = f"{host} for {_names(batch)} ({timeframe.name} bars)"
            request = CryptoBarsRequest(symbol_or_symbols=batch, timeframe=tf, start=start_utc, end=end_utc)
            client._session.new_stream()
            got = _call(lambda request=request: client.get_crypto_bars(request), where)
            if not isinstance(got, dict):
                raise DataSourceError(f"alpaca: malformed response from {where}: bars is not an object")
            raw.update({s: got.get(s) for s in batch})
    finally:
        client._session.close()

    missing = [s for s in wanted if not raw.get(s)]
    if missing and not allow_missing:
        raise DataSourceError(f"alpaca: no bars for {_names(missing)} {window} ({timeframe.name}) from {host}")
    frames = {}
    for symbol in wanted:
        if symbol in missing:
            continue
        frame = _to_frame(raw[symbol], f"{symbol} from {host}")
        if timeframe.alpaca_unit == "Day":
            frame["timestamp"] = _daily_labels(frame["timestamp"])
        if drop_last:
            frame = _drop_newest(frame)
            if frame.empty and allow_missing:
                continue
            if frame.empty:
                raise DataSourceError(
                    f"alpaca: no complete bars for {symbol} {window} ({timeframe.name}) from "
                    f"{host}: only the still-forming one"
                )
        frames[symbol] = frame
    return frames


def list_usd_pairs(
    *, url: str | None = None, api_key: str | None, secret_key: str | None, pacer: Pacer | None = None
) -> tuple[str, ...]:
    """Every active, tradable crypto pair quoted in USD ("BTC/USD"), from the trading API's assets list, sorted.

    The trading API needs keys (the data API does not); without both this fails before any request.
    """
    base = (url or _DEFAULT_TRADING_URL).rstrip("/")
    split = urlsplit(base)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise DataSourceError(f"alpaca: invalid trading URL {base!r}; expected http(s)://host[:port]")
    if not (api_key and secret_key):
        lacking = " and ".join(n for n, v in (("API key", api_key), ("secret key", secret_key)) if not v)
        msg = f"alpaca: listing every crypto pair needs Alpaca's trading API, which needs keys; {lacking} missing"
        raise DataSourceError(msg)
    host = f"{split.hostname}:{split.port or (443 if split.scheme == 'https' else 80)}"
    where = f"{host} (crypto assets)"
    client = _make_client(TradingClient, url=base, api_key=api_key, secret_key=secret_key, pacer=pacer or Pacer())
    request = GetAssetsRequest(asset_class=AssetClass.CRYPTO, status=AssetStatus.ACTIVE)
    try:
        assets = _call(lambda: client.get_all_assets(request), where)
    finally:
        client._session.close()
    if not isinstance(assets, list) or not all(isinstance(a, dict) for a in assets):
        raise DataSourceError(f"alpaca: malformed response from {where}: expected a list of objects")
    pairs = sorted(
        {
            a["symbol"]
            for a in assets
            if isinstance(a.get("symbol"), str)
            and a["symbol"].endswith("/USD")
            and a.get("class") == "crypto"
            and a.get("status") == "active"
            and a.get("tradable") is True
        }
    )
    if not pairs:
        raise DataSourceError(f"alpaca: no active, tradable crypto pair quoted in USD from {where}")
    return tuple(pairs)


def _call(send: Callable[[], object], where: str) -> object:
    """Send one SDK call (all its pages), turning every failure into a one-line DataSourceError."""
    try:
        return send()
    except APIError as exc:
        raise DataSourceError(f"alpaca: {_describe_api_error(exc)} from {where}") from exc
    except requests.exceptions.JSONDecodeError as exc:
        raise DataSourceError(f"alpaca: malformed response from {where}: body is not JSON") from exc
    except requests.exceptions.RequestException as exc:
        raise DataSourceError(f"alpaca: cannot fetch from {where}: {_reason(exc)}") from exc
    except (ValueError, KeyError) as exc:
        # The SDK's page parsing (_get_marketdata_entries) raises ValueError on JSON without
        # exactly one known data key ("bars", "quotes", ...).
        raise DataSourceError(
            f"alpaca: malformed response from {where}: {_one_line(exc) or type(exc).__name__}"
        ) from exc
    except (TypeError, AttributeError) as exc:
        # ... and these on an empty 200 body (the SDK returns None for it) or "bars": null.
        raise DataSourceError(f"alpaca: malformed response from {where}: empty body or unexpected JSON shape") from exc


def _names(symbols: Sequence[str], shown: int = 5) -> str:
    """Symbols for a one-line message: all of a few, else the first few and how many."""
    if len(symbols) <= shown:
        return ", ".join(symbols)
    return f"{', '.join(symbols[:shown])} and {len(symbols) - shown} more"


# The SDK follows next_page_token for as long as the server sends one. A server that repeats a
# token (or never stops) would loop forever; the session refuses a token it has already fetched
# and stops after this many pages (10,000 bars each: far beyond any real history).
_MAX_PAGES = 10_000


class PageLoopError(requests.exceptions.RequestException):
    """The server's pagination would never end."""


class _BoundedRetry(Retry):
    """urllib3's Retry, honouring Retry-After only up to _MAX_RETRY_AFTER_SECONDS."""

    def get_retry_after(self, response):  # type: ignore[no-untyped-def]
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, _MAX_RETRY_AFTER_SECONDS)


class _Session(requests.Session):
    """A requests session with a default timeout, and bounded retries of connection errors and
    transient statuses (429 honouring Retry-After, 5xx) with backoff."""

    def __init__(self, pacer: Pacer) -> None:
        super().__init__()
        self._pacer = pacer
        self._page_tokens: set[str] = set()
        retry = _BoundedRetry(
            total=_TRANSPORT_RETRIES + _RETRY_ATTEMPTS,
            connect=_TRANSPORT_RETRIES,
            read=_TRANSPORT_RETRIES,
            status=_RETRY_ATTEMPTS,
            other=0,
            redirect=0,
            status_forcelist=_RETRY_STATUS_CODES,
            backoff_factor=_RETRY_WAIT_SECONDS,
            backoff_max=_MAX_RETRY_AFTER_SECONDS,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            # After the last retry the failing response goes back to the SDK, which raises APIError.
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", _TIMEOUT_SECONDS)
        token = (kwargs.get("params") or {}).get("page_token")
        if token is not None:
            if token in self._page_tokens:
                msg = f"the server sent page token {str(token)[:24]!r} twice; stopping rather than looping forever"
                raise PageLoopError(msg)
            self._page_tokens.add(token)
            if len(self._page_tokens) > _MAX_PAGES:
                msg = f"more than {_MAX_PAGES:,} pages; stopping rather than paging forever"
                raise PageLoopError(msg)
        # Paced here, once per page the SDK asks for; urllib3's retries below wait their own backoff.
        self._pacer.wait()
        return super().request(method, url, *args, **kwargs)

    def new_stream(self) -> None:
        """Forget the page tokens seen: the next request starts a new paged answer."""
        self._page_tokens.clear()


_Client = TypeVar("_Client", CryptoHistoricalDataClient, TradingClient)


def _make_client(
    kind: type[_Client], *, url: str, api_key: str | None, secret_key: str | None, pacer: Pacer
) -> _Client:
    client = kind(api_key=api_key, secret_key=secret_key, raw_data=True, url_override=url)
    # Private SDK attributes, read in RESTClient._request/_one_request (alpaca-py 0.44); the test
    # suite checks they still exist. Its retry loop is off: the session retries (see above).
    client._retry = 0
    client._retry_codes = []
    client._session.close()
    client._session = _Session(pacer)
    return client


def _to_frame(bars: object, what: str) -> pd.DataFrame:
    if not isinstance(bars, list) or not all(isinstance(b, dict) for b in bars):
        raise DataSourceError(f"alpaca: malformed bars for {what}: expected a list of objects")
    for column, key in _RAW_KEYS.items():
        lacking = [i for i, bar in enumerate(bars) if key not in bar]
        if lacking:
            raise DataSourceError(
                f"alpaca: malformed bars for {what}: {len(lacking)} bar(s) lack {key!r} ({column}),"
                f" first at position {lacking[0]}"
            )
    data: dict[str, object] = {}
    stamps = [b["t"] for b in bars]
    try:
        data["timestamp"] = pd.to_datetime(pd.Series(stamps, dtype=object), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        position, value = _first_bad_timestamp(stamps)
        raise DataSourceError(f"alpaca: bad timestamp {value} in bars for {what} at position {position}") from exc
    if data["timestamp"].isna().any():  # type: ignore[union-attr]
        raise DataSourceError(f"alpaca: null timestamp in bars for {what}")
    for column, key in _RAW_KEYS.items():
        if column == "timestamp":
            continue
        values = pd.Series([b[key] for b in bars], dtype=object)
        try:
            # None/NaN stay NaN: rejecting bad prices is the validation step's job, with row numbers.
            data[column] = pd.to_numeric(values, errors="raise").astype("float64")
        except (ValueError, TypeError) as exc:
            raise DataSourceError(f"alpaca: non-numeric {column} in bars for {what}: {_one_line(exc)}") from exc
    return pd.DataFrame(data, columns=_COLUMNS)


def _daily_labels(ts: pd.Series) -> pd.Series:
    """Label Chicago-midnight daily bars with their calendar date at 00:00 UTC.

    Alpaca stamped crypto 1Day bars at midnight America/Chicago (05:00 or 06:00 UTC) for years
    (alpaca-py issue 169) and later moved to midnight UTC. The project's daily grid is 00:00 UTC,
    so a bar at Chicago midnight is relabelled with its date; every other stamp is left for
    validation to judge.
    """
    chicago = ts.dt.tz_convert("America/Chicago")
    at_midnight = chicago == chicago.dt.normalize()
    relabelled = chicago.dt.tz_localize(None).dt.normalize().dt.tz_localize("UTC")
    return ts.where(~at_midnight, relabelled)


def _first_bad_timestamp(stamps: list[object]) -> tuple[int, str]:
    for position, value in enumerate(stamps):
        try:
            pd.to_datetime([value], utc=True, format="ISO8601")
        except (ValueError, TypeError):
            return position, _one_line(repr(value), 60)
    return -1, "?"


def _drop_newest(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    ts = frame["timestamp"]
    newest = int(np.flatnonzero((ts == ts.max()).to_numpy())[-1])
    return frame.drop(index=frame.index[newest]).reset_index(drop=True)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _fmt(moment: datetime) -> str:
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _one_line(exc: BaseException | str, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_api_error(exc: APIError) -> str:
    status = exc.status_code
    text = str(exc)
    try:
        detail = exc.message  # Alpaca's JSON error body: {"code": ..., "message": ...}
    except (ValueError, KeyError, TypeError):
        detail = text
    head = f"HTTP {status}" if status else "API error"
    if status in _RETRY_STATUS_CODES:
        head += f" (still failing after {_RETRY_ATTEMPTS} retries)"
    detail = _one_line(_TAG_RE.sub(" ", str(detail))).rstrip(".")  # proxies answer in HTML
    return f"{head}: {detail}" if detail else head


def _reason(exc: BaseException) -> str:
    # requests wraps urllib3's MaxRetryError, whose text is a long repr; keep only the cause.
    text = str(exc)
    connect, read = _TIMEOUT_SECONDS
    if isinstance(exc, requests.exceptions.ConnectTimeout) or "ConnectTimeoutError" in text:
        return f"could not connect within {connect:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return f"no answer within {read:g} s"
    short = _SHORT_READ_RE.search(text)
    if short:
        got, more = int(short.group(1)), int(short.group(2))
        return f"answer cut short ({got} of {got + more} bytes)"
    found = _ERRNO_RE.search(text) or _OSERROR_RE.search(text)
    if found:
        return found.group(1).strip().lower()
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken mid-answer"
    if isinstance(exc, PageLoopError):
        return str(exc)
    return f"{type(exc).__name__}: {_one_line(exc, 150)}"
