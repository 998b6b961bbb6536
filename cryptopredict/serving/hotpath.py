"""Whole answers kept ahead of Flask: a bounded memo of what the app itself answered.

The artifact never changes while a process serves it, so a GET answer is a pure function of the
request line and the few request headers the app reads. The first such request runs through Flask
(routes, CORS, security headers, problem+json) and its status, headers and body are kept; the same
request again is answered with those bytes, without the framework. The two can never disagree:
there is one code path that builds an answer, and the memo only replays it.

What an answer depends on, and so the key: method (GET only), path, query string, `Origin` (CORS),
`Accept-Encoding` (a JSON answer is kept as sent, gzipped or not: the encoded bytes, compressed
once), `Host` and the URL scheme (anything built from the request's own URL). The header is keyed
as sent, not parsed: the few spellings browsers and clients use each get their entry. A request with
`If-None-Match` (a browser revalidating, as the live page does each poll interval) is answered from
the kept answer when there is one: a 304 when the tag matches it (the kept headers less the entity
headers, as werkzeug's own 304 is), the kept answer itself when not; with nothing kept it goes to
Flask and its answer is not kept. Requests with any other conditional or range header (`Range`,
`If-Modified-Since`, ...) go to Flask every time, so partial answers stay Flask's own. Only 200
answers and the client errors that depend on nothing but the request (400, 404, 422) are kept; a
5xx is never replayed.

The memory bound is stated in bytes (`HOT_CACHE_MB`, 64 MB by default; 0 turns the memo off):
every kept answer counts its body, its headers and its key; one answer larger than a sixteenth of
the bound is never kept; when a new answer would pass the bound, the oldest kept ones are dropped
first. A client sending endless distinct queries can only churn the memo, never grow it.

With live prices on, an answer is a function of the request *and* the anchors it was computed at:
`variant` returns the anchors' generation, read before the app runs and made part of the key, so
an answer is only ever replayed while the generation it was computed at (or a later one) is still
current (a request that raced a change is kept under the older generation, never looked up again).
When the generation moves on the memo is emptied. An answer the app marks as depending on the clock
(`environ[VOLATILE]`, e.g. /healthz reporting the feed's age) is never kept.

`Date` and `Expires` (werkzeug's, on files and charts) are never replayed as they were: a replay
carries the time of the replay, and `Expires` as far after it as the app first set it after its
`Date` (its max-age), so a chart replayed two hours later does not arrive already expired, and GET
(replayed) and HEAD (always Flask's) agree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from werkzeug.http import parse_etags, unquote_etag

__all__ = ["VOLATILE", "HotPath"]

# Set in the WSGI environ by a view whose answer depends on more than the request and the anchors.
VOLATILE = "cryptopredict.volatile"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Request headers that make an answer depend on more than the key: always Flask's (If-None-Match is
# answered from a kept answer's ETag, below).
_BYPASS = (
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_RANGE",
    "HTTP_RANGE",
)
_KEPT_STATUSES = frozenset({200, 400, 404, 422})
# What a 304 leaves out of the 200 it stands for (werkzeug's remove_entity_headers, Expires and
# Content-Location kept as it keeps them).
_ENTITY = frozenset(
    {"allow", "content-encoding", "content-language", "content-length", "content-md5", "content-range", "content-type",
     "last-modified"}
)  # fmt: skip
_NOT_MODIFIED = "304 NOT MODIFIED"
# Per kept answer, what the dict entry, the tuples and the header list cost beyond their text.
_ENTRY_OVERHEAD = 512


class HotPath:
    """WSGI middleware: replay the app's own GET answers from a memo bounded to `max_bytes`."""

    __slots__ = (
        "_app", "_clock", "_lock", "_max_bytes", "_max_entry", "_memo", "_seen", "_used", "_variant", "hits", "misses",
    )  # fmt: skip

    def __init__(
        self,
        app: WSGIApp,
        max_bytes: int,
        variant: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._clock = clock
        self._variant = variant
        self._seen = variant() if variant is not None else 0
        self._max_bytes = max_bytes
        self._max_entry = max_bytes // 16
        # key -> (status, headers, body, size, the clock headers' (index, seconds after Date) or None)
        self._memo: dict[tuple[str, ...], tuple[str, list[tuple[str, str]], bytes, int, tuple | None]] = {}
        self._used = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def used_bytes(self) -> int:
        """What the kept answers count against the bound."""
        return self._used

    def __len__(self) -> int:
        return len(self._memo)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "GET" or not self._max_bytes:
            return self._app(environ, start_response)
        for name in _BYPASS:
            if name in environ:
                return self._app(environ, start_response)
        key = (
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ORIGIN", "\0"),  # absent and empty are different requests to CORS
            environ.get("HTTP_ACCEPT_ENCODING", ""),  # gzip or not: the encoded bytes are kept as sent
            environ.get("HTTP_HOST", ""),
            environ["wsgi.url_scheme"],
            environ.get("SCRIPT_NAME", ""),
        )
        if self._variant is not None:
            generation = self._variant()
            if generation != self._seen:
                self._forget(generation)
            key = (*key, str(generation))
        kept = self._memo.get(key)
        if kept is not None:
            self.hits += 1  # a statistic: a lost increment under threads costs nothing
            headers = kept[1] if kept[4] is None else _refreshed(kept[1], kept[4], self._clock())
            condition = environ.get("HTTP_IF_NONE_MATCH")
            if condition is not None and kept[0].startswith("200") and _matches(condition, headers):
                start_response(_NOT_MODIFIED, [h for h in headers if h[0].lower() not in _ENTITY])
                return (b"",)
            start_response(kept[0], headers)
            return (kept[2],)
        if "HTTP_IF_NONE_MATCH" in environ:
            return self._app(environ, start_response)  # nothing kept to compare with: Flask's, not kept
        self.misses += 1
        return self._answer_and_keep(key, environ, start_response)

    def _answer_and_keep(
        self, key: tuple[str, ...], environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Run the app, collect its whole answer, keep it when it may be replayed, then send it."""
        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, list(headers), exc_info]
            return chunks.append

        chunks: list[bytes] = []
        iterable = self._app(environ, capture)
        try:
            chunks.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = answer
        body = b"".join(chunks)
        if exc_info is None and int(status[:3]) in _KEPT_STATUSES and not environ.get(VOLATILE):
            self._keep(key, status, headers, body)
        start_response(status, headers, exc_info)
        return (body,)

    def _forget(self, generation: int) -> None:
        """The anchors moved on: drop every kept answer (none can be looked up again)."""
        with self._lock:
            if generation > self._seen:
                self._memo.clear()
                self._used = 0
                self._seen = generation

    def _keep(self, key: tuple[str, ...], status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        size = len(body) + sum(len(k) + len(v) for k, v in headers) + sum(map(len, key)) + _ENTRY_OVERHEAD
        if size > self._max_entry:
            return
        clock = _clock_headers(headers)
        if clock is False:
            return  # a Date or Expires it cannot read: never replayed
        with self._lock:
            if key in self._memo:
                return
            while self._memo and self._used + size > self._max_bytes:
                oldest = next(iter(self._memo))
                self._used -= self._memo.pop(oldest)[3]
            self._memo[key] = (status, headers, body, size, clock)
            self._used += size


def _matches(condition: str, headers: list[tuple[str, str]]) -> bool:
    """Whether If-None-Match names the answer's ETag (weak comparison, `*` any), as werkzeug decides it."""
    tag = next((v for k, v in headers if k.lower() == "etag"), None)
    return tag is not None and parse_etags(condition).contains_weak(unquote_etag(tag)[0])


def _clock_headers(headers: list[tuple[str, str]]) -> tuple[tuple[int, int], ...] | bool | None:
    """Where `Date` and `Expires` stand and how far after `Date` each is (seconds); None when there are
    none, False when one cannot be read."""
    names = [(i, k.lower()) for i, (k, _) in enumerate(headers) if k.lower() in ("date", "expires")]
    if not names:
        return None
    try:
        stamps = {i: parsedate_to_datetime(headers[i][1]).timestamp() for i, _ in names}
    except (TypeError, ValueError):
        return False
    date = next((stamps[i] for i, name in names if name == "date"), None)
    if date is None:
        return False  # an Expires with nothing to count it from
    return tuple((i, round(stamps[i] - date)) for i, _ in names)


_LAST_DATE: list[Any] = [None, ""]  # (second, its HTTP date): one format a second at most


def _http_date(seconds: int) -> str:
    if _LAST_DATE[0] == seconds:
        return _LAST_DATE[1]
    text = formatdate(seconds, usegmt=True)
    _LAST_DATE[:] = [seconds, text]
    return text


def _refreshed(headers: list[tuple[str, str]], clock: tuple[tuple[int, int], ...], now: float) -> list[tuple[str, str]]:
    """The kept headers with `Date` set to now and `Expires` as far after it as the app set it."""
    fresh = list(headers)
    for i, after in clock:
        fresh[i] = (headers[i][0], _http_date(int(now) + after))
    return fresh
