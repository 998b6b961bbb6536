"""A local fake of Alpaca's crypto bars HTTP API (GET /v1beta3/crypto/us/bars), its latest bars
(GET /v1beta3/crypto/us/latest/bars, what the API's live price feed polls) and its trading API's
assets list (GET /v2/assets), with fault injection.

It is a real HTTP server on 127.0.0.1, so the real alpaca-py client, requests and urllib3 run
unchanged against it. Responses follow Alpaca's shape, the one the SDK parses in
alpaca.common.rest.RESTClient._get_marketdata:

    {"bars": {"BTC/USD": [{"t": "2024-01-01T00:00:00Z", "o": .., "h": .., "l": .., "c": ..,
                           "v": .., "n": .., "vw": ..}, ...]},
     "next_page_token": "..." or null}

Like Alpaca, one page holds at most `page_size` bars counted across all symbols, symbols come in
alphabetical order, and symbols without bars are left out of "bars". Unlike Alpaca, each symbol's
bars are served in the order of the frame they were given in, so tests can feed out-of-order or
duplicate bars through the client.

The latest bars answer like Alpaca's: `{"bars": {"BTC/USD": {"t": .., "o": .., "h": .., "l": ..,
"c": .., "v": .., "n": .., "vw": ..}}}`, one bar per requested symbol that has one; a test sets and
moves them with `set_latest(symbol, close, at=...)` (the bar's open time: by default this minute's).

The assets list answers like Alpaca's trading API (read by TradingClient.get_all_assets): a JSON
array of asset objects (see `crypto_asset`), filtered by the `status` and `asset_class` query
parameters, and 401 without the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers. By default it lists
one active, tradable crypto asset per symbol in `bars`.

Faults: `inject(Reply(...), request=N | page=N | match=fn, times=1)` makes the fake answer
`Reply` instead of the normal page for the matching requests. Rules are tried in the order they
were added; the first one that matches and has uses left fires. Every request is recorded in
`fake.requests`.

    with FakeAlpaca(random_walk_bars(["BTC/USD"])) as fake:
        fake.inject(RATE_LIMITED, request=1)                    # first request: 429
        fake.inject(Reply(body="<html>oops"), page=2)           # page 2, once: not JSON
        fake.inject(Reply(status=500), times=None)              # every later request: 500
        fake.inject(Reply(edit=nan_close), page=1)              # page 1 with edited bars
        fake.inject(Reply(delay=2.0), request=3)                # answer late (client timeout)
        fake.inject(Reply(truncate_to=50), page=3)              # cut the body short, then close
        fake.inject(Reply(reset_after=50), page=3)              # send 50 bytes, then TCP RST

Run `python tests/fake_alpaca.py --help` to serve synthetic or CSV bars by hand.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

__all__ = [
    "ASSETS_PATH",
    "BARS_PATH",
    "LATEST_BARS_PATH",
    "RATE_LIMITED",
    "FakeAlpaca",
    "RecordedRequest",
    "Reply",
    "Rule",
    "crypto_asset",
    "many_pairs",
    "random_walk_bars",
]

BARS_PATH = "/v1beta3/crypto/us/bars"
LATEST_BARS_PATH = "/v1beta3/crypto/us/latest/bars"
ASSETS_PATH = "/v2/assets"
MAX_LIMIT = 10_000  # Alpaca's largest `limit`
_TIMEFRAME_UNITS = ("Min", "T", "Hour", "H", "Day", "D", "Week", "W", "Month", "M")


@dataclass(frozen=True)
class Reply:
    """What the fake sends for a matched request (the defaults send the normal page unchanged).

    status:       HTTP status. A non-200 status without a body gets Alpaca's JSON error body.
    body:         sent instead of the normal page: bytes/str as they are, anything else as JSON.
    edit:         a function given the normal page's JSON object, returning the one to send
                  (e.g. put NaN in a price). Ignored when `body` is set.
    headers:      extra response headers, e.g. {"Retry-After": "0"}.
    delay:        seconds to wait before answering anything.
    truncate_to:  send only this many body bytes (Content-Length still announces all), then close.
    reset_after:  send only this many body bytes, then abort the connection with a TCP RST.
    """

    status: int = 200
    body: Any = None
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None
    reset_after: int | None = None


RATE_LIMITED = Reply(status=429, headers={"Retry-After": "0"}, body={"code": 42910000, "message": "too many requests."})


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received. `page` is 1 for a request without page_token."""

    number: int  # 1-based, in arrival order
    method: str
    path: str
    query: dict[str, str]  # decoded; the last value wins for a repeated name
    headers: dict[str, str]
    page: int | None  # None when it is not a bars request or its page_token is invalid
    at: float = 0.0  # time.monotonic() on arrival


@dataclass
class Rule:
    """An injected fault: which requests it matches, what it answers, how often it may fire."""

    reply: Reply
    request: int | None = None
    page: int | None = None
    match: Callable[[RecordedRequest], bool] | None = None
    times: int | None = 1  # None: forever
    fired: int = 0

    def matches(self, req: RecordedRequest) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.request is not None and req.number != self.request:
            return False
        if self.page is not None and (req.path != BARS_PATH or req.page != self.page):
            return False
        return self.match is None or bool(self.match(req))


class FakeAlpaca:
    """A threaded HTTP server serving `bars` ({symbol: frame with timestamp, open, high, low,
    close, volume and optionally trade_count, vwap}) the way Alpaca's crypto bars endpoint does.

    Use as a context manager (or call start()/stop()); `url` is what goes to url_override.
    """

    def __init__(
        self,
        bars: Mapping[str, pd.DataFrame],
        *,
        page_size: int = 100,
        assets: Iterable[Mapping[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self._assets = [dict(a) for a in assets] if assets is not None else [crypto_asset(s) for s in bars]
        self._bars = {symbol: _encode_bars(frame) for symbol, frame in bars.items()}
        self._latest: dict[str, dict[str, Any]] = {}
        self._connections: set[socket.socket] = set()  # kept-alive client connections, closed by stop()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._rules: list[Rule] = []
        self.errors: list[BaseException] = []  # exceptions raised while answering (for debugging)
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> FakeAlpaca:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection too (a server that died answers nothing more)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._lock:
            open_connections, self._connections = list(self._connections), set()
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting and records
    def inject(
        self,
        reply: Reply,
        *,
        request: int | None = None,
        page: int | None = None,
        match: Callable[[RecordedRequest], bool] | None = None,
        times: int | None = 1,
    ) -> Rule:
        """Answer `reply` to matching requests: the request numbered `request` (1-based), requests
        for bars page `page` (1-based), and/or requests `match` accepts; with no criterion, every
        request. Fires at most `times` times (None: forever). Returns the rule (see `rule.fired`).
        """
        rule = Rule(reply=reply, request=request, page=page, match=match, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget injected rules and recorded requests."""
        with self._lock:
            self._rules.clear()
            self._requests.clear()

    def set_latest(self, symbol: str, close: Any, at: datetime | None = None) -> None:
        """Make `close` the symbol's latest minute bar, opened `at` (aware), or by default opened in the
        minute each request arrives (a market that trades on). `close` goes out as given, so a test
        can send a string, a NaN or null."""
        with self._lock:
            self._latest[symbol] = {"c": close, "at": at}

    def _latest_bar(self, symbol: str) -> dict[str, Any]:
        close, at = self._latest[symbol]["c"], self._latest[symbol]["at"]
        opened = pd.Timestamp(at) if at is not None else pd.Timestamp.now(tz="UTC").floor("min")
        return {"t": _rfc3339(opened), "o": close, "h": close, "l": close, "c": close, "v": 1.5, "n": 12, "vw": close}

    def drop_latest(self, symbol: str) -> None:
        """The symbol has no latest bar any more (Alpaca leaves it out of the reply)."""
        with self._lock:
            self._latest.pop(symbol, None)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    # ----------------------------------------------------------------- request handling
    def _record(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[RecordedRequest, Reply | None]:
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        page = None
        if split.path == BARS_PATH:
            offset = _decode_token(query.get("page_token") or None)
            if offset is not None:
                page = offset // self._limit(query) + 1 if _valid_limit(query) else None
        with self._lock:
            req = RecordedRequest(
                number=len(self._requests) + 1,
                method=method,
                path=split.path,
                query=query,
                headers=dict(headers),
                page=page,
                at=time.monotonic(),
            )
            self._requests.append(req)
            for rule in self._rules:
                if rule.matches(req):
                    rule.fired += 1
                    return req, rule.reply
        return req, None

    def _limit(self, query: Mapping[str, str]) -> int:
        raw = query.get("limit") or ""
        return min(int(raw), self.page_size) if raw else self.page_size

    def _answer(self, req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        """The normal answer to `req`: (status, JSON object)."""
        if req.method != "GET":
            return 405, _error(405, "method not allowed")
        if req.path == ASSETS_PATH:
            return self._list_assets(req)
        if req.path == LATEST_BARS_PATH:
            symbols = [s for s in req.query.get("symbols", "").split(",") if s]
            if not symbols:
                return 400, _error(400, "missing symbols")
            with self._lock:
                return 200, {"bars": {s: self._latest_bar(s) for s in symbols if s in self._latest}}
        if req.path != BARS_PATH:
            return 404, _error(404, "endpoint not found")
        q = req.query
        symbols = [s for s in q.get("symbols", "").split(",") if s]
        if not symbols:
            return 400, _error(400, "missing symbols")
        if not _valid_timeframe(q.get("timeframe", "")):
            return 400, _error(400, f"invalid timeframe: {q.get('timeframe', '')!r}")
        if not _valid_limit(q):
            return 400, _error(400, "invalid limit")
        sort = q.get("sort") or "asc"
        if sort not in ("asc", "desc"):
            return 400, _error(400, "invalid sort")
        now = pd.Timestamp.now(tz="UTC")
        try:
            start = _parse_time(q.get("start")) or now.normalize()  # Alpaca: start of today
            end = _parse_time(q.get("end")) or now
        except ValueError as exc:
            return 400, _error(400, str(exc))
        offset = _decode_token(q.get("page_token") or None)
        if offset is None:
            return 400, _error(400, "invalid page_token")

        selected: list[tuple[str, dict[str, Any]]] = []
        for symbol in sorted(set(symbols)):
            rows = [bar for ts, bar in self._bars.get(symbol, []) if start <= ts <= end]
            if sort == "desc":
                rows.reverse()
            selected.extend((symbol, bar) for bar in rows)
        limit = self._limit(q)
        chunk = selected[offset : offset + limit]
        out: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in chunk:
            out.setdefault(symbol, []).append(bar)
        more = offset + limit < len(selected)
        return 200, {"bars": out, "next_page_token": _encode_token(offset + limit) if more else None}

    def _list_assets(self, req: RecordedRequest) -> tuple[int, Any]:
        """GET /v2/assets: every asset matching `status` and `asset_class` (Alpaca's trading API needs keys)."""
        headers = {k.lower(): v for k, v in req.headers.items()}
        if not (headers.get("apca-api-key-id") and headers.get("apca-api-secret-key")):
            return 401, {"code": 40110000, "message": "request is not authorized"}
        status, asset_class = req.query.get("status"), req.query.get("asset_class")
        return 200, [
            a
            for a in self._assets
            if (status is None or a["status"] == status) and (asset_class is None or a["class"] == asset_class)
        ]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeAlpaca

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (timeout, reset) is part of the tests, not a server bug: record
        # the exception instead of printing a traceback.
        import sys

        self.fake.errors.append(sys.exc_info()[1])  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls
    server: _Server
    timeout = 10  # an idle keep-alive connection is dropped after this many seconds

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; fake.requests has everything

    def _serve(self) -> None:
        fake = self.server.fake
        req, reply = fake._record(self.command, self.path, self.headers)
        reply = reply or Reply()
        if reply.delay:
            time.sleep(reply.delay)
        try:
            status, body = self._body(fake, req, reply)
        except Exception as exc:  # a bug in the fake or in a test's `edit`: say so over HTTP
            fake.errors.append(exc)
            status, body = 500, _error(500, f"fake_alpaca: {type(exc).__name__}: {exc}")
        if isinstance(body, str):
            data = body.encode()
            ctype = "text/plain; charset=utf-8"
        elif isinstance(body, bytes | bytearray):
            data = bytes(body)
            ctype = "application/octet-stream"
        else:
            data = json.dumps(body).encode()
            ctype = "application/json; charset=UTF-8"

        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.truncate_to is not None or reply.reset_after is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if reply.reset_after is not None:
            self.wfile.write(data[: reply.reset_after])
            self.wfile.flush()
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if reply.truncate_to is not None:
            self.wfile.write(data[: reply.truncate_to])
        else:
            self.wfile.write(data)
        self.wfile.flush()

    @staticmethod
    def _body(fake: FakeAlpaca, req: RecordedRequest, reply: Reply) -> tuple[int, Any]:
        if reply.body is not None:
            return reply.status, reply.body
        status, payload = fake._answer(req)
        if reply.status != 200:
            return reply.status, _error(reply.status)
        if status == 200 and reply.edit is not None:
            payload = reply.edit(json.loads(json.dumps(payload)))  # edit a deep copy
        return status, payload

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the socket was reset on purpose, or the client left
            super().finish()


def _encode_bars(frame: pd.DataFrame) -> list[tuple[pd.Timestamp, dict[str, Any]]]:
    """Turn a frame into (timestamp, Alpaca bar object) pairs, in the frame's row order."""
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    cols = {col: frame[col].astype(float).tolist() for col in ("open", "high", "low", "close", "volume")}
    counts = frame["trade_count"].tolist() if "trade_count" in frame else None
    vwaps = frame["vwap"].astype(float).tolist() if "vwap" in frame else None
    out = []
    for i, stamp in enumerate(ts):
        o, h, low, c, v = (cols[col][i] for col in ("open", "high", "low", "close", "volume"))
        n = int(counts[i]) if counts is not None else 100 + i % 50
        vw = vwaps[i] if vwaps is not None else (h + low + c) / 3
        bar = {"t": _rfc3339(stamp), "o": o, "h": h, "l": low, "c": c, "v": v, "n": n, "vw": vw}
        out.append((stamp, bar))
    return out


def _rfc3339(stamp: pd.Timestamp) -> str:
    text = stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.microsecond:
        text += f".{stamp.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_time(raw: str | None) -> pd.Timestamp | None:
    if not raw:
        return None
    try:
        stamp = pd.Timestamp(raw)
    except ValueError:
        raise ValueError(f"invalid time: {raw!r}") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _valid_timeframe(raw: str) -> bool:
    for unit in _TIMEFRAME_UNITS:
        amount = raw[: -len(unit)]
        if raw.endswith(unit) and amount.isdigit() and int(amount) > 0:
            return True
    return False


def _valid_limit(query: Mapping[str, str]) -> bool:
    raw = query.get("limit") or ""
    return not raw or (raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"fake:{offset}".encode()).decode()


def _decode_token(token: str | None) -> int | None:
    """The bar offset a page token stands for (0 without a token); None when it is invalid."""
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "fake" and number.isdigit() else None


def _error(status: int, message: str | None = None) -> dict[str, Any]:
    # Alpaca's error bodies look like {"code": 40010001, "message": "..."}.
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    return {"code": status * 100000 + 1, "message": message or phrase}


def crypto_asset(symbol: str, *, status: str = "active", tradable: bool = True) -> dict[str, Any]:
    """One crypto asset as Alpaca's trading API lists it (the JSON alpaca.trading.models.Asset reads)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca:{symbol}")),
        "class": "crypto",
        "exchange": "CRYPTO",
        "symbol": symbol,
        "name": f"{symbol.split('/')[0]} / {symbol.split('/')[-1]}",
        "status": status,
        "tradable": tradable,
        "marginable": False,
        "maintenance_margin_requirement": 100,
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": True,
        "attributes": [],
        "min_order_size": "0.000000001",
        "min_trade_increment": "0.000000001",
        "price_increment": "0.000000001",
    }


def many_pairs(count: int, *, quote: str = "USD") -> list[str]:
    """`count` made-up pairs quoted in `quote`, in alphabetical order: "C00/USD", "C01/USD", ..."""
    return [f"C{i:02d}/{quote}" for i in range(count)]


def random_walk_bars(
    symbols: Iterable[str],
    *,
    periods: int = 300,
    freq: str = "1D",
    start: str | datetime = "2023-01-01",
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Seeded synthetic OHLCV bars: a geometric random walk per symbol, one row per `freq`."""
    rng = np.random.RandomState(seed)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=periods, freq=freq)
    out = {}
    for i, symbol in enumerate(symbols):
        first = 100.0 * 10 ** (i % 6)
        close = first * np.exp(np.cumsum(rng.normal(0.0, 0.02, periods)))
        open_ = np.concatenate([[first], close[:-1]])
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.01, periods)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.01, periods)))
        volume = np.abs(rng.normal(1000.0, 300.0, periods))
        out[symbol] = pd.DataFrame(
            {
                "timestamp": index,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
        )
    return out


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve fake Alpaca crypto bars on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--page-size", type=int, default=100, help="bars per page, all symbols")
    parser.add_argument("--symbols", default="BTC/USD,ETH/USD", help="synthetic symbols, comma-separated")
    parser.add_argument("--periods", type=int, default=500, help="synthetic bars per symbol")
    parser.add_argument("--hourly", action="store_true", help="synthetic hourly bars (else daily)")
    parser.add_argument("--start", default="2023-01-01", help="first synthetic bar, e.g. 2023-01-01")
    parser.add_argument(
        "--csv",
        action="append",
        default=[],
        metavar="SYMBOL=PATH",
        help="serve this CSV (timestamp,open,high,low,close,volume) instead of synthetic bars",
    )
    args = parser.parse_args(argv)
    if args.csv:
        bars = {}
        for item in args.csv:
            symbol, _, path = item.partition("=")
            bars[symbol] = pd.read_csv(path)
    else:
        bars = random_walk_bars(
            [s for s in args.symbols.split(",") if s],
            periods=args.periods,
            freq="1h" if args.hourly else "1D",
            start=args.start,
        )
    with FakeAlpaca(bars, page_size=args.page_size, port=args.port) as fake:
        print(f"fake Alpaca serving {', '.join(bars)} at {fake.url} (bars at {BARS_PATH})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
