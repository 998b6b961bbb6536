"""What people see of model quality: /v1/model side by side with baselines, the report, the chart."""

from __future__ import annotations

import struct

import pytest

from cryptopredict.artifact import Artifact
from tests.helpers import file_of, http_get

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_v1_model_shows_served_prophet_and_baselines_per_horizon_with_a_plain_sentence(live_server: str) -> None:
    """Every symbol carries MAE/MAPE/MASE/coverage for served, Prophet, naive and drift, the weight, and a sentence."""
    body = http_get(live_server + "/v1/model").json()
    assert body["gate"]["passed"] is True
    names = {c["name"] for c in body["gate"]["checks"]}
    assert names >= {"converged", "interval", "quantiles", "skill 1d", "coverage 1d"}
    for slug in ("BTC-USD", "ETH-USD"):
        sym = body["symbols"][slug]
        bt = sym["backtest"]
        assert [h["name"] for h in bt["horizons"]] == ["1d", "7d", "30d", "90d", "180d"]
        assert bt["cutoffs"] == sorted(bt["cutoffs"])
        for name, entry in bt["metrics"].items():
            for method in ("served", "prophet", "naive", "drift"):
                assert entry[method]["mae"] > 0
                assert entry[method]["mape"] > 0
            # Prophet's own forecast may miss by more than 100% at long horizons; the others may not here.
            for method in ("served", "naive", "drift"):
                assert entry[method]["mape"] < 1.5
            prophet_ratio = entry["prophet"]["mape"] / entry["naive"]["mape"]
            assert entry["skill"]["prophet_mape_ratio"] == pytest.approx(prophet_ratio, rel=1e-4)
            assert 0 <= entry["served"]["coverage"] <= 1
            assert 0 <= entry["weight"] <= 1
            ratio = entry["served"]["mape"] / entry["naive"]["mape"]
            assert entry["skill"]["mape_ratio"] == pytest.approx(ratio, rel=1e-4)
            assert entry["summary"].startswith(f"at {name} this forecast ")
            assert entry["summary"] in sym["verdict"]
            if entry["weight"] == 0:
                assert "is the last close" in entry["summary"]


def test_report_and_backtest_charts_are_written_with_the_artifact(artifact: Artifact) -> None:
    """report.md has the gate decision and a table per symbol; each backtest chart is a real PNG."""
    report = file_of(artifact, "report.md").read_text()
    assert "## Gate: **passed**" in report
    for symbol in ("BTC/USD", "ETH/USD"):
        assert f"## {symbol}" in report
    assert report.count("| 30d | naive |") == 2
    assert report.count("| 180d | served |") == 2
    assert "weight on Prophet" in report
    timings = artifact.manifest.timings
    assert set(timings) == {"fetch", "validate", "fit", "backtest", "export"}
    sizes = set()
    for slug in ("BTC-USD", "ETH-USD"):
        png = file_of(artifact, artifact.manifest.symbols[slug].backtest_chart).read_bytes()
        assert png.startswith(PNG_MAGIC)
        sizes.add(struct.unpack(">II", png[16:24]))
    assert sizes == {(800, 450)}
