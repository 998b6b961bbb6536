"""Compare Prophet settings on the backtest: `python -m cryptopredict.training.compare`.

Runs the same rolling-origin backtest the training run uses for every combination of price scale,
changepoint prior and changepoint range, on the given CSV sample, and prints a Markdown table
ranked by Prophet's MAPE over the naive forecast's, averaged over horizons and symbols (lower is
better), with the served forecast's ratio and how many horizons gave Prophet weight.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from cryptopredict.errors import CryptopredictError
from cryptopredict.timeframes import get_timeframe
from cryptopredict.training import backtest
from cryptopredict.training.config import ModelConfig, TrainConfig
from cryptopredict.training.jobs import RefitJob, run_refit
from cryptopredict.training.pipeline import load_bars, validate_all
from cryptopredict.training.pool import open_executor
from cryptopredict.training.sources.csv import CsvSource

__all__ = ["main"]


def _grid(scales: Sequence[str], priors: Sequence[float], ranges: Sequence[float]) -> list[ModelConfig]:
    base = ModelConfig()
    # Unique settings: refits are grouped by their ModelConfig.
    return list(
        dict.fromkeys(
            replace(base, scale=s, changepoint_prior_scale=p, changepoint_range=r)
            for s, p, r in itertools.product(scales, priors, ranges)
        )
    )


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the comparison, return the exit code."""
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m cryptopredict.training.compare", description=__doc__.split("\n")[0])
    # The defaults are train.py's (TrainConfig's), so the settings chosen here are the ones it fits.
    p.add_argument("--csv-dir", default=CsvSource().dir)
    p.add_argument("--symbols", default=",".join(d.symbols))
    p.add_argument("--timeframe", default=d.timeframe)
    p.add_argument("--start", default=d.start, help="first bar to use, ISO date (default: the whole file)")
    p.add_argument("--scales", default="log,linear")
    p.add_argument("--priors", default="0.05,0.5", help="changepoint_prior_scale values")
    p.add_argument("--ranges", default="0.8,0.95", help="changepoint_range values")
    p.add_argument("--workers", type=int, default=d.workers, help="processes for the refits (default: one per core)")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or d.cluster.address,
        help="run the refits on the Dask scheduler at this address (env DASK_SCHEDULER_ADDRESS)",
    )
    args = p.parse_args(argv)
    try:
        return _compare(args)
    except CryptopredictError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 1


def _compare(args: argparse.Namespace) -> int:
    config = TrainConfig(
        source=CsvSource(args.csv_dir),
        symbols=tuple(s.strip() for s in args.symbols.split(",")),
        timeframe=args.timeframe,
        start=args.start,
        workers=args.workers,
        cluster=replace(TrainConfig().cluster, address=args.cluster or None),
    )
    timeframe = get_timeframe(args.timeframe)
    bars = validate_all(config, timeframe, load_bars(config, timeframe))
    step = pd.Timedelta(seconds=timeframe.seconds)
    horizons = timeframe.horizons
    settings = config.backtest.for_timeframe(timeframe.name)
    grid = _grid(args.scales.split(","), _floats(args.priors), _floats(args.ranges))
    jobs, frames = [], {}
    for model, symbol in itertools.product(grid, config.symbols):
        frame = frames[model, symbol] = backtest.backtest_frame(bars[symbol].frame, model.scale)
        jobs += [
            RefitJob(symbol, frame, cutoff, step, [h.steps for h in horizons], model, settings.window)
            for cutoff in backtest.plan_cutoffs(frame["ds"], step, horizons, settings)
        ]
    print(f"compare: {len(grid)} settings x {len(config.symbols)} symbols, {len(jobs)} refits", file=sys.stderr)
    refits: dict[tuple[ModelConfig, str], list[backtest.Refit]] = {}
    with open_executor(config) as executor:
        for n, (job, result) in enumerate(executor.map(run_refit, jobs), 1):
            refits.setdefault((job.model, job.symbol), []).append(result)
            if n % 20 == 0 or n == len(jobs):
                print(f"compare: {n}/{len(jobs)} refits done", file=sys.stderr)
    results = []
    for model in grid:
        summaries = [
            backtest.evaluate(backtest.grid_of(frames[model, s], step), refits.get((model, s), []), horizons, settings,
                              config.served)
            for s in config.symbols
        ]  # fmt: skip
        entries = [e for s in summaries if s for e in s["metrics"].values()]
        prophet = sum(e["skill"]["prophet_mape_ratio"] for e in entries) / len(entries)
        served = sum(e["skill"]["mape_ratio"] for e in entries) / len(entries)
        weighted = sum(1 for e in entries if e["weight"] > 0)
        results.append((prophet, served, weighted, len(entries), model))
    results.sort(key=lambda r: r[0])
    print(
        "| rank | scale | changepoint prior | changepoint range | Prophet's MAPE / naive's | "
        "served MAPE / naive's | horizons with weight |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rank, (prophet, served, weighted, total, model) in enumerate(results, 1):
        print(
            f"| {rank} | {model.scale} | {model.changepoint_prior_scale} | {model.changepoint_range} | "
            f"{prophet:.2f} | {served:.3f} | {weighted} of {total} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
