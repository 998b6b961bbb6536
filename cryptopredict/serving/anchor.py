"""What the served forecast is anchored at: the artifact's last close, or a checked live price.

The artifact holds the distribution's shape for every lead time; the price it is laid at is a
separate input, not a model (docs/architecture.md). Every answer is a pure function of (artifact,
anchor) and says which anchor it rests on.

An anchor sits on the grid at the bar whose close it stands for: the artifact's at the data's last
bar, a live price observed at time τ at `τ - step` (the bar that would close at τ). A target bar t
then has a lead of `t - grid` steps; a target at or before `grid` has closed since (not a forecast).

`AnchorBoard` holds the current set, one immutable `Anchors` generation at a time: the feed
publishes checked live prices into it; a live price older than its maximum age drops back to the
artifact's anchor when a request next looks (no thread needed for that), with a new generation, so
anything keyed by the generation (the hot path's memo) never mixes two anchors.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

from cryptopredict.artifact import SymbolForecast
from cryptopredict.serving.lookup import last_close, median_path, spread
from cryptopredict.timeframes import format_utc

__all__ = ["Anchor", "AnchorBoard", "Anchors", "artifact_anchor", "check_live"]

# The band a live price must fall in: the artifact's 0.1%-99.9%, for the live price's lead from the
# data end. The artifact publishes 1%-99%; the tails are extended in log price by the normal
# distribution's ratio z(0.999) / z(0.99) (about 1.33).
BAND = 0.001
# A clock a little ahead of ours is not "the future": Alpaca stamps a bar when it opens.
FUTURE_SKEW = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Anchor:
    """A price, when it was observed, where it came from, and where it sits on the grid.

    `scale` turns the artifact's median path into this anchor's: price / the artifact's median at
    `grid` (1 for the artifact's own anchor, whose answers are the grid's numbers unchanged).
    """

    price: float
    time: datetime  # when the price was observed, aware UTC
    source: str  # "live" | "artifact"
    grid: datetime  # the grid time it stands for
    scale: float = 1.0

    @property
    def live(self) -> bool:
        return self.source == "live"

    def to_json(self) -> dict[str, object]:
        return {"price": self.price, "time": format_utc(self.time), "source": self.source}


def artifact_anchor(fc: SymbolForecast, trained_at: datetime) -> Anchor:
    """The artifact's own anchor: the last close, observed when its bar closed (or at training, if earlier)."""
    return Anchor(last_close(fc), min(fc.history_end + fc.step, trained_at), "artifact", fc.history_end)


def check_live(
    fc: SymbolForecast, price: object, observed: datetime, now: datetime, max_age: float
) -> Anchor | tuple[str, str]:
    """A live price as an anchor, or (why-kind, reason) when it must not be used.

    Used only if positive and finite, newer than the data's last close, not in the future, at most
    `max_age` seconds old, and inside the artifact's own 0.1%-99.9% band for its lead from the data end.
    """
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
        return "price", f"{price!r} is not a positive, finite price"
    price = float(price)
    when = format_utc(observed)
    if observed > now + FUTURE_SKEW:
        return "future", f"observed at {when}, in the future"
    if (now - observed).total_seconds() > max_age:
        return "stale", f"observed at {when}, more than {max_age:g} s ago"
    grid = observed - fc.step
    if grid <= fc.history_end:
        closed = format_utc(fc.history_end + fc.step)
        return "old", f"observed at {when}, not after the data's last bar closed ({closed})"
    if grid >= fc.end:
        return "horizon", f"observed at {when}, past the artifact's horizon ({format_utc(fc.end)}): retrain"
    centre = median_path(fc, grid)
    tail = NormalDist().inv_cdf(1 - BAND) / NormalDist().inv_cdf(fc.levels[-1])  # beyond the outermost levels
    low, high = (centre * math.exp(tail * math.log(r)) for r in spread(fc, grid - fc.history_end, (0, -1)))
    if not low <= price <= high:
        return "band", (
            f"{price:g} is outside the artifact's {BAND:.1%}-{1 - BAND:.1%} band for {format_utc(grid + fc.step)} "
            f"({low:.6g} to {high:.6g})"
        )
    return Anchor(price, observed, "live", grid, price / centre)


@dataclass(frozen=True, slots=True)
class Anchors:
    """One generation of anchors for every served pair; replaced whole, never changed."""

    generation: int
    by_slug: Mapping[str, Anchor]
    expires: float  # monotonic time at which the oldest live anchor passes its age; inf when none is live


class AnchorBoard:
    """The current anchors: the artifact's, with each pair's newest accepted live price while it is fresh."""

    def __init__(self, fallback: Mapping[str, Anchor], clock: Callable[[], float] = time.monotonic) -> None:
        self._fallback = dict(fallback)
        self._live: dict[str, tuple[Anchor, float]] = {}  # slug -> (anchor, monotonic expiry)
        self._clock = clock
        self._lock = threading.Lock()
        self._snap = Anchors(0, self._fallback, math.inf)

    def current(self) -> Anchors:
        """The anchors to answer with now (one attribute read and a clock read, unless one just expired)."""
        snap = self._snap
        if self._clock() >= snap.expires:
            with self._lock:
                now = self._clock()
                self._live = {s: (a, e) for s, (a, e) in self._live.items() if e > now}
                return self._publish()
        return snap

    def offer(self, accepted: Mapping[str, tuple[Anchor, float]]) -> None:
        """Take newly accepted live anchors (slug -> (anchor, monotonic expiry)); older ones never replace newer."""
        with self._lock:
            changed = False
            for slug, (anchor, expires) in accepted.items():
                held = self._live.get(slug)
                if held is None or anchor.time > held[0].time:
                    self._live[slug] = (anchor, expires)
                    changed = True
            if changed:
                self._publish()

    def _publish(self) -> Anchors:
        """A new generation from the fallback and the live anchors held (call with the lock held)."""
        by_slug = {**self._fallback, **{s: a for s, (a, _) in self._live.items()}}
        expires = min((e for _, e in self._live.values()), default=math.inf)
        self._snap = Anchors(self._snap.generation + 1, by_slug, expires)
        return self._snap
