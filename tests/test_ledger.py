"""The ledger's rules, on hand-made entries: scoring, one entry per origin, bounds, refusal of bad input."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cryptopredict.ledger import MAX_PER_SERIES, RETENTION_DAYS, Entry, Ledger, parse_ledger, summarize

LEVELS = (0.1, 0.5, 0.9)
DAY = timedelta(days=1)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _entry(origin: datetime = T0, steps: int = 7, quantiles=(90.0, 100.0, 110.0), **kw) -> Entry:
    return Entry(
        symbol=kw.pop("symbol", "BTC/USD"),
        horizon=f"{steps}d",
        origin=origin,
        target=origin + steps * DAY,
        origin_close=kw.pop("origin_close", 100.0),
        quantiles=quantiles,
        generation=kw.pop("generation", "gen-a"),
        model_version="1.0.0",
        **kw,
    )


def _bars(start: datetime, closes: list[float]) -> list[tuple[datetime, float]]:
    return [(start + i * DAY, c) for i, c in enumerate(closes)]


def test_scores_are_the_hand_computed_ones() -> None:
    """Median error, the last close's error, the band and the pinball loss, from the close at the target."""
    ledger = Ledger(LEVELS, (_entry(quantiles=(95.0, 104.0, 112.0), origin_close=100.0),))
    closes = _bars(T0, [100.0] * 7 + [120.0])  # the target bar (T0 + 7 days) closes at 120
    scored, n = ledger.score({"BTC/USD": closes}, "gen-b")
    assert n == 1
    (e,) = scored.entries
    assert (e.actual, e.scored_by) == (120.0, "gen-b")
    s = scored.scores(e)
    assert s["error"] == pytest.approx(104.0 - 120.0)
    assert s["abs_pct_error"] == pytest.approx(16 / 120)
    assert s["naive_abs_pct_error"] == pytest.approx(20 / 120)
    assert s["in_80"] is False  # 120 is above the 90% quantile, 112
    # In log price the close sits above all three quantiles, so each level p loses p * (log 120 - log q):
    # 0.1 * log(120/95) + 0.5 * log(120/104) + 0.9 * log(120/112)
    # = 0.1 * 0.2336149 + 0.5 * 0.1431008 + 0.9 * 0.0689929 = 0.0233615 + 0.0715504 + 0.0620936 = 0.1570055,
    # averaged over the 3 levels: 0.0523352.
    assert s["pinball"] == pytest.approx(0.0523352, rel=1e-5)
    summary = summarize(scored, scored.entries)
    assert (summary["scored"], summary["pending"], summary["coverage_80"]) == (1, 0, 0.0)
    assert summary["mape_ratio"] == pytest.approx(16 / 20)


def test_an_entry_waits_until_its_target_is_inside_the_data_and_a_missing_bar_takes_the_last_close() -> None:
    """Data ending a day before the target scores nothing; a gap at the target uses the close before it."""
    ledger = Ledger(LEVELS, (_entry(),))
    early, n = ledger.score({"BTC/USD": _bars(T0, [100.0] * 7)}, "gen-b")  # last bar: T0 + 6 days
    assert n == 0
    assert early.entries[0].actual is None
    gap = [b for b in _bars(T0, [100.0, 101, 102, 103, 104, 105, 106, 107, 108]) if b[0] != T0 + 7 * DAY]
    scored, n = ledger.score({"BTC/USD": gap}, "gen-b")
    assert n == 1
    assert scored.entries[0].actual == 106.0
    _, n = ledger.score({"ETH/USD": _bars(T0, [1.0] * 30)}, "gen-b")
    assert n == 0


def test_an_entry_once_scored_keeps_its_score() -> None:
    """A later run with other closes does not re-score: what was scored is what happened then."""
    ledger, _ = Ledger(LEVELS, (_entry(),)).score({"BTC/USD": _bars(T0, [100.0] * 8)}, "gen-b")
    again, n = ledger.score({"BTC/USD": _bars(T0, [50.0] * 8)}, "gen-c")
    assert n == 0
    assert (again.entries[0].actual, again.entries[0].scored_by) == (100.0, "gen-b")


def test_publishing_the_same_origin_again_keeps_the_first() -> None:
    first = Ledger(LEVELS).publish([_entry(generation="gen-a")])
    again = first.publish([_entry(generation="gen-b", quantiles=(1.0, 2.0, 3.0)), _entry(steps=30)])
    assert [(e.horizon, e.generation) for e in again.entries] == [("7d", "gen-a"), ("30d", "gen-a")]


def test_the_ledger_is_bounded_by_age_and_by_count() -> None:
    """Targets over RETENTION_DAYS before the newest data end go; each series keeps its newest MAX_PER_SERIES."""
    newest = T0 + 3000 * DAY
    old = _entry(origin=newest - (RETENTION_DAYS + 8) * DAY)  # target 1 day past the limit
    kept = _entry(origin=newest - (RETENTION_DAYS + 7) * DAY)  # target exactly at the limit
    assert Ledger(LEVELS, (old, kept)).bound(newest).entries == (kept,)
    many = tuple(_entry(origin=newest - i * timedelta(hours=1)) for i in range(MAX_PER_SERIES + 5))
    bounded = Ledger(LEVELS, many).bound(newest).entries
    assert len(bounded) == MAX_PER_SERIES
    assert min(e.origin for e in bounded) == newest - (MAX_PER_SERIES - 1) * timedelta(hours=1)


def test_a_ledger_survives_its_json_form() -> None:
    ledger, _ = Ledger(LEVELS, (_entry(), _entry(steps=1))).score({"BTC/USD": _bars(T0, [100.0] * 3)}, "gen-b")
    back = parse_ledger(json.loads(json.dumps(ledger.to_json())))
    assert back == ledger


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(version=9), "unknown ledger version 9"),
        (lambda d: d.update(levels=[0.5, 0.1, 0.9]), "'levels' must rise"),
        (lambda d: d["entries"][0].update(quantiles=[90.0, 120.0, 110.0]), "entry 0: quantiles cross"),
        (lambda d: d["entries"][0].update(quantiles=[90.0, 100.0]), "entry 0: 'quantiles' must list 3 prices"),
        (lambda d: d["entries"][0].update(actual=5.0), "entry 0: 'actual' and 'scored_by' must be given together"),
        (lambda d: d["entries"][0].update(origin_close=-1), "entry 0: 'origin_close' must be a positive"),
        (lambda d: d["entries"][0].update(target="2024-01-01T00:00:00Z"), "entry 0: target is not after origin"),
        (lambda d: d["entries"][0].update(origin="yesterday"), "entry 0: origin 'yesterday' is not a UTC time"),
        (lambda d: d["entries"].append(dict(d["entries"][0])), "entry 1: a second entry for BTC/USD 7d"),
        (lambda d: d["entries"][0].update(quantiles=[90.0, math.nan, 110.0]), "entry 0: a quantile must be a positive"),
        (lambda d: d["entries"][0].update(origin=5), "entry 0: origin is not a time string$"),
        (lambda d: d["entries"][0].update(symbol=""), "entry 0: 'symbol' must be a short printable string$"),
        (lambda d: d["entries"][0].update(symbol="B" * 201), "entry 0: 'symbol' must be a short printable string$"),
        (lambda d: d["entries"][0].update(symbol=7), "entry 0: 'symbol' must be a short printable string$"),
        (lambda d: d["entries"][0].update(generation="gen\n"), "entry 0: 'generation' must be a short printable"),
    ],
)
def test_a_malformed_ledger_is_refused_naming_what_is_wrong(change, reason: str) -> None:
    data = Ledger(LEVELS, (_entry(),)).to_json()
    change(data)
    with pytest.raises(ValueError, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
        parse_ledger(data)


def test_summaries_say_when_nothing_is_scored_yet() -> None:
    ledger = Ledger(LEVELS, (_entry(), replace(_entry(steps=1))))
    summary = summarize(ledger, ledger.entries)
    assert (summary["published"], summary["scored"], summary["mape"]) == (2, 0, None)
    assert "none scored yet" in summary["summary"]


def test_scores_below_the_band_and_on_its_edges() -> None:
    """A close at 81 under quantiles 90/100/110 loses (1 - p) x log(q / 81) at each level and misses the band;
    closes of exactly 90 or 110 are inside it."""
    ledger = Ledger(LEVELS, (_entry(),))
    below = replace(_entry(), actual=81.0, scored_by="gen-b")
    s = ledger.scores(below)
    expected = sum((1 - p) * math.log(q / 81.0) for p, q in zip(LEVELS, (90.0, 100.0, 110.0), strict=True)) / 3
    assert s["pinball"] == pytest.approx(expected)
    assert s["in_80"] is False
    for edge in (90.0, 110.0):
        assert ledger.scores(replace(_entry(), actual=edge, scored_by="gen-b"))["in_80"] is True


def test_scoring_needs_a_bar_after_the_origin_and_counts_every_entry_scored() -> None:
    """Two entries scored count 2; an entry whose only bar at or before its target is its origin's stays pending,
    and so does one with no bar at or before its target; the first bar of the data can be the actual."""
    early, late = _entry(T0, steps=1), _entry(T0 + DAY, steps=1)
    ledger = Ledger(LEVELS, (early, late))
    scored, n = ledger.score({"BTC/USD": _bars(T0, [100.0, 101.0, 102.0])}, "gen-b")
    assert n == 2
    assert [e.actual for e in scored.entries] == [101.0, 102.0]
    gap = [(T0, 100.0), (T0 + 3 * DAY, 103.0)]  # the target bar T0 + 1 day is missing: its last close is the origin's
    assert Ledger(LEVELS, (early,)).score({"BTC/USD": gap}, "gen-b")[1] == 0
    first = Ledger(LEVELS, (_entry(T0 - DAY, steps=1),)).score({"BTC/USD": _bars(T0, [100.0, 101.0])}, "gen-b")
    assert [e.actual for e in first[0].entries] == [100.0]
    none_before = Ledger(LEVELS, (_entry(T0 - 3 * DAY, steps=1),)).score({"BTC/USD": _bars(T0, [100.0])}, "gen-b")
    assert none_before[1] == 0


def test_a_summary_states_every_figure_even_before_scoring() -> None:
    """Nothing scored: every figure is present and None, and the sentence says why."""
    ledger = Ledger(LEVELS, (_entry(),))
    assert summarize(ledger, ledger.entries) == {
        "published": 1,
        "scored": 0,
        "pending": 1,
        "mape": None,
        "naive_mape": None,
        "mape_ratio": None,
        "coverage_80": None,
        "pinball": None,
        "summary": "1 published, none scored yet: their target times are still ahead",
    }


def test_publishing_the_wrong_number_of_quantiles_is_refused_by_name() -> None:
    """An entry with 2 quantiles for 3 levels is refused, naming the pair, the horizon and both counts."""
    with pytest.raises(ValueError, match=r"^BTC/USD 7d: 2 quantiles for 3 levels$"):
        Ledger(LEVELS).publish([_entry(quantiles=(90.0, 110.0))])


def test_bounding_keeps_each_pair_and_horizon_apart() -> None:
    """MAX_PER_SERIES is per pair and horizon: two pairs at the cap keep all of both."""
    hour = timedelta(hours=1)
    entries = [_entry(T0 + i * hour, symbol=s) for s in ("BTC/USD", "ETH/USD") for i in range(MAX_PER_SERIES)]
    bounded = Ledger(LEVELS, tuple(entries)).bound(T0 + MAX_PER_SERIES * hour)
    assert len(bounded.entries) == 2 * MAX_PER_SERIES


def test_names_of_one_and_of_200_characters_are_read() -> None:
    """A symbol of one character and a model version of 200 are inside the limits."""
    data = Ledger(LEVELS, (_entry(),)).to_json()
    data["entries"][0].update(symbol="B", model_version="v" * 200)
    (e,) = parse_ledger(data).entries
    assert (e.symbol, e.model_version) == ("B", "v" * 200)


def test_a_summary_of_two_scored_forecasts_is_their_means() -> None:
    """Actuals 110 and 80 under medians of 100, last closes 100 and 95: MAPE (1/11 + 1/4) / 2, naive's
    (1/11 + 3/16) / 2, one of two in the band; a pair whose last close was always right has no ratio."""
    entries = (
        replace(_entry(T0), actual=110.0, scored_by="g"),
        replace(_entry(T0 + DAY, origin_close=95.0), actual=80.0, scored_by="g"),
    )
    ledger = Ledger(LEVELS, entries)
    s = summarize(ledger, entries)
    mape, naive = (1 / 11 + 1 / 4) / 2, (1 / 11 + 3 / 16) / 2
    pinball = sum(ledger.scores(e)["pinball"] for e in entries) / 2
    assert s == pytest.approx({
        "published": 2, "scored": 2, "pending": 0, "mape": mape, "naive_mape": naive, "mape_ratio": mape / naive,
        "coverage_80": 0.5, "pinball": pinball,
        "summary": f"2 of 2 published forecasts scored: MAPE {mape:.2%} against the last close's {naive:.2%} "
        f"(x{mape / naive:.2f}); the 80% band held 1 of 2",
    })  # fmt: skip
    right = (replace(_entry(), actual=100.0, scored_by="g"),)
    s = summarize(Ledger(LEVELS, right), right)
    assert s["mape_ratio"] is None
    assert (
        s["summary"]
        == "1 of 1 published forecasts scored: MAPE 0.00% against the last close's 0.00%; the 80% band held 1 of 1"
    )


def _ledger_json() -> dict:
    return Ledger(LEVELS, (_entry(),)).to_json()


def _with(change) -> dict:
    data = _ledger_json()
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "the ledger is not a JSON object"),
        (_with(lambda d: d.pop("version")), "unknown ledger version None (this code reads 1)"),
        (_with(lambda d: d.update(levels=[])), "'levels' must be a non-empty list"),
        (_with(lambda d: d.update(levels="0.1,0.5,0.9")), "'levels' must be a non-empty list"),
        (_with(lambda d: d.update(levels=[0.1, 0.5, 0.0])), "a level must be a positive finite number"),
        (_with(lambda d: d.update(levels=[0.1, 0.5, 0.9, 1.5])), "'levels' must rise strictly inside (0, 1)"),
        (_with(lambda d: d.update(levels=[0.1, 0.5, 0.9, 1.0])), "'levels' must rise strictly inside (0, 1)"),
        (_with(lambda d: d.update(levels=[0.1, 0.5, 0.5, 0.9])), "'levels' must rise strictly inside (0, 1)"),
        (_with(lambda d: d.update(levels=[0.1, 0.5, 0.8])), "'levels' must include 0.1, 0.5 and 0.9"),
        (_with(lambda d: d.update(entries={})), "'entries' must be a list"),
        (_with(lambda d: d.update(entries=[[]])), "entry 0: not a JSON object"),
        (_with(lambda d: d["entries"][0].update(target=None)), "entry 0: target is not a time string"),
        (_with(lambda d: d["entries"][0].update(target="soon")),
         "entry 0: target 'soon' is not a UTC time like 2025-01-31T00:00:00Z"),
        (_with(lambda d: d["entries"][0].update(target="2025-01-08T00:00:00Z and then some forty more characters")),
         "entry 0: target '2025-01-08T00:00:00Z and then some forty' is not a UTC time like 2025-01-31T00:00:00Z"),
        (_with(lambda d: d["entries"][0].update(target=d["entries"][0]["origin"])),
         "entry 0: target is not after origin"),
        (_with(lambda d: d["entries"][0].update(quantiles="90,100,110")), "entry 0: 'quantiles' must list 3 prices"),
        (_with(lambda d: d["entries"][0].update(quantiles=[90.0, True, 110.0])),
         "entry 0: a quantile must be a positive finite number"),
        (_with(lambda d: d["entries"][0].update(quantiles=[90.0, 0, 110.0])),
         "entry 0: a quantile must be a positive finite number"),
        (_with(lambda d: d["entries"][0].update(quantiles=[100.0, 90.0, 110.0])), "entry 0: quantiles cross"),
        (_with(lambda d: d["entries"][0].update(actual=math.inf, scored_by="gen-b")),
         "entry 0: 'actual' must be a positive finite number"),
        (_with(lambda d: d["entries"][0].update(scored_by="gen-b")),
         "entry 0: 'actual' and 'scored_by' must be given together"),
        (_with(lambda d: d["entries"][0].update(actual=101.0, scored_by="")),
         "entry 0: 'scored_by' must be a short printable string"),
        (_with(lambda d: d["entries"][0].update(horizon=None)), "entry 0: 'horizon' must be a short printable string"),
        (_with(lambda d: d["entries"][0].update(origin_close="100")),
         "entry 0: 'origin_close' must be a positive finite number"),
        (_with(lambda d: d["entries"][0].update(model_version="v\t1")),
         "entry 0: 'model_version' must be a short printable string"),
        (_with(lambda d: d["entries"].append(dict(d["entries"][0]))),
         "entry 1: a second entry for BTC/USD 7d from 2025-01-01T00:00:00Z"),
    ],
)  # fmt: skip
def test_each_refusal_of_a_ledger_says_exactly_what_is_wrong(data, message: str) -> None:
    """A tampered or foreign ledger is refused with one exact sentence (the production artifact's refusal quotes it)."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_ledger(data)


def test_a_ledger_with_scored_and_pending_entries_is_read_back_field_for_field() -> None:
    """Every field of a scored entry and of a pending one survives the JSON form exactly."""
    ledger, _ = Ledger(LEVELS, (_entry(), _entry(T0 + DAY, steps=30))).score(
        {"BTC/USD": _bars(T0, [101.0] * 9)}, "gen-b"
    )
    back = parse_ledger(json.loads(json.dumps(ledger.to_json())))
    scored, pending = back.entries
    assert (scored.actual, scored.scored_by, pending.actual, pending.scored_by) == (101.0, "gen-b", None, None)
    assert back.levels == LEVELS
    assert [e.to_json() for e in back.entries] == [e.to_json() for e in ledger.entries]


def test_equal_neighbouring_quantiles_are_read() -> None:
    """A band of zero width (a price that never moved, a stablecoin's) does not cross: it is read back."""
    data = Ledger(LEVELS, (_entry(quantiles=(1.0, 1.0, 1.0), origin_close=1.0),)).to_json()
    (entry,) = parse_ledger(data).entries
    assert entry.quantiles == (1.0, 1.0, 1.0)
