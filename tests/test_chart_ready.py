"""Explicit time and chart-ready answers through a real server: `time` beside the bar label, `horizon=`,
`format=columns`, `step=`, `quantiles=all` and a probability curve in one call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from cryptopredict.serving.contract import OPERATIONS
from tests.helpers import http_get
from tests.test_contract import ALL_LEVELS

PAIR = "/v1/forecast/BTC-USD"


def get(base: str, path: str) -> Any:
    """The JSON of a 200 answer (fails on any other status, showing the problem)."""
    r = http_get(base + path)
    assert r.status == 200, r.body[:500]
    return r.json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_point_says_the_instant_its_price_is_for_one_step_after_its_bar_label(live_server: str) -> None:
    """A point's `time` is its bar's close, `date` plus one step, in points, a series and a probability."""
    point = get(live_server, f"{PAIR}?date=2025-06-01")
    assert (point["date"], point["time"]) == ("2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z")
    between = get(live_server, f"{PAIR}?date=2025-06-01T12:00:00Z")
    assert between["time"] == "2025-06-02T12:00:00Z"
    series = get(live_server, f"{PAIR}?start=2025-06-01&end=2025-06-05")["points"]
    assert all(instant(p["time"]) - instant(p["date"]) == timedelta(days=1) for p in series)
    prob = get(live_server, f"{PAIR}/probability?date=2025-06-01&above=1")
    assert prob["time"] == "2025-06-02T00:00:00Z"


def test_data_end_the_anchor_and_kind_agree_about_the_last_close(live_server: str) -> None:
    """The data's last bar closes at `data_end_time`, which is the anchor's time; that bar is the last `fitted`
    point, carries the anchor's price as its close, and the next bar is the first `forecast`."""
    pair = next(s for s in get(live_server, "/v1/symbols")["symbols"] if s["symbol"] == "BTC-USD")
    assert pair["data_end_time"] == pair["anchor"]["time"]
    assert instant(pair["data_end_time"]) - instant(pair["data_end"]) == timedelta(seconds=pair["step_seconds"])
    last, first_after = get(live_server, f"{PAIR}?start={pair['data_end']}&end={pair['anchor']['time']}")["points"]
    assert (last["kind"], last["time"], last["actual_close"]) == (
        "fitted",
        pair["anchor"]["time"],
        pair["anchor"]["price"],
    )
    assert (first_after["kind"], first_after["actual_close"]) == ("forecast", None)


@pytest.mark.parametrize(("horizon", "lead"), [("7d", timedelta(days=7)), ("24h", timedelta(hours=24))])
def test_a_horizon_counts_from_the_anchors_close(live_server: str, horizon: str, lead: timedelta) -> None:
    """`horizon=7d` answers the bar that closes seven days after the anchor's time: the same answer as its `date`,
    on the forecast and the probability endpoints."""
    point = get(live_server, f"{PAIR}?horizon={horizon}")
    assert instant(point["time"]) == instant(point["anchor"]["time"]) + lead
    assert point == get(live_server, f"{PAIR}?date={quote(point['date'])}")
    prob = get(live_server, f"{PAIR}/probability?horizon={horizon}&above=80000")
    assert prob == get(live_server, f"{PAIR}/probability?date={quote(point['date'])}&above=80000")
    assert prob["time"] == point["time"]


def test_a_horizon_and_a_date_together_are_refused_naming_the_horizon(live_server: str) -> None:
    """Both ways of naming the bar at once is a 400 for `horizon`; a horizon past the forecast is a 422 saying
    what is served."""
    both = http_get(live_server + f"{PAIR}?horizon=7d&date=2025-06-01")
    assert both.status == 400
    assert both.json()["invalid_params"][0]["name"] == "horizon"
    far = http_get(live_server + f"{PAIR}/probability?horizon=9999d&above=1")
    assert far.status == 422
    assert far.json()["invalid_params"][0]["name"] == "horizon"
    assert "valid_range" in far.json()


def test_columns_hold_the_same_numbers_as_points(live_server: str) -> None:
    """`format=columns` is the points answer transposed: one array per field and per level, same order, same
    numbers, the head and the anchor unchanged."""
    query = f"{PAIR}?start=2026-04-10&end=2026-04-30&quantiles=0.05,0.5,0.95"
    points = get(live_server, query)
    columns = get(live_server, query + "&format=columns")
    assert {k: v for k, v in columns.items() if k != "columns"} == {k: v for k, v in points.items() if k != "points"}
    c = columns["columns"]
    rows = points["points"]
    assert len(c["time"]) == columns["count"] == len(rows) == 21
    assert c["time"] == [p["time"] for p in rows]
    assert c["date"] == [p["date"] for p in rows]
    assert c["kind"] == [p["kind"] for p in rows]
    assert c["median"] == [p["prediction"] for p in rows]
    assert c["low"] == [p["prediction_low"] for p in rows]
    assert c["high"] == [p["prediction_high"] for p in rows]
    assert c["actual"] == [p["actual_close"] for p in rows]
    assert c["quantiles"] == {level: [p["quantiles"][level] for p in rows] for level in ("0.05", "0.5", "0.95")}
    assert {"fitted", "forecast"} <= set(c["kind"])


def test_step_thins_a_series_so_a_whole_history_is_one_call(live_server: str) -> None:
    """`step=N` keeps every Nth point from `start`, the same points as the full series; the whole served window
    (past the 1,000-point limit at step 1) comes in one call at step 2."""
    full = get(live_server, f"{PAIR}?start=2025-01-01&end=2025-01-31")["points"]
    thinned = get(live_server, f"{PAIR}?start=2025-01-01&end=2025-01-31&step=7")
    assert thinned["step"] == 7
    assert thinned["points"] == full[::7]
    window = http_get(live_server + f"{PAIR}?start=2024-01-01&end=2027-04-18&format=columns")
    assert window.status == 422
    assert window.json()["max_points"] == 1000
    whole = get(live_server, f"{PAIR}?start=2024-01-01&end=2027-04-18&format=columns&step=2")
    assert whole["count"] == len(whole["columns"]["time"]) == 602
    assert whole["columns"]["time"][0] == "2024-01-02T00:00:00Z"


def test_a_series_shape_on_a_single_point_is_refused(live_server: str) -> None:
    """`format` and `step` shape a series: with `date` they are a 400 naming them."""
    for query in ("format=columns", "step=2"):
        r = http_get(live_server + f"{PAIR}?date=2025-06-01&{query}")
        assert r.status == 400
        assert r.json()["invalid_params"][0]["name"] == query.split("=")[0]


def test_quantiles_all_gives_every_published_level_and_the_written_out_list_is_admitted(live_server: str) -> None:
    """`quantiles=all` answers every published level; the same 23 levels written out (107 characters) are read,
    not refused as too long, and give the same prices."""
    every = get(live_server, f"{PAIR}?date=2026-05-01&quantiles=all")["quantiles"]
    assert list(every) == ALL_LEVELS.split(",")
    assert len(ALL_LEVELS) == 107
    assert get(live_server, f"{PAIR}?date=2026-05-01&quantiles={ALL_LEVELS}")["quantiles"] == every
    assert list(every.values()) == sorted(every.values())


def test_several_prices_give_a_probability_curve_equal_to_one_call_each(live_server: str) -> None:
    """`above=` with several prices answers each one's probability and bound in order, the numbers one call per
    price gives; above falls as the price rises, and below is its complement."""
    prices = [60000, 70000, 75000, 80000, 90000, 200000]
    listed = ",".join(map(str, prices))
    curve = get(live_server, f"{PAIR}/probability?date=2026-05-01&above={listed}")
    assert (curve["side"], curve["prices"]) == ("above", [float(p) for p in prices])
    assert "probability" not in curve
    for price, value, bound in zip(prices, curve["probabilities"], curve["bounds"], strict=True):
        one = get(live_server, f"{PAIR}/probability?date=2026-05-01&above={price}")
        assert (one["above"], one["probability"], one["bound"]) == (price, value, bound)
        assert (one["prices"], one["probabilities"], one["bounds"]) == ([price], [value], [bound])
    assert curve["probabilities"] == sorted(curve["probabilities"], reverse=True)
    assert curve["bounds"][-1] == "at most"
    below = get(live_server, f"{PAIR}/probability?date=2026-05-01&below={listed}")
    exact = [i for i, b in enumerate(curve["bounds"]) if b == "exact"]
    assert exact
    for i in exact:
        assert below["probabilities"][i] + curve["probabilities"][i] == pytest.approx(1, abs=2e-6)


def test_the_new_parameters_are_declared_once_and_published(live_server: str) -> None:
    """horizon, format, step and the longer quantiles and price lists are in the served document exactly as the
    contract declares them, and the series shapes are named schemas."""
    doc = get(live_server, "/openapi.json")
    for op_id, names in (("forecast", {"horizon", "format", "step", "quantiles"}), ("probability", {"horizon"})):
        op = OPERATIONS[op_id]
        published = {p["name"]: p for p in doc["paths"][op.path]["get"]["parameters"]}
        for p in op.params:
            assert published[p.name] == p.to_openapi()
        assert names <= set(published)
    forecast = doc["paths"][OPERATIONS["forecast"].path]["get"]["parameters"]
    assert next(p for p in forecast if p["name"] == "quantiles")["schema"]["maxLength"] >= len(ALL_LEVELS)
    schemas = doc["components"]["schemas"]
    assert {"ForecastColumns", "SeriesColumns"} <= set(schemas)
    assert "time" in schemas["Point"]["required"]
    assert "close" in schemas["Point"]["properties"]["time"]["description"]
