"""The hot path: answers replayed ahead of Flask are Flask's own, byte for byte, and the memo is bounded."""

from __future__ import annotations

import http.client
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cryptopredict.serving import create_app
from cryptopredict.serving.cli import QueueNotices, waitress_options
from cryptopredict.serving.config import ServeSettings
from cryptopredict.serving.hotpath import VOLATILE, HotPath
from tests.test_api import BAD_REQUESTS

ALLOWED = "https://allowed.example"
OTHER = "https://elsewhere.example"
DATE = "2025-06-01"

# A sample of what clients send: the hot answers, every other GET route, errors of each kind.
PATHS = list(
    dict.fromkeys(
        [
            f"/bitcoin?date={DATE}",
            f"/bitcoin?date={DATE}T12:00:00%2B05:30",
            f"/bitcoin?date={DATE}&model=prophet",
            "/bitcoin?date=tomorrow",
            "/bitcoin?date=1999-01-01",
            "/bitcoin",
            f"/bitcoin?date={DATE}&date={DATE}",
            f"/v1/forecast/BTC-USD?date={DATE}",
            f"/v1/forecast/eth-usd?date={DATE}&quantiles=0.05,0.5,0.95",
            "/v1/forecast/BTC-USD?start=2025-05-01&end=2025-05-30",
            "/v1/forecast/BTC-USD?start=2020-01-01&end=2026-01-01",
            f"/v1/forecast/DOGE-USD?date={DATE}",
            f"/v1/forecast/BTC-USD/probability?date={DATE}&above=100000",
            "/v1/forecast/BTC-USD/chart.png",
            "/v1/forecast/ETH-USD/components.png",
            "/bitcoin/forecast",
            "/bitcoin/trends",
            "/v1/symbols",
            "/v1/model",
            "/v1/track-record",
            "/v1/track-record/BTC-USD?horizon=7d",
            "/healthz",
            "/openapi.json",
            "/docs",
            "/",
            "/no/such/path",
            "/healthz?unknown=1",
            # and every bad request the HTTP contract tests send
            *(path for path, _, _ in BAD_REQUESTS),
        ]
    )
)


@contextmanager
def waitress(app: Flask) -> Iterator[int]:
    """A real Waitress server on 127.0.0.1 in this process (so its memo can be inspected); yields the port."""
    from waitress import create_server

    options = waitress_options(ServeSettings(port=0))
    server = create_server(app, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port  # type: ignore[union-attr]
    finally:
        server.close()
        thread.join(timeout=10)


CLOCK_HEADERS = ("date", "expires")


def ask_all(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request on a fresh connection: status, every header in the order sent, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def ask(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, every header but the clock's (Date, Expires: checked on their own) in the order sent, body."""
    status, sent, body = ask_all(port, method, path, headers)
    return status, [(k, v) for k, v in sent if k.lower() not in CLOCK_HEADERS], body


def requests(etag: str, json_etag: str) -> list[tuple[str, str, dict[str, str]]]:
    """Every path with no Origin, an allowed and a disallowed one; preflights; HEAD; conditional GETs (a chart's
    and a JSON answer's tag, gzipped or not)."""
    out: list[tuple[str, str, dict[str, str]]] = []
    for path in PATHS:
        for origin in (None, ALLOWED, OTHER):
            out.append(("GET", path, {"Origin": origin} if origin else {}))
    for origin in (ALLOWED, OTHER):
        preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        out.append(("OPTIONS", f"/bitcoin?date={DATE}", preflight))
        out.append(("OPTIONS", "/v1/symbols", {**preflight, "Access-Control-Request-Headers": "accept"}))
    out += [
        ("HEAD", f"/bitcoin?date={DATE}", {}),
        ("POST", f"/bitcoin?date={DATE}", {}),
        ("GET", "/bitcoin/forecast", {"If-None-Match": etag}),
        ("GET", "/bitcoin/forecast", {"If-None-Match": '"something-else"'}),
        ("GET", "/v1/forecast/BTC-USD/chart.png", {"Range": "bytes=0-99"}),
        ("GET", "/v1/symbols", {"If-None-Match": '"something-else"'}),
        ("GET", "/v1/symbols", {"If-None-Match": json_etag}),
        ("GET", "/v1/symbols", {"If-None-Match": f'"x", W/{json_etag}'}),
        ("GET", "/v1/symbols", {"If-None-Match": "*"}),
        ("GET", "/v1/model", {"If-None-Match": json_etag}),  # another answer's tag: the whole answer
        ("GET", "/v1/track-record/ETH-USD", {"If-None-Match": json_etag}),  # nothing kept for it: Flask's, not kept
    ]
    # Gzip asked for in the spellings clients send (JSON answers are kept encoded as sent).
    for accept in ("gzip", "gzip, deflate, br, zstd", "deflate"):  # (http.client sends identity itself)
        for path in ("/v1/model", "/openapi.json", "/v1/forecast/BTC-USD?start=2025-05-01&end=2025-05-30", "/"):
            out.append(("GET", path, {"Accept-Encoding": accept}))
        out.append(("GET", "/v1/symbols", {"Accept-Encoding": accept, "Origin": ALLOWED}))
    return out


@pytest.mark.server
@pytest.mark.parametrize("cors", ["*", ALLOWED], ids=["any-origin", "one-origin"])
def test_replayed_answers_equal_flasks_byte_for_byte(artifact_dir: Path, cors: str) -> None:
    """Each sampled request answered twice by the hot path (the second from its memo) equals Flask's own answer
    (status, headers in order, body) from a server with the hot path off, CORS preflights and refused origins
    included."""
    settings = {"artifact_dir": str(artifact_dir), "cors_origins": (cors,)}
    hot_app, flask_app = create_app(settings), create_app({**settings, "hot_cache_mb": 0})
    memo = hot_app.wsgi_app
    assert isinstance(memo, HotPath)
    with waitress(hot_app) as hot, waitress(flask_app) as plain:
        etag = {k.lower(): v for k, v in ask(plain, "GET", "/bitcoin/forecast", {})[1]}["etag"]
        json_etag = {k.lower(): v for k, v in ask(plain, "GET", "/v1/symbols", {})[1]}["etag"]
        sample = requests(etag, json_etag)
        for method, path, headers in sample:
            expected = ask(plain, method, path, headers)
            first = ask(hot, method, path, headers)
            again = ask(hot, method, path, headers)
            where = f"{method} {path} {headers}"
            assert first == expected, where
            assert again == expected, where
    # The comparison means something only if replays happened: every plain GET's second answer came from the memo,
    # and both answers to a conditional GET whose answer was kept (all but ETH's track record, asked only so).
    plain_gets = [r for r in sample if r[0] == "GET" and not ({"If-None-Match", "Range"} & set(r[2]))]
    conditional = [r for r in sample if r[0] == "GET" and "If-None-Match" in r[2] and "ETH" not in r[1]]
    assert memo.hits == len(plain_gets) + 2 * len(conditional)
    assert memo.misses == len(plain_gets)


@pytest.mark.server
def test_a_replay_carries_the_time_of_the_replay_not_of_the_first_answer(artifact_dir: Path) -> None:
    """Two hours after a chart was kept, its replay says Date = then and Expires = then + max-age (not already
    past), as Flask itself would; the clock is the hot path's own, moved on, so no second boundary matters."""
    app = create_app({"artifact_dir": str(artifact_dir)})
    memo = app.wsgi_app
    assert isinstance(memo, HotPath)
    with waitress(app) as port:
        for path in ("/v1/forecast/BTC-USD/chart.png", "/static/docs.js"):
            first = dict((k.lower(), v) for k, v in ask_all(port, "GET", path, {})[1])
            assert ("expires" in first) == path.endswith("chart.png")  # send_file's max_age on charts
            kept_at = parsedate_to_datetime(first["date"]).timestamp()
            later = kept_at + 7200
            memo._clock = lambda later=later: later  # type: ignore[attr-defined]
            hits = memo.hits
            replay = dict((k.lower(), v) for k, v in ask_all(port, "GET", path, {})[1])
            assert memo.hits == hits + 1  # it was the memo's answer
            assert parsedate_to_datetime(replay["date"]).timestamp() == later
            if "expires" in first:
                max_age = parsedate_to_datetime(first["expires"]).timestamp() - kept_at
                assert max_age == 3600
                assert parsedate_to_datetime(replay["expires"]).timestamp() == later + max_age
            memo._clock = time.time  # type: ignore[attr-defined]


def _counting_app(status: str = "200 OK", body: bytes = b"x") -> tuple[Any, list[int]]:
    calls: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(1)
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app, calls


def _get(app: Any, path: str = "/p", query: str = "", method: str = "GET", **headers: str) -> tuple[str, bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "wsgi.url_scheme": "http"}
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    return seen[0], body


def test_a_repeated_get_runs_the_app_once() -> None:
    """The second identical GET is answered from the memo; a different query, origin or method runs the app."""
    app, calls = _counting_app()
    hot = HotPath(app, 2**20)
    assert _get(hot) == ("200 OK", b"x")
    assert _get(hot) == ("200 OK", b"x")
    assert len(calls) == 1
    _get(hot, query="a=1")
    _get(hot, origin="https://a.example")
    _get(hot, method="HEAD")
    _get(hot, method="HEAD")
    assert len(calls) == 5


def test_conditional_and_range_requests_always_reach_the_app() -> None:
    """If-Modified-Since and Range make the answer depend on more than the key: never replayed; nor is an
    If-None-Match with nothing kept to compare it with, and its answer is not kept."""
    app, calls = _counting_app()
    hot = HotPath(app, 2**20)
    for header in (
        {"if_none_match": '"e"'},
        {"if_modified_since": "Mon, 01 Jan 2024 00:00:00 GMT"},
        {"range": "b=0-1"},
    ):
        _get(hot, **header)
        _get(hot, **header)
    assert len(calls) == 6
    assert len(hot) == 0


def test_if_none_match_is_answered_from_the_kept_answers_etag() -> None:
    """With an answer kept, If-None-Match naming its tag (strong, weak or `*`) is a 304 with no body and the kept
    headers less the entity ones; another tag gets the kept answer; the app is not asked again."""
    app, calls = _app(headers=(("ETag", '"v1"'), ("Content-Length", "1"), ("Cache-Control", "public")))
    hot = HotPath(app, 2**20)
    assert _call(hot)[0] == "200 OK"
    for condition in ('"v1"', 'W/"v1"', '"a", "v1"', "*"):
        status, headers, body, _ = _call(hot, HTTP_IF_NONE_MATCH=condition)
        assert (status, body) == ("304 NOT MODIFIED", b""), condition
        assert headers == [("ETag", '"v1"'), ("Cache-Control", "public")]
    status, headers, body, _ = _call(hot, HTTP_IF_NONE_MATCH='"v0"')
    assert (status, body) == ("200 OK", b"x")
    assert len(calls) == 1


def test_a_kept_answer_without_an_etag_is_replayed_whole_to_any_if_none_match() -> None:
    """The landing page and the docs carry no ETag: If-None-Match (even `*`) cannot match them, so the kept
    answer is replayed whole, from the memo."""
    app, calls = _app(headers=(("Content-Length", "1"),))
    hot = HotPath(app, 2**20)
    assert _call(hot)[0] == "200 OK"
    for condition in ('"v1"', "*"):
        status, _, body, _ = _call(hot, HTTP_IF_NONE_MATCH=condition)
        assert (status, body) == ("200 OK", b"x"), condition
    assert len(calls) == 1


@pytest.mark.parametrize(("status", "kept"), [("200 OK", True), ("404 NOT FOUND", True), ("500 ERR", False)])
def test_only_answers_that_depend_on_the_request_alone_are_kept(status: str, kept: bool) -> None:
    """200 and client errors are replayed; a server error runs the app again next time."""
    app, calls = _counting_app(status)
    hot = HotPath(app, 2**20)
    _get(hot)
    _get(hot)
    assert len(calls) == (1 if kept else 2)


def test_the_memo_stays_within_its_byte_bound_under_distinct_queries() -> None:
    """Ten thousand distinct queries churn the memo but never take it past its bound; the newest answers stay."""
    body = b"y" * 1000
    app, calls = _counting_app(body=body)
    bound = 64 * 1024
    hot = HotPath(app, bound)
    for i in range(10_000):
        _get(hot, query=f"date={i}")
        assert hot.used_bytes <= bound
    # Each answer counts at least its 1,000-byte body plus a fixed overhead: 42 of them fit, not 64.
    assert 0 < len(hot) <= bound // 1512
    before = len(calls)
    _get(hot, query="date=9999")
    assert len(calls) == before  # the newest is still kept
    _get(hot, query="date=0")
    assert len(calls) == before + 1  # the oldest was dropped


def test_an_answer_larger_than_a_sixteenth_of_the_bound_is_not_kept() -> None:
    """One big answer cannot evict everything else: above bound/16 it is served but not kept."""
    app, calls = _counting_app(body=b"z" * 5000)
    hot = HotPath(app, 16 * 4096)  # 4,096-byte limit per answer
    _get(hot)
    _get(hot)
    assert len(calls) == 2
    assert hot.used_bytes == 0


def test_hot_cache_mb_zero_turns_the_memo_off(artifact_dir: Path) -> None:
    """HOT_CACHE_MB=0: every request runs Flask (nothing kept)."""
    app = create_app({"artifact_dir": str(artifact_dir), "hot_cache_mb": 0})
    client = app.test_client()
    client.get("/healthz")
    client.get("/healthz")
    assert len(app.wsgi_app) == 0  # type: ignore[arg-type]
    assert app.wsgi_app.hits == 0  # type: ignore[attr-defined]


@pytest.mark.server
def test_waitress_queue_notices_come_once_a_minute_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    """Ten thousand "Task queue depth" notices within a minute give one log line; the next minute's line counts
    the requests that waited meanwhile and the deepest queue."""
    now = [1000.0]
    notices = QueueNotices(every=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        for i in range(10_000):
            notices.warning("Task queue depth is %d", i % 7)
            now[0] += 0.005  # 50 s in all
        assert [r.getMessage() for r in caplog.records] == [
            "1 request(s) waited for a free thread in the last 60 s (deepest queue 0); more threads "
            "(WEB_CONCURRENCY) or instances help if this persists"
        ]
        now[0] += 10  # 60 s after the first line
        notices.warning("Task queue depth is %d", 3)
    assert len(caplog.records) == 2
    assert caplog.records[1].name == "waitress.queue"
    assert (
        caplog.records[1]
        .getMessage()
        .startswith("10000 request(s) waited for a free thread in the last 60 s (deepest queue 6)")
    )


def test_a_kept_chart_is_the_artifacts_own_bytes(artifact_dir: Path) -> None:
    """A chart the memo keeps is the very bytes object the artifact holds: a chart is in memory once."""
    app = create_app({"artifact_dir": str(artifact_dir)})
    client = app.test_client()
    for _ in range(2):
        assert client.get("/v1/forecast/BTC-USD/chart.png").status_code == 200
    artifact = app.extensions["cryptopredict"].artifact
    chart = artifact.charts[artifact.manifest.symbols["BTC-USD"].charts["forecast"]]
    kept = [entry[2] for entry in app.wsgi_app._memo.values() if entry[2] == chart]  # the memo's bodies
    assert len(kept) == 1
    assert kept[0] is chart


# --------------------------------------------------------------------------- the memo's rules, one by one


def _app(status: str = "200 OK", chunks: tuple[bytes, ...] = (b"x",), headers: tuple = (), **effects: Any):
    """A WSGI app counting its calls; `effects`: volatile (marks the answer), exc_info (passed on)."""
    calls: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ)
        if effects.get("volatile"):
            environ[VOLATILE] = True
        start_response(status, [("Content-Type", "text/plain"), *headers], effects.get("exc_info"))
        return list(chunks)

    return app, calls


def _call(hot: HotPath, **environ: Any) -> tuple[str, list[tuple[str, str]], bytes, Any]:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/p", "QUERY_STRING": "", "wsgi.url_scheme": "http", **environ}
    seen: list[Any] = []
    body = b"".join(hot(env, lambda status, headers, exc_info=None: seen.append((status, headers, exc_info))))
    return seen[0][0], seen[0][1], body, seen[0][2]


def test_an_answer_depends_on_its_host_and_script_name_and_only_they_are_added_to_the_key() -> None:
    """Answers built from the request's own URL differ by Host and mount point: each is the app's own."""
    app, calls = _app()
    hot = HotPath(app, 2**20)
    for host, script in (("a.example", ""), ("b.example", ""), ("a.example", "/api"), ("a.example", "")):
        _call(hot, HTTP_HOST=host, SCRIPT_NAME=script)
    assert len(calls) == 3


def test_an_answer_is_kept_per_accept_encoding_as_sent() -> None:
    """A gzipped and an identity answer to the same URL are two entries: each spelling of Accept-Encoding gets
    the app's own answer once, then its replay."""
    app, calls = _app()
    hot = HotPath(app, 2**20)
    for accept in ("gzip", "", "gzip, br", "gzip", "", "gzip, br"):
        _call(hot, **({"HTTP_ACCEPT_ENCODING": accept} if accept else {}))
    assert len(calls) == 3
    assert hot.hits == 3


def test_a_new_anchor_generation_empties_the_memo_and_keys_what_follows() -> None:
    """Within a generation an answer is replayed; when it moves on the app answers again and only the new
    answers count against the bound."""
    generation = [5]
    app, calls = _app()
    hot = HotPath(app, 2**20, variant=lambda: generation[0])
    _call(hot)
    _call(hot)
    assert len(calls) == 1
    size = hot.used_bytes
    generation[0] = 6
    _call(hot, QUERY_STRING="a=1")
    _call(hot, QUERY_STRING="a=1")
    assert len(calls) == 2
    assert len(hot) == 1
    assert hot.used_bytes == size + len("a=1") + len("6") - len("5")
    _call(hot)
    assert len(calls) == 3  # the generation-5 answer was dropped with its generation


def test_an_answer_the_app_marks_volatile_is_never_replayed() -> None:
    """/healthz with a live feed depends on the clock: each request reaches the app."""
    app, calls = _app(volatile=True)
    hot = HotPath(app, 2**20)
    _call(hot)
    _call(hot)
    assert (len(calls), len(hot)) == (2, 0)


def test_an_error_answer_passes_its_exc_info_on_and_is_not_kept() -> None:
    """An app answering with exc_info (an error after headers) hands it to the server and is not replayed."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        info = sys.exc_info()
    app, calls = _app("200 OK", exc_info=info)
    hot = HotPath(app, 2**20)
    assert _call(hot)[3] is info
    _call(hot)
    assert len(calls) == 2


def test_a_body_in_several_chunks_is_replayed_whole() -> None:
    """The kept body is the chunks joined as they were sent."""
    app, _ = _app(chunks=(b"ab", b"", b"cd"))
    hot = HotPath(app, 2**20)
    assert _call(hot)[2] == b"abcd"
    assert _call(hot)[2] == b"abcd"


def test_each_kept_answer_counts_its_body_headers_and_key() -> None:
    """The bound is counted exactly: body, every header name and value, the key's parts, the fixed overhead."""
    app, _ = _app(chunks=(b"12345",), headers=(("X-Long-Header-Name", "v"),))
    hot = HotPath(app, 2**20)
    _call(hot, QUERY_STRING="q=1", HTTP_HOST="h.example", SCRIPT_NAME="/s")
    headers = len("Content-Type") + len("text/plain") + len("X-Long-Header-Name") + len("v")
    key = len("/p") + len("q=1") + len("\0") + len("h.example") + len("http") + len("/s")
    assert hot.used_bytes == 5 + headers + key + 512


def _size(body: int) -> int:
    """What one answer of the `_app` kind with a `body`-byte body, to path /p, counts against the bound."""
    return body + len("Content-Type") + len("text/plain") + len("/p") + 1 + len("http") + 512


def test_an_answer_of_exactly_a_sixteenth_of_the_bound_is_kept_and_answers_that_fill_it_all_stay() -> None:
    """The limits are inclusive: an answer the size of bound/16 is kept; answers that fill the bound exactly
    evict nothing."""
    bound = 16 * _size(100)
    app, calls = _app(chunks=(b"x" * 100,))
    hot = HotPath(app, bound)
    _call(hot)
    _call(hot)
    assert len(calls) == 1
    queries = "abcdefghijklmnop"  # 16 answers of one size (a one-character query each) fill the bound exactly
    app, calls = _app(chunks=(b"y" * 100,))
    hot = HotPath(app, 16 * (_size(100) + 1))
    for query in queries + queries:
        _call(hot, QUERY_STRING=query)
    assert len(calls) == 16
    assert (len(hot), hot.used_bytes) == (16, 16 * (_size(100) + 1))


@pytest.mark.parametrize(
    "clock", [(("Date", "not a date"),), (("Expires", "Thu, 01 Jan 2026 00:00:00 GMT"),)], ids=["bad-date", "no-date"]
)
def test_an_answer_whose_date_headers_cannot_be_refreshed_is_never_replayed(clock: tuple) -> None:
    """A Date it cannot read, or an Expires with no Date to count from, would be replayed stale: never kept."""
    app, calls = _app(headers=clock)
    hot = HotPath(app, 2**20)
    _call(hot)
    _call(hot)
    assert (len(calls), len(hot)) == (2, 0)


def test_a_replayed_date_is_an_http_date_in_gmt() -> None:
    """The refreshed Date is written as HTTP wants it (RFC 9110's IMF-fixdate, 'GMT'), not as '-0000'."""
    app, _ = _app(headers=(("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),))
    hot = HotPath(app, 2**20, clock=lambda: 1_767_225_600.0 + 3600)
    _call(hot)
    headers = dict(_call(hot)[1])
    assert headers["Date"] == "Thu, 01 Jan 2026 01:00:00 GMT"


def test_an_answer_computed_before_the_anchors_moved_is_never_replayed_after() -> None:
    """A request that raced a generation change (computed at the old anchors, kept after the memo was
    emptied) is kept under its own generation: later requests get the new anchors' answer."""
    generation = [5]
    bodies = iter([b"old", b"other", b"new", b"unexpected"])

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = next(bodies)
        if body == b"old":  # while this answer is computed, the anchors move and another request sees it
            generation[0] = 6
            _call(hot, PATH_INFO="/other")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    hot = HotPath(app, 2**20, variant=lambda: generation[0])
    assert _call(hot)[2] == b"old"
    assert _call(hot)[2] == b"new"
    assert _call(hot)[2] == b"new"
