"""A real headless Chromium as the user: Swagger UI, cross-origin fetch(), the landing page."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from tests.helpers import api_server, http_get, require_tool

CHROMIUM = require_tool("/usr/bin/chromium")  # Debian's chromium
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # A fresh context is a fresh profile: no cache, no cookies from another test.
    context = browser.new_context()
    pg = context.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.requested = requests  # type: ignore[attr-defined]
    yield pg
    context.close()


def _only_local(urls: list[str], base: str) -> None:
    host = urlsplit(base).netloc
    off = [u for u in urls if not u.startswith("data:") and urlsplit(u).netloc != host]
    assert urls, "the page made no request at all"
    assert off == [], f"requests left {host}: {off}"


def test_swagger_ui_renders_every_operation_and_try_it_out_gets_a_prediction(page, live_server: str) -> None:
    """/docs lists the operations from local assets only; Try it out on /bitcoin shows 200 and a prediction."""
    page.goto(live_server + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/bitcoin" in [p.strip() for p in paths]
    assert "/v1/forecast/{symbol}" in [p.strip().replace("\u200b", "") for p in paths]
    block = page.locator("#operations-original-bitcoin")
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.locator("input[placeholder='date']").fill("2026-06-01")
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=20000)
    assert status.inner_text().strip().startswith("200")
    assert '"prediction"' in block.locator(".live-responses-table .microlight").first.inner_text()
    _only_local(page.requested, live_server)


@pytest.fixture
def other_origin() -> Iterator[str]:
    """A blank page served from another 127.0.0.1 port: another origin, as a web frontend would be."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>frontend</title><p>frontend"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


_FETCH = """async (url) => {
  try { const r = await fetch(url); return {status: r.status, body: await r.json()}; }
  catch (e) { return {blocked: String(e)}; }
}"""


@pytest.mark.server
@pytest.mark.parametrize("allowed", [True, False], ids=["origin-allowed", "origin-excluded"])
def test_a_frontend_on_another_origin_reads_bitcoin_only_when_cors_allows_it(
    page,
    artifact_dir: Path,
    other_origin: str,
    allowed: bool,
) -> None:
    """fetch() from another origin gets the prediction when CORS_ORIGINS lists it, and is blocked otherwise."""
    origins = other_origin if allowed else "http://127.0.0.1:9,https://example.test"
    with api_server(artifact_dir, env={"CORS_ORIGINS": origins}) as api:
        page.goto(other_origin + "/")
        result = page.evaluate(_FETCH, f"{api}/bitcoin?date=2026-06-01")
    if allowed:
        assert result["status"] == 200, result
        assert result["body"]["prediction"] > 0
    else:
        assert "blocked" in result, result
        assert "Failed to fetch" in result["blocked"]


# Where an <img> paints its picture, in page coordinates: inside its border, at scroll (0, 0).
_CONTENT_BOX = """img => {
  const r = img.getBoundingClientRect();
  return [r.left + scrollX + img.clientLeft, r.top + scrollY + img.clientTop, img.clientWidth, img.clientHeight];
}"""


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


def test_the_landing_page_shows_every_chart_and_loads_nothing_from_elsewhere(page, live_server: str) -> None:
    """/ renders both pairs' forecast and track-record charts; the screenshot shows each chart's own
    pixels where its <img> sits (and not another chart's); no request leaves 127.0.0.1."""
    page.goto(live_server + "/", wait_until="load")
    images = page.locator("img")
    sources = [images.nth(i).get_attribute("src") for i in range(images.count())]
    assert sources == [
        "/v1/forecast/BTC-USD/chart.png",
        "/v1/track-record/BTC-USD/chart.png",
        "/v1/forecast/ETH-USD/chart.png",
        "/v1/track-record/ETH-USD/chart.png",
    ]
    for i in range(len(sources)):
        size = images.nth(i).evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert size == [True, 1000, 560]
    shot = _pixels(page.screenshot(full_page=True))
    assert shot.shape[1] == 1280  # the default viewport's width; the full page is taller than it
    assert shot.shape[0] > 4 * 560
    charts = {src: _pixels(http_get(live_server + src).body) for src in sources}
    for i, src in enumerate(sources):
        x, y, w, h = (round(v) for v in images.nth(i).evaluate(_CONTENT_BOX))
        assert (w, h) == (1000, 560), src  # drawn at its natural size, so pixels compare one to one
        drawn = shot[y : y + h, x : x + w]
        assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 50, f"{src} is drawn as a blank area"
        # Mean difference per channel, out of 255: about 0 for the chart itself (anti-aliasing
        # at a fractional position allowed), far more for any other chart of the page.
        assert np.abs(drawn - charts[src]).mean() < 2, src
        others = [np.abs(drawn - png).mean() for other, png in charts.items() if other != src]
        assert min(others) > 2, src
    assert page.locator("h2").all_inner_texts() == ["BTC/USD", "ETH/USD"]
    _only_local(page.requested, live_server)
