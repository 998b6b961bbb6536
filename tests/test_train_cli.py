"""train.py as a user runs it: progress on stderr, one clear line on failure, never a traceback."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from cryptopredict.artifact import MANIFEST_NAME, read_artifact
from cryptopredict.timeframes import Timeframe
from cryptopredict.training import cli
from cryptopredict.training.sources import SOURCES
from cryptopredict.training.sources.base import BarRequest
from tests.fake_alpaca import random_walk_bars
from tests.helpers import DATA, ROOT, run_cli

pytestmark = pytest.mark.training  # what every test here needs (tests/conftest.py)

FAST = ("--start", "2025-01-01", "--horizon-days", "30")


def _one_error_line(proc) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["timestamp", "open", "high", "low", "close", "volume"])
        w.writeheader()
        w.writerows(rows)


def _sample_rows(n: int = 200) -> list[dict[str, str]]:
    with open(DATA / "BTC-USD.daily.csv") as fh:
        return list(csv.DictReader(fh))[-n:]


def test_progress_is_one_line_per_symbol(tmp_path: Path) -> None:
    """A run prints one line per fitted symbol with its rows and seconds, and no CmdStan chatter."""
    proc = run_cli("train.py", "--symbols", "BTC/USD,ETH/USD", "--out", str(tmp_path), *FAST)
    assert proc.returncode == 0, proc.stderr
    fitted = [line for line in proc.stderr.splitlines() if "fitted" in line]
    assert len(fitted) == 2
    assert any(line.startswith("[") and "BTC/USD: fitted" in line and " s" in line for line in fitted)
    assert "cmdstanpy" not in proc.stderr
    assert "Chain" not in proc.stderr
    assert "plotly" not in proc.stderr
    assert (tmp_path / MANIFEST_NAME).exists()


def test_model_version_comes_from_flag_then_env(tmp_path: Path) -> None:
    """--model-version wins; MODEL_VERSION is used when the flag is absent."""
    run_cli("train.py", "--symbols", "BTC/USD", "--out", str(tmp_path / "a"), *FAST, env={"MODEL_VERSION": "9.9.9"})
    run_cli(
        "train.py",
        "--symbols",
        "BTC/USD",
        "--out",
        str(tmp_path / "b"),
        "--model-version",
        "1.2.3",
        *FAST,
        env={"MODEL_VERSION": "9.9.9"},
    )
    assert json.loads((tmp_path / "a" / MANIFEST_NAME).read_text())["model_version"] == "9.9.9"
    assert json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())["model_version"] == "1.2.3"


def test_missing_csv_names_the_file(tmp_path: Path) -> None:
    """A symbol without a CSV file fails in one line that names the file it looked for."""
    line = _one_error_line(run_cli("train.py", "--symbols", "DOGE/USD", "--out", str(tmp_path)))
    assert "DOGE-USD.daily.csv" in line


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("close", "-5", "prices"),
        ("close", "nan", "prices"),
        ("high", "1", "ohlc"),
        ("timestamp", "yesterday", "timestamps"),
    ],
)
def test_bad_data_fails_before_fitting_and_keeps_the_old_artifact(
    tmp_path: Path, field: str, value: str, check: str
) -> None:
    """Bad bars stop training with the symbol, the check and the row, and the previous artifact survives."""
    data = tmp_path / "data"
    data.mkdir()
    rows = _sample_rows()
    out = tmp_path / "out"
    _write_csv(data / "BTC-USD.daily.csv", rows)
    assert run_cli("train.py", "--symbols", "BTC/USD", "--csv-dir", str(data), "--out", str(out)).returncode == 0
    before = (out / MANIFEST_NAME).read_bytes()
    rows[120][field] = value
    _write_csv(data / "BTC-USD.daily.csv", rows)
    line = _one_error_line(run_cli("train.py", "--symbols", "BTC/USD", "--csv-dir", str(data), "--out", str(out)))
    assert "BTC/USD" in line
    assert check in line
    assert (out / MANIFEST_NAME).read_bytes() == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--symbols", "BTCUSD"), "invalid symbol"),
        (("--symbols", "BTC/USD,BTC/USD"), "given twice"),
        (("--start", "not-a-date"), "cannot parse"),
        (("--horizon-days", "0"), "horizon"),
        (("--csv-dir", "/nonexistent-dir"), "no CSV files"),
    ],
)
def test_bad_arguments_fail_in_one_line(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    """Nonsense arguments end in one error line that says what is wrong."""
    line = _one_error_line(run_cli("train.py", "--out", str(tmp_path), *args))
    assert says in line


def test_unknown_timeframe_is_an_argparse_error(tmp_path: Path) -> None:
    """An unknown timeframe is refused by the argument parser with the valid choices."""
    proc = run_cli("train.py", "--timeframe", "1Week", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "1Day" in proc.stderr
    assert "1Hour" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hourly_csv_is_trained_on_the_hourly_grid(tmp_path: Path) -> None:
    """--timeframe 1Hour reads <PAIR>.hourly.csv and serves an hourly grid with a 90-day default horizon."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 24 * 30
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    ts = np.datetime64("2025-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    rows = [
        {
            "timestamp": f"{t}:00Z",
            "open": f"{c:.4f}",
            "high": f"{c * 1.002:.4f}",
            "low": f"{c * 0.998:.4f}",
            "close": f"{c:.4f}",
            "volume": "10",
        }
        for t, c in zip(ts, close, strict=True)
    ]
    data = tmp_path / "data"
    data.mkdir()
    _write_csv(data / "SOL-USD.hourly.csv", rows)
    proc = run_cli(
        "train.py",
        "--symbols",
        "SOL/USD",
        "--timeframe",
        "1Hour",
        "--csv-dir",
        str(data),
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert manifest["timeframe"] == "1Hour"
    assert manifest["symbols"]["SOL-USD"]["horizon_steps"] == 90 * 24
    assert manifest["symbols"]["SOL-USD"]["forecast_end"] == "2025-04-30T23:00:00Z"


# Runs train.py --help as `python train.py --help` would, then reports what it imported.
_HELP_PROBE = """
import contextlib, io, json, runpy, sys
sys.argv = ["train.py", "--help"]
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    runpy.run_path("train.py", run_name="__main__")
print(json.dumps({"help": out.getvalue(), "modules": sorted(sys.modules)}))
"""
HEAVY = ("prophet", "cmdstanpy", "pandas", "numpy", "matplotlib", "alpaca")


def _seconds(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, timeout=120, check=True)
    return time.perf_counter() - t0


def test_help_answers_fast_without_prophet() -> None:
    """train.py --help lists the promised flags without importing Prophet, pandas or numpy, and answers in
    less time than importing Prophet alone takes on this machine in the same run."""
    probe = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    doc = json.loads(probe.stdout)
    for flag in ("--source", "--csv-dir", "--symbols", "--timeframe", "--start", "--alpaca-url", "--out"):
        assert flag in doc["help"]
    assert [m for m in doc["modules"] if m.split(".")[0] in HEAVY] == []
    # Timing against a yardstick measured now, not a fixed limit: the best of two --help runs
    # (a stdlib-only start, about 0.1 s) against one import of Prophet (about 1 s on a quiet machine).
    help_seconds = min(_seconds("train.py", "--help") for _ in range(2))
    assert help_seconds < _seconds("-c", "import prophet")


def test_bundled_sample_is_a_copy_not_a_link() -> None:
    """The bundled sample lives in the project (the shared folder is a source, not a dependency)."""
    for name in ("BTC-USD.daily.csv", "ETH-USD.daily.csv"):
        path = DATA / name
        assert path.is_file()
        assert not path.is_symlink()
        assert path.read_text().startswith("timestamp,open,high,low,close,volume\n")


@dataclass(frozen=True, slots=True)
class _SyntheticSource:
    """A seeded random walk per pair: a bar source defined entirely in this test."""

    name: ClassVar[str] = "synthetic"
    default_start: ClassVar[str | None] = None

    seed: int = 0

    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--synthetic-seed", type=int, default=cls().seed)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _SyntheticSource:
        return cls(seed=args.synthetic_seed)

    def describe(self) -> str:
        return f"a random walk, seed {self.seed} ({self.name})"

    def load(self, request: BarRequest, timeframe: Timeframe) -> dict[str, pd.DataFrame]:
        return random_walk_bars(request.symbols, periods=200, seed=self.seed)


def test_a_registered_source_trains_through_train_py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A source added to the registry alone gets its --source choice and flags, and trains an artifact."""
    monkeypatch.setitem(SOURCES, _SyntheticSource.name, _SyntheticSource)
    argv = ["--source", "synthetic", "--synthetic-seed", "3", "--symbols", "BTC/USD", "--out", str(tmp_path)]
    code = cli.main([*argv, "--horizon-days", "30", "--backtest-cutoffs", "0", "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    assert "from a random walk, seed 3 (synthetic)" in capsys.readouterr().err
    trained = read_artifact(tmp_path)
    assert trained.manifest.source == "synthetic"
    assert trained.manifest.symbols["BTC-USD"].rows == 200
