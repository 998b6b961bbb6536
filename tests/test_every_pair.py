"""train.py --symbols all: every pair the source lists, and --skip-invalid leaving out the unusable ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cryptopredict.artifact import read_artifact
from cryptopredict.timeframes import symbol_to_slug
from cryptopredict.training import cli
from tests.fake_alpaca import FakeAlpaca, crypto_asset, random_walk_bars
from tests.helpers import file_of

pytestmark = pytest.mark.training  # what every test here needs (tests/conftest.py): train.py's own run

QUICK = ("--horizon-days", "30", "--backtest-cutoffs", "0", "--workers", "1")
PAIRS = ["AAA/USD", "BBB/USD", "CCC/USD"]


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy between us and 127.0.0.1, and no keys or URLs from the machine's environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "ALPACA_DATA_URL", "ALPACA_TRADING_URL"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _bars(short: str | None = None) -> dict[str, pd.DataFrame]:
    """200 daily bars per pair; `short` gets 30, too few to train (validation wants 60)."""
    bars = random_walk_bars([*PAIRS, *([short] if short else [])], periods=200, start="2024-01-01", seed=5)
    if short:
        bars[short] = bars[short].iloc[:30]
    return bars


def _write_csvs(folder: Path, bars: dict[str, pd.DataFrame], suffix: str = "daily") -> None:
    folder.mkdir(exist_ok=True)
    for symbol, frame in bars.items():
        frame.to_csv(folder / f"{symbol_to_slug(symbol)}.{suffix}.csv", index=False)


def _last_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("train.py: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_csv_all_trains_every_file_of_the_timeframe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the csv source, 'all' is every pair with a file for the timeframe; other timeframes' files are ignored."""
    _write_csvs(tmp_path / "csv", _bars())
    _write_csvs(tmp_path / "csv", random_walk_bars(["ZZZ/USD"], periods=100, freq="1h"), suffix="hourly")
    (tmp_path / "csv" / "notes.daily.csv").write_text("not a pair\n")
    code = cli.main(["--csv-dir", str(tmp_path / "csv"), "--symbols", "all", "--out", str(tmp_path / "a"), *QUICK])
    assert code == 0, capsys.readouterr().err
    assert "--symbols all: 3 pair(s)" in capsys.readouterr().err
    manifest = read_artifact(tmp_path / "a").manifest
    assert [e.symbol for e in manifest.symbols.values()] == PAIRS
    assert manifest.skipped == {}


def test_a_short_pair_fails_the_run_without_skip_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --skip-invalid one pair too short to train fails the whole run in one line naming it."""
    _write_csvs(tmp_path / "csv", _bars(short="TINY/USD"))
    code = cli.main(["--csv-dir", str(tmp_path / "csv"), "--symbols", "all", "--out", str(tmp_path / "a"), *QUICK])
    assert code == 1
    assert "TINY/USD" in _last_error(capsys.readouterr().err)
    assert not (tmp_path / "a").exists()


def test_skip_invalid_reports_each_skipped_pair_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --skip-invalid a short pair gets one line naming it and why, a summary line, and a place in the manifest."""
    _write_csvs(tmp_path / "csv", _bars(short="TINY/USD"))
    argv = ["--csv-dir", str(tmp_path / "csv"), "--symbols", "all", "--skip-invalid", "--out", str(tmp_path / "a")]
    code = cli.main([*argv, *QUICK])
    err = capsys.readouterr().err
    assert code == 0, err
    skipped = [line for line in err.splitlines() if line.startswith("TINY/USD: skipped: ")]
    assert len(skipped) == 1, err
    assert "30" in skipped[0]
    assert "skipped 1 of 4 pair(s) (--skip-invalid): TINY/USD; training 3" in err
    manifest = read_artifact(tmp_path / "a").manifest
    assert [e.symbol for e in manifest.symbols.values()] == PAIRS
    assert list(manifest.skipped) == ["TINY/USD"]
    assert manifest.skipped["TINY/USD"] == skipped[0].removeprefix("TINY/USD: skipped: ")
    report = file_of(read_artifact(tmp_path / "a"), "report.md").read_text()
    row = "| TINY/USD | **left out** (production does not serve it) | validation: rows: 30 rows; expected at least 60 |"
    assert row in report


def test_the_run_fails_when_every_pair_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """If --skip-invalid leaves no pair to train, the run fails in one line and writes nothing."""
    bars = {s: f.iloc[:30] for s, f in _bars().items()}
    _write_csvs(tmp_path / "csv", bars)
    argv = ["--csv-dir", str(tmp_path / "csv"), "--symbols", "all", "--skip-invalid", "--out", str(tmp_path / "a")]
    assert cli.main([*argv, *QUICK]) == 1
    assert "every pair was skipped (3 of 3)" in _last_error(capsys.readouterr().err)
    assert not (tmp_path / "a").exists()


def _alpaca_argv(url: str, out: Path) -> list[str]:
    return [
        "--source", "alpaca", "--alpaca-url", url, "--symbols", "all", "--timeframe", "1Day",
        "--start", "2024-01-01", "--max-requests-per-minute", "60000", "--out", str(out), *QUICK,
    ]  # fmt: skip


@pytest.mark.server
def test_alpaca_all_lists_usd_pairs_and_skips_a_short_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the fake: 'all' trains the listed tradable USD pairs; one served too few bars is skipped with
    --skip-invalid and fails the run without it."""
    monkeypatch.setenv("ALPACA_API_KEY", "key-id")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")
    bars = _bars(short="TINY/USD")
    assets = [crypto_asset(s) for s in bars] + [crypto_asset("AAA/USDT"), crypto_asset("OFF/USD", tradable=False)]
    with FakeAlpaca(bars, page_size=250, assets=assets) as fake:
        assert cli.main(_alpaca_argv(fake.url, tmp_path / "a")) == 1
        assert "TINY/USD" in _last_error(capsys.readouterr().err)
        fake.clear()
        code = cli.main([*_alpaca_argv(fake.url, tmp_path / "b"), "--skip-invalid"])
        err = capsys.readouterr().err
        assert code == 0, err
        symbols_asked = {r.query.get("symbols") for r in fake.requests if r.path != "/v2/assets"}
    assert symbols_asked == {"AAA/USD,BBB/USD,CCC/USD,TINY/USD"}
    manifest = read_artifact(tmp_path / "b").manifest
    assert [e.symbol for e in manifest.symbols.values()] == PAIRS
    assert list(manifest.skipped) == ["TINY/USD"]


@pytest.mark.server
def test_alpaca_all_without_keys_says_which_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'all' with the alpaca source and no secret key fails in one line naming the missing variable, asking nothing."""
    monkeypatch.setenv("ALPACA_API_KEY", "key-id")
    with FakeAlpaca(_bars()) as fake:
        assert cli.main(_alpaca_argv(fake.url, tmp_path / "a")) == 1
    line = _last_error(capsys.readouterr().err)
    assert "needs keys: set ALPACA_SECRET_KEY" in line
    assert "ALPACA_API_KEY" not in line
    assert fake.requests == []


def test_a_pair_whose_price_never_moves_is_served(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stablecoin's constant closes: Prophet sets its parameters without the optimiser (counted as converged),
    MASE has no scale and is null, the report is written and the served band is the price itself."""
    index = pd.date_range(pd.Timestamp("2023-01-01", tz="UTC"), periods=600, freq="1D")
    flat = pd.DataFrame({"timestamp": index, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 5.0})
    _write_csvs(tmp_path / "csv", {"USDC/USD": flat})
    argv = ["--csv-dir", str(tmp_path / "csv"), "--symbols", "USDC/USD", "--out", str(tmp_path / "a")]
    code = cli.main([*argv, "--horizon-days", "30", "--backtest-cutoffs", "20", "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    artifact = read_artifact(tmp_path / "a")
    entry = artifact.manifest.symbols["USDC-USD"]
    assert entry.converged is True
    assert all(m.mase is None for e in entry.backtest.metrics.values() for m in (e.served, e.naive))
    fc = artifact.forecasts["USDC-USD"]
    assert {v for col in fc.quantiles for v in col} == {1.0}
    assert "| USDC/USD | converged | pass |" in file_of(artifact, "report.md").read_text()
