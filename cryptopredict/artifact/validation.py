"""The served quantiles' one rule, applied by the reader, the writer and the promotion gate alike."""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence

__all__ = ["check_levels", "check_quantiles", "disordered_points"]


def check_levels(slug: str, levels: Sequence[float]) -> None:
    """The served levels ascend inside (0, 1) and include 0.1, 0.5 and 0.9; ValueError otherwise."""
    if (
        not levels
        or list(levels) != sorted(set(levels))
        or not levels[0] > 0
        or not levels[-1] < 1
        or not {0.1, 0.5, 0.9} <= set(levels)
    ):
        msg = f"{slug}: served levels must ascend inside (0, 1) and include 0.1, 0.5 and 0.9"
        raise ValueError(msg)


def check_quantiles(slug: str, served: Sequence[float], n: int) -> None:
    """Every quantile positive, finite and at or above the level below it, at every point.

    The grid is level-major, so its values from the second level on, against those up to the last
    but one, compare each level with the one below at every point, in one C loop (a NaN compares
    false, so it fails too); with them in order, the lowest level positive and the highest finite,
    every value is."""
    top = len(served) - n
    ordered = all(map(operator.le, served[:top], served[n:]))
    if ordered and min(served[:n], default=1.0) > 0 and math.isfinite(max(served[top:], default=0.0)):
        return
    bad = disordered_points([served[k : k + n] for k in range(0, len(served), n)])  # only to name the first
    msg = f"{slug}: served quantiles at point {bad[0]} are not positive, finite and ascending"
    raise ValueError(msg)


def disordered_points(columns: Sequence[Sequence[float]]) -> list[int]:
    """Grid points whose quantiles (one column per level, levels ascending) are not all finite, positive
    and non-decreasing: the one rule the reader and the promotion gate apply."""
    return [
        i
        for i, row in enumerate(zip(*columns, strict=True))
        if not all(math.isfinite(v) and v > 0 for v in row) or any(a > b for a, b in itertools.pairwise(row))
    ]
