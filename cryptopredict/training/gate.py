"""The promotion gate: checks a trained model must pass before its artifact is written."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptopredict.artifact import Artifact, BacktestRecord, GateCheck, GateRecord, PairGrid, disordered_points
from cryptopredict.training import calibration
from cryptopredict.training.config import GateConfig

__all__ = [
    "Check",
    "Decision",
    "Verdict",
    "check_symbol",
    "compare_with_production",
    "decide",
    "horizon_checks",
    "mean_skill",
]

# The served band's nominal coverage: from the 10% to the 90% quantile.
_NOMINAL = 0.8


# One rule applied to one symbol: the record the manifest's gate section holds, written here.
Check = GateCheck


# What becomes of a pair: served from this run, production's forecast carried forward, or not served.
Verdict = Literal["fresh", "carried", "left out"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's verdict: on each pair, then on the run (refused: no artifact is written)."""

    passed: bool
    checks: tuple[Check, ...]
    pairs: Mapping[str, Verdict] = field(default_factory=dict)  # every pair asked for, in order
    refusal: str | None = None  # why the whole run is refused (None when it passed)
    max_failed_share: float = 0.0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def failed_pairs(self) -> list[str]:
        return [s for s, v in self.pairs.items() if v != "fresh"]

    def reason(self) -> str:
        """One line: why the run was refused, then every failed check."""
        checks = "; ".join(f"{c.symbol}: {c.name}: {c.detail}" for c in self.failures)
        return f"{self.refusal}: {checks}" if self.refusal and checks else self.refusal or checks

    def summary(self) -> str:
        """How many pairs are served fresh, carried and left out, naming the failed ones."""
        counts = {v: [s for s, got in self.pairs.items() if got == v] for v in ("fresh", "carried", "left out")}
        return "; ".join(
            f"{len(names)} {verdict}" + (f" ({', '.join(names)})" if names and verdict != "fresh" else "")
            for verdict, names in counts.items()
        )

    def record(self) -> GateRecord:
        """The verdict as the manifest stores it."""
        return GateRecord(self.passed, self.refusal, dict(self.pairs), self.max_failed_share, tuple(self.checks))


def _interval_holds(grid: PairGrid) -> tuple[bool, str]:
    rows = zip(grid.yhat_lower, grid.yhat, grid.yhat_upper, strict=True)
    # Values are stored to ten significant digits; allow that rounding and nothing more. (The model
    # refuses a non-finite value before any check runs.)
    bad = [i for i, (lo, mid, hi) in enumerate(rows) if not lo - 1e-9 * abs(lo) <= mid <= hi + 1e-9 * abs(hi)]
    if not bad:
        return True, "every interval contains its prediction"
    return False, f"{len(bad)} grid point(s) where the prediction lies outside its interval (first at index {bad[0]})"


def _quantiles_ordered(grid: PairGrid) -> tuple[bool, str]:
    """The served quantiles are positive and never cross, at every grid point."""
    if grid.served is None:
        return False, "no served forecast in the grid"
    columns = grid.served.quantiles
    bad = disordered_points(columns)
    if not bad:
        return True, f"{len(columns)} quantiles positive and in order at every grid point"
    return (
        False,
        f"{len(bad)} grid point(s) with crossing, non-positive or non-finite quantiles (first at index {bad[0]})",
    )


def _skill_check(symbol: str, name: str, entry: Mapping[str, Any], config: GateConfig) -> Check | None:
    """The served point against naive at one horizon; None when its figures are too few to judge.

    A horizon served at weight 0 is the last close by construction and never the reason for a
    refusal; the nested procedure's loss is shown (it is what set the weight to 0). A weight above 0
    is judged on the nested procedure, its out-of-sample record, and refused if that never used one.
    """
    nested, naive, w = entry["nested"], entry["naive"], entry["weight"]
    # The backtest's ratio of unrounded errors; None (naive never erred) counts as no skill.
    ratio = math.inf if nested["mape_ratio"] is None else nested["mape_ratio"]
    procedure = (
        f"nested procedure's MAPE {nested['mape']:.2%} vs naive {naive['mape']:.2%} (x{ratio:.3f}) on "
        f"{nested['n']} cutoffs"
    )
    if w == 0:
        return Check(symbol, f"skill {name}", True, f"served at weight 0, i.e. the last close; {procedure}")
    if nested["weighted_cutoffs"] == 0:
        detail = f"weight {w:.1f} served but never used at any of {nested['n']} backtest cutoffs: unscored"
        return Check(symbol, f"skill {name}", False, detail)
    if entry["independent"] < config.min_independent:
        return None
    ok = ratio <= config.max_mape_ratio
    return Check(
        symbol,
        f"skill {name}",
        ok,
        f"weight {w:.1f}: {procedure}, weighted at {nested['weighted_cutoffs']} (limit x{config.max_mape_ratio:.2f})",
    )


def _coverage_verdicts(symbol: str, gated: Mapping[str, Mapping[str, Any]], config: GateConfig) -> dict[str, Check]:
    """The served 80% band at each gated horizon, judged by a test rather than a window.

    Each horizon's hit rate is tested against 80% on its independent outcomes (non-overlapping: the
    rate over every cutoff, counted as that many trials, which overstates its variance when outcomes
    overlap, so the test errs towards passing); the pair's horizons share one significance level
    (Holm). A band under the floor is nonsense whatever chance could say.
    """
    judged = {}
    for name, entry in gated.items():
        served = entry["served"]
        n = served["coverage_independent"]
        if served["coverage"] is None or n < config.min_independent:
            continue
        hits = round(served["coverage"] * n)
        judged[name] = (served, n, calibration.binomial_p_value(hits, n, _NOMINAL))
    tests = dict(zip(judged, calibration.holm([p for _, _, p in judged.values()], config.coverage_alpha), strict=True))
    checks = {}
    for name, (served, n, p) in judged.items():
        cov = served["coverage"]
        held = f"80% band held {cov:.0%} of {served['coverage_n']} closes ({n} independent)"
        shown = "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"
        if cov < config.coverage_floor:
            detail = f"{held}: under the {config.coverage_floor:.0%} floor, refused whatever the number of outcomes"
            checks[name] = Check(symbol, f"coverage {name}", False, detail)
        elif tests[name].refused:
            m = len(judged)
            limit = f"limit {tests[name].limit:.2g}: {config.coverage_alpha:.0%} over {m} horizon{'s' * (m > 1)}, Holm"
            checks[name] = Check(symbol, f"coverage {name}", False, f"{held}: refused, {shown} ({limit})")
        else:
            checks[name] = Check(symbol, f"coverage {name}", True, f"{held}: consistent with 80% ({shown})")
    return checks


def horizon_checks(symbol: str, backtest: Mapping[str, Any], config: GateConfig) -> list[Check]:
    """Per scored horizon: the served forecast no worse than naive, its 80% band consistent with 80%."""
    checks = []
    gated = {n: e for n, e in backtest["metrics"].items() if e["independent"] >= config.min_independent}
    coverage = _coverage_verdicts(symbol, gated, config)
    for name, entry in backtest["metrics"].items():
        served = entry["served"]
        check = _skill_check(symbol, name, entry, config)
        if check is None:
            detail = f"{served['n']} cutoffs, {entry['independent']} with non-overlapping outcomes: too few to judge"
            check = Check(symbol, f"skill {name}", True, detail)
        checks.append(check)
        if name not in gated:
            continue
        if name not in coverage:
            detail = (
                f"weight {entry['weight']:.1f}: its band was known at {served['coverage_n']} of {served['n']} "
                f"cutoffs, {served['coverage_independent']} with non-overlapping outcomes: too few to judge"
            )
            checks.append(Check(symbol, f"coverage {name}", True, detail))
            continue
        checks.append(coverage[name])
    return checks


def check_symbol(
    symbol: str,
    grid: PairGrid,
    backtest: Mapping[str, Any] | None,
    converged: bool,
    config: GateConfig,
) -> list[Check]:
    """Every rule for one freshly trained symbol (`grid`: its grid, with its served forecast)."""
    checks = [
        Check(symbol, "converged", converged, "optimiser converged" if converged else "the optimiser did not converge"),
        Check(symbol, "interval", *_interval_holds(grid)),
        Check(symbol, "quantiles", *_quantiles_ordered(grid)),
    ]
    if not backtest:
        checks.append(Check(symbol, "backtest", True, "not enough history to backtest; skill and coverage not checked"))
        return checks
    return checks + horizon_checks(symbol, backtest, config)


def mean_skill(backtest: BacktestRecord, horizons: Sequence[str]) -> float | None:
    """Served MAPE over naive's (`Skill.mape_ratio`) averaged over the named horizons that have one.

    A ratio to the last close from the same cutoffs, so two runs that backtested different
    windows (a calm year and a wild one) compare fairly; MASE or MAPE alone would not.
    """
    ratios = [r for h, e in backtest.metrics.items() if h in horizons and (r := e.skill.mape_ratio) is not None]
    return sum(ratios) / len(ratios) if ratios else None


def compare_with_production(
    symbol: str,
    candidate: BacktestRecord | None,
    production: Artifact | None,
    config: GateConfig,
) -> Check:
    """Refuse a candidate clearly worse than the model in production, on the horizons both have.

    The champion's backtest is the typed record `read_artifact` checked, so a champion of another
    shape was already refused in one line on loading.
    """
    if production is None:
        return Check(symbol, "vs production", True, "no artifact in production (a first run): nothing to compare with")
    theirs = next((f.backtest for f in production.forecasts.values() if f.symbol == symbol), None)
    ours = candidate
    who = f"production {production.model_version}"
    if not ours or not theirs:
        side = "this model" if not ours else who
        return Check(symbol, "vs production", True, f"{side} has no backtest of {symbol}: nothing to compare")
    common = [h for h in ours.metrics if h in theirs.metrics]
    new, old = mean_skill(ours, common), mean_skill(theirs, common)
    if new is None or old is None:
        return Check(symbol, "vs production", True, f"no horizon in common with {who}")
    ratio = new / old if old > 0 else math.inf
    ok = ratio <= config.max_vs_production
    return Check(
        symbol,
        "vs production",
        ok,
        f"served MAPE / naive's {new:.3f} against {who}'s {old:.3f} over {', '.join(common)} "
        f"(x{ratio:.2f}, limit x{config.max_vs_production:.2f})",
    )


def decide(
    checks: Sequence[Check],
    symbols: Sequence[str],
    carriable: Collection[str],
    max_failed_share: float,
    min_failed_pairs: int = GateConfig().min_failed_pairs,
) -> Decision:
    """Judge each pair on its own checks, then the run.

    A pair passes when every check of its own passed and is served fresh; a failed pair is carried
    forward when production serves it (`carriable`), else left out. The run is refused when no pair
    passed, or when more than `max_failed_share` of the pairs failed and at least `min_failed_pairs`
    did: that many failing at once says the run is broken, not one market. One failed pair is one
    market whatever the run's size (one of two is half the run, and still one market).
    """
    failed = {c.symbol for c in checks if not c.passed}
    pairs: dict[str, Verdict] = {
        s: "fresh" if s not in failed else "carried" if s in carriable else "left out" for s in symbols
    }
    bad = sum(1 for v in pairs.values() if v != "fresh")
    refusal = None
    if bad == len(pairs):
        refusal = f"no pair passed ({bad} of {bad} failed)"
    elif bad >= min_failed_pairs and bad > max_failed_share * len(pairs):
        refusal = (
            f"{bad} of {len(pairs)} pairs failed, more than the {max_failed_share:.0%} allowed "
            "(so many at once is a broken run, not one market)"
        )
    return Decision(refusal is None, tuple(checks), pairs, refusal, max_failed_share)
