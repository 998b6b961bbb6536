"""HTTP as caches and browsers expect it, through real Waitress servers with the hot path on and off:
gzip when asked, ETag and 304 on JSON, Vary, the CORS preflight's lifetime and exposed headers."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptopredict.serving import PREFLIGHT_MAX_AGE, create_app
from cryptopredict.serving.caching import GZIP_MIN_BYTES
from cryptopredict.serving.hotpath import HotPath
from tests.test_hotpath import waitress

ALLOWED = "https://allowed.example"
REFUSED = "https://refused.example"
SERIES = "/v1/forecast/BTC-USD?start=2025-01-01&end=2025-03-31&quantiles=0.05,0.25,0.5,0.75,0.95"


def get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict, bytes]:
    """One request; status, headers (lower-case names, repeated ones joined with ', '), body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        joined: dict[str, str] = {}
        for k, v in r.getheaders():
            joined[k.lower()] = f"{joined[k.lower()]}, {v}" if k.lower() in joined else v
        return r.status, joined, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["hot", "flask"])
def server(request: pytest.FixtureRequest, artifact_dir: Path) -> Iterator[tuple[int, HotPath | None]]:
    """A real Waitress server with the hot path on (`hot`) or off (`flask`); yields its port and memo."""
    app = create_app({"artifact_dir": str(artifact_dir), "hot_cache_mb": 64 if request.param == "hot" else 0})
    with waitress(app) as port:
        yield port, app.wsgi_app if request.param == "hot" else None


@pytest.fixture(scope="module")
def one_origin(artifact_dir: Path) -> Iterator[int]:
    """A real Waitress server (hot path on) whose CORS_ORIGINS lists one origin."""
    with waitress(create_app({"artifact_dir": str(artifact_dir), "cors_origins": (ALLOWED,)})) as port:
        yield port


def test_json_is_gzipped_when_asked_and_the_hot_path_replays_the_encoded_bytes(server) -> None:
    """A series asked for with Accept-Encoding: gzip arrives gzipped, several times smaller, and decodes to the
    identity answer; with the hot path on, the repeat comes from the memo with the same bytes."""
    port, memo = server
    status, plain_headers, plain = get(port, SERIES)
    assert status == 200
    assert "content-encoding" not in plain_headers
    hits = memo.hits if memo else 0
    answers = [get(port, SERIES, {"Accept-Encoding": "gzip, deflate, br"}) for _ in range(2)]
    for status, headers, body in answers:
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert int(headers["content-length"]) == len(body) < len(plain) / 4
        assert "Accept-Encoding" in headers["vary"]
        assert gzip.decompress(body) == plain
    # The same answer twice, but for Date (Waitress dates each answer; two may straddle a second).
    first, again = ({k: v for k, v in h.items() if k != "date"} for _, h, _ in answers)
    assert (first, answers[0][2]) == (again, answers[1][2])
    if memo is not None:
        assert memo.hits == hits + 1


@pytest.mark.parametrize(
    "accept", ["", "identity", "gzip;q=0", "br", "gzip;q=0, *"], ids=["none", "identity", "refused", "br", "not-gzip"]
)
def test_json_stays_identity_when_gzip_is_not_accepted(server, accept: str) -> None:
    """Without gzip among the acceptable encodings the answer is sent as is, still saying it varies on them."""
    port, _ = server
    status, headers, body = get(port, SERIES, {"Accept-Encoding": accept} if accept else {})
    assert status == 200
    assert "content-encoding" not in headers
    assert "Accept-Encoding" in headers["vary"]
    assert json.loads(body)["count"] == 90


def test_a_small_answer_is_not_compressed(server) -> None:
    """An answer under the gzip threshold (the original contract's four fields) is sent as is even when gzip
    is accepted."""
    port, _ = server
    status, headers, body = get(port, "/bitcoin?date=2024-06-01", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert len(body) < GZIP_MIN_BYTES
    assert "content-encoding" not in headers
    assert set(json.loads(body)) == {"date", "prediction", "prediction_low", "prediction_high"}


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_json_carries_an_etag_and_if_none_match_answers_304(server, encoding: str) -> None:
    """A JSON 200 has a strong ETag (the gzip form its own); If-None-Match with it is a 304 with no body that
    keeps the validators and cache rules; another tag gets the whole answer."""
    port, _ = server
    asked = {"Accept-Encoding": encoding} if encoding else {}
    status, headers, body = get(port, SERIES, asked)
    etag = headers["etag"]
    assert status == 200
    assert etag.startswith('"')
    assert etag.endswith('-gz"' if encoding else '"')
    status, again, empty = get(port, SERIES, {**asked, "If-None-Match": etag})
    assert (status, empty) == (304, b"")
    assert again["etag"] == etag
    assert again["cache-control"] == headers["cache-control"] == "public, max-age=300"
    assert "Accept-Encoding" in again["vary"]
    status, _, whole = get(port, SERIES, {**asked, "If-None-Match": '"another"'})
    assert (status, whole) == (200, body)


def test_the_identity_and_gzip_forms_have_different_etags_for_the_same_answer(server) -> None:
    """The gzip form's tag is the identity form's with -gz, so the identity tag never validates gzipped bytes."""
    port, _ = server
    plain = get(port, "/openapi.json")[1]["etag"]
    zipped = get(port, "/openapi.json", {"Accept-Encoding": "gzip"})[1]["etag"]
    assert zipped == plain[:-1] + '-gz"'
    assert get(port, "/openapi.json", {"Accept-Encoding": "gzip", "If-None-Match": plain})[0] == 200


def test_the_etag_changes_with_the_answer(server) -> None:
    """Two different answers have two different ETags; the same answer asked twice has one."""
    port, _ = server
    a = get(port, "/v1/forecast/BTC-USD?date=2025-06-01")[1]["etag"]
    b = get(port, "/v1/forecast/BTC-USD?date=2025-06-02")[1]["etag"]
    assert a != b
    assert get(port, "/v1/forecast/BTC-USD?date=2025-06-01")[1]["etag"] == a


def test_errors_carry_no_etag_and_are_never_stored(server) -> None:
    """A problem+json answer has no validator and is no-store, even when gzip is accepted."""
    port, _ = server
    status, headers, _ = get(port, "/bitcoin?date=nope", {"Accept-Encoding": "gzip"})
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert "etag" not in headers
    assert "content-encoding" not in headers
    assert headers["cache-control"] == "no-store"


def test_healthz_is_never_stored_by_a_cache(server) -> None:
    """/healthz says no-store: a liveness probe asks the server, not a cache."""
    port, _ = server
    status, headers, _ = get(port, "/healthz")
    assert status == 200
    assert headers["cache-control"] == "no-store"


def test_with_any_origin_answers_do_not_vary_on_it(server) -> None:
    """With the default CORS_ORIGINS='*' every origin gets the same answer ('*'), so it does not vary on Origin."""
    port, _ = server
    for origin in ({}, {"Origin": ALLOWED}):
        status, headers, _ = get(port, "/v1/symbols", origin)
        assert status == 200
        assert "Origin" not in headers["vary"]
    assert get(port, "/v1/symbols", {"Origin": ALLOWED})[1]["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/v1/symbols", "/bitcoin?date=nope", "/bitcoin/forecast", "/", "/healthz"], ids=str)
@pytest.mark.parametrize("origin", [None, ALLOWED, REFUSED], ids=["no-origin", "allowed", "refused"])
def test_with_one_listed_origin_every_answer_varies_on_origin(one_origin: int, path: str, origin: str | None) -> None:
    """With CORS_ORIGINS restricted to one origin, every answer (allowed, refused or without Origin; JSON, error,
    chart, page) says Vary: Origin once, so a shared cache never hands one origin's answer to another."""
    status, headers, _ = get(one_origin, path, {"Origin": origin} if origin else {})
    assert status in (200, 400)
    assert [v.strip() for v in headers["vary"].split(",")].count("Origin") == 1
    # Without Origin the one listed origin is named anyway (flask-cors's always_send); a refused one gets none.
    assert headers.get("access-control-allow-origin") == (None if origin == REFUSED else ALLOWED)


def test_a_preflight_may_be_kept_and_the_etag_is_readable_from_another_origin(one_origin: int) -> None:
    """The preflight for an allowed origin carries Access-Control-Max-Age; the answer exposes ETag to scripts."""
    preflight = {"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
    status, headers, _ = get(one_origin, "/v1/symbols", preflight, method="OPTIONS")
    assert status == 200
    assert headers["access-control-max-age"] == str(PREFLIGHT_MAX_AGE)
    assert "Origin" in headers["vary"]
    _, headers, _ = get(one_origin, "/v1/symbols", {"Origin": ALLOWED})
    assert headers["access-control-expose-headers"] == "ETag"
    assert headers["etag"]


def test_the_document_says_which_answers_carry_an_etag_and_may_be_304(server) -> None:
    """Every operation answering JSON or a chart documents the ETag header and the 304; the HTML pages do not."""
    port, _ = server
    doc = json.loads(get(port, "/openapi.json")[2])
    for path, item in doc["paths"].items():
        responses = item["get"]["responses"]
        types = set(responses["200"]["content"])
        if types & {"application/json", "image/png"}:
            assert "ETag" in responses["200"]["headers"], path
            assert "304" in responses, path
        else:
            assert types == {"text/html"}, path
            assert "304" not in responses, path
