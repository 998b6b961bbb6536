"""The `train.py` command line: arguments and environment in, one training run, an exit code out."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cryptopredict.errors import CryptopredictError
from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training.config import TrainConfig
from cryptopredict.training.sources import SOURCES

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


def _horizon_help() -> str:
    days = ", ".join(f"{tf.default_horizon_days} for {name}" for name, tf in TIMEFRAMES.items())
    return f"forecast horizon in days (default: {days})"


def build_parser() -> argparse.ArgumentParser:
    """train.py's arguments; every default comes from TrainConfig and the registered sources."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Fit a Prophet model per crypto pair and write the forecast artifact the API serves.",
    )
    p.add_argument(
        "--source",
        choices=tuple(SOURCES),
        default=d.source.name,
        help=f"where bars come from (default: {d.source.name})",
    )
    p.add_argument(
        "--symbols",
        default=",".join(d.symbols or ()),
        help="comma-separated pairs, or 'all': every pair the source lists (csv: every file for the timeframe; "
        f"alpaca: every active, tradable crypto pair quoted in USD) (default: {','.join(d.symbols or ())})",
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="a pair without bars, with unreadable or invalid bars, or whose fit fails is reported and "
        "judged a failed pair (carried forward from --baseline-artifact, else left out) instead of failing the run",
    )
    p.add_argument(
        "--max-failed-share",
        type=_share,
        default=d.gate.max_failed_share,
        metavar="SHARE",
        help="refuse the run when more than this share of the pairs fails, and at least "
        f"{d.gate.min_failed_pairs} of them (a failed pair is otherwise carried forward or left out and the rest "
        f"served) (default: {d.gate.max_failed_share})",
    )
    p.add_argument(
        "--timeframe", choices=tuple(TIMEFRAMES), default=d.timeframe, help=f"bar size (default: {d.timeframe})"
    )
    starts = "; ".join(f"{name}: {src.default_start or 'all its bars'}" for name, src in SOURCES.items())
    p.add_argument("--start", help=f"first bar to use, ISO date (default: {starts})")
    p.add_argument("--end", help="use bars before this ISO date (default: up to now)")
    p.add_argument("--out", default=d.out, help=f"artifact folder (default: {d.out})")
    p.add_argument("--horizon-days", type=int, help=_horizon_help())
    p.add_argument(
        "--scale",
        choices=("log", "linear"),
        default=d.model.scale,
        help=f"fit log(close) or raw close (default: {d.model.scale})",
    )
    p.add_argument(
        "--backtest-cutoffs",
        type=int,
        default=d.backtest.cutoffs,
        help=f"rolling-origin cutoffs per symbol; 0 skips the backtest (default: {d.backtest.cutoffs})",
    )
    p.add_argument(
        "--baseline-artifact",
        help="artifact now in production: refuse a candidate clearly worse on the backtest",
    )
    p.add_argument(
        "--alert-rules",
        metavar="FILE",
        default="alerts.toml" if Path("alerts.toml").is_file() else None,
        help="watch rules to evaluate on the new forecast; their states go in the artifact and the deploy "
        "posts those that fired (default: alerts.toml when present, else none)",
    )
    p.add_argument("--model-version", help="version stamped in the artifact (env MODEL_VERSION, else git, else dev)")
    p.add_argument(
        "--run-id",
        default=os.environ.get("RUN_ID") or None,
        help="identity of this training run, stamped in the artifact and shown by /healthz (env RUN_ID)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="processes for the fits and backtest refits, one pool for both (default: one per core)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or d.cluster.address,
        help="run the fits and refits on the Dask scheduler at this address, e.g. tcp://scheduler:8786, "
        "instead of local processes (env DASK_SCHEDULER_ADDRESS; --workers then does not apply)",
    )
    for name, source in SOURCES.items():
        source.add_arguments(p.add_argument_group(f"{name} source"))
    return p


def _share(text: str) -> float:
    """--max-failed-share: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        msg = f"expected a share from 0 to 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _symbols(text: str) -> tuple[str, ...] | None:
    """--symbols as a tuple of pairs; None for 'all' (every pair the source lists)."""
    if text.strip().lower() == "all":
        return None
    return tuple(s.strip() for s in text.split(",") if s.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Parse train.py's arguments, run one training, return the exit code."""
    args = build_parser().parse_args(argv)
    d = TrainConfig()
    config = TrainConfig(
        source=SOURCES[args.source].from_args(args),
        symbols=_symbols(args.symbols),
        skip_invalid=args.skip_invalid,
        timeframe=args.timeframe,
        out=args.out,
        start=args.start,
        end=args.end,
        horizon_days=args.horizon_days,
        model_version=resolve_model_version(args.model_version),
        run_id=args.run_id,
        workers=args.workers,
        cluster=replace(d.cluster, address=args.cluster or None),
        baseline_artifact=args.baseline_artifact,
        alert_rules=args.alert_rules,
        model=replace(d.model, scale=args.scale),
        backtest=replace(d.backtest, cutoffs=args.backtest_cutoffs),
        gate=replace(d.gate, max_failed_share=args.max_failed_share),
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
