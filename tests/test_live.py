"""The live price feed, end to end: api.py as a real Waitress server polling a local fake of Alpaca.

The artifact is trained here on synthetic hourly bars that end three hours before now, so a live
price observed now is after the data and well inside the artifact's band, whatever the date.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from cryptopredict.artifact import read_artifact
from cryptopredict.serving.lookup import last_close
from cryptopredict.training.config import BacktestConfig, TrainConfig
from cryptopredict.training.pipeline import run
from cryptopredict.training.sources.csv import CsvSource
from tests.fake_alpaca import LATEST_BARS_PATH, FakeAlpaca, Reply, random_walk_bars
from tests.helpers import ROOT, await_healthy, free_port, http_get, stop

pytestmark = [pytest.mark.training, pytest.mark.server]  # what every test here needs (tests/conftest.py)

PAIRS = ("BTC/USD", "ETH/USD")
INTERVAL = 0.2  # seconds between polls
MAX_AGE = 1.5  # seconds a live price may be used: a fault falls back to the artifact's anchor quickly
TIMEOUT = 0.5


# A watch rule on BTC/USD 0.5% above its last close a day ahead: its value moves with the live price.
ALERT_RULE = """
[[rule]]
name = "btc-up"
pair = "BTC/USD"
kind = "probability_above"
price = {price}
horizon = "24h"
threshold = 0.5
webhook_env = "ALERTS_WEBHOOK_URL"
"""


@pytest.fixture(scope="module")
def recent_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Prophet fits on 30 days of synthetic hourly bars whose last bar opened 3 hours ago (no backtest)."""
    csv_dir = tmp_path_factory.mktemp("hourly")
    last = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=3)
    periods = 24 * 30
    first = (last - (periods - 1) * pd.Timedelta("1h")).tz_localize(None)
    for pair, frame in random_walk_bars(PAIRS, periods=periods, freq="1h", start=first).items():
        if pair == "BTC/USD":
            btc_close = float(frame["close"].iloc[-1])
        frame = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        frame.to_csv(csv_dir / f"{pair.replace('/', '-')}.hourly.csv", index=False)
    rules = csv_dir / "alerts.toml"
    rules.write_text(ALERT_RULE.format(price=f"{btc_close * 1.005:.2f}"))
    out = tmp_path_factory.mktemp("live-artifact")
    config = TrainConfig(
        source=CsvSource(str(csv_dir)),
        symbols=PAIRS,
        timeframe="1Hour",
        out=str(out),
        model_version="live-1",
        backtest=BacktestConfig(cutoffs=0),
        alert_rules=str(rules),
    )
    run(config, log=lambda _line: None)
    return out


def _last_closes(artifact: Path) -> dict[str, float]:
    return {fc.symbol: last_close(fc) for fc in read_artifact(artifact).forecasts.values()}


@dataclass
class Server:
    """api.py with the feed on, the fake it polls, and what it printed."""

    base: str
    proc: subprocess.Popen
    fake: FakeAlpaca
    closes: dict[str, float]

    def get(self, path: str) -> dict:
        reply = http_get(self.base + path)
        assert reply.status == 200, (path, reply.status, reply.body[:300])
        return reply.json()  # type: ignore[return-value]

    def anchors(self) -> dict[str, dict]:
        return {s["pair"]: s["anchor"] for s in self.get("/v1/symbols")["symbols"]}

    def wait_for(self, what: Callable[[dict[str, dict]], bool], seconds: float = 15) -> dict[str, dict]:
        """Poll /v1/symbols until `what` holds for the anchors (every answer on the way must be a 200)."""
        deadline = time.monotonic() + seconds
        while True:
            anchors = self.anchors()
            if what(anchors):
                return anchors
            assert time.monotonic() < deadline, f"still {anchors}"
            time.sleep(0.05)

    def polls_after(self, count: int) -> None:
        """Wait until the feed has sent `count` more requests than now: the ones before are processed."""
        start = len(self.fake.requests)
        deadline = time.monotonic() + 15
        while len(self.fake.requests) < start + count:
            assert time.monotonic() < deadline, "the feed stopped polling"
            time.sleep(0.02)


def _start(artifact: Path, fake: FakeAlpaca, extra_env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {
        **os.environ,
        "LIVE_PRICES": "alpaca",
        "ALPACA_DATA_URL": fake.url,
        "LIVE_PRICES_INTERVAL": str(INTERVAL),
        "LIVE_PRICES_MAX_AGE": str(MAX_AGE),
        "LIVE_PRICES_TIMEOUT": str(TIMEOUT),
        "ALPACA_API_KEY": "key-id-for-tests",
        "ALPACA_SECRET_KEY": "secret-for-tests",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "api.py"), "--artifact", str(artifact), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    if not await_healthy(proc, base, 30):
        pytest.fail(f"api.py did not answer within 30 s: {stop(proc)}")
    return base, proc


@pytest.fixture(scope="module")
def server(recent_artifact: Path) -> Iterator[Server]:
    closes = _last_closes(recent_artifact)
    fake = FakeAlpaca({}).start()
    for pair, close in closes.items():
        fake.set_latest(pair, close * 1.002)
    base, proc = _start(recent_artifact, fake)
    srv = Server(base, proc, fake, closes)
    try:
        yield srv
    finally:
        stop(proc)
        srv.fake.stop()


def _all_live(price_of: dict[str, float]) -> Callable[[dict[str, dict]], bool]:
    return lambda anchors: all(
        anchors[p]["source"] == "live" and anchors[p]["price"] == pytest.approx(price_of[p], rel=1e-9) for p in price_of
    )


def _reset(srv: Server) -> None:
    """No faults, every pair trading 0.2% above its last close, and the feed live again for both."""
    srv.fake.clear()
    prices = {p: c * 1.002 for p, c in srv.closes.items()}
    for pair, price in prices.items():
        srv.fake.set_latest(pair, price)
    srv.wait_for(_all_live(prices))


def test_answers_follow_the_live_price_from_the_next_poll_and_the_memo_never_replays_the_old_one(
    server: Server,
) -> None:
    """A price change reaches every answer with the first poll after it; replayed answers are the new ones."""
    _reset(server)
    target = server.get("/v1/symbols")["symbols"][0]["data_end"]
    ask = f"/v1/forecast/BTC-USD?date={pd.Timestamp(target) + pd.Timedelta(hours=6):%Y-%m-%dT%H:%M:%SZ}"
    before = server.get(ask)
    assert before == server.get(ask)  # the second one is the memo's replay
    assert before["anchor"]["source"] == "live"
    new_price = server.closes["BTC/USD"] * 1.01
    server.fake.set_latest("BTC/USD", new_price)
    server.polls_after(2)  # the first poll after the change has been processed when the second is sent
    after = server.get(ask)
    assert after["anchor"]["price"] == pytest.approx(new_price)
    assert after["prediction"] == pytest.approx(before["prediction"] * 1.01 / 1.002, rel=1e-6)
    assert after["prediction_low"] < after["prediction"] < after["prediction_high"]
    btc = http_get(server.base + "/bitcoin?date=" + ask.rsplit("=", 1)[1]).json()
    assert btc["prediction"] == after["prediction"]  # type: ignore[index]
    page = http_get(server.base + "/").body.decode()
    assert f"the live price {new_price:,.6g} at " in page
    assert "the chart below follows it" in page
    # Polls are spaced by the interval at least (a lower bound only: the machine may be slow).
    times = [r.at for r in server.fake.requests if r.path == LATEST_BARS_PATH][-5:]
    assert all(b - a >= INTERVAL * 0.9 for a, b in itertools.pairwise(times))


def _rule_and_its_check(server: Server) -> tuple[dict, dict]:
    """The alert rule and the answer of its `check` call, asked until both rest on the same anchor (a poll may
    land between the two requests)."""
    for _ in range(20):
        (rule,) = server.get("/v1/alerts")["rules"]
        answer = server.get(rule["check"])
        if rule["anchor"] == answer["anchor"]:
            return rule, answer
    pytest.fail("the anchor moved between every pair of requests")


def test_alerts_are_evaluated_at_the_live_anchor_probability_answers_at(server: Server) -> None:
    """As the feed moves BTC's price, /v1/alerts evaluates the rule at the live anchor /probability answers at,
    number for number, and names it; training's evaluation stays beside it at the artifact's anchor."""
    _reset(server)
    seen = []
    for factor in (1.002, 1.012):
        price = server.closes["BTC/USD"] * factor
        server.fake.set_latest("BTC/USD", price)
        server.wait_for(lambda a, price=price: a["BTC/USD"]["price"] == pytest.approx(price, rel=1e-9))
        rule, answer = _rule_and_its_check(server)
        assert rule["anchor"]["source"] == "live"
        assert rule["anchor"]["price"] == pytest.approx(price, rel=1e-9)
        assert (rule["value"], rule["time"]) == (answer["probability"], answer["time"])
        assert rule["holds"] is (rule["value"] >= 0.5)
        assert rule["at_training"]["anchor"]["source"] == "artifact"
        seen.append(rule["value"])
    assert seen[1] > seen[0]  # the price rose past the rule's: more likely to close above it


def test_a_horizon_counts_from_the_live_anchors_time(server: Server) -> None:
    """With a live price, `horizon=24h` answers the bar that closes 24 hours after the live anchor's time."""
    _reset(server)
    point = server.get("/v1/forecast/BTC-USD?horizon=24h")
    anchor = pd.Timestamp(point["anchor"]["time"])
    assert point["anchor"]["source"] == "live"
    assert pd.Timestamp(point["time"]) == anchor + pd.Timedelta(hours=24)
    assert point["kind"] == "forecast"


def test_with_a_live_anchor_kind_and_time_say_which_bars_have_closed(server: Server) -> None:
    """Around a live anchor each bar's `time` says whether it closed before it: `fitted` bars carry their close,
    `elapsed` bars (closed since the data, before the live price) carry none, and every `forecast` bar closes after
    the anchor; the columns form says the same."""
    _reset(server)
    btc = next(s for s in server.get("/v1/symbols")["symbols"] if s["symbol"] == "BTC-USD")
    end = pd.Timestamp(btc["anchor"]["time"]) + pd.Timedelta(hours=3)
    query = f"/v1/forecast/BTC-USD?start={btc['data_end']}&end={end:%Y-%m-%dT%H:%M:%SZ}"
    body = server.get(query)
    assert body["anchor"]["source"] == "live"
    anchor = pd.Timestamp(body["anchor"]["time"])  # the answer's own (a poll may have moved it since)
    points = body["points"]
    kinds = [p["kind"] for p in points]
    assert kinds[0] == "fitted"
    assert kinds == sorted(kinds, key=["fitted", "elapsed", "forecast"].index)
    assert "elapsed" in kinds  # the data ends three hours before now
    for p in points:
        closed = pd.Timestamp(p["time"]) <= anchor
        assert closed == (p["kind"] != "forecast"), p
        assert (p["actual_close"] is not None) == (p["kind"] == "fitted"), p
    columns = server.get(query + "&format=columns")
    if columns["anchor"] == body["anchor"]:
        assert columns["columns"]["kind"] == kinds
        assert columns["columns"]["actual"] == [p["actual_close"] for p in points]


def test_one_request_asks_for_every_served_pair_with_the_keys(server: Server) -> None:
    """Each poll is one GET of the latest bars of both pairs, with Alpaca's key headers."""
    server.polls_after(1)
    last = [r for r in server.fake.requests if r.path == LATEST_BARS_PATH][-1]
    assert last.method == "GET"
    assert sorted(last.query["symbols"].split(",")) == sorted(PAIRS)
    headers = {k.lower(): v for k, v in last.headers.items()}
    assert headers["apca-api-key-id"] == "key-id-for-tests"
    assert headers["apca-api-secret-key"] == "secret-for-tests"


def _break_connection(srv: Server) -> Callable[[], None]:
    port = srv.fake.port
    srv.fake.stop()

    def mend() -> None:
        srv.fake = FakeAlpaca({}, port=port).start()

    return mend


FAULTS: dict[str, Callable[[Server], Callable[[], None] | None]] = {
    "connection refused": _break_connection,
    "HTTP 500": lambda s: s.fake.inject(Reply(status=500), times=None) and None,
    "429 with Retry-After": lambda s: (
        s.fake.inject(Reply(status=429, headers={"Retry-After": "1"}), times=None) and None
    ),
    "slower than the timeout": lambda s: s.fake.inject(Reply(delay=TIMEOUT * 3), times=None) and None,
    "malformed JSON": lambda s: s.fake.inject(Reply(body="<html>oops"), times=None) and None,
    "a price 10x off": lambda s: s.fake.set_latest("BTC/USD", s.closes["BTC/USD"] * 10),
    "a NaN price": lambda s: s.fake.set_latest("BTC/USD", math.nan),
    "a timestamp before the data end": lambda s: s.fake.set_latest(
        "BTC/USD", s.closes["BTC/USD"], at=pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=5)
    ),
    "a timestamp in the future": lambda s: s.fake.set_latest(
        "BTC/USD", s.closes["BTC/USD"], at=pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=2)
    ),
    "a missing symbol": lambda s: s.fake.drop_latest("BTC/USD"),
}
# Faults of one pair's price leave the other pair live.
ONE_PAIR = {
    "a price 10x off",
    "a NaN price",
    "a timestamp before the data end",
    "a timestamp in the future",
    "a missing symbol",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_falls_back_to_the_artifacts_anchor_with_no_error_and_recovers(server: Server, fault: str) -> None:
    """Every answer stays a 200, the affected pairs say source artifact, and the feed recovers when the fault ends."""
    _reset(server)
    mend = FAULTS[fault](server)
    affected = ["BTC/USD"] if fault in ONE_PAIR else list(PAIRS)
    anchors = server.wait_for(lambda a: all(a[p]["source"] == "artifact" for p in affected))
    for pair in affected:
        assert anchors[pair]["price"] == server.closes[pair]
    if fault in ONE_PAIR:
        assert anchors["ETH/USD"]["source"] == "live"
    end = server.get("/v1/symbols")["symbols"][0]["data_end"]
    when = f"{pd.Timestamp(end) + pd.Timedelta(hours=5):%Y-%m-%dT%H:%M:%SZ}"
    for path in (
        f"/v1/forecast/BTC-USD?date={when}",
        f"/v1/forecast/BTC-USD?date={when}&quantiles=0.05,0.95",
        f"/v1/forecast/BTC-USD/probability?date={when}&above=1",
        f"/v1/forecast/BTC-USD?start={end}&end={when}",
    ):
        assert server.get(path)["anchor"]["source"] == "artifact"
    assert http_get(server.base + f"/bitcoin?date={when}").status == 200
    assert http_get(server.base + "/").status == 200
    health = server.get("/healthz")["live_prices"]
    if fault in ONE_PAIR:
        assert health["refusals"] > 0
        assert "BTC-USD" not in health["live_symbols"]
    else:
        assert health["state"] == "failing"
        assert health["failures"] > 0
    if mend is not None:
        mend()
    _reset(server)  # recovers: both pairs live again at the fake's price
    assert server.get("/healthz")["live_prices"]["state"] == "ok"


def test_a_failure_is_logged_once_per_change_of_state(recent_artifact: Path) -> None:
    """Many failed polls, one warning line; recovery, one line; SIGTERM stops the feed with the server."""
    closes = _last_closes(recent_artifact)
    with FakeAlpaca({}) as fake:
        for pair, close in closes.items():
            fake.set_latest(pair, close)
        _base, proc = _start(recent_artifact, fake)
        try:
            rule = fake.inject(Reply(status=500), times=None)
            deadline = time.monotonic() + 15
            while rule.fired < 4:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            fake.clear()
            count = len(fake.requests)
            while len(fake.requests) < count + 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            polls_at_exit = len(fake.requests)
        finally:
            out = stop(proc)
        time.sleep(INTERVAL * 3)
        assert len(fake.requests) == polls_at_exit  # nothing polls once the server has stopped
    assert out.count("poll failed: HTTP 500") == 1, out
    assert out.count("live prices: ok") == 2, out  # the first success, and the recovery
    assert "api.py: stopped" in out
    assert "live prices: stopped after" in out
    assert "Traceback" not in out
    assert "secret-for-tests" not in out


AUDIT = """
import runpy, sys
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "http.client.connect"):
        print("AUDIT", event, repr(args), file=sys.stderr, flush=True)
sys.addaudithook(hook)
sys.argv = ["api.py", *sys.argv[1:]]
runpy.run_path("api.py", run_name="__main__")
"""


@pytest.mark.parametrize("live", [False, True], ids=["feed off", "feed on"])
def test_with_the_feed_off_the_api_makes_no_outbound_request(recent_artifact: Path, live: bool) -> None:
    """Audited at the socket layer: off, no connect or name lookup while it serves; on, the feed's connect is seen."""
    with FakeAlpaca({}) as fake:
        for pair, close in _last_closes(recent_artifact).items():
            fake.set_latest(pair, close)
        port = free_port()
        env = {**os.environ, "ALPACA_DATA_URL": fake.url, "LIVE_PRICES": "alpaca" if live else "off"}
        env["LIVE_PRICES_INTERVAL"] = str(INTERVAL)
        proc = subprocess.Popen(
            [sys.executable, "-c", AUDIT, "--artifact", str(recent_artifact), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert await_healthy(proc, base, 30), "the audited api.py did not answer within 30 s"
            for path in ("/", "/v1/symbols", "/bitcoin?date=2030-01-01", "/v1/forecast/ETH-USD/chart.png", "/docs"):
                http_get(base + path)
            time.sleep(INTERVAL * 5)
        finally:
            out = stop(proc)
    # Waitress looks up its own listening address once: that is not a request to anyone.
    audited = [line for line in out.splitlines() if line.startswith("AUDIT") and f"'{port}'" not in line]
    if live:
        assert any(f"{fake.port}" in line for line in audited), out
        assert len(fake.requests) > 0
    else:
        assert audited == [], audited
        assert fake.requests == []


def test_the_server_answers_from_the_artifact_before_the_first_poll_returns(recent_artifact: Path) -> None:
    """Alpaca slow to answer the first poll: /healthz says starting and every pair rests on the artifact meanwhile."""
    closes = _last_closes(recent_artifact)
    with FakeAlpaca({}) as fake:
        for pair, close in closes.items():
            fake.set_latest(pair, close)
        fake.inject(Reply(delay=4.0), request=1)
        base, proc = _start(recent_artifact, fake, {"LIVE_PRICES_TIMEOUT": "10"})
        try:
            health = http_get(base + "/healthz").json()["live_prices"]  # type: ignore[index]
            assert health["state"] == "starting"
            assert health["polls"] == 0
            anchors = http_get(base + "/v1/symbols").json()["symbols"]  # type: ignore[index]
            assert {a["anchor"]["source"] for a in anchors} == {"artifact"}
            assert len(fake.requests) == 1  # the first poll is under way, not answered
        finally:
            stop(proc)
