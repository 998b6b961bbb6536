"""Fixtures: a real artifact trained once per session on a slice of the bundled sample."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from flask import Flask
from flask.testing import FlaskClient

from cryptopredict.artifact import Artifact, read_artifact
from cryptopredict.serving import create_app
from cryptopredict.training.config import BacktestConfig, GateConfig, TrainConfig
from cryptopredict.training.pipeline import run
from cryptopredict.training.sources.csv import CsvSource
from tests.ci_plugin import pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish
from tests.helpers import DATA, ROOT, api_server, start_image_build

# Hooks defined in tests/ci_plugin.py (a plugin, so tests/test_ci.py can load it alone), active here.
__all__ = ["pytest_collectreport", "pytest_runtest_logreport", "pytest_sessionfinish"]

IMAGE_TESTS = "tests/test_image.py"
# Set in each worker of pytest-xdist (`make test` runs the suite on two, by file: --dist loadfile).
XDIST_WORKER = "PYTEST_XDIST_WORKER"
# On xdist's workers (`make test`: --dist loadfile --no-loadscope-reorder), the files that take longest
# go first, longest first, so that no minute-long file starts when the other worker has nothing left
# (seconds per file on 2 cores: the image build and its two runs 300, test_cycle 150, the soak 60,
# then 30 to 60). Only the order changes: every file runs either way.
LONGEST_FIRST = (
    IMAGE_TESTS,
    "tests/test_cycle.py",
    "tests/test_pair_verdict.py",
    "tests/test_soak.py",
    "tests/test_end_to_end.py",
    "tests/test_gate_error_rates.py",
    "tests/test_cluster.py",
    "tests/test_docs.py",
)

# What a test needs beyond Python and the checkout, as a marker (`make check`, the fast lane, runs
# "not training and not image and not slow"):
#   training  a Prophet training run: the session's artifacts below, or a run of its own;
#   server    a real server on 127.0.0.1 (the API, a stand-in of Alpaca, a webhook receiver...);
#   image     buildah (the Dockerfile built and run, or images pushed to a local registry);
#   unit      none of these.
# A test file marks what its own code needs (pytestmark, or a decorator on one test); the
# session's fixtures are marked here, from the fixtures a test asks for.
NEEDS_FROM_FIXTURES = {
    "production_dir": "training",
    "artifact_dir": "training",
    "recent_artifact": "training",  # tests/test_live.py's hourly artifact, shared with tests/test_browser.py
    "live_server": "server",
}
NEEDS = ("training", "server", "image")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs (unit when nothing). Order the image tests by where their build
    runs: in one process, last (the build starts in the background as the session begins); on xdist's
    workers, first (the worker that takes the file builds, while the other works through the rest)."""
    for item in items:
        for fixture, need in NEEDS_FROM_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(need)
        if not any(item.get_closest_marker(need) for need in NEEDS):
            item.add_marker("unit")
    if XDIST_WORKER in os.environ:
        items.sort(key=_longest_first)
    else:
        items.sort(key=lambda item: item.nodeid.startswith(IMAGE_TESTS))


def _longest_first(item: pytest.Item) -> int:
    path = item.nodeid.split("::")[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_finish(session: pytest.Session) -> None:
    """In one process, start building the real Dockerfile now, beside the rest of the suite (it takes
    minutes). Each xdist worker collects every test: there the image tests' fixture builds instead."""
    if XDIST_WORKER in os.environ:
        return
    if any(item.nodeid.startswith(IMAGE_TESTS) for item in session.items) and shutil.which("buildah"):
        start_image_build()


# Two recent years of real daily bars keep a fit under a couple of seconds.
SLICE_START = "2024-01-01"


# The production model the session's artifact replaced: trained on data to PRODUCTION_END, so the
# session's artifact carries its published forecasts in the track record, scored against 2025's
# closes, and its gate compares with that model's backtest.
PRODUCTION_END = "2025-01-01"


def _trained(tmp_path_factory: pytest.TempPathFactory, name: str, config_for) -> Path:
    """Train `config_for(out)` into a fresh folder, once per session. With CRYPTOPREDICT_FIXTURE_CACHE set,
    into that folder's `name`, and reuse it (`make mutation` sets it: each mutant runs in a process of
    its own, and the serving tests need the artifact, not a retraining per mutant). On xdist's
    workers, into the session's shared temporary folder: the first worker to ask trains, holding a
    file lock, and the other waits for it and reads the same artifact."""
    cache = os.environ.get("CRYPTOPREDICT_FIXTURE_CACHE")
    if cache:
        out = Path(cache) / name
    elif XDIST_WORKER in os.environ:
        out = tmp_path_factory.getbasetemp().parent / name
    else:
        out = tmp_path_factory.mktemp(name)
    with FileLock(f"{out}.lock"):
        if not (out / "manifest.json").exists():
            out.mkdir(parents=True, exist_ok=True)
            run(config_for(out), log=lambda _line: None)
    return out


@pytest.fixture(scope="session")
def production_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact in production before the session's: four years to PRODUCTION_END, 30 cutoffs.

    Its own gate judges no horizon (30 cutoffs are too few to refuse on); the session's artifact,
    trained against it, is judged by the default gate.
    """
    return _trained(
        tmp_path_factory,
        "production",
        lambda out: TrainConfig(
            source=CsvSource(str(DATA)),
            symbols=("BTC/USD", "ETH/USD"),
            start="2021-01-01",
            end=PRODUCTION_END,
            out=str(out),
            model_version="test-0.9.0",
            backtest=BacktestConfig(cutoffs=30),
            gate=GateConfig(min_independent=10**6),
        ),
    )


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory, production_dir: Path) -> Path:
    """Real Prophet fits of BTC/USD and ETH/USD on a slice of the bundled sample, trained with
    `production_dir` as the artifact in production."""
    return _trained(
        tmp_path_factory,
        "artifact",
        lambda out: TrainConfig(
            source=CsvSource(str(DATA)),
            symbols=("BTC/USD", "ETH/USD"),
            start=SLICE_START,
            out=str(out),
            model_version="test-1.0.0",
            baseline_artifact=str(production_dir),
        ),
    )


@pytest.fixture(scope="session")
def artifact(artifact_dir: Path) -> Artifact:
    return read_artifact(artifact_dir)


@pytest.fixture
def app(artifact_dir: Path) -> Flask:
    return create_app({"artifact_dir": str(artifact_dir), "max_series_points": 100})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(artifact_dir: Path) -> Iterator[str]:
    """`api.py` running as a real Waitress server on 127.0.0.1."""
    with api_server(artifact_dir) as base:
        yield base


@pytest.fixture(scope="session")
def api_only_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh venv holding requirements-api.txt alone, installed with --require-hashes."""
    venv = tmp_path_factory.mktemp("api-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    proc = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(ROOT / "requirements-api.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return python
