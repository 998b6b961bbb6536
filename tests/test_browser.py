"""A real headless Chromium as the user: Swagger UI, cross-origin fetch(), the landing page."""

from __future__ import annotations

import http.server
import io
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from tests.fake_alpaca import FakeAlpaca
from tests.helpers import ROOT, api_server, http_get, require_tool, stop
from tests.test_live import _last_closes, _start, recent_artifact  # noqa: F401 (a fixture)

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
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors  # type: ignore[attr-defined]
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


# Screenshots of the live page, kept after the run (CI's artifacts; not committed).
SCREENSHOTS = ROOT / "ci-artifacts" / "screenshots"


def _drawn(page, after: str | None = None, timeout: float = 20000) -> dict[str, str]:
    """The live element's data once the page has drawn (a later drawing than `after`, when given)."""
    page.wait_for_function(
        "after => { const d = document.getElementById('live').dataset; return d.updated && d.updated !== after; }",
        arg=after,
        timeout=timeout,
    )
    return page.evaluate("() => ({...document.getElementById('live').dataset})")


def _shot(page, name: str) -> bytes:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return page.screenshot(path=str(SCREENSHOTS / name), full_page=False)


def _api_point(base: str, symbol: str, date: str) -> dict:
    return http_get(f"{base}/v1/forecast/{symbol}?date={date}").json()  # type: ignore[return-value]


def test_the_live_page_draws_the_apis_numbers_with_nothing_from_elsewhere(page, live_server: str) -> None:
    """/ draws the fan chart in the browser from the API's JSON: its last median and time are the API's answer for
    that bar, the anchor is the one /v1/symbols names, hovering shows values in USD, the console stays clean and no
    request leaves 127.0.0.1."""
    page.goto(live_server + "/")
    data = _drawn(page)
    point = _api_point(live_server, "BTC-USD", data["lastDate"])
    assert float(data["lastMedian"]) == point["prediction"]
    assert data["lastTime"] == point["time"]
    anchor = next(
        s["anchor"] for s in http_get(live_server + "/v1/symbols").json()["symbols"] if s["symbol"] == "BTC-USD"
    )
    assert float(data["anchorPrice"]) == anchor["price"]
    fan = page.locator("#fan .u-over")
    box = fan.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    values = page.locator("#fan .u-legend .u-value").all_inner_texts()
    assert any(v.startswith("$") for v in values), values
    drawn = _pixels(page.locator("#fan canvas").screenshot())
    assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 50, "the fan chart is blank"
    assert page.locator("#curve canvas").count() == 1
    _shot(page, "live-page.png")
    assert page.errors == []  # type: ignore[attr-defined]
    _only_local(page.requested, live_server)


def test_the_pair_picker_and_the_probability_widget_answer_as_the_api_does(page, live_server: str) -> None:
    """Picking ETH/USD redraws its chart with the API's numbers; asking the chance of a price on a date shows what
    /probability answers for the same question."""
    page.goto(live_server + "/")
    first = _drawn(page)
    page.select_option("#controls select[name=pair]", "ETH-USD")
    data = _drawn(page, first["updated"])
    assert float(data["lastMedian"]) == _api_point(live_server, "ETH-USD", data["lastDate"])["prediction"]
    page.select_option("#prob-form select[name=side]", "below")
    page.fill("#prob-form input[name=price]", "2500")
    page.fill("#prob-form input[name=date]", "2026-05-01")
    page.click("#prob-form button")
    page.wait_for_function(
        "() => document.getElementById('prob').textContent.startsWith('P(ETH/USD close below $2,500 at 2026-05-02')"
    )
    shown = float(page.locator("#prob").get_attribute("data-probability"))
    answer = http_get(live_server + "/v1/forecast/ETH-USD/probability?date=2026-05-01&below=2500").json()
    assert shown == answer["probability"]
    assert answer["time"] in page.locator("#prob").inner_text()
    assert page.errors == []  # type: ignore[attr-defined]


def test_without_javascript_the_page_is_the_table(browser, live_server: str) -> None:
    """With JavaScript off the interactive part stays hidden and the table shows each pair's numbers."""
    context = browser.new_context(java_script_enabled=False)
    try:
        pg = context.new_page()
        pg.goto(live_server + "/")
        assert not pg.locator("#live").is_visible()
        row = pg.locator("tr[data-slug=BTC-USD]")
        assert row.is_visible()
        median = float(row.locator("td.median").get_attribute("data-value"))
        end = row.get_attribute("data-end")
        assert median == _api_point(live_server, "BTC-USD", end)["prediction"]
    finally:
        context.close()


@pytest.fixture
def static_copy(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static copy of the page's script and uPlot served from another 127.0.0.1 port (a frontend elsewhere);
    yields its base URL and folder (the test writes index.html, naming the API)."""
    static = ROOT / "cryptopredict" / "serving" / "static"
    for src in (static / "page.js", static / "uplot" / "uPlot.iife.min.js", static / "uplot" / "uPlot.min.css"):
        shutil.copy(src, tmp_path / src.name)

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


_STATIC_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>elsewhere</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="uPlot.min.css"></head>
<body><div id="live" data-api="{api}" hidden></div>
<script src="uPlot.iife.min.js"></script><script type="module" src="page.js"></script></body></html>"""


def test_a_static_copy_on_another_origin_draws_the_same_chart_through_cors(page, live_server: str, static_copy) -> None:
    """The same script served from another port, told the API's address, draws the same numbers through CORS with a
    clean console, and asks nothing of any host but the two local ones."""
    base, folder = static_copy
    (folder / "index.html").write_text(_STATIC_PAGE.format(api=live_server))
    page.goto(base + "/index.html")
    data = _drawn(page)
    assert float(data["lastMedian"]) == _api_point(live_server, "BTC-USD", data["lastDate"])["prediction"]
    assert page.locator("#prob").get_attribute("data-probability") is not None
    _shot(page, "live-page-cross-origin.png")
    assert page.errors == []  # type: ignore[attr-defined]
    hosts = {urlsplit(u).netloc for u in page.requested if not u.startswith("data:")}
    assert hosts == {urlsplit(base).netloc, urlsplit(live_server).netloc}


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


# The live-price page runs on the artifact of tests/test_live.py (recent synthetic hourly bars) and its fake of
# Alpaca (both imported at the top).
LIVE_INTERVAL = 0.5  # seconds between the feed's polls, and the page's (its shortest)


def test_the_page_follows_a_live_price_move_within_one_interval(page, recent_artifact: Path) -> None:  # noqa: F811
    """When the fake Alpaca's BTC price moves, the chart's anchor and last median move within one poll interval
    of the API's own anchor moving, to the API's numbers, and the table with them, with a clean console."""
    closes = _last_closes(recent_artifact)
    fake = FakeAlpaca({}).start()
    for pair, close in closes.items():
        fake.set_latest(pair, close * 1.002)
    base, proc = _start(recent_artifact, fake, {"LIVE_PRICES_INTERVAL": str(LIVE_INTERVAL)})
    try:
        page.goto(base + "/")
        before = _drawn(page)
        assert float(before["interval"]) == LIVE_INTERVAL
        moved = closes["BTC/USD"] * 1.01
        fake.set_latest("BTC/USD", moved)
        deadline = time.monotonic() + 15
        while True:  # the API's own anchor first: the feed's poll is not the page's to wait for
            anchor = next(
                s["anchor"] for s in http_get(base + "/v1/symbols").json()["symbols"] if s["pair"] == "BTC/USD"
            )
            if abs(anchor["price"] / moved - 1) < 1e-9:
                break
            assert time.monotonic() < deadline, anchor
            time.sleep(0.05)
        seen = time.monotonic()
        page.wait_for_function(
            "price => Math.abs(Number(document.getElementById('live').dataset.anchorPrice) / price - 1) < 1e-9",
            arg=moved,
            timeout=(LIVE_INTERVAL + 5) * 1000,
        )
        late = time.monotonic() - seen
        # The interval, and 2.5 s for the page's own fetches and drawing on two shared cores.
        assert late < LIVE_INTERVAL + 2.5, f"the page took {late:.2f} s to follow the API"
        data = _drawn(page, before["updated"])  # the whole redrawing done: chart, widget, table
        drawn_at = {"price": float(data["anchorPrice"]), "time": data["anchorTime"], "source": "live"}
        point = _api_point(base, "BTC-USD", data["lastDate"])
        row = page.locator("tr[data-slug=BTC-USD]")
        at_end = _api_point(base, "BTC-USD", row.get_attribute("data-end"))
        if point["anchor"] == at_end["anchor"] == drawn_at:  # (compared at one anchor: the feed polls on)
            assert float(data["lastMedian"]) == point["prediction"]
            assert float(row.locator("td.median").get_attribute("data-value")) == at_end["prediction"]
            assert "the live price $" in row.locator("td.anchor").inner_text()
        _shot(page, "live-page-moved.png")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        stop(proc)
        fake.stop()
