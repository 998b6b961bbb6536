"""Compare Prophet settings on the backtest: `python -m cryptopredict.training.compare`.

Runs the same rolling-origin backtest the training run uses for every combination of price scale,
changepoint prior and changepoint range, on the given CSV sample, and prints a Markdown table
ranked by Prophet's MAPE over the naive forecast's, averaged over horizons and symbols (lower is
better), with the served forecast's ratio and how many horizons gave Prophet weight.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from cryptopredict.errors import CryptopredictError
from cryptopredict.timeframes import get_timeframe
from cryptopredict.training import backtest
from cryptopredict.training.config import ModelConfig, TrainConfig
from cryptopredict.training.pipeline import _runner, load_bars, validate_all

__all__ = ["main"]


def _grid(scales: Sequence[str], priors: Sequence[float], ranges: Sequence[float]) -> list[ModelConfig]:
    base = ModelConfig()
    return [
        replace(base, scale=s, changepoint_prior_scale=p, changepoint_range=r)
        for s, p, r in itertools.product(scales, priors, ranges)
    ]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cryptopredict.training.compare", description=__doc__.split("\n")[0])
    p.add_argument("--csv-dir", default="data")
    p.add_argument("--symbols", default="BTC/USD,ETH/USD")
    p.add_argument("--timeframe", default="1Day")
    p.add_argument("--scales", default="log,linear")
    p.add_argument("--priors", default="0.05,0.5", help="changepoint_prior_scale values")
    p.add_argument("--ranges", default="0.8,0.95", help="changepoint_range values")
    p.add_argument("--workers", type=int)
    args = p.parse_args(argv)
    try:
        return _compare(args)
    except CryptopredictError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 1


def _compare(args: argparse.Namespace) -> int:
    symbols = tuple(s.strip() for s in args.symbols.split(","))
    # start=None: the whole CSV, as train.py reads it.
    config = TrainConfig(source="csv", symbols=symbols, timeframe=args.timeframe, csv_dir=args.csv_dir, start=None)
    timeframe = get_timeframe(args.timeframe)
    bars = validate_all(config, timeframe, load_bars(config, timeframe))
    step = pd.Timedelta(seconds=timeframe.seconds)
    horizons = backtest.HORIZONS[timeframe.name]
    settings = config.backtest.for_timeframe(timeframe.name)
    grid = _grid(args.scales.split(","), _floats(args.priors), _floats(args.ranges))
    jobs, frames = {}, {}
    for (i, model), symbol in itertools.product(enumerate(grid), symbols):
        frame = frames[i, symbol] = backtest.backtest_frame(bars[symbol].frame, model.scale)
        for j, cutoff in enumerate(backtest.plan_cutoffs(frame["ds"], step, horizons, settings)):
            jobs[i, symbol, j] = (frame, cutoff, step, [h.steps for h in horizons], model, settings.window)
    print(f"compare: {len(grid)} settings x {len(symbols)} symbols, {len(jobs)} refits", file=sys.stderr)
    refits: dict[tuple[int, str], list[backtest.Refit]] = {}
    with _runner(args.workers or 2) as run_jobs:
        for n, ((i, symbol, _), result) in enumerate(run_jobs(backtest.refit, jobs), 1):
            refits.setdefault((i, symbol), []).append(result)
            if n % 20 == 0 or n == len(jobs):
                print(f"compare: {n}/{len(jobs)} refits done", file=sys.stderr)
    results = []
    for i, model in enumerate(grid):
        summaries = [
            backtest.evaluate(backtest.grid_of(frames[i, s], step), refits.get((i, s), []), horizons, settings,
                              config.served)
            for s in symbols
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
