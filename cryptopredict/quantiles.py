"""Probabilities from a quantile forecast: one inversion, shared by the API and the alerts (stdlib only)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

__all__ = ["probability", "probability_below"]

# A bound on P(below) is the opposite bound on P(above).
_FLIPPED = {"at most": "at least", "at least": "at most"}


def probability_below(levels: Sequence[float], values: Sequence[float], price: float) -> tuple[float, str]:
    """P(close <= price) from the prices `values` at quantile `levels`, and "exact", "at most" or "at least".

    Inverts the quantiles, linearly in log price between stored levels. Below the lowest stored
    quantile the probability is at most the lowest level; above the highest, at least the highest.
    """
    if price < values[0]:
        return levels[0], "at most"
    if price > values[-1]:
        return levels[-1], "at least"
    k = bisect.bisect_right(values, price) - 1
    if k >= len(values) - 1 or values[k + 1] <= values[k]:
        return levels[k], "exact"
    t = math.log(price / values[k]) / math.log(values[k + 1] / values[k])
    return float(f"{levels[k] + t * (levels[k + 1] - levels[k]):.6g}"), "exact"


def probability(levels: Sequence[float], values: Sequence[float], price: float, side: str) -> tuple[float, str]:
    """P(close above `price`) (`side` "above") or P(close at or below it) ("below"), to 6 significant digits,
    and "exact", "at most" or "at least": the one way the API and the alerts turn quantiles into a probability."""
    below, bound = probability_below(levels, values, price)
    if side == "below":
        return below, bound
    if side != "above":
        msg = f"side must be 'above' or 'below', not {side!r}"
        raise ValueError(msg)
    return float(f"{1 - below:.6g}"), _FLIPPED.get(bound, bound)
