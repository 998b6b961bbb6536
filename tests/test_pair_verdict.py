"""One bad pair never blocks the rest: the gate judges each pair, carries a failed one forward from
production or leaves it out, and refuses the run only when too many fail.

Real runs of train.py's pipeline on CSV files, real Prophet fits, a real Waitress server. Four pairs:
GOOD trains; BAD's file is unreadable; FIT's bars pass validation but its fit fails (prices swinging
between 1e-300 and 1e300 make Prophet's forecast overflow); SKILL was a steady trend in production,
which the served forecast followed with skill, and is now a random walk, clearly worse than the
champion. Production served GOOD, BAD and SKILL, never FIT.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptopredict.artifact import MANIFEST_NAME, Artifact, read_artifact
from cryptopredict.artifact.export import copy_served
from cryptopredict.training import cli
from tests.fake_alpaca import random_walk_bars
from tests.helpers import ROOT, api_server, http_get

pytestmark = pytest.mark.training  # what every test here needs (tests/conftest.py)

PAIRS = ["GOOD/USD", "BAD/USD", "FIT/USD", "SKILL/USD"]
DAYS = 900
LATER = 30  # days of bars the second run has beyond production's
TRAIN = ("--horizon-days", "30", "--backtest-cutoffs", "30", "--workers", "2", "--skip-invalid")


def _frame(close: np.ndarray, start: str = "2022-01-01") -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(close), freq="1D")
    return pd.DataFrame({"timestamp": index, "open": close, "high": close * 1.001, "low": close * 0.999,
                         "close": close, "volume": 1000.0})  # fmt: skip


def _walk(symbol: str, days: int) -> pd.DataFrame:
    return random_walk_bars([symbol], periods=days, start="2022-01-01", seed=11)[symbol]


def _trend(days: int) -> pd.DataFrame:
    """A steady 1% a day with little noise: Prophet's change beats the last close, so it is served."""
    t = np.arange(days)
    return _frame(100 * np.exp(0.01 * t + np.random.default_rng(3).normal(0, 0.002, days)))


def _overflowing(days: int) -> pd.DataFrame:
    """Valid bars (positive, finite, consistent) on which the fit's forecast overflows to infinity."""
    close = np.where(np.arange(days) % 2 == 0, 1e300, 1e-300)
    return _frame(close).assign(high=close, low=close)


def _write(folder: Path, frames: dict[str, pd.DataFrame | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for symbol, frame in frames.items():
        path = folder / f"{symbol.replace('/', '-')}.daily.csv"
        if isinstance(frame, bytes):
            path.write_bytes(frame)
        else:
            frame.to_csv(path, index=False)
    return folder


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """The artifact in production: GOOD, BAD and SKILL trained on sound bars (FIT never served)."""
    root = tmp_path_factory.mktemp("production")
    csv = _write(root / "csv", {"GOOD/USD": _walk("GOOD/USD", DAYS), "BAD/USD": _walk("BAD/USD", DAYS),
                                "SKILL/USD": _trend(DAYS)})  # fmt: skip
    argv = ["--csv-dir", str(csv), "--symbols", "GOOD/USD,BAD/USD,SKILL/USD", "--out", str(root / "artifacts"),
            "--model-version", "prod-1", *TRAIN]  # fmt: skip
    assert cli.main(argv) == 0
    # Production is the API image's copy: without the files kept for the record.
    assert copy_served(root / "artifacts", root / "served")[1] == 7  # 3 models, 3 backtest charts, the report
    artifact = read_artifact(root / "served")
    assert artifact.absent_record_files == artifact.manifest.record_files
    skill = artifact.forecasts["SKILL-USD"].backtest
    assert skill is not None
    assert any(e.weight > 0 and (e.skill.mape_ratio or 1) < 0.8 for e in skill.metrics.values())
    return artifact


@pytest.fixture(scope="module")
def later_bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The next run's bars: GOOD goes on, BAD's file is unreadable, FIT cannot be fitted, SKILL turned random."""
    return _write(tmp_path_factory.mktemp("later") / "csv", {
        "GOOD/USD": _walk("GOOD/USD", DAYS + LATER),
        "BAD/USD": b"timestamp,open,high,low,close,volume\n\xff\xfe\x00garbage\n",
        "FIT/USD": _overflowing(DAYS + LATER),
        "SKILL/USD": _walk("SKILL/USD", DAYS + LATER),
    })  # fmt: skip


def _run(csv: Path, out: Path, production: Artifact, *extra: str) -> tuple[int, str]:
    """train.py on all four pairs against production, in a subprocess (its stderr is what a user reads)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--csv-dir", str(csv), "--symbols", ",".join(PAIRS),
         "--out", str(out), "--baseline-artifact", str(production.path), "--model-version", "next-2", *TRAIN, *extra],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def next_run(production: Artifact, later_bars: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, str]:
    """The next run, allowed 3 failed pairs of 4: its artifact and its log."""
    out = tmp_path_factory.mktemp("next") / "artifacts"
    code, err = _run(later_bars, out, production, "--max-failed-share", "0.75")
    assert code == 0, err
    return read_artifact(out), err


def test_each_failed_pair_is_carried_or_left_out_and_the_good_one_is_served_fresh(
    production: Artifact, next_run: tuple[Artifact, str]
) -> None:
    """GOOD fresh; BAD and SKILL carried from production (it served them); FIT left out (it never was)."""
    artifact, err = next_run
    gate = artifact.manifest.gate
    assert gate.passed is True
    assert gate.pairs == {"GOOD/USD": "fresh", "BAD/USD": "carried", "FIT/USD": "left out", "SKILL/USD": "carried"}
    failed = {(c.symbol, c.name) for c in gate.checks if not c.passed}
    assert failed == {("BAD/USD", "bars"), ("FIT/USD", "fit"), ("SKILL/USD", "vs production")}
    details = {c.symbol: c.detail for c in gate.checks if not c.passed}
    assert details["BAD/USD"].startswith("cannot read ")
    assert "non-finite" in details["FIT/USD"]
    assert list(artifact.forecasts) == ["GOOD-USD", "BAD-USD", "SKILL-USD"]
    assert artifact.manifest.skipped == {"FIT/USD": f"fit: {details['FIT/USD']}"}
    assert "FIT/USD: left out (production does not serve it)" in err
    assert "pairs: 1 fresh; 2 carried (BAD/USD, SKILL/USD); 1 left out (FIT/USD)" in err


def test_a_carried_pair_is_production_s_forecast_record_and_charts_unchanged(
    production: Artifact, next_run: tuple[Artifact, str]
) -> None:
    """A carried pair's numbers, charts and manifest entry are production's, marked with where they came from;
    its fitted model and backtest chart, which production's copy does not hold, are named no more (they
    stay in the image that trained it)."""
    artifact, _ = next_run
    for slug in ("BAD-USD", "SKILL-USD"):
        new, old = artifact.forecasts[slug], production.forecasts[slug]
        assert (new.start, new.history_points) == (old.start, old.history_points)
        assert (list(new.yhat), list(new.actual)) == (list(old.yhat), list(old.actual))
        assert [list(c) for c in new.quantiles] == [list(c) for c in old.quantiles]
        carried = new.entry.carried
        assert carried is not None
        assert carried.model_version == "prod-1"
        assert carried.trained_at == production.manifest.trained_at
        assert carried.runs == 1
        assert old.entry.model_file in production.absent_record_files
        assert old.entry.backtest_chart in production.absent_record_files
        assert replace(new.entry, carried=None) == replace(old.entry, model_file=None, backtest_chart=None)
        assert not list(artifact.generation_dir.glob(f"{slug}.prophet.json"))
        for name in new.entry.charts.values():
            assert artifact.charts[name] == production.charts[name]
    assert "cannot read" in artifact.forecasts["BAD-USD"].entry.carried.reason
    assert "vs production" in artifact.forecasts["SKILL-USD"].entry.carried.reason
    good, was = artifact.forecasts["GOOD-USD"], production.forecasts["GOOD-USD"]
    assert good.entry.carried is None
    assert good.history_points == was.history_points + LATER
    assert artifact.charts["GOOD-USD.forecast.png"] != production.charts["GOOD-USD.forecast.png"]
    # The track record goes on: production's published GOOD forecasts are scored on the new bars.
    assert artifact.ledger is not None
    assert any(e.actual is not None and e.symbol == "GOOD/USD" for e in artifact.ledger.entries)


def test_the_report_and_the_job_summary_name_every_verdict(tmp_path: Path, next_run: tuple[Artifact, str]) -> None:
    """report.md has a row per pair; train-verdict.sh puts it in the job summary and warns of each failed pair."""
    artifact, _ = next_run
    report = (artifact.generation_dir / "report.md").read_text()
    assert "## Gate: **passed**: the model is promoted, 2 pair(s) carried, 1 pair(s) left out" in report
    assert "| GOOD/USD | fresh, from this run |  |" in report
    assert "| BAD/USD | **carried** from model prod-1 trained " in report
    assert "| FIT/USD | **left out** (production does not serve it) | fit: " in report
    export = tmp_path / "report"
    export.mkdir()
    shutil.copy(artifact.path / MANIFEST_NAME, export)
    shutil.copy(artifact.generation_dir / "report.md", export)
    (export / "status").write_text("0")
    summary = tmp_path / "summary.md"
    proc = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(ROOT / "scripts" / "train-verdict.sh"), str(export)],
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(tmp_path / "out")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| SKILL/USD | **carried** from model prod-1" in summary.read_text()
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 3, proc.stdout
    assert any(w.startswith("::warning title=FIT/USD left out::") for w in warnings)
    assert any(w.startswith("::warning title=BAD/USD carried forward::") for w in warnings)


@pytest.mark.server
def test_the_api_and_the_page_say_which_pairs_are_carried_and_how_old(
    production: Artifact, next_run: tuple[Artifact, str]
) -> None:
    """/v1/symbols and /v1/model give each carried pair's model and age; the page says it; FIT is listed as left out."""
    artifact, _ = next_run
    with api_server(artifact.path) as base:
        symbols = {s["symbol"]: s for s in http_get(base + "/v1/symbols").json()["symbols"]}
        model = http_get(base + "/v1/model").json()
        page = http_get(base + "/").body.decode()
        date = production.forecasts["BAD-USD"].end.date().isoformat()
        bad = http_get(base + f"/v1/forecast/BAD-USD?date={date}")
    assert set(symbols) == {"GOOD-USD", "BAD-USD", "SKILL-USD"}
    assert symbols["GOOD-USD"]["carried"] is None
    carried = symbols["BAD-USD"]["carried"]
    assert carried["model_version"] == "prod-1"
    assert carried["trained_at"] == production.manifest.trained_at
    assert 0 <= carried["age_days"] < 1
    assert symbols["BAD-USD"]["data_end"] == production.manifest.symbols["BAD-USD"].data_end
    assert model["symbols"]["SKILL-USD"]["carried"]["reason"].startswith("vs production: ")
    assert model["left_out"] == {"FIT/USD": artifact.manifest.skipped["FIT/USD"]}
    assert model["gate"]["pairs"]["FIT/USD"] == "left out"
    assert "(carried: trained 0.0 days before this model)" in page
    assert "Carried forward: this run failed BAD/USD" in page
    assert "Left out (this run failed them and no earlier model served them): FIT/USD" in page
    assert bad.status == 200
    end = production.forecasts["BAD-USD"]
    assert bad.json()["prediction"] == pytest.approx(end.quantiles[end.level_index(0.5)][-1], rel=1e-6)


def test_a_pair_carried_again_keeps_its_first_training_and_counts_the_runs(
    tmp_path: Path, production: Artifact, next_run: tuple[Artifact, str], later_bars: Path
) -> None:
    """A third run that still cannot read BAD carries it from the carried artifact: same forecast, runs 2."""
    artifact, _ = next_run
    code, err = _run(later_bars, tmp_path / "third", artifact, "--max-failed-share", "0.75", "--backtest-cutoffs", "0")
    assert code == 0, err
    third = read_artifact(tmp_path / "third")
    carried = third.forecasts["BAD-USD"].entry.carried
    assert (carried.model_version, carried.trained_at, carried.runs) == ("prod-1", production.manifest.trained_at, 2)
    assert list(third.forecasts["BAD-USD"].yhat) == list(production.forecasts["BAD-USD"].yhat)
    assert third.manifest.gate.pairs["SKILL/USD"] == "fresh"  # no backtest: nothing to compare


def test_three_failed_pairs_of_four_refuse_the_run_in_one_line(
    tmp_path: Path, production: Artifact, later_bars: Path
) -> None:
    """At the default share (a quarter) 3 of 4 failing is a broken run: exit 1, one line, nothing written."""
    out = tmp_path / "artifacts"
    code, err = _run(later_bars, out, production)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("train.py: error: ")]
    assert len(errors) == 1, err
    assert errors[0].startswith(
        "train.py: error: the gate refused the run, no artifact written: 3 of 4 pairs failed, more than the 25% "
        "allowed (so many at once is a broken run, not one market): BAD/USD: bars: cannot read "
    )
    assert not (out / MANIFEST_NAME).exists()
    report = (out / "rejected-report.md").read_text()
    assert "**refused**: 3 of 4 pairs failed" in report
    assert "| FIT/USD | **failed** | fit: " in report
    assert json.loads((production.path / MANIFEST_NAME).read_text())["model_version"] == "prod-1"
