"""The `train.py` command line: arguments and environment in, one training run, an exit code out."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cryptopredict.errors import CryptopredictError
from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training.config import BacktestConfig, ModelConfig, TrainConfig

__all__ = ["build_parser", "main", "resolve_model_version"]


def resolve_model_version(explicit: str | None, repo: Path | None = None) -> str:
    """--model-version, else $MODEL_VERSION, else `git describe`, else 'dev'."""
    if explicit:
        return explicit
    if os.environ.get("MODEL_VERSION"):
        return os.environ["MODEL_VERSION"]
    try:
        out = subprocess.run(
            ["git", "describe", "--tags", "--always", "--dirty"],  # noqa: S607 (git from PATH on purpose)
            cwd=repo or Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "dev"
    return out.stdout.strip() or "dev"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Fit a Prophet model per crypto pair and write the forecast artifact the API serves.",
    )
    p.add_argument("--source", choices=("csv", "alpaca"), default="csv", help="where bars come from (default: csv)")
    p.add_argument("--csv-dir", default="data", help="folder of <BTC-USD>.<daily|hourly>.csv files (default: data)")
    p.add_argument("--symbols", default="BTC/USD,ETH/USD", help="comma-separated pairs (default: BTC/USD,ETH/USD)")
    p.add_argument("--timeframe", choices=tuple(TIMEFRAMES), default="1Day", help="bar size (default: 1Day)")
    p.add_argument("--start", help="first bar to use, ISO date (alpaca default: 2021-01-01; csv: the whole file)")
    p.add_argument("--end", help="use bars before this ISO date (default: up to now)")
    p.add_argument(
        "--alpaca-url",
        default=os.environ.get("ALPACA_DATA_URL") or None,
        help="base URL for Alpaca's data API, e.g. a proxy or a local fake (env ALPACA_DATA_URL)",
    )
    p.add_argument("--out", default="artifacts", help="artifact folder (default: artifacts)")
    p.add_argument("--horizon-days", type=int, help="forecast horizon (default: 365 for 1Day, 90 for 1Hour)")
    p.add_argument(
        "--scale",
        choices=("log", "linear"),
        default=ModelConfig().scale,
        help=f"fit log(close) or raw close (default: {ModelConfig().scale})",
    )
    p.add_argument(
        "--backtest-cutoffs",
        type=int,
        default=BacktestConfig().cutoffs,
        help=f"rolling-origin cutoffs per symbol; 0 skips the backtest (default: {BacktestConfig().cutoffs})",
    )
    p.add_argument(
        "--baseline-artifact",
        help="artifact now in production: refuse a candidate clearly worse on the backtest",
    )
    p.add_argument("--model-version", help="version stamped in the artifact (env MODEL_VERSION, else git, else dev)")
    p.add_argument(
        "--run-id",
        default=os.environ.get("RUN_ID") or None,
        help="identity of this training run, stamped in the artifact and shown by /healthz (env RUN_ID)",
    )
    p.add_argument("--workers", type=int, help="parallel fitting processes (default: one per symbol, up to the cores)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    config = TrainConfig(
        source=args.source,
        symbols=symbols,
        timeframe=args.timeframe,
        out=args.out,
        csv_dir=args.csv_dir,
        start=args.start,
        end=args.end,
        alpaca_url=args.alpaca_url,
        horizon_days=args.horizon_days,
        model_version=resolve_model_version(args.model_version),
        run_id=args.run_id,
        workers=args.workers,
        baseline_artifact=args.baseline_artifact,
        model=replace(ModelConfig(), scale=args.scale),
        backtest=replace(BacktestConfig(), cutoffs=args.backtest_cutoffs),
    )
    # Imported here so `train.py --help` answers without loading pandas and Prophet.
    from cryptopredict.training.pipeline import run

    try:
        run(config)
    except CryptopredictError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("train.py: interrupted; the previous artifact is untouched", file=sys.stderr)
        return 130
    return 0
