"""The promotion gate's error rates on bands, measured: `python -m cryptopredict.training.gate_error_rates`.

How often the gate refuses a calibrated 80% band (a false refusal: yesterday's model kept for
nothing) and how often it refuses a broken one (its power), on simulated outcomes of the real cutoff
layouts: a random walk with Student-t(4) returns, cut at the backtest's cutoffs (as many, as far
apart, scored at the timeframe's horizons), the band at the returns' true quantiles for a chosen
coverage. Each simulated pair-run's hit rates go through the gate's own horizon checks
(`gate.horizon_checks`) exactly as a backtest's do; the coverage window the gate used before (70%-90%
at horizons with 20 independent outcomes) is measured on the same outcomes beside it. Seeded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryptopredict.timeframes import Horizon, get_timeframe
from cryptopredict.training import gate
from cryptopredict.training.backtest import overlap_lag
from cryptopredict.training.config import BacktestConfig, GateConfig

__all__ = ["LAYOUTS", "Layout", "Rates", "measure", "outside_window"]

# Student-t with 4 degrees of freedom: crypto's fat tails (finite variance, infinite kurtosis).
_DF = 4
# Paths simulated at once: keeps an hourly layout's 20,000-step paths to a few hundred MB.
_CHUNK_STEPS = 4_000_000
# The window the gate judged coverage by before: a band's hit rate outside it was refused.
_WINDOW = (0.70, 0.90)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a backtest's cutoffs fall and what it scores: the default layout of a timeframe, or fewer cutoffs."""

    name: str
    cutoffs: int
    spacing: int  # bars between neighbouring cutoffs
    horizons: tuple[Horizon, ...]

    @classmethod
    def of(cls, name: str, timeframe: str, cutoffs: int | None = None) -> Layout:
        tf = get_timeframe(timeframe)
        bt = BacktestConfig(**({} if cutoffs is None else {"cutoffs": cutoffs})).for_timeframe(timeframe)
        assert bt.spacing is not None  # for_timeframe fills it
        return cls(name, bt.cutoffs, round(bt.spacing.total_seconds() / tf.seconds), tf.horizons)

    def lag(self, h: Horizon) -> int:
        return overlap_lag(h, self.spacing)

    def independent(self, h: Horizon) -> int:
        """Forecasts whose outcomes do not overlap, counted as the backtest counts them."""
        return self.cutoffs // (self.lag(h) + 1)


LAYOUTS = (
    Layout.of("daily, default (120 cutoffs)", "1Day"),
    Layout.of("hourly, default (120 cutoffs)", "1Hour"),
    Layout.of("daily, --backtest-cutoffs 20", "1Day", 20),
)


@dataclass(frozen=True, slots=True)
class Rates:
    """Refusals out of `runs` simulated pair-runs at one true coverage: the pair's, and each horizon's."""

    coverage: float
    runs: int
    refused: float  # share of pair-runs the gate refused
    window_refused: float  # share the old window would have refused
    by_horizon: dict[str, float]  # per gated horizon, the share refused for its coverage
    gated: tuple[str, ...]  # the horizons with enough independent outcomes to be judged


def _bands(h: int, coverages: Sequence[float], rng: np.random.Generator) -> dict[float, tuple[float, float]]:
    """For each coverage, the true quantiles of an h-step sum of t(4) returns that hold it between them
    (estimated on 10 million draws: each tail's coverage within about 0.2% at the longest horizon)."""
    sums = rng.standard_t(_DF, size=(min(500_000, 10_000_000 // h), h)).sum(axis=1)
    bands = {}
    for c in coverages:
        tail = (1.0 - c) / 2.0
        lo, hi = np.quantile(sums, [tail, 1.0 - tail])
        bands[c] = (float(lo), float(hi))
    return bands


def _entry(h: Horizon, layout: Layout, rate: float) -> dict[str, Any]:
    """A horizon's backtest figures as the gate reads them: served at weight 0 (the last close), the band's hit
    rate over every cutoff, counted on the independent outcomes."""
    n, independent = layout.cutoffs, layout.independent(h)
    point = {"mape": 0.1, "n": n}
    return {
        "steps": h.steps,
        "independent": independent,
        "weight": 0.0,
        "served": {**point, "coverage": rate, "coverage_n": n, "coverage_independent": independent},
        "nested": {**point, "mape_ratio": 1.0, "weighted_cutoffs": 0},
        "naive": point,
    }


def outside_window(rate: float) -> bool:
    """The rule the gate used before, at each horizon with 20 independent outcomes: a hit rate outside 70%-90%."""
    lo, hi = _WINDOW
    return not lo <= rate <= hi


def measure(
    layout: Layout, coverages: Sequence[float], runs: int, seed: int = 0, config: GateConfig | None = None
) -> list[Rates]:
    """Refusal rates of the gate (and the old window) for bands of each true coverage, on the same paths."""
    config = config or GateConfig()
    rng = np.random.default_rng(seed)
    bands = {(h.steps, c): band for h in layout.horizons for c, band in _bands(h.steps, coverages, rng).items()}
    origins = np.arange(layout.cutoffs) * layout.spacing
    span = int(origins[-1]) + max(h.steps for h in layout.horizons)
    gated = tuple(h.name for h in layout.horizons if layout.independent(h) >= config.min_independent)
    counts = {c: {"pair": 0, "window": 0, **dict.fromkeys(gated, 0)} for c in coverages}
    done = 0
    while done < runs:
        m = min(max(1, _CHUNK_STEPS // span), runs - done)
        done += m
        walk = np.zeros((m, span + 1))
        np.cumsum(rng.standard_t(_DF, size=(m, span)), axis=1, out=walk[:, 1:])
        moves = {h.steps: walk[:, origins + h.steps] - walk[:, origins] for h in layout.horizons}
        for c in coverages:
            hit_rates = {
                h.name: ((moves[h.steps] >= bands[h.steps, c][0]) & (moves[h.steps] <= bands[h.steps, c][1])).mean(1)
                for h in layout.horizons
            }
            for j in range(m):
                rates = {name: float(r[j]) for name, r in hit_rates.items()}
                backtest = {"metrics": {h.name: _entry(h, layout, rates[h.name]) for h in layout.horizons}}
                failed = {k.name.removeprefix("coverage ") for k in gate.horizon_checks("X", backtest, config)
                          if not k.passed}  # fmt: skip
                counts[c]["pair"] += bool(failed)
                counts[c]["window"] += any(outside_window(rates[name]) for name in gated)
                for name in failed & set(gated):
                    counts[c][name] += 1
    return [
        Rates(
            c,
            runs,
            counts[c]["pair"] / runs,
            counts[c]["window"] / runs,
            {name: counts[c][name] / runs for name in gated},
            gated,
        )
        for c in coverages
    ]


def _table(layouts: Sequence[Layout], runs: int, seed: int) -> str:
    """The README's table: per layout, each true coverage's refusal rate per pair-run and per gated horizon."""
    lines = [
        "| layout | true coverage of the 80% band | refused per pair-run (test) | by the old 70%-90% window | "
        "refused at each gated horizon (test) |",
        "|---|---:|---:|---:|---|",
    ]
    for layout in layouts:
        print(f"simulating {layout.name}...", file=sys.stderr, flush=True)
        for r in measure(layout, (0.8, 0.6, 0.95), runs, seed):
            per = ", ".join(f"{name} {share:.1%}" for name, share in r.by_horizon.items())
            lines.append(f"| {layout.name} | {r.coverage:.0%} | {r.refused:.2%} | {r.window_refused:.2%} | {per} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cryptopredict.training.gate_error_rates", description=__doc__)
    p.add_argument("--runs", type=int, default=20_000, help="simulated pair-runs per layout (default: 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = p.parse_args(argv)
    print(f"{args.runs} simulated pair-runs per layout and coverage, seed {args.seed}:", file=sys.stderr)
    print(_table(LAYOUTS, args.runs, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
