"""The gate's coverage verdict as a test: the exact binomial p-value and Holm's correction it rests on."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from cryptopredict.training import calibration


def _exact_p_value(hits: int, n: int, p: Fraction) -> Fraction:
    """The minimum-likelihood two-sided binomial p-value in exact rational arithmetic."""
    pmf = [Fraction(math.comb(n, k)) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    return sum((q for q in pmf if q <= pmf[hits]), Fraction(0))


@pytest.mark.parametrize("n", [1, 5, 20, 60])
def test_the_binomial_p_value_is_the_exact_one(n: int) -> None:
    """Every count of n trials at 80% gets the exact rational p-value, to floating-point accuracy."""
    for hits in range(n + 1):
        exact = float(min(Fraction(1), _exact_p_value(hits, n, Fraction(4, 5))))
        assert calibration.binomial_p_value(hits, n, 0.8) == pytest.approx(exact, rel=1e-9, abs=1e-300), hits


def test_the_binomial_p_value_at_its_edges() -> None:
    """A count at the expected share is 1; no trials is no evidence; a certain rate; a count outside 0..n is refused."""
    assert calibration.binomial_p_value(16, 20, 0.8) == 1.0
    assert calibration.binomial_p_value(0, 0, 0.8) == 1.0
    assert calibration.binomial_p_value(5, 5, 1.0) == 1.0
    assert calibration.binomial_p_value(4, 5, 1.0) == 0.0
    assert calibration.binomial_p_value(3000, 3000, 0.8) < 1e-200  # computed in logs: no underflow to an error
    with pytest.raises(ValueError, match=r"hits must lie in 0\.\.20, got 21"):
        calibration.binomial_p_value(21, 20, 0.8)


def test_holm_steps_down_and_stops_at_the_first_p_value_over_its_limit() -> None:
    """Limits alpha/m, alpha/(m-1), ... in order of p; 0.03 misses 0.025, so 0.04 stands though under 0.05."""
    got = calibration.holm([0.01, 0.04, 0.03, 0.005], 0.05)
    assert got == [
        calibration.Holm(True, 0.05 / 3),
        calibration.Holm(False, 0.05),
        calibration.Holm(False, 0.025),
        calibration.Holm(True, 0.0125),
    ]
    assert calibration.holm([], 0.05) == []
    assert calibration.holm([0.049], 0.05) == [calibration.Holm(True, 0.05)]
    # A p-value equal to its limit is refused (p <= alpha / (m - rank)); 0.01 / 2 is exact in binary.
    assert calibration.holm([0.005, 0.01], 0.01) == [calibration.Holm(True, 0.005), calibration.Holm(True, 0.01)]
