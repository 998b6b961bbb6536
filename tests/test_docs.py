"""The OpenAPI document, the charts and the landing page, at the HTTP boundary."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from flask.testing import FlaskClient
from openapi_spec_validator import validate

from cryptopredict.serving.contract import CONTRACT_VERSION
from cryptopredict.training.charts import CHART_SIZE
from tests.helpers import http_get

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    return struct.unpack(">II", data[16:24])


def test_the_openapi_document_is_valid_openapi_3_1(live_server: str) -> None:
    """GET /openapi.json passes openapi-spec-validator as OpenAPI 3.1, versioned by the contract's semver and
    naming the model version beside it."""
    spec = http_get(live_server + "/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["version"] == CONTRACT_VERSION
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", CONTRACT_VERSION)
    assert spec["info"]["x-model-version"] == "test-1.0.0"
    validate(spec)


def test_every_error_response_is_documented_as_problem_json(live_server: str) -> None:
    """Each operation documents its 4xx answers, 405 included, as application/problem+json."""
    spec = http_get(live_server + "/openapi.json").json()
    for path, item in spec["paths"].items():
        responses = item["get"]["responses"]
        assert "405" in responses, path
        for status, body in responses.items():
            if status.startswith(("4", "5")):
                assert list(body["content"]) == ["application/problem+json"], (path, status)


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(live_server: str, tmp_path: Path) -> None:
    """Seeded, time-boxed generated requests: no 5xx, every answer matches its documented schema.

    Excluded: positive_data_acceptance, because a schema cannot say that 2025-02-30 is not a date or
    that a date lies outside the served window; those are refused with 400/422 problem+json.
    """
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None
    proc = subprocess.run(
        [cli, "run", f"{live_server}/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--seed", "20261122", "--max-examples", "10",
         "--max-time", "30", "--workers", "1", "--report-dir", str(tmp_path)],
        # schemathesis keeps a .schemathesis/ cache in its working folder: the test's, not the checkout.
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # On failure schemathesis prints each failing case with a curl line that reproduces it.
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


def test_charts_are_pngs_of_the_expected_size_that_differ_between_pairs(live_server: str) -> None:
    """Forecast and components charts for both pairs are 1000x560 PNGs, all four different."""
    digests = set()
    for slug in ("BTC-USD", "ETH-USD"):
        for name in ("chart.png", "components.png"):
            r = http_get(f"{live_server}/v1/forecast/{slug}/{name}")
            assert r.status == 200
            assert r.headers["content-type"] == "image/png"
            assert _png_size(r.body) == CHART_SIZE
            digests.add(hashlib.sha256(r.body).hexdigest())
    assert len(digests) == 4


def test_the_original_chart_urls_serve_bitcoins_charts(live_server: str) -> None:
    """/bitcoin/forecast and /bitcoin/trends are BTC-USD's forecast and components charts."""
    for old, new in (("/bitcoin/forecast", "chart.png"), ("/bitcoin/trends", "components.png")):
        assert http_get(live_server + old).body == http_get(f"{live_server}/v1/forecast/BTC-USD/{new}").body


def test_a_chart_is_not_fetched_twice_while_the_model_is_the_same(live_server: str) -> None:
    """The ETag names the model version and generation; If-None-Match with it answers 304 with no body."""
    first = http_get(live_server + "/bitcoin/forecast")
    etag = first.headers["etag"]
    assert "test-1.0.0" in etag
    # A scheduled retrain keeps the version: the generation makes the tag change with the charts.
    assert http_get(live_server + "/healthz").json()["generation"] in etag
    assert "max-age" in first.headers["cache-control"]
    again = http_get(live_server + "/bitcoin/forecast", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.body == b""
    other = http_get(live_server + "/bitcoin/forecast", headers={"If-None-Match": '"an-older-model"'})
    assert other.status == 200


def test_a_missing_chart_is_a_problem_json_404(live_server: str) -> None:
    """An unknown pair's chart is a 404 problem naming what is served."""
    r = http_get(live_server + "/v1/forecast/DOGE-USD/chart.png")
    assert r.status == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["served"] == ["BTC-USD", "ETH-USD"]


def test_the_landing_page_shows_charts_model_and_backtest(live_server: str) -> None:
    """/ names the model version, links each chart, tables the backtest, links the docs, and loads only its own
    two scripts (uPlot and the page's module), from this server."""
    r = http_get(live_server + "/")
    assert r.status == 200
    page = r.body.decode()
    assert "test-1.0.0" in page
    for slug in ("BTC-USD", "ETH-USD"):
        assert f'href="/v1/forecast/{slug}/chart.png"' in page
    assert page.count("<th>served MAPE ÷ naive</th>") == 2
    assert page.count("<th>weight on Prophet</th>") == 2
    assert 'href="/v1/forecast/BTC-USD/chart.png?model=prophet"' in page
    assert 'href="/docs"' in page
    assert 'href="/openapi.json"' in page
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/uplot/uPlot.iife.min.js">',
        '<script type="module" src="/static/page.js">',
    ]
    for script in ("/static/uplot/uPlot.iife.min.js", "/static/page.js"):
        served = http_get(live_server + script)
        assert served.status == 200
        assert served.headers["content-type"].startswith("text/javascript")
    assert "http://" not in page
    assert "https://" not in page


def test_html_pages_carry_a_strict_csp_and_every_answer_the_safety_headers(live_server: str) -> None:
    """HTML gets the CSP; every response (JSON, PNG, errors) gets nosniff and no-referrer."""
    for path in ("/", "/docs"):
        csp = http_get(live_server + path).headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-eval" not in csp
    for path in ("/", "/bitcoin?date=2025-01-01", "/bitcoin/forecast", "/bitcoin?date=nope", "/nowhere"):
        h = http_get(live_server + path).headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
    assert http_get(live_server + "/bitcoin?date=nope").headers["cache-control"] == "no-store"


def test_the_landing_page_tables_every_pair_and_embeds_no_png(client: FlaskClient) -> None:
    """Every pair gets a table row (the numbers a page without JavaScript shows) linking its section and its PNG
    charts; the page embeds none of them: its chart is drawn in the browser by its own script and uPlot."""
    r = client.get("/")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "<strong>2 pairs</strong>" in page
    for slug in ("BTC-USD", "ETH-USD"):
        assert f'<td><a href="#{slug}">' in page
        assert f'<section id="{slug}">' in page
        assert f'href="/v1/forecast/{slug}?date=' in page
        assert f'href="/v1/forecast/{slug}/chart.png"' in page
        assert f'<tr data-slug="{slug}" data-end="' in page
    assert "<img " not in page
    assert '<script src="/static/uplot/uPlot.iife.min.js"></script>' in page
    assert '<script type="module" src="/static/page.js"></script>' in page
    assert '<div id="live" data-api="" hidden></div>' in page
