"""A small artifact committed in the repo: the API must keep reading it, with only the API's requirements."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import GOLDEN, ROOT, api_server, http_get

# Recorded when the golden artifact was written (schema 4, tests/golden/make_golden.py), and unchanged when it
# was written again for schema 5: a format change that moves these is a deliberate, versioned step, not an
# accident. The served prediction inside the data is the forecast made the bar before: BTC/USD's close on
# 2025-02-28.
GOLDEN_BITCOIN = {
    "date": "2025-03-01T00:00:00",
    "prediction": 84321.0,
    "prediction_low": 81928.871,
    "prediction_high": 86432.839,
}


def test_golden_artifact_is_read_by_this_code() -> None:
    """The committed golden artifact still loads and answers the recorded values."""
    from cryptopredict.serving import create_app

    app = create_app({"artifact_dir": str(GOLDEN)})
    doc = app.test_client().get("/bitcoin?date=2025-03-01").get_json()
    assert doc == GOLDEN_BITCOIN


@pytest.mark.server
def test_api_serves_from_a_venv_with_only_the_api_requirements(api_only_python: str) -> None:
    """api.py starts and answers in a venv with no pandas, numpy or Prophet: serving never needs them."""
    for heavy in ("pandas", "numpy", "prophet", "alpaca", "matplotlib"):
        probe = subprocess.run([api_only_python, "-c", f"import {heavy}"], capture_output=True, timeout=60, check=False)
        assert probe.returncode != 0, f"{heavy} is importable in the API-only venv"
    with api_server(GOLDEN, python=api_only_python) as base:
        r = http_get(base + "/bitcoin?date=2025-03-01")
        assert r.status == 200
        assert r.json() == GOLDEN_BITCOIN
        assert http_get(base + "/healthz").json()["model_version"] == "golden-4"
        assert http_get(base + "/bitcoin?date=2026-01-01").status == 422


def test_api_modules_import_nothing_heavy() -> None:
    """Importing the serving side (and the alerts' delivery) loads neither pandas nor Prophet, even when installed."""
    code = (
        "import sys, api, cryptopredict.serving.cli, cryptopredict.alerts.__main__, cryptopredict.alerts.deliver;"
        "heavy = [m for m in ('pandas', 'numpy', 'prophet', 'alpaca', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""


def test_golden_artifact_is_small() -> None:
    """The golden artifact stays a small fixture, not a copy of a real model."""
    size = sum(p.stat().st_size for p in Path(GOLDEN).rglob("*") if p.is_file())
    assert size < 200_000


def test_every_surface_of_the_golden_artifact_answers_as_recorded() -> None:
    """Points, ranges, columns, every quantile, probabilities, Prophet's own forecast and answers at a live
    anchor give the answers recorded in tests/golden/answers.json (tests/golden/record_answers.py), to the
    printed digit: a change to how the artifact stores the forecast must not move one."""
    import json

    from tests.golden.record_answers import OUT, answers, live_answers

    recorded = json.loads(OUT.read_text())
    now = json.loads(json.dumps({"http": answers(), "live": live_answers()}))
    for url, expected in recorded["http"].items():
        assert now["http"][url] == expected, url
    assert now["live"] == recorded["live"]
    assert len(recorded["http"]) == 33


def _seven_digits(value: object) -> object:
    """A recorded answer with every number to 7 significant digits (float32's, to which schema 6 serves
    Prophet's series); the rest as it is."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, list):
        return [_seven_digits(v) for v in value]
    if isinstance(value, dict):
        return {k: _seven_digits(v) for k, v in value.items()}
    return value


def test_the_golden_artifact_written_again_in_this_schema_answers_as_recorded(tmp_path: Path) -> None:
    """The committed golden artifact is of schema 5 (float64 grids, the closes after Prophet's series). Carried
    into this schema (each pair's grid read back and written again, as a run carries a pair), every served
    answer is the recorded one to the printed digit; Prophet's own forecast (model=prophet), now float32, is
    the recorded one to 7 significant digits; and the artifact is smaller."""
    import json
    from dataclasses import replace

    from cryptopredict.artifact import SCHEMA_VERSION, grid_of, read_artifact, write_artifact
    from tests.golden.record_answers import OUT, answers, live_answers

    golden = read_artifact(GOLDEN)
    assert golden.manifest.schema_version == 5 < SCHEMA_VERSION
    extra = {
        name: (golden.generation_dir / name).read_bytes() for name in golden.manifest.files if name.endswith(".json")
    }
    write_artifact(
        tmp_path / "again",
        replace(golden.manifest, model_version="golden-again"),
        {slug: grid_of(fc) for slug, fc in golden.forecasts.items()},
        extra,
    )
    again = read_artifact(tmp_path / "again")
    assert again.manifest.schema_version == SCHEMA_VERSION
    assert {f.file: f.dtype for g in again.manifest.grids.values() for f in (g.files.series, g.files.served)} == {
        "BTC-USD.series.bin": "<f4",
        "ETH-USD.series.bin": "<f4",
        "BTC-USD.served.bin": "<f8",
        "ETH-USD.served.bin": "<f8",
    }
    recorded = json.loads(OUT.read_text())
    now = json.loads(json.dumps({"http": answers(tmp_path / "again"), "live": live_answers(tmp_path / "again")}))
    prophet = [url for url in recorded["http"] if "model=prophet" in url]
    assert len(prophet) == 4
    for url, expected in recorded["http"].items():
        got = now["http"][url]
        for answer in (expected, got):  # the model version is the one thing these two artifacts differ in
            answer["body"].pop("model_version", None) if isinstance(answer["body"], dict) else None
        if url in prophet:
            assert got == _seven_digits(expected), url
            assert got != expected, url  # Prophet's fitted values had 10 digits: these are really float32's
        else:
            assert got == expected, url
    assert now["live"] == recorded["live"]
    size = {
        name: sum(p.stat().st_size for p in (root / art.manifest.generation).glob("*.bin"))
        for name, root, art in (("golden", GOLDEN, golden), ("again", tmp_path / "again", again))
    }
    assert size["again"] < 0.75 * size["golden"], size
