"""Is a band's hit rate explained by chance? The exact binomial test and Holm's correction the gate uses.

A backtest's 80% band held some share of the actual closes; with few outcomes a perfectly calibrated
band strays far from 80% by chance (at 20 independent outcomes it lands outside 70%-90% about one time in six).
The null hypothesis is "the band holds the nominal share of outcomes"; the test refuses it only when
chance is an unlikely explanation, and the error it controls is refusing a calibrated band: at most
`alpha` per pair, over all of its horizons together (Holm). Standard library only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Holm", "binomial_p_value", "holm"]

# Two outcomes as likely as the observed one, up to floating-point noise, count as "as extreme".
_TIES = 1.0 + 1e-7


@functools.lru_cache(maxsize=64)
def _pmf(n: int, p: float) -> tuple[float, ...]:
    """Binomial(n, p) probabilities of 0..n, computed in logs so that n in the thousands does not underflow."""
    if p <= 0.0 or p >= 1.0:
        certain = n if p >= 1.0 else 0
        return tuple(1.0 if k == certain else 0.0 for k in range(n + 1))
    lp, lq = math.log(p), math.log1p(-p)
    lgn = math.lgamma(n + 1)
    return tuple(
        math.exp(lgn - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq) for k in range(n + 1)
    )


def binomial_p_value(hits: int, n: int, p: float) -> float:
    """Two-sided exact binomial test of `hits` successes in `n` trials against a success rate `p`.

    The p-value is the probability, under the null, of every count no more likely than the one
    observed (the "minimum likelihood" rule of R's binom.test and scipy's binomtest). Exact rather
    than Kupiec's likelihood ratio: at 20 outcomes the ratio's chi-squared approximation refuses a
    calibrated band about twice as often as it says.
    """
    if n <= 0:
        return 1.0
    if not 0 <= hits <= n:
        msg = f"hits must lie in 0..{n}, got {hits}"
        raise ValueError(msg)
    pmf = _pmf(n, p)
    limit = pmf[hits] * _TIES
    return min(1.0, math.fsum(q for q in pmf if q <= limit))


@dataclass(frozen=True, slots=True)
class Holm:
    """One hypothesis after Holm's step-down correction: refused or not, and the limit its p-value met."""

    refused: bool
    limit: float  # the p-value under which this hypothesis would be refused at its rank


def holm(p_values: Sequence[float], alpha: float) -> list[Holm]:
    """Holm's step-down procedure: the chance of refusing any true hypothesis stays at most `alpha`.

    The smallest p-value is held to alpha/m, the next to alpha/(m-1), and so on; the first that
    misses its limit stops the procedure and every larger one stands. Results in the input's order.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out: list[Holm | None] = [None] * m
    stopped = False
    for rank, i in enumerate(order):
        limit = alpha / (m - rank)
        stopped = stopped or p_values[i] > limit
        out[i] = Holm(not stopped, limit)
    return [h for h in out if h is not None]
