"""The served quantiles' rules: the levels the reader and the writer accept, and the order the promotion gate
checks on the quantiles a training run computed."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = ["check_levels", "disordered_points"]


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


def disordered_points(columns: Sequence[Sequence[float]]) -> list[int]:
    """Grid points whose quantiles (one column per level, levels ascending) are not all finite, positive
    and non-decreasing: the one rule the reader and the promotion gate apply."""
    return [
        i
        for i, row in enumerate(zip(*columns, strict=True))
        if not all(math.isfinite(v) and v > 0 for v in row) or any(a > b for a, b in itertools.pairwise(row))
    ]
