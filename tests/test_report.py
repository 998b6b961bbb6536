"""What people see of model quality: /v1/model side by side with baselines, the report, the chart."""

from __future__ import annotations

import struct

from cryptopredict.artifact import Artifact
from tests.helpers import http_get

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_v1_model_shows_model_and_baselines_per_horizon_and_says_if_it_beats_naive(live_server: str) -> None:
    """Every symbol carries MAE/MAPE/MASE/coverage for model, naive and drift, and a plain verdict."""
    body = http_get(live_server + "/v1/model").json()
    assert body["gate"]["passed"] is True
    assert {c["name"] for c in body["gate"]["checks"]} >= {"converged", "finite", "interval", "coverage"}
    for slug in ("BTC-USD", "ETH-USD"):
        sym = body["symbols"][slug]
        bt = sym["backtest"]
        assert [h["name"] for h in bt["horizons"]] == ["1d", "7d", "30d"]
        assert bt["cutoffs"] == sorted(bt["cutoffs"])
        for name in ("1d", "7d", "30d"):
            entry = bt["metrics"][name]
            for method in ("model", "naive", "drift"):
                assert entry[method]["mae"] > 0
                assert 0 < entry[method]["mape"] < 1
            assert 0 <= entry["model"]["coverage"] <= 1
            assert entry["beats_naive"] == (entry["model"]["mae"] < entry["naive"]["mae"])
            stated = f"{name}" in sym["verdict"]
            assert stated
        assert sym["verdict"].startswith(("beats the naive", "does not beat the naive"))


def test_report_and_backtest_charts_are_written_with_the_artifact(artifact: Artifact) -> None:
    """report.md has the gate decision and a table per symbol; each backtest chart is a real PNG."""
    report = artifact.file_path("report.md").read_text()
    assert "## Gate: **passed**" in report
    for symbol in ("BTC/USD", "ETH/USD"):
        assert f"## {symbol}" in report
    assert report.count("| 30d | naive |") == 2
    timings = artifact.manifest["timings"]
    assert set(timings) == {"fetch", "validate", "fit", "backtest", "export"}
    sizes = set()
    for slug in ("BTC-USD", "ETH-USD"):
        png = artifact.file_path(artifact.manifest["symbols"][slug]["backtest_chart"]).read_bytes()
        assert png.startswith(PNG_MAGIC)
        sizes.add(struct.unpack(">II", png[16:24]))
    assert sizes == {(800, 450)}
