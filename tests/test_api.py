"""The HTTP contract, at the boundary a client touches: a real Waitress server on 127.0.0.1."""

from __future__ import annotations

import csv
from urllib.parse import quote

import pytest

from tests.helpers import DATA, http_get

# BTC in the session artifact: data 2024-01-01 .. 2026-04-18, forecast to 2027-04-18.
BAD_REQUESTS = [
    ("/bitcoin", 400, "date"),
    ("/bitcoin?date=", 400, "date"),
    ("/bitcoin?date=garbage", 400, "date"),
    ("/bitcoin?date=9999-99-99", 422, "date"),
    ("/bitcoin?date=2024-13-01", 422, "date"),
    ("/bitcoin?date=10000-01-01", 400, "date"),
    ("/bitcoin?date=1900-01-01", 422, "date"),
    ("/bitcoin?date=2030-01-01", 422, "date"),
    ("/bitcoin?date=2024-06-01&date=2024-06-02", 400, "date"),
    ("/bitcoin?date=20240601", 400, "date"),
    ("/bitcoin?date=2024-W22-6", 400, "date"),
    ("/bitcoin?date=2024-06-01T12:00:00,5", 400, "date"),
    ("/bitcoin?date=2024-06-01%0A", 400, "date"),
    ("/bitcoin?date=2024-06-01T24:00", 422, "date"),
    ("/bitcoin?date=" + "1" * 10_000, 400, "date"),
    ("/bitcoin?dat=2024-06-01", 400, "dat"),
    ("/bitcoin?date=2024-06-01%00", 400, "date"),
    ("/bitcoin?date=0001-01-01T00:00:00%2B05:30", 422, "date"),
    ("/v1/forecast/BTC-USD?start=2025-02-01&end=2025-01-01", 400, "start"),
    ("/v1/forecast/BTC-USD?start=2024-01-01&end=2027-04-01", 422, "end"),
    ("/v1/forecast/BTC-USD?start=2020-01-01&end=2024-02-01", 422, "start"),
    ("/v1/forecast/BTC-USD?start=2024-02-01", 400, "end"),
    ("/v1/forecast/BTC-USD", 400, "date"),
    ("/v1/forecast/BTC-USD?date=2024-06-01&start=2024-06-01", 400, "date"),
    ("/v1/forecast/DOGE-USD?date=2024-06-01", 404, None),
    ("/v1/forecast/BTC%2FUSD?date=2024-06-01", 400, "symbol"),
    ("/v1/forecast/..%2F..%2Fetc%2Fpasswd?date=2024-06-01", 400, "symbol"),
    ("/v1/forecast/BTC%00USD?date=2024-06-01", 400, "symbol"),
    ("/v1/forecast/BTC%0A-USD?date=2024-06-01", 400, "symbol"),
    ("/v1/forecast/" + quote("Ⓑ-USD") + "?date=2024-06-01", 400, "symbol"),
    ("/v1/symbols?x=1", 400, "x"),
    ("/bitcoin?date=2024-06-01&model=arima", 400, "model"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=0", 422, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=1", 422, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=1.5", 422, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=-0.1", 400, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=nan", 400, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=0.5,abc", 400, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=0.5,0.5", 422, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=" + ",".join(["0.5"] * 30), 400, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=0.001", 422, "quantiles"),
    ("/v1/forecast/BTC-USD?date=2026-12-01&quantiles=0.5&model=prophet", 400, "quantiles"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01", 400, "above"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01&above=1&below=2", 400, "above"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01&above=0", 422, "above"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01&above=-5", 400, "above"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01&below=inf", 400, "below"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01&below=1e999", 422, "below"),
    ("/v1/forecast/BTC-USD/probability?above=100000", 400, "date"),
    ("/v1/forecast/BTC-USD/probability?date=2031-01-01&above=100000", 422, "date"),
    ("/v1/forecast/BTC-USD/probability?date=2026-12-01&above=1&model=prophet", 400, "model"),
    ("/v1/forecast/BTC-USD/chart.png?model=other", 400, "model"),
    ("/no/such/path", 404, None),
    ("/bitcoin/../../etc/passwd", 404, None),
]


@pytest.mark.parametrize(("path", "status", "param"), BAD_REQUESTS)
def test_bad_requests_get_problem_json(live_server: str, path: str, status: int, param: str | None) -> None:
    """Every bad request is answered with the right 4xx as application/problem+json naming the parameter."""
    r = http_get(live_server + path)
    assert r.status == status, r.body[:500]
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["status"] == status
    assert doc["title"]
    assert doc["type"]
    assert 10 < len(doc["detail"]) < 600  # says why, and never echoes a 10 kB value back
    if param is not None:
        assert doc["invalid_params"][0]["name"] == param
        assert doc["invalid_params"][0]["reason"]
    assert b"Traceback" not in r.body
    assert b"<html" not in r.body.lower()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_write_methods_are_405_with_allow(live_server: str, method: str) -> None:
    """A write method gets 405 problem+json and an Allow header listing GET."""
    r = http_get(live_server + "/bitcoin?date=2024-06-01", method=method)
    assert r.status == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert "GET" in r.headers["allow"]


def test_out_of_range_names_the_valid_range(live_server: str) -> None:
    """A date past the horizon is a 422 that says which range is served."""
    doc = http_get(live_server + "/bitcoin?date=2030-01-01").json()
    assert doc["valid_range"] == {"start": "2024-01-01T00:00:00Z", "end": "2027-04-18T00:00:00Z"}
    assert "2027-04-18" in doc["detail"]


def test_bitcoin_keeps_the_original_contract(live_server: str) -> None:
    """GET /bitcoin?date= answers exactly the original four fields, with an ordered interval."""
    r = http_get(live_server + "/bitcoin?date=2024-06-01")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert list(doc) == ["date", "prediction", "prediction_low", "prediction_high"]
    assert doc["date"] == "2024-06-01T00:00:00"
    assert 0 < doc["prediction_low"] < doc["prediction"] < doc["prediction_high"]
    # BTC closed near 67,500 USD that day; an in-sample fit lands within a few percent of it.
    assert 60_000 < doc["prediction"] < 75_000


@pytest.mark.parametrize(
    "spelling",
    ["2024-06-01T05:30:00%2B05:30", "2024-06-01T00:00:00Z", "2024-05-31T19:00:00-05:00", "2024-06-01T00:00"],
)
def test_offsets_are_converted_to_utc(live_server: str, spelling: str) -> None:
    """A datetime with an offset or Z means the same UTC instant as the plain date."""
    plain = http_get(live_server + "/bitcoin?date=2024-06-01").json()
    assert http_get(live_server + "/bitcoin?date=" + spelling).json() == plain


def test_point_in_the_data_window_carries_the_actual_close(live_server: str) -> None:
    """Inside the training window a point is 'fitted' and carries the real close from the sample."""
    with open(DATA / "BTC-USD.daily.csv") as fh:
        close = {row["timestamp"]: float(row["close"]) for row in csv.DictReader(fh)}
    doc = http_get(live_server + "/v1/forecast/btc-usd?date=2025-03-14").json()
    assert doc["symbol"] == "BTC-USD"
    assert doc["kind"] == "fitted"
    assert doc["actual_close"] == close["2025-03-14"]
    assert doc["model_version"] == "test-1.0.0"


def test_point_after_the_data_is_a_forecast(live_server: str) -> None:
    """Past the last bar a point is 'forecast' with no actual close."""
    doc = http_get(live_server + "/v1/forecast/ETH-USD?date=2025-12-01T06:00:00Z").json()
    assert doc["kind"] == "forecast"
    assert doc["actual_close"] is None
    assert doc["prediction_low"] < doc["prediction"] < doc["prediction_high"]


def test_series_returns_every_grid_point_in_range(live_server: str) -> None:
    """start/end return each daily grid point in the closed range, in order."""
    doc = http_get(live_server + "/v1/forecast/BTC-USD?start=2026-04-15&end=2026-04-21T12:00:00Z").json()
    dates = [p["date"] for p in doc["points"]]
    assert dates == [f"2026-04-{d}T00:00:00Z" for d in range(15, 22)]
    assert doc["count"] == 7
    assert [p["kind"] for p in doc["points"]] == ["fitted"] * 4 + ["forecast"] * 3


def test_symbols_lists_what_is_served(live_server: str) -> None:
    """/v1/symbols lists each symbol with its data window, horizon and timeframe."""
    doc = http_get(live_server + "/v1/symbols").json()
    by = {s["symbol"]: s for s in doc["symbols"]}
    assert set(by) == {"BTC-USD", "ETH-USD"}
    assert by["BTC-USD"]["data_start"] == "2024-01-01T00:00:00Z"
    assert by["BTC-USD"]["data_end"] == "2026-04-18T00:00:00Z"
    assert by["ETH-USD"]["data_end"] == "2025-07-04T00:00:00Z"
    assert by["BTC-USD"]["horizon_steps"] == 365
    assert by["BTC-USD"]["timeframe"] == "1Day"


def test_model_and_health_report_the_version(live_server: str) -> None:
    """/healthz and /v1/model report the loaded model version and its training data."""
    health = http_get(live_server + "/healthz").json()
    assert health["status"] == "ok"
    assert health["model_version"] == "test-1.0.0"
    model = http_get(live_server + "/v1/model").json()
    assert model["model_version"] == "test-1.0.0"
    assert model["symbols"]["BTC-USD"]["rows"] == 839
    assert model["model_config"]["scale"] == "log"
    assert model["libraries"]["prophet"]


def test_cors_allows_any_origin_by_default(live_server: str) -> None:
    """A browser on another origin may read the API: Access-Control-Allow-Origin is '*'."""
    r = http_get(live_server + "/bitcoin?date=2024-06-01", headers={"Origin": "http://example.test"})
    assert r.headers["access-control-allow-origin"] == "*"
    pre = http_get(
        live_server + "/bitcoin?date=2024-06-01",
        method="OPTIONS",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "GET"},
    )
    assert pre.status == 200
    assert "GET" in pre.headers["access-control-allow-methods"]


@pytest.mark.server
def test_cors_origins_restricts_origins(artifact_dir) -> None:
    """With CORS_ORIGINS set, only the listed origins get an Allow-Origin header."""
    from tests.helpers import api_server

    with api_server(artifact_dir, env={"CORS_ORIGINS": "http://good.test"}) as base:
        good = http_get(base + "/healthz", headers={"Origin": "http://good.test"})
        bad = http_get(base + "/healthz", headers={"Origin": "http://evil.test"})
    assert good.headers["access-control-allow-origin"] == "http://good.test"
    assert "access-control-allow-origin" not in bad.headers


def test_range_cap_comes_from_settings(client) -> None:
    """MAX_SERIES_POINTS caps a range request; the error says the cap."""
    r = client.get("/v1/forecast/BTC-USD?start=2025-01-01&end=2025-06-01")
    assert r.status_code == 422
    assert r.get_json()["max_points"] == 100


def _btc_last_close() -> tuple[str, float]:
    with open(DATA / "BTC-USD.daily.csv") as fh:
        last = list(csv.DictReader(fh))[-1]
    return last["timestamp"], float(last["close"])


def test_the_served_forecast_starts_from_the_last_close(live_server: str) -> None:
    """The day after the data, /bitcoin answers the last close (moved at most by weighted Prophet), not a jump."""
    _, close = _btc_last_close()  # 2026-04-18
    weight = http_get(live_server + "/v1/model").json()["symbols"]["BTC-USD"]["backtest"]["metrics"]["1d"]["weight"]
    doc = http_get(live_server + "/bitcoin?date=2026-04-19").json()
    if weight == 0:
        assert doc["prediction"] == pytest.approx(close, rel=1e-7)
    else:
        assert doc["prediction"] == pytest.approx(close, rel=0.02)
    assert doc["prediction_low"] < close < doc["prediction_high"]
    # Prophet's own forecast is still there, named: it does not start at the last close.
    prophet = http_get(live_server + "/bitcoin?date=2026-04-19&model=prophet").json()
    assert list(prophet) == list(doc)
    assert prophet["prediction"] != doc["prediction"]


def test_a_history_point_is_the_forecast_made_one_bar_before(live_server: str) -> None:
    """Inside the data the served prediction is the previous close (moved by at most 2% when Prophet has weight)."""
    with open(DATA / "BTC-USD.daily.csv") as fh:
        close = {row["timestamp"]: float(row["close"]) for row in csv.DictReader(fh)}
    doc = http_get(live_server + "/v1/forecast/BTC-USD?date=2025-03-14").json()
    assert doc["prediction"] == pytest.approx(close["2025-03-13"], rel=0.02)
    assert doc["actual_close"] == close["2025-03-14"]


def test_quantiles_are_ordered_and_match_the_interval(live_server: str) -> None:
    """Asked quantiles ascend with their levels; 0.1/0.5/0.9 are prediction_low/prediction/prediction_high."""
    doc = http_get(
        live_server + "/v1/forecast/BTC-USD?date=2026-12-01&quantiles=0.01,0.05,0.07,0.1,0.5,0.9,0.95,0.99"
    ).json()
    q = doc["quantiles"]
    assert list(q) == ["0.01", "0.05", "0.07", "0.1", "0.5", "0.9", "0.95", "0.99"]
    values = list(q.values())
    assert all(v > 0 for v in values)
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert (q["0.1"], q["0.5"], q["0.9"]) == (doc["prediction_low"], doc["prediction"], doc["prediction_high"])
    assert q["0.05"] < q["0.07"] < q["0.1"]


def test_series_points_carry_their_quantiles(live_server: str) -> None:
    """A range with quantiles gives every point its own, and the band widens with the horizon."""
    doc = http_get(live_server + "/v1/forecast/BTC-USD?start=2026-05-01&end=2026-05-31&quantiles=0.1,0.9").json()
    widths = [p["quantiles"]["0.9"] / p["quantiles"]["0.1"] for p in doc["points"]]
    assert len(widths) == 31
    assert widths[-1] > widths[0] > 1


def test_probability_inverts_the_quantiles(live_server: str) -> None:
    """P(above the median) is 0.5, above + below is 1, and beyond the published levels only a bound is given."""
    base = live_server + "/v1/forecast/BTC-USD"
    point = http_get(base + "?date=2026-12-01&quantiles=0.25").json()
    half = http_get(base + f"/probability?date=2026-12-01&above={point['prediction']}").json()
    assert half["probability"] == pytest.approx(0.5, abs=1e-6)
    assert half["bound"] == "exact"
    q25 = point["quantiles"]["0.25"]
    below = http_get(base + f"/probability?date=2026-12-01&below={q25}").json()
    above = http_get(base + f"/probability?date=2026-12-01&above={q25}").json()
    assert below["probability"] == pytest.approx(0.25, abs=1e-6)
    assert below["probability"] + above["probability"] == pytest.approx(1)
    far = http_get(base + "/probability?date=2026-12-01&above=100000000").json()
    assert (far["probability"], far["bound"]) == (0.01, "at most")
    tiny = http_get(base + "/probability?date=2026-12-01&above=0.5").json()
    assert (tiny["probability"], tiny["bound"]) == (0.99, "at least")
    prices = [30_000, 60_000, 90_000, 120_000, 150_000]
    p_above = [http_get(base + f"/probability?date=2026-12-01&above={x}").json()["probability"] for x in prices]
    assert p_above == sorted(p_above, reverse=True)
