"""The Alpaca source: the real alpaca-py client against a local fake of Alpaca's bars API."""

from __future__ import annotations

import inspect
import itertools
import math
import socket
from datetime import UTC, datetime

import pandas as pd
import pytest

from cryptopredict.errors import DataSourceError
from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training.sources import alpaca_client, pacing
from cryptopredict.training.sources.alpaca_client import fetch_bars, list_usd_pairs
from tests.fake_alpaca import (
    ASSETS_PATH,
    BARS_PATH,
    RATE_LIMITED,
    FakeAlpaca,
    Reply,
    crypto_asset,
    many_pairs,
    random_walk_bars,
)

pytestmark = pytest.mark.server  # what every test here needs (tests/conftest.py)

DAILY = TIMEFRAMES["1Day"]
HOURLY = TIMEFRAMES["1Hour"]
START = datetime(2023, 1, 1, tzinfo=UTC)
PAIR = ["BTC/USD", "ETH/USD"]


@pytest.fixture(autouse=True)
def _quick_and_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real waits between retries, short timeouts, and no proxy between us and 127.0.0.1."""
    monkeypatch.setattr(alpaca_client, "_RETRY_WAIT_SECONDS", 0)
    monkeypatch.setattr(alpaca_client, "_MAX_RETRY_AFTER_SECONDS", 1.5)
    monkeypatch.setattr(alpaca_client, "_TRANSPORT_BACKOFF", 0)
    monkeypatch.setattr(alpaca_client, "_TIMEOUT_SECONDS", (2.0, 5.0))
    monkeypatch.setattr(pacing, "DEFAULT_MAX_REQUESTS_PER_MINUTE", 600_000)  # 0.1 ms apart
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def daily() -> dict[str, pd.DataFrame]:
    return random_walk_bars(PAIR, periods=300, freq="1D", start="2023-01-01", seed=0)


def _expected(source: pd.DataFrame, got: pd.DataFrame, *, drop_last: bool = True) -> pd.DataFrame:
    exp = source.iloc[:-1] if drop_last else source
    exp = exp.reset_index(drop=True).copy()
    exp["timestamp"] = exp["timestamp"].astype(got["timestamp"].dtype)
    return exp


def _assert_shape(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(frame["timestamp"].dt.tz) == "UTC"
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].dtype == "float64"
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame.index.start == 0


def _assert_one_line(err: pytest.ExceptionInfo[DataSourceError], *needles: str) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    assert text.startswith("alpaca: "), text
    assert len(text) < 400, text
    for needle in needles:
        assert needle in text, text
    return text


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fetches_every_page_of_all_symbols_in_one_request(daily: dict[str, pd.DataFrame]) -> None:
    """All pages of a multi-symbol request are followed and concatenated, values unchanged."""
    with FakeAlpaca(daily, page_size=100) as fake:
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    assert list(got) == PAIR
    for symbol in PAIR:
        _assert_shape(got[symbol])
        pd.testing.assert_frame_equal(got[symbol], _expected(daily[symbol], got[symbol]))
    reqs = fake.requests
    assert len(reqs) == 6  # 600 bars, 100 per page across both symbols
    assert {r.path for r in reqs} == {BARS_PATH}
    assert all(r.query["symbols"] == "BTC/USD,ETH/USD" for r in reqs)
    assert all(r.query["timeframe"] == "1Day" for r in reqs)
    assert "page_token" not in reqs[0].query
    assert all(r.query.get("page_token") for r in reqs[1:])
    assert [r.page for r in reqs] == [1, 2, 3, 4, 5, 6]


def test_drops_only_the_newest_bar_by_default(daily: dict[str, pd.DataFrame]) -> None:
    """By default each symbol loses exactly its newest bar, the one still forming."""
    with FakeAlpaca(daily) as fake:
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    for symbol in PAIR:
        assert len(got[symbol]) == len(daily[symbol]) - 1
        assert got[symbol]["timestamp"].max() < daily[symbol]["timestamp"].max()


def test_keeps_the_newest_bar_when_asked(daily: dict[str, pd.DataFrame]) -> None:
    """With drop_last=False every served bar comes back, the newest included."""
    with FakeAlpaca(daily) as fake:
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url, drop_last=False)
    for symbol in PAIR:
        pd.testing.assert_frame_equal(got[symbol], _expected(daily[symbol], got[symbol], drop_last=False))


def test_keeps_api_order_and_duplicates_and_drops_newest_by_time() -> None:
    """Rows keep the API's order and duplicates; the dropped bar is the newest by time, not the last row."""
    source = random_walk_bars(["BTC/USD"], periods=10, seed=1)["BTC/USD"]
    order = [0, 1, 9, 2, 3, 3, 4, 5, 6, 7, 8]  # newest bar in the middle, row 3 twice
    shuffled = source.iloc[order].reset_index(drop=True)
    with FakeAlpaca({"BTC/USD": shuffled}) as fake:
        got = fetch_bars(["BTC/USD"], DAILY, start=START, url=fake.url)["BTC/USD"]
    expected = shuffled.drop(index=2).reset_index(drop=True)
    expected["timestamp"] = expected["timestamp"].astype(got["timestamp"].dtype)
    pd.testing.assert_frame_equal(got, expected)


def test_retries_a_429_and_succeeds(daily: dict[str, pd.DataFrame]) -> None:
    """A 429 on a later page is retried by the SDK with the same page token, and the fetch succeeds."""
    with FakeAlpaca(daily, page_size=100) as fake:
        rule = fake.inject(RATE_LIMITED, page=2)
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    assert rule.fired == 1
    for symbol in PAIR:
        pd.testing.assert_frame_equal(got[symbol], _expected(daily[symbol], got[symbol]))
    reqs = fake.requests
    assert len(reqs) == 7  # six pages plus the retried one
    assert reqs[1].query == reqs[2].query
    assert reqs[1].page == 2


def test_retry_after_is_honoured_before_the_retry(daily: dict[str, pd.DataFrame]) -> None:
    """A 429 with Retry-After: 1 is retried no sooner than a second later, and the fetch succeeds."""
    with FakeAlpaca(daily, page_size=100) as fake:
        fake.inject(Reply(status=429, headers={"Retry-After": "1"}), page=2)
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    reqs = fake.requests
    assert reqs[2].at - reqs[1].at >= 1.0
    assert len(got["BTC/USD"]) == len(daily["BTC/USD"]) - 1


def test_a_hostile_retry_after_is_cut_short(daily: dict[str, pd.DataFrame]) -> None:
    """Retry-After: 3600 is waited only up to the cap (1.5 s here), then the fetch goes on."""
    with FakeAlpaca(daily, page_size=100) as fake:
        fake.inject(Reply(status=429, headers={"Retry-After": "3600"}), page=2)
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    reqs = fake.requests
    assert 1.5 <= reqs[2].at - reqs[1].at < 60
    assert len(got["ETH/USD"]) == len(daily["ETH/USD"]) - 1


def test_gives_up_after_the_sdk_retries_on_a_persistent_429(daily: dict[str, pd.DataFrame]) -> None:
    """A 429 that never clears ends, after the SDK's retries, in a one-line DataSourceError."""
    with FakeAlpaca(daily) as fake:
        fake.inject(RATE_LIMITED, times=None)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, "HTTP 429", "too many requests", f"127.0.0.1:{fake.port}", "BTC/USD")
    assert len(fake.requests) == 1 + alpaca_client._RETRY_ATTEMPTS


def test_a_persistent_500_is_a_data_source_error(daily: dict[str, pd.DataFrame]) -> None:
    """A server error that persists through the retries is a one-line DataSourceError naming the status."""
    with FakeAlpaca(daily) as fake:
        fake.inject(Reply(status=500), times=None)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, "HTTP 500", "ETH/USD", f"127.0.0.1:{fake.port}")


def test_a_malformed_page_is_an_error_not_a_retry(daily: dict[str, pd.DataFrame]) -> None:
    """A non-JSON page ends the fetch in a one-line DataSourceError without a retry.

    The SDK retries only on HTTP status codes; a garbled 200 from a data API is not known to be
    transient, so failing loudly (the caller may rerun) beats silently looping on it.
    """
    with FakeAlpaca(daily) as fake:
        fake.inject(Reply(body="<html>upstream hiccup</html>"), page=2)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, "malformed response", "not JSON", f"127.0.0.1:{fake.port}")
    assert len(fake.requests) == 2


def test_a_body_of_the_wrong_shape_is_a_data_source_error(daily: dict[str, pd.DataFrame]) -> None:
    """JSON without a "bars" object, or bars that are not objects, is a one-line DataSourceError."""
    with FakeAlpaca(daily) as fake:
        fake.inject(Reply(body={"quotes?": [], "next_page_token": None}))
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
        _assert_one_line(err, "malformed response")
        fake.inject(Reply(body={"bars": {"BTC/USD": [1, 2], "ETH/USD": [3]}}))
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
        _assert_one_line(err, "malformed bars for BTC/USD")


def test_an_unknown_symbol_is_named(daily: dict[str, pd.DataFrame]) -> None:
    """A requested symbol absent from the answer is a DataSourceError naming it and the window."""
    with FakeAlpaca(daily) as fake, pytest.raises(DataSourceError) as err:
        fetch_bars(["BTC/USD", "FOO/USD"], DAILY, start=START, url=fake.url)
    text = _assert_one_line(err, "no bars for FOO/USD", "between 2023-01-01 and now")
    assert "BTC/USD" not in text.split(" between ")[0]


def test_an_empty_answer_names_every_symbol(daily: dict[str, pd.DataFrame]) -> None:
    """A window with no bars at all is a DataSourceError naming all requested symbols."""
    with FakeAlpaca(daily) as fake, pytest.raises(DataSourceError) as err:
        fetch_bars(
            PAIR,
            DAILY,
            start=datetime(2030, 1, 1, tzinfo=UTC),
            end=datetime(2030, 2, 1, tzinfo=UTC),
            url=fake.url,
        )
    _assert_one_line(err, "no bars for BTC/USD, ETH/USD between 2030-01-01 and 2030-02-01")


def test_an_unreachable_server_is_a_one_line_error() -> None:
    """A closed port is a one-line DataSourceError naming host:port, not a requests traceback."""
    port = _closed_port()
    with pytest.raises(DataSourceError) as err:
        fetch_bars(PAIR, DAILY, start=START, url=f"http://127.0.0.1:{port}")
    _assert_one_line(err, f"127.0.0.1:{port}", "connection refused", "BTC/USD, ETH/USD")


def test_hourly_bars() -> None:
    """The hourly timeframe is requested as timeframe=1Hour and its bars come back intact."""
    hourly = random_walk_bars(PAIR, periods=150, freq="1h", start="2024-03-01", seed=2)
    with FakeAlpaca(hourly, page_size=100) as fake:
        got = fetch_bars(PAIR, HOURLY, start=datetime(2024, 3, 1), url=fake.url)
    assert {r.query["timeframe"] for r in fake.requests} == {"1Hour"}
    for symbol in PAIR:
        _assert_shape(got[symbol])
        pd.testing.assert_frame_equal(got[symbol], _expected(hourly[symbol], got[symbol]))


def test_start_and_end_are_sent_and_honoured(daily: dict[str, pd.DataFrame]) -> None:
    """start and end go out as RFC 3339 UTC and bound the bars returned."""
    start = datetime(2023, 3, 1, tzinfo=UTC)
    end = datetime(2023, 3, 31, tzinfo=UTC)
    with FakeAlpaca(daily) as fake:
        got = fetch_bars(PAIR, DAILY, start=start, end=end, url=fake.url, drop_last=False)
    query = fake.requests[0].query
    assert pd.Timestamp(query["start"]) == pd.Timestamp(start)
    assert pd.Timestamp(query["end"]) == pd.Timestamp(end)
    for symbol in PAIR:
        assert len(got[symbol]) == 31
        assert got[symbol]["timestamp"].min() == pd.Timestamp(start)
        assert got[symbol]["timestamp"].max() == pd.Timestamp(end)


def test_keys_are_sent_only_when_given(daily: dict[str, pd.DataFrame]) -> None:
    """Without keys no auth headers go out (crypto data is public); with keys both headers do."""
    with FakeAlpaca(daily) as fake:
        fetch_bars(["BTC/USD"], DAILY, start=START, url=fake.url)
        fetch_bars(["BTC/USD"], DAILY, start=START, url=fake.url, **{"api_key": "k", "secret_key": "s"})
    anonymous, keyed = fake.requests[0].headers, fake.requests[-1].headers
    assert "APCA-API-KEY-ID" not in anonymous
    assert "APCA-API-SECRET-KEY" not in anonymous
    assert keyed["APCA-API-KEY-ID"] == "k"
    assert keyed["APCA-API-SECRET-KEY"] == "s"


def test_nan_prices_pass_through_for_validation(daily: dict[str, pd.DataFrame]) -> None:
    """A NaN or null price is returned as NaN: rejecting it is the validation step's job."""

    def poison(page: dict) -> dict:
        page["bars"]["BTC/USD"][3]["c"] = float("nan")
        page["bars"]["BTC/USD"][4]["o"] = None
        return page

    with FakeAlpaca(daily) as fake:
        fake.inject(Reply(edit=poison), page=1)
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)["BTC/USD"]
    assert math.isnan(got.loc[3, "close"])
    assert math.isnan(got.loc[4, "open"])
    assert got["close"].isna().sum() == 1


def test_a_non_numeric_price_is_a_data_source_error(daily: dict[str, pd.DataFrame]) -> None:
    """A price that is not a number is a format error naming the symbol and the column."""

    def garble(page: dict) -> dict:
        page["bars"]["ETH/USD"][0]["h"] = "twelve"
        return page

    with FakeAlpaca(daily, page_size=1000) as fake:
        fake.inject(Reply(edit=garble))
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, "non-numeric high", "ETH/USD")


def test_one_slow_answer_is_retried(daily: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """A read timeout on one request is retried at the transport level and the fetch succeeds."""
    # A 1 s read limit against a 3 s stall: the stall always times out, while a loaded machine's
    # ordinary answers stay far inside the limit.
    monkeypatch.setattr(alpaca_client, "_TIMEOUT_SECONDS", (2.0, 1.0))
    with FakeAlpaca(daily) as fake:
        rule = fake.inject(Reply(delay=3.0), page=3)
        got = fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    assert rule.fired == 1
    assert len(got["BTC/USD"]) == len(daily["BTC/USD"]) - 1
    # Whatever else the timing did: every page was asked for, in order, and the stalled page twice or more.
    pages = [r.page for r in fake.requests]
    assert pages == sorted(pages)
    assert set(pages) == {1, 2, 3, 4, 5, 6}
    assert pages.count(3) >= 2


def test_an_answer_that_never_comes_is_a_one_line_error(
    daily: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that keeps not answering is a one-line DataSourceError saying so."""
    monkeypatch.setattr(alpaca_client, "_TIMEOUT_SECONDS", (2.0, 0.2))
    with FakeAlpaca(daily) as fake:
        fake.inject(Reply(delay=0.6), times=None)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, "no answer within 0.2 s", f"127.0.0.1:{fake.port}")


@pytest.mark.parametrize("fault", [Reply(truncate_to=40), Reply(reset_after=40)], ids=["truncated", "reset"])
def test_a_broken_page_is_a_one_line_error(daily: dict[str, pd.DataFrame], fault: Reply) -> None:
    """A page cut short (closed or reset mid-body) is a one-line DataSourceError."""
    with FakeAlpaca(daily) as fake:
        fake.inject(fault, page=2, times=None)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, f"127.0.0.1:{fake.port}", "BTC/USD, ETH/USD")


def test_a_server_that_repeats_a_page_token_cannot_loop_us_forever(daily: dict[str, pd.DataFrame]) -> None:
    """Pages that always point back at page 2 end in a one-line error, not an endless fetch."""
    with FakeAlpaca(daily, page_size=100) as fake:
        page2 = None

        def loop_back(page: dict) -> dict:
            nonlocal page2
            page2 = page2 or page["next_page_token"]
            return {**page, "next_page_token": page2}

        fake.inject(Reply(edit=loop_back), times=None)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(PAIR, DAILY, start=START, url=fake.url)
    _assert_one_line(err, "twice", "stopping rather than looping forever")
    assert len(fake.requests) == 2


def test_the_sdk_still_reads_the_retry_settings_we_set() -> None:
    """The SDK's own retry loop, which ignores Retry-After, is off; the session retries instead."""
    from alpaca.common.rest import RESTClient

    source = inspect.getsource(RESTClient._request) + inspect.getsource(RESTClient._one_request)
    for name in ("self._retry", "self._retry_codes", "self._session.request"):
        assert name in source
    client = alpaca_client._make_client(
        alpaca_client.CryptoHistoricalDataClient,
        url="http://127.0.0.1:1",
        api_key=None,
        secret_key=None,
        pacer=pacing.Pacer(),
    )
    try:
        assert client._retry == 0
        assert client._retry_codes == []
        assert isinstance(client._session, alpaca_client._Session)
        retry = client._session.get_adapter("http://x").max_retries
        assert retry.respect_retry_after_header
        assert set(retry.status_forcelist) == set(alpaca_client._RETRY_STATUS_CODES)
    finally:
        client._session.close()


def test_bad_arguments_are_data_source_errors() -> None:
    """No symbols, a lone key, a reversed window or a bad URL fail fast with a one-line message."""
    cases = [
        ({"symbols": []}, "no symbols"),
        ({"api_key": "k"}, "both api_key and secret_key"),
        ({"end": datetime(2022, 1, 1)}, "not before end"),
        ({"url": "ftp://example"}, "invalid data URL"),
    ]
    for overrides, needle in cases:
        kwargs = {"symbols": PAIR, "timeframe": DAILY, "start": START, "url": "http://127.0.0.1:1"}
        kwargs.update(overrides)
        with pytest.raises(DataSourceError) as err:
            fetch_bars(**kwargs)  # type: ignore[arg-type]
        _assert_one_line(err, needle)


def test_chicago_midnight_daily_bars_are_labelled_with_their_utc_date() -> None:
    """Daily bars stamped at midnight America/Chicago (05:00/06:00 UTC, across a DST change) land on 00:00 UTC."""
    bars = random_walk_bars(["BTC/USD"], periods=20, freq="1D", start="2024-03-01", seed=3)
    frame = bars["BTC/USD"].copy()
    dates = frame["timestamp"].dt.tz_localize(None)
    frame["timestamp"] = dates.dt.tz_localize("America/Chicago").dt.tz_convert("UTC")
    assert {5, 6} == set(frame["timestamp"].dt.hour)  # the span crosses the 2024-03-10 DST change
    with FakeAlpaca({"BTC/USD": frame}) as fake:
        got = fetch_bars(["BTC/USD"], DAILY, start=datetime(2024, 3, 1, tzinfo=UTC), url=fake.url, drop_last=False)
    assert list(got["BTC/USD"]["timestamp"]) == list(bars["BTC/USD"]["timestamp"])


# ----------------------------------------------------------------- every pair, batched and paced

SIXTY = many_pairs(60)
KEYS = {"api_key": "key-id", "secret_key": "secret"}


@pytest.fixture(scope="module")
def sixty() -> dict[str, pd.DataFrame]:
    return random_walk_bars(SIXTY, periods=200, freq="1h", start="2024-01-01", seed=7)


def _other_assets() -> list[dict[str, object]]:
    """Crypto assets that are not tradable USD pairs: another quote, inactive, not tradable."""
    return [
        crypto_asset("BTC/USDT"),
        crypto_asset("ETH/BTC"),
        crypto_asset("OLD/USD", status="inactive"),
        crypto_asset("HALT/USD", tradable=False),
    ]


def test_lists_every_active_tradable_usd_pair(sixty: dict[str, pd.DataFrame]) -> None:
    """The assets list is asked for active crypto assets, and only tradable pairs quoted in USD are kept, sorted."""
    assets = [crypto_asset(s) for s in reversed(SIXTY)] + _other_assets()
    with FakeAlpaca(sixty, assets=assets) as fake:
        pairs = list_usd_pairs(url=fake.url, **KEYS)
    assert pairs == tuple(SIXTY)
    (req,) = fake.requests
    assert req.path == ASSETS_PATH
    assert req.query == {"status": "active", "asset_class": "crypto"}
    assert req.headers["APCA-API-KEY-ID"] == "key-id"


def test_the_fakes_assets_are_what_the_sdk_model_reads() -> None:
    """Each asset the fake lists parses as alpaca-py's own Asset model (the fake speaks Alpaca's shape)."""
    from alpaca.trading.models import Asset

    for raw in [crypto_asset("BTC/USD"), *_other_assets()]:
        asset = Asset(**raw)
        assert asset.symbol == raw["symbol"]
        assert asset.tradable is raw["tradable"]


def test_listing_pairs_without_keys_names_what_is_missing() -> None:
    """Without both keys the listing fails in one line saying which key is missing, before any request."""
    with FakeAlpaca({}) as fake, pytest.raises(DataSourceError) as err:
        list_usd_pairs(url=fake.url, api_key="key-id", secret_key=None)
    _assert_one_line(err, "trading API", "needs keys", "secret key missing")
    assert fake.requests == []


def test_the_trading_api_refusing_the_keys_is_a_one_line_error() -> None:
    """A 401 from the assets list (bad keys) is one line naming the status and the host."""
    with FakeAlpaca({}) as fake:
        fake.inject(Reply(status=401, body={"code": 40110000, "message": "request is not authorized"}))
        with pytest.raises(DataSourceError) as err:
            list_usd_pairs(url=fake.url, **KEYS)
    _assert_one_line(err, "HTTP 401", "request is not authorized", f"127.0.0.1:{fake.port}")


def test_sixty_pairs_are_fetched_in_batches_with_every_page_followed(sixty: dict[str, pd.DataFrame]) -> None:
    """The 60 pairs the assets list names go in ceil(60 / BATCH_SIZE) requests of consecutive symbols, each
    followed to its last page, every bar intact."""
    with FakeAlpaca(sixty, page_size=1000) as fake:
        pairs = list_usd_pairs(url=fake.url, **KEYS)
        got = fetch_bars(pairs, HOURLY, start=START, url=fake.url)
    assert list(got) == SIXTY
    for symbol in SIXTY:
        pd.testing.assert_frame_equal(got[symbol], _expected(sixty[symbol], got[symbol]))
    assert [r.path for r in fake.requests][:2] == [ASSETS_PATH, BARS_PATH]
    batches: dict[str, list[int | None]] = {}
    for r in fake.requests[1:]:
        batches.setdefault(r.query["symbols"], []).append(r.page)
    size = alpaca_client.BATCH_SIZE
    expected = [",".join(SIXTY[i : i + size]) for i in range(0, 60, size)]
    assert list(batches) == expected
    assert len(batches) == math.ceil(60 / size)
    pages = math.ceil(size * 200 / 1000)  # every bar of a batch, 1,000 to a page
    assert all(p == list(range(1, pages + 1)) for p in batches.values())


def test_requests_are_spaced_by_the_pace(sixty: dict[str, pd.DataFrame]) -> None:
    """At 600 requests a minute each request (the assets list, then every page) arrives 0.1 s or more after the last."""
    pacer = pacing.Pacer(600)
    with FakeAlpaca(sixty, page_size=2000) as fake:
        pairs = list_usd_pairs(url=fake.url, pacer=pacer, **KEYS)
        fetch_bars(pairs, HOURLY, start=START, url=fake.url, pacer=pacer)
    times = [r.at for r in fake.requests]
    assert len(times) == 1 + 3 * 2
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Spacing is measured at the server; allow 10 ms of jitter in how fast a request arrives.
    assert min(gaps) >= 0.09, gaps


def test_the_pacer_waits_only_as_long_as_needed() -> None:
    """The pacer sleeps the rest of the interval after a quick request and not at all after a slow one."""
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = pacing.Pacer(120, clock=lambda: now[0], sleep=sleep)  # 0.5 s apart
    pacer.wait()  # the first request goes at once
    now[0] += 0.2
    pacer.wait()  # 0.3 s early
    now[0] += 2.0
    pacer.wait()  # long after: no wait
    assert slept == [0.3]


@pytest.mark.parametrize("rate", [0, -1, float("nan")])
def test_a_pace_that_is_not_positive_is_refused(rate: float) -> None:
    """A non-positive (or NaN) number of requests per minute is a DataSourceError."""
    with pytest.raises(DataSourceError, match="must be positive"):
        pacing.Pacer(rate)


def test_a_pair_without_bars_is_left_out_only_when_allowed(sixty: dict[str, pd.DataFrame]) -> None:
    """With allow_missing a pair the fake has no bars for is left out of the result; without it, it is named."""
    wanted = [*SIXTY[:3], "NONE/USD"]
    with FakeAlpaca(sixty) as fake:
        got = fetch_bars(wanted, HOURLY, start=START, url=fake.url, allow_missing=True)
        assert list(got) == SIXTY[:3]
        with pytest.raises(DataSourceError) as err:
            fetch_bars(wanted, HOURLY, start=START, url=fake.url)
    _assert_one_line(err, "no bars for NONE/USD")
