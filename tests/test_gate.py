"""The promotion gate: a broken or clearly worse model never becomes an artifact."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cryptopredict.artifact import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    BacktestRecord,
    Manifest,
    PairGrid,
    from_json,
    read_artifact,
    to_json,
    write_artifact,
)
from cryptopredict.errors import ArtifactError
from cryptopredict.training import gate
from cryptopredict.training.config import GateConfig
from cryptopredict.training.model import optimiser_converged
from tests.helpers import DATA, manifest_doc, pair_entry, quantile_grid, rewrite_manifest, run_cli

CONFIG = GateConfig(max_mape_ratio=1.02, coverage_alpha=0.01, min_independent=20, max_vs_production=1.1)
LEVELS = [0.1, 0.5, 0.9]


def _grid(
    yhat: list[float], lower: list[float], upper: list[float], served: list[list[float]] | None = None
) -> PairGrid:
    """A daily grid of one history point with Prophet's series and the served quantiles (`served`) given; the
    served distribution's parameters, which the gate does not read, left empty."""
    quantiles = served if served is not None else [[9.0, 10.0], [10.0, 11.0], [11.0, 12.0]]
    return quantile_grid(quantiles, yhat, lower, upper, levels=tuple(LEVELS), close=1.0)


def _entry(
    served_mape: float, coverage: float, n: int, independent: int, mase: float, weight: float = 1.0, used: int = 0
) -> dict[str, object]:
    # Every field of a stored horizon (cryptopredict.artifact.HorizonScore); the gate reads the ones set here.
    served = {"mae": 1.0, "mape": served_mape, "mase": mase, "coverage": coverage, "coverage_n": n,
              "coverage_independent": independent, "pinball": 0.01, "n": n}  # fmt: skip
    point = {"mae": 1.0, "mape": 0.1, "mase": 1.0, "coverage": None, "n": n}
    return {
        "steps": 1,
        "independent": independent,
        "served": served,
        "nested": {
            **{k: v for k, v in served.items() if not k.startswith("coverage_")},
            "mape_ratio": served_mape / 0.1,
            "mape_ratio_ci90": None,
            "weighted_cutoffs": used or n,
        },
        "prophet": point,
        "naive": {"mae": 1.0, "mape": 0.1, "mase": 1.0, "coverage": 0.8, "pinball": 0.01, "n": n},
        "drift": point,
        "weight": weight,
        "weight_basis": "nested",
        "error_z": None,
        "weight_evidence": {
            "n": n,
            "independent": independent,
            "needed": 20,
            "best": weight,
            "dm_stat": None,
            "p_value": None,
        },
        "weights_used": {"mean": weight, "max": weight},
        "skill": {
            "mape_ratio": served_mape / 0.1,
            "mape_ratio_ci90": None,
            "prophet_mape_ratio": None,
            "pinball_ratio": None,
            "dm_stat": None,
            "p_value": None,
        },
        "coverage_ci90": None,
        "beats_naive": False,
        "summary": "at this horizon ...",
    }


def _backtest(
    mase: float = 2.0, coverage: float = 0.8, mape: float = 0.1, n: int = 120, independent: int = 120
) -> dict[str, object]:
    metrics = {h: _entry(mape, coverage, n, independent, mase) for h in ("1d", "7d", "30d")}
    horizons = [{"name": h, "steps": 1} for h in metrics]
    return {"cutoffs": ["2025-01-01T00:00:00Z"], "spacing_seconds": 86400, "window": 0, "horizons": horizons,
            "metrics": metrics}  # fmt: skip


def _record(backtest: dict[str, object]) -> BacktestRecord:
    return from_json(BacktestRecord, backtest)


GOOD = _grid([10.0, 11.0], [9.0, 10.0], [11.0, 12.0])


def _failed(checks: list[gate.Check]) -> set[str]:
    return {c.name for c in checks if not c.passed}


def test_a_sound_model_passes_every_check() -> None:
    """Finite values, ordered quantiles, converged, no worse than naive, calibrated: promoted."""
    checks = gate.check_symbol("BTC/USD", GOOD, _backtest(), True, CONFIG)
    assert _failed(checks) == set()
    assert {"skill 1d", "coverage 30d", "quantiles"} <= {c.name for c in checks}
    assert gate.decide(checks, ["BTC/USD"], (), 0.25).passed


@pytest.mark.parametrize(
    ("grid", "backtest", "converged", "failed"),
    [
        (_grid([10.0, 13.0], [9.0, 10.0], [11.0, 12.0]), None, True, {"interval"}),
        (_grid([8.0, 11.0], [9.0, 10.0], [11.0, 12.0]), None, True, {"interval"}),
        (_grid([10.0, 11.0], [9.0, 10.0], [11.0, 12.0], [[9.0, 10.0], [10.0, 13.0], [11.0, 12.0]]), None, True,
         {"quantiles"}),
        (_grid([10.0, 11.0], [9.0, 10.0], [11.0, 12.0], [[-1.0, 10.0], [10.0, 11.0], [11.0, 12.0]]), None, True,
         {"quantiles"}),
        (GOOD, _backtest(mape=0.103), True, {"skill 1d", "skill 7d", "skill 30d"}),
        (GOOD, _backtest(coverage=0.65), True, {"coverage 1d", "coverage 7d", "coverage 30d"}),
        (GOOD, _backtest(coverage=0.95), True, {"coverage 1d", "coverage 7d", "coverage 30d"}),
        (GOOD, None, False, {"converged"}),
        (replace(GOOD, served=None), None, True, {"quantiles"}),
    ],
    ids=["above-interval", "below-interval", "crossing-quantiles", "negative-quantile",
         "worse-than-naive", "under-covered", "over-covered", "not-converged", "no-served-forecast"],
)  # fmt: skip
def test_each_broken_model_is_refused_for_its_own_reason(grid, backtest, converged, failed) -> None:
    """Each defect fails exactly its checks, and the decision's reason names the symbol and a check."""
    decision = gate.decide(gate.check_symbol("ETH/USD", grid, backtest, converged, CONFIG), ["ETH/USD"], (), 0.25)
    assert not decision.passed
    assert {c.name for c in decision.failures} == failed
    assert decision.reason().startswith(f"no pair passed (1 of 1 failed): ETH/USD: {decision.failures[0].name}: ")
    assert decision.pairs == {"ETH/USD": "left out"}


PAIRS = ["A/USD", "B/USD", "C/USD", "D/USD", "E/USD", "F/USD", "G/USD", "H/USD"]


def _checks(failing: set[str]) -> list[gate.Check]:
    """One passing check per pair, and a failing one for each pair in `failing`."""
    return [gate.Check(s, "converged", True, "ok") for s in PAIRS] + [
        gate.Check(s, "coverage 1d", False, "80% interval held 55%") for s in sorted(failing)
    ]


def test_a_failed_pair_is_carried_when_production_serves_it_and_left_out_otherwise() -> None:
    """Each pair is judged on its own checks: one failure never blocks the other pairs."""
    decision = gate.decide(_checks({"B/USD", "C/USD"}), PAIRS, {"B/USD", "Z/USD"}, 0.25)
    assert decision.passed
    assert decision.refusal is None
    assert decision.pairs == {s: "fresh" for s in PAIRS} | {"B/USD": "carried", "C/USD": "left out"}
    assert decision.failed_pairs() == ["B/USD", "C/USD"]
    assert decision.summary() == "6 fresh; 1 carried (B/USD); 1 left out (C/USD)"
    assert decision.record().pairs["C/USD"] == "left out"


@pytest.mark.parametrize(("failing", "share", "least", "passed"), [
    (2, 0.25, 2, True), (3, 0.25, 2, False), (3, 0.375, 2, True), (0, 0.0, 1, True), (1, 0.0, 1, False),
    (1, 0.0, 2, True), (2, 0.0, 2, False), (3, 0.25, 4, True), (7, 1.0, 2, True)])  # fmt: skip
def test_the_run_is_refused_only_above_the_share_of_failed_pairs(
    failing: int, share: float, least: int, passed: bool
) -> None:
    """2 of 8 failed is 25%, allowed at 0.25; 3 of 8 is not; a share of 0 refuses any failure from the least
    number of failed pairs on, and below that least number the share does not apply."""
    decision = gate.decide(_checks(set(PAIRS[:failing])), PAIRS, PAIRS, share, least)
    assert decision.passed is passed
    assert (decision.refusal is None) is passed
    if not passed:
        assert decision.refusal == (
            f"{failing} of 8 pairs failed, more than the {share:.0%} allowed "
            "(so many at once is a broken run, not one market)"
        )
        assert decision.reason().startswith(f"{decision.refusal}: {PAIRS[0]}: coverage 1d: ")


def test_one_unlucky_pair_of_two_is_carried_not_the_run() -> None:
    """By default a run of two pairs with one failed ships the other and carries (or leaves out) the failed one;
    both failing is no pair passed; three pairs with two failed is a broken run."""
    two = ["BTC/USD", "ETH/USD"]
    one_failed = [gate.Check(s, "converged", True, "ok") for s in two] + [gate.Check("ETH/USD", "coverage 1d", False,
                                                                                     "80% band held 41%")]  # fmt: skip
    carried = gate.decide(one_failed, two, {"ETH/USD"}, 0.25)
    assert carried.passed
    assert carried.pairs == {"BTC/USD": "fresh", "ETH/USD": "carried"}
    assert carried.summary() == "1 fresh; 1 carried (ETH/USD); 0 left out"
    assert gate.decide(one_failed, two, (), 0.25).pairs == {"BTC/USD": "fresh", "ETH/USD": "left out"}
    both = [*one_failed, gate.Check("BTC/USD", "converged", False, "the optimiser did not converge")]
    assert gate.decide(both, two, two, 0.25).refusal == "no pair passed (2 of 2 failed)"
    three = ["A/USD", "B/USD", "C/USD"]
    two_of_three = [gate.Check(s, "converged", s == "A/USD", "x") for s in three]
    assert gate.decide(two_of_three, three, three, 0.25).refusal == (
        "2 of 3 pairs failed, more than the 25% allowed (so many at once is a broken run, not one market)"
    )
    # The share rule's least number of failed pairs is the config's (train.py's) default.
    assert GateConfig().min_failed_pairs == 2


def test_a_passed_run_names_its_failed_checks_and_its_failed_pairs() -> None:
    """A run that passed with two carried pairs and one left out: the reason is the failed checks alone, the
    summary names the pairs of each verdict, comma-separated; a refusal with no failed check is just itself."""
    decision = gate.decide(_checks({"A/USD", "B/USD", "C/USD"}), PAIRS, {"A/USD", "B/USD"}, 0.5)
    assert decision.passed
    assert decision.reason() == (
        "A/USD: coverage 1d: 80% interval held 55%; B/USD: coverage 1d: 80% interval held 55%; "
        "C/USD: coverage 1d: 80% interval held 55%"
    )
    assert decision.summary() == "5 fresh; 2 carried (A/USD, B/USD); 1 left out (C/USD)"
    assert gate.Decision(False, (), refusal="the scheduler was lost").reason() == "the scheduler was lost"
    assert gate.Decision(True, ()).reason() == ""


def test_no_pair_passing_refuses_the_run_whatever_the_share() -> None:
    """Every pair failing is a refusal even when the share allows all of them to fail."""
    decision = gate.decide(_checks(set(PAIRS)), PAIRS, PAIRS, 1.0)
    assert not decision.passed
    assert decision.refusal == "no pair passed (8 of 8 failed)"
    assert set(decision.pairs.values()) == {"carried"}


def _prophet_fit(**stan_args: object):
    """A real Prophet fit of a seeded 300-day random walk; `stan_args` go to CmdStan's optimiser."""
    import numpy as np
    import pandas as pd
    from prophet import Prophet

    from cryptopredict.training.model import quiet_prophet

    quiet_prophet()
    walk = np.cumsum(np.random.default_rng(0).normal(0, 1, 300))
    model = Prophet(uncertainty_samples=0)
    model.fit(pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=300), "y": walk}), **stan_args)
    return model.stan_backend.stan_fit


def test_an_optimiser_out_of_iterations_is_refused_though_cmdstanpy_calls_it_converged() -> None:
    """L-BFGS stopped after 2 of its iterations exits 0 (cmdstanpy says converged), but its own words fail the gate."""
    capped = _prophet_fit(iter=2)
    console = Path(capped.runset.stdout_files[0]).read_text()
    assert "Maximum number of iterations hit" in console
    assert capped.converged  # the exit code's verdict, which cannot see this
    assert not optimiser_converged(console)
    checks = gate.check_symbol("BTC/USD", GOOD, None, optimiser_converged(console), CONFIG)
    assert _failed(checks) == {"converged"}
    full = _prophet_fit()
    assert optimiser_converged(Path(full.runset.stdout_files[0]).read_text())


@pytest.mark.parametrize(
    ("console", "converged"),
    [
        ("Optimization terminated normally: \n  Convergence detected: relative gradient magnitude is below tolerance",
         True),
        ("Optimization terminated normally: \n  Maximum number of iterations hit, may not be at an optima", False),
        ("Optimization terminated with error: \n  Line search failed to achieve a sufficient decrease", False),
        ("Iteration 55. Log joint probability =    12.7917. Improved by 5.48441e-09.", True),
    ],
    ids=["lbfgs-converged", "out-of-iterations", "line-search-failed", "newton-says-nothing"],
)  # fmt: skip
def test_convergence_is_read_from_cmdstans_own_words(console: str, converged: bool) -> None:
    """CmdStan's reasons to stop decide: convergence passes, running out of iterations or an error fails."""
    assert optimiser_converged(console) is converged


def test_within_two_percent_of_naive_passes_and_too_few_outcomes_are_not_judged() -> None:
    """MAPE 1.5% above naive's passes; a horizon resting on 5 independent outcomes is reported, not refused."""
    assert _failed(gate.check_symbol("BTC/USD", GOOD, _backtest(mape=0.1015), True, CONFIG)) == set()
    thin = gate.check_symbol("BTC/USD", GOOD, _backtest(mape=0.5, coverage=0.1, independent=5), True, CONFIG)
    assert _failed(thin) == set()
    assert any("too few to judge" in c.detail for c in thin)


def test_a_horizon_served_at_weight_0_is_never_the_reason_for_a_refusal() -> None:
    """The nested procedure lost 2.3% at 7d, so 7d serves the last close (weight 0): passed, the loss shown."""
    bt = _backtest()
    bt["metrics"]["7d"] = {**_entry(0.1, 0.8, 120, 120, 1.0, weight=0.0), "nested": {
        "mae": 1.0, "mape": 0.1023, "mase": 1.0, "coverage": 0.8, "n": 120, "mape_ratio": 1.023,
        "weighted_cutoffs": 40}}  # fmt: skip
    checks = gate.check_symbol("BTC/USD", GOOD, bt, True, CONFIG)
    assert _failed(checks) == set()
    seven = next(c for c in checks if c.name == "skill 7d")
    assert "served at weight 0" in seven.detail
    assert "x1.023" in seven.detail
    # The same nested loss under a served weight above 0 is refused.
    bt["metrics"]["7d"]["weight"] = 0.5
    assert _failed(gate.check_symbol("BTC/USD", GOOD, bt, True, CONFIG)) == {"skill 7d"}


def test_a_weight_the_backtest_never_used_is_refused_even_on_few_outcomes() -> None:
    """A served weight used at no backtest cutoff is refused, though 5 outcomes are too few to judge skill."""
    bt = _backtest(independent=5)
    bt["metrics"]["30d"]["nested"]["weighted_cutoffs"] = 0
    checks = gate.check_symbol("BTC/USD", GOOD, bt, True, CONFIG)
    assert _failed(checks) == {"skill 30d"}
    assert "never used" in next(c for c in checks if c.name == "skill 30d").detail


def test_a_candidate_clearly_worse_than_production_is_refused(tmp_path: Path) -> None:
    """MAPE/naive 20% above production's fails the 10% allowance; 5% above passes; a first run passes."""
    _production_artifact(tmp_path, mape=0.1)
    production = read_artifact(tmp_path)
    worse = gate.compare_with_production("BTC/USD", _record(_backtest(mape=0.12)), production, CONFIG)
    close = gate.compare_with_production("BTC/USD", _record(_backtest(mape=0.105)), production, CONFIG)
    assert not worse.passed
    assert "x1.20" in worse.detail
    assert "production prod-1" in worse.detail
    assert close.passed
    first = gate.compare_with_production("BTC/USD", _record(_backtest(2.4)), None, CONFIG)
    assert first.passed
    assert "first run" in first.detail


def _production_artifact(out: Path, mape: float) -> bytes:
    """A real, checksummed artifact whose BTC/USD backtest claims the given MAPE (naive's: 10%)."""
    grid = _grid([1.0, 1.0], [0.5, 0.5], [2.0, 2.0], [[0.5, 0.5], [1.0, 1.0], [2.0, 2.0]])
    assert grid.served is not None
    # What the artifact stores of the served forecast: its distribution's parameters (no weight on Prophet).
    grid = replace(
        grid,
        served=replace(
            grid.served,
            weights={"1d": 0.0},
            horizon_steps={"1d": 1},
            sigma=(0.5,),
            history_change=None,
            future_change=None,
            z_steps=(1,),
            z_rows=((-1.4, 0.0, 1.4),),
        ),
    )
    manifest = Manifest(
        model_version="prod-1",
        trained_at="2025-01-02T00:00:00Z",
        timeframe="1Day",
        step_seconds=86400,
        symbols={"BTC-USD": pair_entry("BTC/USD", _backtest(mape=mape))},
    )
    write_artifact(out, manifest, {"BTC-USD": grid})
    return (out / MANIFEST_NAME).read_bytes()


@pytest.mark.training
def test_train_refuses_a_candidate_worse_than_production_and_writes_nothing(tmp_path: Path) -> None:
    """train.py --baseline-artifact exits 1 with one line, leaves the old artifact, writes the report."""
    out = tmp_path / "artifacts"
    before = _production_artifact(out, mape=0.001)  # a production model no candidate can match
    proc = run_cli(
        "train.py", "--csv-dir", str(DATA), "--symbols", "BTC/USD", "--start", "2024-01-01",
        "--horizon-days", "30", "--out", str(out), "--baseline-artifact", str(out),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "train.py: error: the gate refused the run, no artifact written: no pair passed (1 of 1 failed): "
        "BTC/USD: vs production:"
    )
    assert (out / MANIFEST_NAME).read_bytes() == before
    report = (out / "rejected-report.md").read_text()
    assert "**refused**" in report
    assert "| BTC/USD | vs production | **FAIL** |" in report


@pytest.mark.training
def test_a_production_artifact_of_the_last_schema_starts_a_new_lineage_not_a_stopped_pipeline(tmp_path: Path) -> None:
    """The first retrain after an upgrade meets production's artifact of schema 4: it says so in one line and
    trains as a first run (nothing compared with, no track record carried), where a refusal would stop every
    scheduled retrain. Production here is one no candidate could match: it is not compared with."""
    out = tmp_path / "artifacts"
    _production_artifact(out, mape=0.001)
    old = manifest_doc(out)
    old["schema_version"] = 4
    del old["digest"]
    (out / MANIFEST_NAME).write_text(json.dumps(old))
    proc = run_cli(
        "train.py", "--csv-dir", str(DATA), "--symbols", "BTC/USD", "--start", "2024-01-01",
        "--horizon-days", "30", "--out", str(out), "--baseline-artifact", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        f"production: {out} holds an artifact of schema 4, older than this code reads (5): nothing to compare "
        "with and no track record carried; this run starts a new lineage, as a first run"
    ) in proc.stderr
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["production"] is None
    vs = [c for c in manifest["gate"]["checks"] if c["name"] == "vs production"]
    assert [(c["passed"], c["detail"]) for c in vs] == [
        (True, "no artifact in production (a first run): nothing to compare with")
    ]


@pytest.mark.training
def test_train_promotes_a_candidate_no_worse_than_production(tmp_path: Path) -> None:
    """Against a weak production model the candidate passes, and its manifest records the comparison."""
    out = tmp_path / "artifacts"
    _production_artifact(out, mape=1000.0)
    proc = run_cli(
        "train.py", "--csv-dir", str(DATA), "--symbols", "BTC/USD", "--start", "2024-01-01",
        "--horizon-days", "30", "--out", str(out), "--baseline-artifact", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["gate"]["passed"] is True
    vs = [c for c in manifest["gate"]["checks"] if c["name"] == "vs production"]
    assert len(vs) == 1
    assert vs[0]["passed"]
    assert "report.md" in manifest["files"]
    assert manifest["symbols"]["BTC-USD"]["backtest"]["metrics"]["30d"]["served"]["n"] >= 20


@pytest.mark.training
def test_an_unreadable_baseline_artifact_is_one_clear_error(tmp_path: Path) -> None:
    """--baseline-artifact pointing at nothing fails before any fit, naming the flag."""
    proc = run_cli(
        "train.py", "--csv-dir", str(DATA), "--out", str(tmp_path), "--baseline-artifact", str(tmp_path / "nope")
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("train.py: error: --baseline-artifact: ")


@pytest.mark.training
@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("7d", "nested"), None, "metrics.7d.nested is missing"),
        (("1d", "served", "mape"), "6%", "metrics.1d.served.mape is '6%', not a number"),
        (("30d", "weight"), True, "metrics.30d.weight is True, not a number"),
    ],
    ids=["no-nested", "text-mape", "bool-weight"],
)
def test_a_champion_of_another_shape_is_refused_in_one_line(tmp_path: Path, path, value, says) -> None:
    """A production manifest whose backtest section has another shape stops train.py with one line naming the field."""
    out = tmp_path / "artifacts"
    _production_artifact(out, mape=0.1)
    manifest = manifest_doc(out)
    *parents, key = ("symbols", "BTC-USD", "backtest", "metrics", *path)
    node = manifest
    for name in parents:
        node = node[name]
    if value is None:
        del node[key]
    else:
        node[key] = value
    rewrite_manifest(out, manifest)
    proc = run_cli("train.py", "--csv-dir", str(DATA), "--out", str(out), "--baseline-artifact", str(out))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: --baseline-artifact: ")
    assert f"symbols.BTC-USD.backtest.{says}" in last


def test_a_malformed_gate_section_is_refused_in_one_line(tmp_path: Path) -> None:
    """A gate check without its verdict is named, not a KeyError."""
    out = tmp_path / "artifacts"
    _production_artifact(out, mape=0.1)
    manifest = manifest_doc(out)
    check = {"symbol": "BTC/USD", "name": "finite", "detail": "ok"}
    manifest["gate"] = {"passed": True, "refusal": None, "pairs": {}, "max_failed_share": 0.25, "checks": [check]}
    rewrite_manifest(out, manifest)
    with pytest.raises(ArtifactError, match=r": gate\.checks\[0\]\.passed is missing$"):
        read_artifact(out)


def test_every_comparison_with_production_names_the_pair_and_its_reason(tmp_path: Path) -> None:
    """Each way a comparison cannot be made passes with its own sentence; exactly 1.10 x production's ratio passes."""
    _production_artifact(tmp_path, mape=0.1)
    production = read_artifact(tmp_path)

    def compare(symbol, backtest, production, config):
        return gate.compare_with_production(symbol, _record(backtest) if backtest else None, production, config)

    check = gate.Check
    assert compare("BTC/USD", _backtest(), None, CONFIG) == check(
        "BTC/USD", "vs production", True, "no artifact in production (a first run): nothing to compare with"
    )
    assert compare("BTC/USD", None, production, CONFIG) == check(
        "BTC/USD", "vs production", True, "this model has no backtest of BTC/USD: nothing to compare"
    )
    assert compare("ETH/USD", _backtest(), production, CONFIG) == check(
        "ETH/USD", "vs production", True, "production prod-1 has no backtest of ETH/USD: nothing to compare"
    )
    other = {**_backtest(), "metrics": {"90d": _entry(0.1, 0.8, 120, 120, 1.0)}}
    assert compare("BTC/USD", other, production, CONFIG) == check(
        "BTC/USD", "vs production", True, "no horizon in common with production prod-1"
    )
    unscored = _backtest()
    for entry in unscored["metrics"].values():
        entry["skill"]["mape_ratio"] = None
    assert compare("BTC/USD", unscored, production, CONFIG).detail == "no horizon in common with production prod-1"
    at_limit = _backtest()
    for entry in at_limit["metrics"].values():
        entry["skill"]["mape_ratio"] = 1.1  # production's is 1.0: exactly the limit
    assert compare("BTC/USD", at_limit, production, CONFIG) == check(
        "BTC/USD",
        "vs production",
        True,
        "served MAPE / naive's 1.100 against production prod-1's 1.000 over 1d, 7d, 30d (x1.10, limit x1.10)",
    )


def test_the_mean_skill_averages_the_named_horizons_that_have_one(tmp_path: Path) -> None:
    """Ratios 0.5 and 1.5 at 1d and 7d average 1.0 (30d left out); no named horizon with a ratio gives None."""
    _production_artifact(tmp_path, mape=0.1)
    bt = _backtest()
    bt["metrics"]["1d"]["skill"]["mape_ratio"], bt["metrics"]["7d"]["skill"]["mape_ratio"] = 0.5, 1.5
    record = _record(bt)
    assert gate.mean_skill(record, ["1d", "7d"]) == pytest.approx(1.0)
    assert gate.mean_skill(record, ["180d"]) is None


def test_a_decision_lists_every_failure_and_serialises_every_check() -> None:
    """Two failed checks of three, on both pairs: the reason names the refusal then both, '; ' apart; the
    record keeps all three in order, each pair's verdict and the share."""
    checks = [gate.Check("A", "x", False, "d1"), gate.Check("A", "y", True, "ok"), gate.Check("B", "z", False, "d2")]
    decision = gate.decide(checks, ["A", "B"], ["B"], 0.25)
    assert not decision.passed
    assert decision.reason() == "no pair passed (2 of 2 failed): A: x: d1; B: z: d2"
    assert to_json(decision.record()) == {
        "passed": False,
        "refusal": "no pair passed (2 of 2 failed)",
        "pairs": {"A": "left out", "B": "carried"},
        "max_failed_share": 0.25,
        "checks": [
            {"symbol": "A", "name": "x", "passed": False, "detail": "d1"},
            {"symbol": "A", "name": "y", "passed": True, "detail": "ok"},
            {"symbol": "B", "name": "z", "passed": False, "detail": "d2"},
        ],
    }


def test_each_skill_verdict_is_the_pairs_and_its_limits_are_inclusive() -> None:
    """Weight 0 passes; an unscored weight fails; at exactly min_independent outcomes and exactly the limit
    ratio a weight is judged and passes; a ratio naive never lets exist (None) fails."""
    bt = _backtest(mape=0.102, independent=20)
    for entry in bt["metrics"].values():
        entry["weight"] = 0.5
        entry["nested"]["mape_ratio"] = 1.02  # exactly the limit
    checks = {c.name: c for c in gate.check_symbol("BTC/USD", GOOD, bt, True, CONFIG)}
    assert checks["skill 1d"] == gate.Check(
        "BTC/USD",
        "skill 1d",
        True,
        "weight 0.5: nested procedure's MAPE 10.20% vs naive 10.00% (x1.020) on 120 cutoffs, weighted at 120 "
        "(limit x1.02)",
    )
    bt["metrics"]["1d"]["nested"]["mape_ratio"] = None
    bt["metrics"]["7d"]["weight"] = 0.0
    bt["metrics"]["30d"]["nested"]["weighted_cutoffs"] = 0
    checks = {c.name: c for c in gate.check_symbol("BTC/USD", GOOD, bt, True, CONFIG)}
    assert not checks["skill 1d"].passed
    assert checks["skill 1d"].symbol == "BTC/USD"
    assert checks["skill 7d"].symbol == "BTC/USD"
    assert checks["skill 7d"].passed
    assert checks["skill 30d"] == gate.Check(
        "BTC/USD", "skill 30d", False, "weight 0.5 served but never used at any of 120 backtest cutoffs: unscored"
    )


def test_coverage_is_judged_from_exactly_min_independent_banded_outcomes() -> None:
    """20 non-overlapping outcomes (the minimum) are judged, for skill and coverage; a band known at 19, or never,
    is reported as too few to judge and passes."""
    bt = _backtest(coverage=0.5, independent=20)
    bt["metrics"]["7d"]["served"].update(coverage_independent=19, coverage_n=95)
    bt["metrics"]["30d"]["served"].update(coverage=None, coverage_n=0, coverage_independent=0)
    checks = {c.name: c for c in gate.check_symbol("BTC/USD", GOOD, bt, True, CONFIG)}
    assert checks["coverage 1d"] == gate.Check(
        "BTC/USD",
        "coverage 1d",
        False,
        "80% band held 50% of 120 closes (20 independent): refused, p = 0.0026 (limit 0.01: 1% over 1 horizon, Holm)",
    )
    assert checks["coverage 7d"] == gate.Check(
        "BTC/USD",
        "coverage 7d",
        True,
        "weight 1.0: its band was known at 95 of 120 cutoffs, 19 with non-overlapping outcomes: too few to judge",
    )
    assert checks["coverage 30d"].passed
    assert checks["coverage 30d"].detail.startswith("weight 1.0: its band was known at 0 of 120 cutoffs, 0 with")
    few = {c.name: c for c in gate.check_symbol("BTC/USD", GOOD, _backtest(independent=19), True, CONFIG)}
    assert "coverage 1d" not in few
    assert few["skill 1d"] == gate.Check(
        "BTC/USD", "skill 1d", True, "120 cutoffs, 19 with non-overlapping outcomes: too few to judge"
    )


def _coverage(backtest: dict[str, object], config: GateConfig = CONFIG) -> dict[str, gate.Check]:
    return {c.name: c for c in gate.horizon_checks("BTC/USD", backtest, config) if c.name.startswith("coverage")}


def test_a_hit_rate_chance_explains_passes_and_says_its_p_value() -> None:
    """69% of 20 independent outcomes (the window refused it) is what a calibrated band does one time in four."""
    checks = _coverage(_backtest(coverage=0.69, independent=20))
    assert checks["coverage 1d"].passed
    assert (
        checks["coverage 1d"].detail
        == "80% band held 69% of 120 closes (20 independent): consistent with 80% (p = 0.26)"
    )
    assert all(c.passed for c in checks.values())
    # 95% of 20, 100% of 20 and 65% of 20: well within chance, so none of them is refused either.
    for rate in (0.95, 1.0, 0.65):
        assert all(c.passed for c in _coverage(_backtest(coverage=rate, independent=20)).values()), rate


def test_a_hit_rate_chance_cannot_explain_is_refused_with_its_p_value_and_limit() -> None:
    """52% of 120 independent outcomes is refused at every horizon, each at its Holm limit (ties in order)."""
    checks = _coverage(_backtest(coverage=0.52, independent=120))
    held = "80% band held 52% of 120 closes (120 independent): refused, p < 0.0001"
    assert [c.detail for c in checks.values()] == [
        f"{held} (limit 0.0033: 1% over 3 horizons, Holm)",
        f"{held} (limit 0.005: 1% over 3 horizons, Holm)",
        f"{held} (limit 0.01: 1% over 3 horizons, Holm)",
    ]
    assert not any(c.passed for c in checks.values())
    over = _coverage(_backtest(coverage=0.95, independent=120))
    assert not any(c.passed for c in over.values())


def test_the_pairs_horizons_share_one_significance_level() -> None:
    """70% of 120 (p = 0.0084) is refused when it is the pair's one judged horizon, and passes among three
    (Holm's limit for the smallest of three p-values is 0.0033)."""
    alone = _backtest(coverage=0.7, independent=120)
    for name in ("7d", "30d"):
        alone["metrics"][name]["served"].update(coverage=None, coverage_n=0, coverage_independent=0)
    assert _coverage(alone)["coverage 1d"].detail == (
        "80% band held 70% of 120 closes (120 independent): refused, p = 0.0084 (limit 0.01: 1% over 1 horizon, Holm)"
    )
    among = _backtest(coverage=0.8, independent=120)
    among["metrics"]["1d"]["served"]["coverage"] = 0.7
    checks = _coverage(among)
    assert checks["coverage 1d"].passed
    assert checks["coverage 1d"].detail.endswith(": consistent with 80% (p = 0.0084)")
    # A stricter level refuses less, a looser one more.
    assert not _coverage(among, GateConfig(coverage_alpha=0.05))["coverage 1d"].passed


def test_a_band_under_the_floor_is_refused_whatever_the_number_of_outcomes() -> None:
    """30% of 5 independent outcomes (p = 0.058, chance could say) is nonsense: refused by the 40% floor; 40%
    itself is not under it."""
    config = GateConfig(min_independent=5)
    low = _coverage(_backtest(coverage=0.3, independent=5), config)["coverage 1d"]
    assert low == gate.Check(
        "BTC/USD",
        "coverage 1d",
        False,
        "80% band held 30% of 120 closes (5 independent): under the 40% floor, refused whatever the number of outcomes",
    )
    assert _coverage(_backtest(coverage=0.4, independent=5), config)["coverage 1d"].passed


def test_the_structural_checks_say_what_they_found() -> None:
    """A prediction on its interval's edge, or within ten-digit rounding of it, holds; 1e-8 outside does not;
    a pair without a backtest says so; convergence is named either way."""
    edge = _grid([9.0, 12.0, 10.0 * (1 - 5e-10), 12.0 * (1 + 5e-10)], [9.0, 10.0, 10.0, 10.0], [11.0, 12.0, 12.0, 12.0])
    assert gate.check_symbol("BTC/USD", edge, None, True, CONFIG) == [
        gate.Check("BTC/USD", "converged", True, "optimiser converged"),
        gate.Check("BTC/USD", "interval", True, "every interval contains its prediction"),
        gate.Check("BTC/USD", "quantiles", True, "3 quantiles positive and in order at every grid point"),
        gate.Check("BTC/USD", "backtest", True, "not enough history to backtest; skill and coverage not checked"),
    ]
    # An interval of no width holds its prediction, at a price of 0 too (where the rounding allowance is 0).
    (flat,) = [c for c in gate.check_symbol("X", _grid([0.0, 5.0], [0.0, 5.0], [0.0, 5.0]), None, True, CONFIG)
               if c.name == "interval"]  # fmt: skip
    assert flat.passed
    for outside in ([9.0 * (1 - 1e-8), 11.0], [11.0 * (1 + 1e-8), 11.0]):
        (interval,) = [c for c in gate.check_symbol("X", _grid(outside, [9.0, 10.0], [11.0, 12.0]), None, True,
                                                    CONFIG) if c.name == "interval"]  # fmt: skip
        assert not interval.passed
    (converged, *_) = gate.check_symbol("X", GOOD, None, False, CONFIG)
    assert converged == gate.Check("X", "converged", False, "the optimiser did not converge")
    no_served = replace(GOOD, served=None)
    quantiles = next(c for c in gate.check_symbol("X", no_served, None, True, CONFIG) if c.name == "quantiles")
    assert quantiles.detail == "no served forecast in the grid"


def test_production_compares_by_the_ratio_of_ratios(tmp_path: Path) -> None:
    """Production's served/naive 2.0 against the candidate's 3.0 is x1.50; a production that never erred (0) can
    only be matched, never beaten by a ratio: x inf."""
    _production_artifact(tmp_path, mape=0.2)
    check = gate.compare_with_production("BTC/USD", _record(_backtest(mape=0.3)), read_artifact(tmp_path), CONFIG)
    assert "(x1.50, limit x1.10)" in check.detail
    perfect = tmp_path / "perfect"
    _production_artifact(perfect, mape=0.0)
    check = gate.compare_with_production("BTC/USD", _record(_backtest(mape=0.1)), read_artifact(perfect), CONFIG)
    assert not check.passed
    assert "(xinf, limit x1.10)" in check.detail


def test_a_horizon_too_thin_to_judge_leaves_the_others_judged_among_themselves() -> None:
    """With 1d's band never known, 7d and 30d are still judged, at Holm's limits for two horizons; a band
    consistent with 80% passes under its pair's name."""
    bt = _backtest(coverage=0.52, independent=120)
    bt["metrics"]["1d"]["served"].update(coverage=None, coverage_n=0, coverage_independent=0)
    checks = _coverage(bt)
    held = "80% band held 52% of 120 closes (120 independent): refused, p < 0.0001"
    assert checks["coverage 1d"].passed
    assert [checks[f"coverage {h}"].detail for h in ("7d", "30d")] == [
        f"{held} (limit 0.005: 1% over 2 horizons, Holm)",
        f"{held} (limit 0.01: 1% over 2 horizons, Holm)",
    ]
    fine = _coverage(_backtest(coverage=0.8, independent=120))
    assert fine["coverage 7d"] == gate.Check(
        "BTC/USD", "coverage 7d", True, "80% band held 80% of 120 closes (120 independent): consistent with 80% (p = 1)"
    )
