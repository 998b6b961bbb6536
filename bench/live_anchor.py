"""What a live anchor is worth, measured on held-out closes: `python bench/live_anchor.py`.

For every origin T of the last `--days` of each series (the artifact's data end) the served forecast
is built exactly as training builds it, from the closes up to T alone (`served.grid_quantiles`, weight
0 as served on the bundled sample), and read through the API's own lookup. A user asks `age` bars
after T for the close k bars after that: the artifact-anchored answer is the forecast from T at lead
age + k (what the API answers without the feed); the live-anchored answer rests on the close at
T + age (a live price that fresh) with the artifact's spread for lead k. Both are scored against the
actual close: MAPE of the median, the mean quantile (pinball) score over the 23 published levels on
log prices, and the share inside the 80% band. With weight 0 the served median is the naive forecast,
so the two medians are naive's at the data end and naive's at the live price.

Daily bars only give closes a whole bar apart, so the ages measured here are 1 and 2 days; ages
inside a bar (hours on daily bars, or hourly bars) need intraday closes: `--csv-dir` and
`--timeframe 1Hour` measure them on any hourly CSV in the bundled format. Writes
bench/results/live-anchor.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from array import array
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptopredict.artifact import SymbolForecast  # noqa: E402
from cryptopredict.serving import lookup  # noqa: E402
from cryptopredict.serving.anchor import Anchor  # noqa: E402
from cryptopredict.timeframes import get_timeframe  # noqa: E402
from cryptopredict.training import served  # noqa: E402
from cryptopredict.training.config import ServedConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _forecast(closes: np.ndarray, stamps: pd.DatetimeIndex, origin: int, steps: int, step: timedelta) -> SymbolForecast:
    """The served forecast at `origin` (weight 0), from the closes up to it alone, as the artifact holds it."""
    log_close = np.log(closes[: origin + 1])
    sigma = served.ewma_volatility(log_close, ServedConfig().volatility_halflife(step))
    horizons = [h.steps for h in get_timeframe("1Day" if step == timedelta(days=1) else "1Hour").horizons]
    q = served.grid_quantiles(log_close, sigma, np.zeros(origin + 1), np.zeros(steps), horizons, [0.0] * len(horizons))
    # Rounded to 8 digits as the artifact stores them.
    columns = tuple(array("d", (float(f"{v:.8g}") for v in np.exp(q[:, j]))) for j in range(q.shape[1]))
    median = tuple(columns[served.MEDIAN])
    return SymbolForecast(
        symbol="X/USD",
        slug="X-USD",
        timeframe="1Day" if step == timedelta(days=1) else "1Hour",
        step=step,
        start=stamps[0].to_pydatetime(),
        history_points=origin + 1,
        yhat=median,
        yhat_lower=median,
        yhat_upper=median,
        actual=tuple(float(c) for c in closes[: origin + 1]),
        levels=served.LEVELS,
        quantiles=columns,
    )


def _score(actual: float, qs: Sequence[float]) -> tuple[float, float, bool]:
    median = qs[served.MEDIAN]
    ape = abs(median - actual) / actual
    pin = served.pinball(math.log(actual), np.log(np.asarray(qs)))
    return ape, pin, qs[served.LOW] <= actual <= qs[served.HIGH]


def measure(csv: Path, step: timedelta, days: int, ages: Sequence[int], leads: Sequence[int]) -> list[dict]:
    frame = pd.read_csv(csv)
    stamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True))
    closes = frame["close"].to_numpy(float)
    per_day = round(timedelta(days=1) / step)
    horizon = max(ages) + max(leads)
    origins = range(len(closes) - 1 - horizon - days * per_day, len(closes) - 1 - horizon)
    rows = {(a, k): {"artifact": [], "live": []} for a in ages for k in leads}
    for origin in origins:
        fc = _forecast(closes, stamps, origin, horizon, step)
        end = fc.history_end
        for a in ages:
            # The close of bar end + a, observed when that bar closed: on the grid at end + a.
            grid = end + a * step
            price = float(closes[origin + a])
            live = Anchor(price, grid + step, "live", grid, price / lookup.median_path(fc, grid))
            for k in leads:
                target = end + (a + k) * step
                actual = float(closes[origin + a + k])
                rows[a, k]["artifact"].append(_score(actual, lookup.quantiles_at(fc, target, served.LEVELS)))
                rows[a, k]["live"].append(_score(actual, lookup.quantiles_at(fc, target, served.LEVELS, live)))
    out = []
    for (a, k), by in rows.items():
        art, liv = np.asarray(by["artifact"], float), np.asarray(by["live"], float)
        out.append(
            {
                "age": a,
                "lead": k,
                "n": len(art),
                "mape_artifact": art[:, 0].mean(),
                "mape_live": liv[:, 0].mean(),
                "pinball_artifact": art[:, 1].mean(),
                "pinball_live": liv[:, 1].mean(),
                "cover_artifact": art[:, 2].mean(),
                "cover_live": liv[:, 2].mean(),
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--csv-dir", default=str(ROOT / "data"), help="folder of <PAIR>.<daily|hourly>.csv (default data/)")
    p.add_argument("--pairs", default="BTC-USD,ETH-USD")
    p.add_argument("--timeframe", default="1Day", choices=("1Day", "1Hour"))
    p.add_argument("--days", type=int, default=730, help="held-out origins: the last DAYS of each series")
    p.add_argument("--out", default=str(RESULTS / "live-anchor.md"))
    args = p.parse_args(argv)
    daily = args.timeframe == "1Day"
    step = timedelta(days=1) if daily else timedelta(hours=1)
    ages, leads = ((1, 2), (1, 7, 30)) if daily else ((1, 4, 6), (1, 24, 168))
    unit = "d" if daily else "h"
    lines = [
        f"# Live anchor against the artifact's ({args.timeframe}, the last {args.days} days of origins)",
        "",
        "age: bars between the artifact's data end and the live price; lead: bars from the live price to the target.",
        "MAPE of the median and the quantile score (mean pinball over 23 levels, log prices), each anchored at the",
        "artifact's last close and at the live price, scored on the same held-out closes; ratio = live ÷ artifact.",
        "",
        "| pair | age | lead | n | MAPE artifact | MAPE live | ratio | quantile score ratio "
        "| 80% held: artifact / live |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pair in args.pairs.split(","):
        csv = Path(args.csv_dir) / f"{pair}.{'daily' if daily else 'hourly'}.csv"
        for r in measure(csv, step, args.days, ages, leads):
            lines.append(
                f"| {pair} | {r['age']}{unit} | {r['lead']}{unit} | {r['n']} | {r['mape_artifact']:.2%} | "
                f"{r['mape_live']:.2%} | {r['mape_live'] / r['mape_artifact']:.2f} | "
                f"{r['pinball_live'] / r['pinball_artifact']:.2f} | {r['cover_artifact']:.0%} / {r['cover_live']:.0%} |"
            )
            print(lines[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
