"""Write tests/golden/artifact again: `python tests/golden/make_golden.py` (a deliberate, versioned step).

Trains BTC/USD and ETH/USD on 90 days of the bundled sample with a 30-day horizon and no backtest,
then keeps the grids and fitted models only (no charts or report), so the fixture stays small.
Update the recorded values in tests/test_golden.py after running it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptopredict.artifact import grid_of, read_artifact, write_artifact  # noqa: E402
from cryptopredict.training.config import BacktestConfig, TrainConfig  # noqa: E402
from cryptopredict.training.pipeline import run  # noqa: E402
from cryptopredict.training.sources.csv import CsvSource  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "artifact"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            source=CsvSource(str(ROOT / "data")),
            symbols=("BTC/USD", "ETH/USD"),
            start="2025-01-01",
            end="2025-04-01",
            horizon_days=30,
            model_version="golden-4",
            backtest=BacktestConfig(cutoffs=0),
            out=tmp,
        )
        run(config, log=lambda _line: None)
        trained = read_artifact(tmp)
        m = trained.manifest
        grids = {slug: grid_of(fc) for slug, fc in trained.forecasts.items()}
        models = [e.model_file for e in m.symbols.values() if e.model_file]
        extra = {name: (trained.generation_dir / name).read_bytes() for name in models}
        # No charts or report; no track record (an artifact without a ledger is still read: `Artifact.ledger`
        # None), nor alert states (alerts.toml in the working folder is read by default: `Artifact.alerts` None).
        entries = {slug: replace(e, charts={}, backtest_chart=None) for slug, e in m.symbols.items()}
        manifest = replace(m, symbols=entries, report=None, ledger=None, alerts=None)
        shutil.rmtree(GOLDEN, ignore_errors=True)
        write_artifact(GOLDEN, manifest, grids, extra)
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
