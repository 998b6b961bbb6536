"""The promotion gate: checks a trained model must pass before its artifact is written."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryptopredict.training.config import GateConfig

__all__ = ["Check", "Decision", "check_symbol", "compare_with_production", "decide"]


@dataclass(frozen=True, slots=True)
class Check:
    """One rule applied to one symbol: did it pass, and the figures behind the verdict."""

    symbol: str
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's verdict over every check."""

    passed: bool
    checks: tuple[Check, ...]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def reason(self) -> str:
        """One line naming every failed check."""
        return "; ".join(f"{c.symbol}: {c.name}: {c.detail}" for c in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def _finite(payload: Mapping[str, Any]) -> tuple[bool, str]:
    bad = sum(1 for key in ("yhat", "yhat_lower", "yhat_upper") for v in payload[key] if not math.isfinite(v))
    return bad == 0, "all values finite" if bad == 0 else f"{bad} non-finite value(s) in the forecast grid"


def _interval_holds(payload: Mapping[str, Any]) -> tuple[bool, str]:
    rows = zip(payload["yhat_lower"], payload["yhat"], payload["yhat_upper"], strict=True)
    # Values are stored to ten significant digits; allow that rounding and nothing more.
    bad = [
        i
        for i, (lo, mid, hi) in enumerate(rows)
        # Non-finite points are the "finite" check's to report.
        if math.isfinite(lo + mid + hi) and not (lo - 1e-9 * abs(lo) <= mid <= hi + 1e-9 * abs(hi))
    ]
    if not bad:
        return True, "every interval contains its prediction"
    return False, f"{len(bad)} grid point(s) where the prediction lies outside its interval (first at index {bad[0]})"


def pooled_coverage(backtest: Mapping[str, Any]) -> float | None:
    """The model's interval coverage over all horizons, weighted by forecast count."""
    hits = total = 0.0
    for entry in backtest["metrics"].values():
        model = entry["model"]
        if model.get("coverage") is not None:
            hits += model["coverage"] * model["n"]
            total += model["n"]
    return hits / total if total else None


def check_symbol(
    symbol: str,
    payload: Mapping[str, Any],
    backtest: Mapping[str, Any] | None,
    converged: bool,
    interval_width: float,
    config: GateConfig,
) -> list[Check]:
    """Every rule for one freshly trained symbol."""
    checks = [
        Check(symbol, "converged", converged, "optimiser converged" if converged else "the optimiser did not converge"),
        Check(symbol, "finite", *_finite(payload)),
        Check(symbol, "interval", *_interval_holds(payload)),
    ]
    coverage = pooled_coverage(backtest) if backtest else None
    if coverage is None:
        checks.append(Check(symbol, "coverage", True, "not enough history to backtest; coverage not checked"))
    else:
        ok = coverage >= config.min_coverage
        checks.append(
            Check(
                symbol,
                "coverage",
                ok,
                f"{interval_width:.0%} interval held {coverage:.0%} of backtest actuals "
                f"({'at least' if ok else 'below'} the {config.min_coverage:.0%} minimum)",
            )
        )
    return checks


def mean_mase(backtest: Mapping[str, Any] | None, horizons: Sequence[str] | None = None) -> float | None:
    """The model's MASE averaged over horizons (all, or the named ones)."""
    if not backtest:
        return None
    values = [e["model"]["mase"] for h, e in backtest["metrics"].items() if horizons is None or h in horizons]
    return sum(values) / len(values) if values else None


def compare_with_production(
    symbol: str,
    candidate: Mapping[str, Any] | None,
    production: Mapping[str, Any] | None,
    config: GateConfig,
) -> Check:
    """Refuse a candidate clearly worse than the model in production, on the horizons both have."""
    if not candidate or not production:
        return Check(symbol, "vs production", True, "no backtest on both sides to compare")
    common = sorted(set(candidate["metrics"]) & set(production["metrics"]))
    new, old = mean_mase(candidate, common), mean_mase(production, common)
    if new is None or old is None:
        return Check(symbol, "vs production", True, "no common horizons to compare")
    ratio = new / old if old > 0 else math.inf
    ok = ratio <= config.max_mase_ratio
    return Check(
        symbol,
        "vs production",
        ok,
        f"mean MASE {new:.3f} against production's {old:.3f} (x{ratio:.2f}, limit x{config.max_mase_ratio:.2f})",
    )


def decide(checks: Sequence[Check]) -> Decision:
    """Pass only when every check passed."""
    return Decision(all(c.passed for c in checks), tuple(checks))
