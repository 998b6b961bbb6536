"""Re-anchoring the served forecast at a live price: the numbers, the checks, the board, the memo."""

from __future__ import annotations

import math
from array import array
from datetime import UTC, datetime, timedelta

import pytest

from cryptopredict.artifact import SymbolForecast, read_artifact
from cryptopredict.serving import lookup
from cryptopredict.serving.anchor import Anchor, AnchorBoard, artifact_anchor, check_live
from cryptopredict.serving.hotpath import HotPath
from tests.helpers import GOLDEN

DAY = timedelta(days=1)
T = datetime(2026, 1, 3, tzinfo=UTC)  # the hand-made grid's last bar


def _hand_made() -> SymbolForecast:
    """Three daily bars closing at 100, then four forecast points whose median moves (a weight above 0).

    Quantile / median at lead 1: 0.9 and 1.2; at lead 2 and 3: 0.8 and 1.4.
    """
    median = [99.0, 100.0, 101.0, 100.0, 110.0, 110.0]  # in-data values are the one-bar-before forecasts
    low = [90.0, 91.0, 92.0, 90.0, 88.0, 88.0]
    high = [110.0, 111.0, 112.0, 120.0, 154.0, 154.0]
    return SymbolForecast(
        symbol="BTC/USD",
        slug="BTC-USD",
        timeframe="1Day",
        step=DAY,
        start=T - 2 * DAY,
        history_points=3,
        yhat=tuple(median),
        yhat_lower=tuple(low),
        yhat_upper=tuple(high),
        actual=(100.0, 100.0, 100.0),
        levels=(0.1, 0.5, 0.9),
        quantiles=(array("d", low), array("d", median), array("d", high)),
    )


def _live(fc: SymbolForecast, price: float, observed: datetime) -> Anchor:
    anchor = check_live(fc, price, observed, observed, max_age=600)
    assert isinstance(anchor, Anchor), anchor
    return anchor


def test_a_live_price_moves_the_median_by_its_ratio_and_keeps_the_spread_of_its_lead() -> None:
    """105 observed 12 h after the last bar closed: hand-computed medians and 80% bands at leads 0.5 and 1.5 days."""
    fc = _hand_made()
    anchor = _live(fc, 105.0, T + DAY + timedelta(hours=12))
    assert anchor.grid == T + timedelta(hours=12)
    assert anchor.scale == pytest.approx(1.05)
    # Lead 0.5 day: below one step, the one-step ratios to the power sqrt(0.5); the median 105 * 100 / 100.
    p = lookup.at(fc, T + DAY, anchor=anchor)
    assert (p.kind, p.prediction) == ("forecast", 105.0)
    assert p.prediction_low == pytest.approx(97.46167414826516, rel=1e-9)
    assert p.prediction_high == pytest.approx(119.44800347577609, rel=1e-9)
    # Lead 1.5 days: ratios halfway between lead 1 and lead 2 (0.85, 1.3); the median 105 * 110 / 100.
    p = lookup.at(fc, T + 2 * DAY, anchor=anchor)
    assert (p.prediction, p.prediction_low, p.prediction_high) == pytest.approx((115.5, 98.175, 150.15), rel=1e-9)
    # The probability endpoint inverts the same distribution: at the 90% quantile, 10% above.
    below, bound = lookup.probability_below(fc, T + 2 * DAY, 150.15, anchor)
    assert (below, bound) == (pytest.approx(0.9, abs=1e-6), "exact")


def test_a_target_closed_before_the_live_price_is_elapsed_and_keeps_the_artifacts_forecast() -> None:
    """A bar that closed between the data end and the live price: kind elapsed, the grid's own numbers."""
    fc = _hand_made()
    anchor = _live(fc, 105.0, T + DAY + timedelta(hours=30))  # grid time T + 30 h: bar T + 1 d closed at T + 2 d
    p = lookup.at(fc, T + DAY, anchor=anchor)
    assert (p.kind, p.prediction, p.prediction_low, p.prediction_high) == ("elapsed", 100.0, 90.0, 120.0)
    assert lookup.at(fc, T + 2 * DAY, anchor=anchor).kind == "forecast"
    assert lookup.at(fc, T, anchor=anchor).kind == "fitted"


def test_a_live_anchor_at_the_data_end_at_the_last_close_gives_the_artifacts_numbers() -> None:
    """Anchored at the data end at the last close, every answer after the data is the grid's, on the golden artifact."""
    artifact = read_artifact(GOLDEN)
    for fc in artifact.forecasts.values():
        base = artifact_anchor(fc, artifact.manifest.trained)
        same = Anchor(base.price, base.time, "live", fc.history_end, 1.0)
        for k in (1, 2, 5, 17, fc.points - fc.history_points):
            when = fc.history_end + k * fc.step
            assert lookup.at(fc, when, anchor=same) == lookup.at(fc, when)
            assert lookup.quantiles_at(fc, when, fc.levels, same) == lookup.quantiles_at(fc, when, fc.levels)
            assert lookup.probability_below(fc, when, base.price * 1.01, same) == lookup.probability_below(
                fc, when, base.price * 1.01
            )


def test_the_artifacts_anchor_is_the_last_close_observed_when_its_bar_closed() -> None:
    """The artifact's anchor: the last close, at the end of the last bar (or at training time if earlier)."""
    fc = _hand_made()
    assert artifact_anchor(fc, T + 10 * DAY) == Anchor(100.0, T + DAY, "artifact", T, 1.0)
    assert artifact_anchor(fc, T + timedelta(hours=3)).time == T + timedelta(hours=3)


@pytest.mark.parametrize(
    ("price", "observed", "now", "kind"),
    [
        (math.nan, T + 2 * DAY, T + 2 * DAY, "price"),
        (-5.0, T + 2 * DAY, T + 2 * DAY, "price"),
        ("105", T + 2 * DAY, T + 2 * DAY, "price"),
        (True, T + 2 * DAY, T + 2 * DAY, "price"),
        (105.0, T + 2 * DAY, T + 2 * DAY - timedelta(minutes=1), "future"),
        (105.0, T + 2 * DAY, T + 2 * DAY + timedelta(seconds=601), "stale"),
        (105.0, T + DAY, T + DAY, "old"),  # the very moment the last bar closed: nothing newer
        (105.0, T + timedelta(hours=5), T + timedelta(hours=5), "old"),
        (105.0, T + 5 * DAY, T + 5 * DAY, "horizon"),
        (1000.0, T + 2 * DAY, T + 2 * DAY, "band"),
        (10.0, T + 2 * DAY, T + 2 * DAY, "band"),
    ],
)
def test_a_live_price_is_refused_when_it_cannot_be_trusted(
    price: object, observed: datetime, now: datetime, kind: str
) -> None:
    """Not positive and finite, in the future, too old, not after the data, past the horizon, or outside the band."""
    verdict = check_live(_hand_made(), price, observed, now, max_age=600)
    assert isinstance(verdict, tuple), verdict
    assert verdict[0] == kind, verdict


def test_the_band_is_the_artifacts_for_the_live_prices_lead() -> None:
    """Lead 1 day: the 10%-90% ratios 0.9-1.2 widened to 0.1%-99.9% by the normal's tail ratio (about 1.328)."""
    fc = _hand_made()
    tail = 3.090232306167813 / 1.2815515655446004  # z(0.999) / z(0.9): the 10%/90% levels are this grid's outermost
    low, high = 100 * 0.9**tail, 100 * 1.2**tail
    observed = T + 2 * DAY
    assert isinstance(check_live(fc, low * 1.001, observed, observed, 600), Anchor)
    assert isinstance(check_live(fc, high * 0.999, observed, observed, 600), Anchor)
    assert check_live(fc, low * 0.999, observed, observed, 600)[0] == "band"  # type: ignore[index]
    assert check_live(fc, high * 1.001, observed, observed, 600)[0] == "band"  # type: ignore[index]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_board_drops_a_live_price_when_it_ages_out_with_a_new_generation() -> None:
    """A live anchor holds until its expiry, then the artifact's is back, each change a new generation."""
    fc, clock = _hand_made(), _Clock()
    base = artifact_anchor(fc, T + 10 * DAY)
    board = AnchorBoard({"BTC-USD": base}, clock)
    first = board.current()
    live = _live(fc, 105.0, T + 2 * DAY)
    board.offer({"BTC-USD": (live, clock.now + 30)})
    second = board.current()
    assert second.generation > first.generation
    assert second.by_slug["BTC-USD"] is live
    clock.now += 29.9
    assert board.current() is second
    clock.now += 0.2
    third = board.current()
    assert third.generation > second.generation
    assert third.by_slug["BTC-USD"] is base


def test_the_board_never_takes_an_older_live_price_over_a_newer_one() -> None:
    """A reply with an older bar than the one held changes nothing (same generation)."""
    fc, clock = _hand_made(), _Clock()
    board = AnchorBoard({"BTC-USD": artifact_anchor(fc, T + 10 * DAY)}, clock)
    newer = _live(fc, 105.0, T + 2 * DAY)
    board.offer({"BTC-USD": (newer, clock.now + 60)})
    held = board.current()
    board.offer({"BTC-USD": (_live(fc, 101.0, T + 2 * DAY - timedelta(minutes=1)), clock.now + 60)})
    assert board.current() is held
    assert held.by_slug["BTC-USD"] is newer


def test_the_memo_never_replays_an_answer_from_an_older_generation() -> None:
    """Same request, new generation: the app runs again; the old answer is never sent."""
    generation = [1]
    calls: list[int] = []

    def app(environ: dict, start_response: object) -> list[bytes]:
        calls.append(generation[0])
        start_response("200 OK", [("Content-Type", "application/json")])  # type: ignore[operator]
        return [f'{{"gen": {generation[0]}}}'.encode()]

    memo = HotPath(app, 2**20, lambda: generation[0])
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/bitcoin",
        "QUERY_STRING": "date=2026-12-05",
        "wsgi.url_scheme": "http",
    }

    def get() -> bytes:
        return b"".join(memo(dict(environ), lambda *a: None))

    assert get() == get() == b'{"gen": 1}'
    assert calls == [1]
    generation[0] = 2
    assert get() == get() == b'{"gen": 2}'
    assert calls == [1, 2]
    assert len(memo) == 1  # the old generation's answer was dropped, not kept beside
