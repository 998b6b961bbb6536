"""Champion and challenger end to end, without GitHub: a model trained on data to A is production
when a model is trained on data to B; B's artifact scores what A published against B's closes.

Expected numbers come from the bundled CSV files (read with the csv module) and from A's own
forecast grid, never from the ledger code under test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryptopredict.artifact import MANIFEST_NAME, Artifact, read_artifact
from cryptopredict.errors import ArtifactError
from tests.conftest import PRODUCTION_END
from tests.helpers import DATA, file_of, http_get, rewrite_manifest, run_cli

HORIZON_DAYS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90, "180d": 180}
# The last row of each bundled CSV: where the session's artifact (B) publishes from.
LAST_BAR = {"BTC-USD": "2026-04-18T00:00:00Z", "ETH-USD": "2025-07-04T00:00:00Z"}


def _closes(slug: str) -> dict[datetime, float]:
    with open(DATA / f"{slug}.daily.csv", newline="") as fh:
        return {
            datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC): float(row["close"])
            for row in csv.DictReader(fh)
        }


def _published_by(production: Artifact, slug: str) -> dict[str, dict[str, float]]:
    """What A served at its data end for each horizon, read off A's forecast grid."""
    fc = production.forecasts[slug]
    out = {}
    for name, days in HORIZON_DAYS.items():
        i = fc.history_points - 1 + days
        out[name] = {
            "low": fc.quantiles[fc.level_index(0.1)][i],
            "median": fc.quantiles[fc.level_index(0.5)][i],
            "high": fc.quantiles[fc.level_index(0.9)][i],
        }
    return out


@pytest.mark.parametrize("slug", ["BTC-USD", "ETH-USD"])
def test_b_scores_what_a_published_against_b_s_closes(
    production_dir: Path, artifact: Artifact, live_server: str, slug: str
) -> None:
    """Every horizon A published is scored with the CSV's close at its target; the API serves the same."""
    production = read_artifact(production_dir)
    origin = datetime.fromisoformat(PRODUCTION_END).replace(tzinfo=UTC) - timedelta(days=1)
    assert production.forecasts[slug].history_end == origin
    closes = _closes(slug)
    published = _published_by(production, slug)
    record = http_get(f"{live_server}/v1/track-record/{slug}").json()
    assert record["generation"] == artifact.manifest.generation
    by_horizon = {h["horizon"]: h for h in record["horizons"]}
    assert list(by_horizon) == list(HORIZON_DAYS)
    for name, days in HORIZON_DAYS.items():
        (from_a,) = [e for e in by_horizon[name]["entries"] if e["origin"] == "2024-12-31T00:00:00Z"]
        actual = closes[origin + timedelta(days=days)]
        q = published[name]
        assert from_a["generation"] == production.manifest.generation
        assert from_a["model_version"] == "test-0.9.0"
        assert from_a["prediction"] == pytest.approx(q["median"], rel=1e-12)
        assert (from_a["prediction_low"], from_a["prediction_high"]) == pytest.approx((q["low"], q["high"]), rel=1e-12)
        assert from_a["actual_close"] == actual
        assert from_a["origin_close"] == closes[origin]
        assert from_a["abs_pct_error"] == pytest.approx(abs(q["median"] - actual) / actual)
        assert from_a["naive_abs_pct_error"] == pytest.approx(abs(closes[origin] - actual) / actual)
        assert from_a["status"] == ("held" if q["low"] <= actual <= q["high"] else "missed")
        # B's own forecast for the same horizon waits for a later run.
        (from_b,) = [e for e in by_horizon[name]["entries"] if e["generation"] == artifact.manifest.generation]
        assert from_b["status"] == "pending"
        assert from_b["actual_close"] is None
        assert from_b["origin"] == LAST_BAR[slug]
        summary = by_horizon[name]["summary"]
        assert (summary["published"], summary["scored"], summary["pending"]) == (2, 1, 1)
        assert summary["mape"] == pytest.approx(from_a["abs_pct_error"])
    overview = http_get(f"{live_server}/v1/track-record").json()
    seven = overview["symbols"][slug]["horizons"]["7d"]
    assert (seven["published"], seven["scored"], seven["pending"]) == (2, 1, 1)
    assert seven == by_horizon["7d"]["summary"]  # the overview and the pair's own answer agree


def test_b_s_gate_compares_with_a_and_names_it(production_dir: Path, artifact: Artifact) -> None:
    """The challenger's gate holds one 'vs production' check per pair against A's backtest; the
    manifest and report say who the champion was."""
    production = read_artifact(production_dir)
    checks = [c for c in artifact.manifest.gate.checks if c.name == "vs production"]
    assert [c.symbol for c in checks] == ["BTC/USD", "ETH/USD"]
    for c in checks:
        assert c.passed, c
        assert "against production test-0.9.0's" in c.detail
    champion = artifact.manifest.production
    assert champion.generation == production.manifest.generation
    a_7d = production.manifest.symbols["BTC-USD"].backtest.metrics["7d"]
    assert champion.skill["BTC/USD"]["7d"] == pytest.approx(a_7d.served.mape / a_7d.naive.mape)
    report = file_of(artifact, "report.md").read_text()
    assert f"Production: model test-0.9.0, {production.manifest.generation}" in report
    assert "| BTC/USD | 7d | 2 | 1 |" in report


def test_the_landing_page_links_the_track_record_chart(live_server: str) -> None:
    """The page's track record section links the pair's chart (a PNG the page itself does not embed), which is
    served; an unknown pair's is a 404."""
    page = http_get(live_server + "/").body.decode()
    assert "Track record" in page
    assert '<a href="/v1/track-record/BTC-USD/chart.png">' in page
    chart = http_get(live_server + "/v1/track-record/BTC-USD/chart.png")
    assert chart.status == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.body[:8] == b"\x89PNG\r\n\x1a\n"
    assert http_get(live_server + "/v1/track-record/XRP-USD/chart.png").status == 404


def _train_against(production: Path, out: Path, *extra: str):
    return run_cli(
        "train.py", "--csv-dir", str(DATA), "--start", "2024-06-01", "--backtest-cutoffs", "0",
        "--out", str(out), "--baseline-artifact", str(production), *extra,
    )  # fmt: skip


@pytest.mark.training
def test_a_tampered_ledger_in_production_is_refused_in_one_line(artifact_dir: Path, tmp_path: Path) -> None:
    """One changed byte in production's ledger: training stops before any fit, writes nothing."""
    production = shutil.copytree(artifact_dir, tmp_path / "production")
    manifest = json.loads((production / MANIFEST_NAME).read_text())
    ledger = production / manifest["generation"] / "ledger.json"
    ledger.write_bytes(ledger.read_bytes().replace(b'"horizon":"7d"', b'"horizon":"8d"', 1))
    proc = _train_against(production, tmp_path / "out")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: --baseline-artifact: refused: checksum mismatch for ")
    assert "ledger.json" in last
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


@pytest.mark.training
def test_a_malformed_ledger_with_a_matching_checksum_is_refused_too(artifact_dir: Path, tmp_path: Path) -> None:
    """A ledger rewritten with crossing quantiles and its checksum updated is still refused, naming the entry."""
    production = shutil.copytree(artifact_dir, tmp_path / "production")
    manifest = json.loads((production / MANIFEST_NAME).read_text())
    path = production / manifest["generation"] / "ledger.json"
    data = json.loads(path.read_text())
    data["entries"][3]["quantiles"][0] = data["entries"][3]["quantiles"][-1] * 2
    path.write_text(json.dumps(data))
    manifest["files"]["ledger.json"] = hashlib.sha256(path.read_bytes()).hexdigest()
    rewrite_manifest(production, manifest)
    with pytest.raises(ArtifactError, match=r"corrupt track record .*ledger\.json: entry 3: quantiles cross"):
        read_artifact(production)
    proc = _train_against(production, tmp_path / "out")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("train.py: error: --baseline-artifact: refused: corrupt")


@pytest.mark.training
def test_a_third_run_on_the_same_data_adds_nothing_twice_and_keeps_scores(artifact: Artifact, tmp_path: Path) -> None:
    """C trained with B as production: A's scored entries unchanged, B's origin not published twice."""
    proc = _train_against(artifact.path, tmp_path / "c", "--start", "2024-01-01")
    assert proc.returncode == 0, proc.stderr
    c = read_artifact(tmp_path / "c")
    assert c.ledger is not None
    assert artifact.ledger is not None
    keys = [e.key for e in c.ledger.entries]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted(e.key for e in artifact.ledger.entries)
    assert {e.key: (e.actual, e.scored_by) for e in c.ledger.entries} == {
        e.key: (e.actual, e.scored_by) for e in artifact.ledger.entries
    }
    assert "production: model test-1.0.0" in proc.stderr
