"""Compare Prophet settings on the backtest: `python -m cryptopredict.training.compare`.

Runs the same rolling-origin backtest the training run uses for every combination of price scale,
changepoint prior and changepoint range, on the given CSV sample, and prints a Markdown table
ranked by mean MASE over all horizons and symbols (lower is better), with the naive baseline.
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
from cryptopredict.training.gate import mean_mase, pooled_coverage
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
    config = TrainConfig(source="csv", symbols=symbols, timeframe=args.timeframe, csv_dir=args.csv_dir)
    timeframe = get_timeframe(args.timeframe)
    bars = validate_all(config, timeframe, load_bars(config, timeframe))
    step = pd.Timedelta(seconds=timeframe.seconds)
    horizons = backtest.HORIZONS[timeframe.name]
    grid = _grid(args.scales.split(","), _floats(args.priors), _floats(args.ranges))
    jobs = {}
    for (i, model), symbol in itertools.product(enumerate(grid), symbols):
        frame = backtest.backtest_frame(bars[symbol].frame, model.scale)
        for j, cutoff in enumerate(backtest.plan_cutoffs(frame["ds"], step, horizons, config.backtest)):
            jobs[i, symbol, j] = (frame, cutoff, step, horizons, model, None)
    print(f"compare: {len(grid)} settings x {len(symbols)} symbols, {len(jobs)} refits", file=sys.stderr)
    rows: dict[tuple[int, str], list[backtest.Forecast]] = {}
    with _runner(args.workers or 2) as run_jobs:
        for n, ((i, symbol, _), forecasts) in enumerate(run_jobs(backtest.backtest_cutoff, jobs), 1):
            rows.setdefault((i, symbol), []).extend(forecasts)
            if n % 10 == 0 or n == len(jobs):
                print(f"compare: {n}/{len(jobs)} refits done", file=sys.stderr)
    results = []
    for i, model in enumerate(grid):
        summaries = [backtest.summarize(rows.get((i, s), []), horizons) for s in symbols]
        summaries = [s for s in summaries if s]
        mase = sum(mean_mase(s) for s in summaries) / len(summaries)
        naive = sum(
            sum(e["naive"]["mase"] for e in s["metrics"].values()) / len(s["metrics"]) for s in summaries
        ) / len(summaries)
        coverage = sum(pooled_coverage(s) for s in summaries) / len(summaries)
        results.append((mase, naive, coverage, model))
    results.sort(key=lambda r: r[0])
    print("| rank | scale | changepoint prior | changepoint range | mean MASE | naive MASE | 80% coverage |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rank, (mase, naive, coverage, model) in enumerate(results, 1):
        print(
            f"| {rank} | {model.scale} | {model.changepoint_prior_scale} | {model.changepoint_range} | "
            f"{mase:.2f} | {naive:.2f} | {coverage:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
