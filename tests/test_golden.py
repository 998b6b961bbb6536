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
