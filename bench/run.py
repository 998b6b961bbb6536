"""Benchmarks, every figure a ratio taken in the same run: `make bench` (or `python bench/run.py`).

Serving (wrk against ours, the original design, a bare Flask floor and a bare WSGI callable as the
limit of the stack, all with the same Waitress settings; ours also with the live price feed on,
polling a local fake of Alpaca every second), cold start, memory and runtime footprint,
training time by phase against one bare Prophet fit, and training time as pairs are added. Writes
bench/results/results.md and bench/results/serving.png. `--quick` shortens everything to check
that the script works; `--serving` runs the serving comparison alone (bench/results/serving.md);
`--training-throughput` the training throughput alone: the same pairs' fits and refits through the
local pool and through a Dask LocalCluster of as many worker processes (bench/results/throughput.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptopredict.artifact import read_artifact  # noqa: E402
from cryptopredict.serving.cli import waitress_options  # noqa: E402
from cryptopredict.serving.config import ServeSettings  # noqa: E402
from cryptopredict.serving.lookup import last_close  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PY = sys.executable
# Inside every artifact served here: the data ends 2026-04-18, the hourly horizon is 30 days.
DATE = "2026-04-25"


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 5) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (127.0.0.1 only)
        r.read()
        return r.status


def _command(kind: str, artifact: Path, port: int) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "ARTIFACT_DIR": str(artifact), "PORT": str(port), "WEB_CONCURRENCY": "8"}
    if kind == "ours":
        return [PY, str(ROOT / "api.py")], env
    if kind == "ours-live":
        return [PY, str(ROOT / "api.py")], {**env, **LIVE_ENV}
    options = waitress_options(ServeSettings.from_env({}, port=port))
    return [PY, str(ROOT / "bench" / "serve.py"), f"{kind}_app", json.dumps(options)], {
        **env,
        "PYTHONPATH": str(ROOT / "bench"),
    }


@contextmanager
def server(kind: str, artifact: Path) -> Iterator[tuple[str, int, float]]:
    """Start one server; yield its base URL, pid and seconds from spawn to the first 200 on /bitcoin."""
    port = free_port()
    cmd, env = _command(kind, artifact, port)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server gave no 200 on /bitcoin?date={DATE} within 120 s")
            try:
                if get(f"{base}/bitcoin?date={DATE}", timeout=2) == 200:
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{kind} server exited with {proc.returncode}") from None
                time.sleep(0.005)
        yield base, proc.pid, time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def wrk(url: str, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url],  # noqa: S607 (Debian's wrk from PATH)
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": int(bad.group(1)) if bad else 0,
    }


def train(args: Sequence[str], out: Path) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    subprocess.run(
        [PY, str(ROOT / "train.py"), *args, "--out", str(out), "--model-version", "bench"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "manifest.json").read_text())["timings"]


def bare_fit_seconds(csv: Path) -> float:
    """One Prophet fit on the same data and settings, nothing else (imports excluded)."""
    code = f"""
import time, numpy as np, pandas as pd, logging
logging.getLogger("cmdstanpy").disabled = True
from prophet import Prophet
from cryptopredict.training.config import ModelConfig
df = pd.read_csv({str(csv)!r})
frame = pd.DataFrame({{"ds": pd.to_datetime(df["timestamp"], utc=True).dt.tz_localize(None), "y": np.log(df["close"])}})
t0 = time.perf_counter(); Prophet(**ModelConfig().prophet_kwargs()).fit(frame); print(time.perf_counter() - t0)
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def make_hourly(daily_csv: Path, out_csv: Path, rows: int, seed: int = 0) -> None:
    """A reproducible hourly series: the daily closes interpolated to hours, with seeded noise."""
    import numpy as np
    import pandas as pd

    daily = pd.read_csv(daily_csv)
    ts = pd.to_datetime(daily["timestamp"], utc=True)
    hours = pd.date_range(ts.iloc[-1] - pd.Timedelta(hours=rows - 1), ts.iloc[-1], freq="h")
    close = np.interp(hours.asi8, ts.astype("int64"), np.log(daily["close"].to_numpy()))
    close = np.exp(close + np.random.default_rng(seed).normal(0, 0.004, len(hours)))
    frame = pd.DataFrame({"timestamp": hours.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": close, "close": close})
    frame["high"], frame["low"], frame["volume"] = close * 1.001, close * 0.999, 1.0
    frame[["timestamp", "open", "high", "low", "close", "volume"]].to_csv(out_csv, index=False)


def make_pairs(work: Path, n: int, seed: int = 0) -> list[str]:
    """n distinct daily series (AAA/USD, ...) from the real sample, each with its own seeded drift."""
    import numpy as np
    import pandas as pd

    symbols = []
    for i in range(n):
        src = pd.read_csv(ROOT / "data" / ("BTC-USD.daily.csv" if i % 2 == 0 else "ETH-USD.daily.csv"))
        factor = np.exp(np.cumsum(np.random.default_rng(seed + i).normal(0, 0.002, len(src))))
        for col in ("open", "high", "low", "close"):
            src[col] = src[col] * factor
        name = chr(65 + i) * 3
        src.to_csv(work / f"{name}-USD.daily.csv", index=False)
        symbols.append(f"{name}/USD")
    return symbols


def _noop(job: object) -> None:
    return None


def training_throughput(work: Path, pairs: int, cutoffs: int, rounds: int, workers: int = 2) -> list[str]:
    """Pair-fits per minute (one pair: its fit, its anchor and its backtest refits) through the local pool
    and through a Dask LocalCluster of `workers` single-threaded processes; and Dask's cost per task."""
    from dataclasses import dataclass

    import pandas as pd
    from distributed import LocalCluster

    from cryptopredict.timeframes import get_timeframe
    from cryptopredict.training import backtest
    from cryptopredict.training.cluster import DaskExecutor
    from cryptopredict.training.config import BacktestConfig, ClusterConfig, TrainConfig
    from cryptopredict.training.jobs import FitJob, RefitJob, run_fit, run_refit
    from cryptopredict.training.pipeline import load_bars, validate_all
    from cryptopredict.training.pool import LocalPool
    from cryptopredict.training.sources.csv import CsvSource

    @dataclass(frozen=True, slots=True)
    class Noop:
        symbol: str

    csv_dir = work / "throughput"
    csv_dir.mkdir()
    config = TrainConfig(
        source=CsvSource(str(csv_dir)), symbols=tuple(make_pairs(csv_dir, pairs)), backtest=BacktestConfig(cutoffs)
    )
    tf = get_timeframe(config.timeframe)
    step = pd.Timedelta(seconds=tf.seconds)
    settings = config.backtest.for_timeframe(tf.name)
    bars = validate_all(config, tf, load_bars(config, tf))
    fit_jobs, refit_jobs = [], []
    for symbol, v in bars.items():
        fit_jobs.append(FitJob(symbol, v.frame, tf, 365, config.model, "bench"))
        frame = backtest.backtest_frame(v.frame, config.model.scale)
        end = frame["ds"].iloc[-1] + step
        refit_jobs.append(RefitJob(symbol, frame, end, step, range(1, 366), config.model, settings.window, True))
        refit_jobs += [
            RefitJob(symbol, frame, c, step, [h.steps for h in tf.horizons], config.model, settings.window)
            for c in backtest.plan_cutoffs(frame["ds"], step, tf.horizons, settings)
        ]

    def timed(executor: object) -> float:
        t0 = time.perf_counter()
        with executor:  # type: ignore[attr-defined]
            list(executor.map(run_fit, fit_jobs))  # type: ignore[attr-defined]
            list(executor.map(run_refit, refit_jobs))  # type: ignore[attr-defined]
        return time.perf_counter() - t0

    say("throughput: one pair's tasks, one after the other, in this process (the cost of a task)")
    one = [j for j in fit_jobs if j.symbol == config.symbols[0]]
    t0 = time.perf_counter()
    with LocalPool(1) as serial:
        list(serial.map(run_fit, one))
        t_fit = time.perf_counter() - t0
        mine = [j for j in refit_jobs if j.symbol == config.symbols[0] and not j.anchor]
        t0 = time.perf_counter()
        list(serial.map(run_refit, mine))
        t_refit = (time.perf_counter() - t0) / len(mine)

    def cluster() -> LocalCluster:
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
        )

    # Alternating rounds, best of each: the machine is shared, and a burst of someone else's work
    # should not decide the comparison. Each round starts fresh processes on both sides (a new pool,
    # a new cluster whose workers import Prophet at their first task, as the pool's do).
    local_walls, dask_walls = [], []
    for n in range(1, rounds + 1):
        say(f"throughput: round {n}/{rounds}: {pairs} pairs x ({len(refit_jobs) // pairs} refits + 1 fit), local pool")
        local_walls.append(timed(LocalPool(workers)))
        say(f"throughput: round {n}/{rounds}: the same through a Dask LocalCluster of {workers} worker processes")
        with cluster() as c:
            dask_walls.append(timed(DaskExecutor(ClusterConfig(address=c.scheduler_address))))
    local, dask = min(local_walls), min(dask_walls)
    with cluster() as c:
        noops = [Noop(f"N{i}/USD") for i in range(1000)]
        with DaskExecutor(ClusterConfig(address=c.scheduler_address)) as ex:
            list(ex.map(_noop, noops[:50]))  # warm
            t0 = time.perf_counter()
            list(ex.map(_noop, noops))
            per_task = (time.perf_counter() - t0) / len(noops)
    tasks = len(fit_jobs) + len(refit_jobs)
    return [
        f"## Training throughput ({pairs} daily pairs, each 1 fit + {len(refit_jobs) // pairs} refits; "
        f"{tasks} tasks, {workers} workers; best of {rounds} alternating rounds)",
        "",
        "| executor | wall s | pair-fits per minute | / local pool |",
        "|---|---:|---:|---:|",
        f"| local process pool ({workers}) | {local:.1f} | {pairs / local * 60:.1f} | 1.00 |",
        f"| Dask LocalCluster ({workers} worker processes, 1 thread each) | {dask:.1f} | "
        f"{pairs / dask * 60:.1f} | {local / dask:.2f} |",
        "",
        f"- one task, in this process: fit {t_fit:.2f} s (with its grid and charts), refit {t_refit:.2f} s",
        f"- Dask's own cost per task (1,000 empty tasks through the same executor): {per_task * 1000:.1f} ms",
        "",
    ]


def venv_mb(requirements: Path, where: Path) -> float:
    subprocess.run([PY, "-m", "venv", str(where)], check=True)
    subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--require-hashes", "-r", str(requirements)],
        check=True,
        capture_output=True,
    )
    return sum(f.stat().st_size for f in where.rglob("*") if f.is_file()) / 1e6


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    names = [r["name"] for r in rows]
    ax1.barh(names, [r["rps"] for r in rows], color="#1f77b4")
    ax1.set_xlabel("requests/s (more is better)")
    ax1.invert_yaxis()
    ax2.barh(names, [r["p99"] for r in rows], color="#d62728")
    ax2.set_xlabel("p99 latency, ms (less is better)")
    ax2.set_xscale("log")
    ax2.invert_yaxis()
    ax2.set_yticks([])
    fig.suptitle("Serving: wrk -t2 -c16, same Waitress settings", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


# The live price feed's settings for "ours-live": a local fake of Alpaca (set by measure_serving),
# polled every second so the anchors (and so the memo) change many times during each measurement.
LIVE_ENV: dict[str, str] = {"LIVE_PRICES": "alpaca", "LIVE_PRICES_INTERVAL": "1"}
LIMIT = "limit: bare WSGI callable, constant JSON"
FLOOR = "floor: Flask, constant JSON"
ORIGINAL = "original: predict per request"
# Ours, on the hot path's answers: (name, path). The first two carry the target of at least 0.8 times the limit.
HOT = [
    ("ours: /bitcoin?date=", f"/bitcoin?date={DATE}"),
    ("ours: /v1/forecast point", f"/v1/forecast/BTC-USD?date={DATE}"),
    ("ours: 30-point range", "/v1/forecast/BTC-USD?start=2026-04-01&end=2026-04-30"),
    ("ours: chart PNG", "/v1/forecast/BTC-USD/chart.png"),
]
# Ours with the live price feed on: the same first two targets, each ≥ 0.8 times the limit too.
HOT_LIVE = [
    ("ours, live prices: /bitcoin?date=", f"/bitcoin?date={DATE}"),
    ("ours, live prices: /v1/forecast point", f"/v1/forecast/BTC-USD?date={DATE}"),
]
TARGETED = [name for name, _ in (*HOT[:2], *HOT_LIVE)]


@contextmanager
def live_prices(artifact: Path) -> Iterator[str]:
    """A local fake of Alpaca's latest bars, each pair at its last close (observed this minute); yields its URL."""
    from tests.fake_alpaca import FakeAlpaca

    with FakeAlpaca({}) as fake:
        for fc in read_artifact(artifact).forecasts.values():
            fake.set_latest(fc.symbol, last_close(fc))
        LIVE_ENV["ALPACA_DATA_URL"] = fake.url
        yield fake.url


def measure_serving(artifact: Path, seconds: int, rounds: int) -> tuple[list[dict], dict[str, float]]:
    """wrk against ours, the floor and the limit, all running at once and measured in turn, `rounds` times
    (the best of them per target, so a noisy neighbour in one round does not decide); the original once."""
    targets = [(LIMIT, "limit", f"/bitcoin?date={DATE}"), (FLOOR, "floor", f"/bitcoin?date={DATE}")]
    targets += [(name, "ours", path) for name, path in HOT]
    targets += [(name, "ours-live", path) for name, path in HOT_LIVE]
    best: dict[str, dict] = {}
    memory: dict[str, float] = {}
    with (
        live_prices(artifact),
        server("limit", artifact) as limit,
        server("floor", artifact) as floor,
        server("ours", artifact) as ours,
        server("ours-live", artifact) as ours_live,
    ):
        bases = {"limit": limit, "floor": floor, "ours": ours, "ours-live": ours_live}
        for r in range(rounds):
            for name, kind, path in targets:
                result = wrk(bases[kind][0] + path, seconds)
                say(f"round {r + 1}: {name}: {result['rps']:,.0f} req/s, p99 {result['p99']:.1f} ms")
                kept = best.setdefault(name, {"name": name, **result})
                kept["rps"] = max(kept["rps"], result["rps"])
                for q in ("p50", "p99"):
                    kept[q] = min(kept[q], result[q])
                kept["non2xx"] = max(kept["non2xx"], result["non2xx"])
        for kind, (_, pid, _) in bases.items():
            memory[kind] = rss_mb(pid)
        with urllib.request.urlopen(ours_live[0] + "/healthz", timeout=5) as r:  # noqa: S310 (127.0.0.1 only)
            feed = json.load(r)["live_prices"]
        say(f"live prices: {feed['polls']} polls, {feed['failures']} failed, live: {feed['live_symbols']}")
        if not feed["live_symbols"]:
            say("warning: no pair was live (the artifact's horizon has passed?): the live rows measure the fallback")
    with server("original", artifact) as (base, pid, _):
        result = wrk(base + f"/bitcoin?date={DATE}", seconds)
        memory["original"] = rss_mb(pid)
    best[ORIGINAL] = {"name": ORIGINAL, **result}
    return list(best.values()), memory


def serving_lines(serving: list[dict], seconds: int, rounds: int) -> list[str]:
    """The serving section of the results: every target beside the limit, and the targets met or missed."""
    by = {r["name"]: r for r in serving}
    limit, floor, original, ours = by[LIMIT], by[FLOOR], by[ORIGINAL], by[HOT[0][0]]
    return [
        f"## Serving (wrk -t2 -c16, {seconds} s each, best of {rounds} alternating rounds, Waitress with 8 threads)",
        "",
        "| server | req/s | p50 ms | p99 ms | non-2xx | req/s ÷ limit | p99 ÷ limit |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r['name']} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non2xx']} | "
            f"{r['rps'] / limit['rps']:.2f} | {r['p99'] / limit['p99']:.2f} |"
            for r in serving
        ],
        "",
        *[
            f"- {name}: ours / limit throughput **{by[name]['rps'] / limit['rps']:.2f}** (target ≥ 0.8: "
            f"{ok(by[name]['rps'] >= 0.8 * limit['rps'])}), p99 **{by[name]['p99'] / limit['p99']:.2f}** "
            f"(target ≤ 1.2: {ok(by[name]['p99'] <= 1.2 * limit['p99'])})"
            for name in TARGETED
        ],
        f"- the Flask floor / limit throughput: {floor['rps'] / limit['rps']:.2f}; ours (/bitcoin) / original: "
        f"**{ours['rps'] / original['rps']:.0f}×**",
    ]


def _header(quick: bool) -> list[str]:
    cpu = platform.processor() or platform.machine()
    return [
        "# Benchmark results",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
        + (" · **quick mode**: short runs, figures only roughly indicative" if quick else ""),
        "",
    ]


def ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, to check the script works")
    p.add_argument("--serving", action="store_true", help="only the serving comparison (about 5 minutes)")
    p.add_argument(
        "--training-throughput",
        action="store_true",
        help="only the training throughput, local pool against a Dask LocalCluster (about 8 minutes)",
    )
    args = p.parse_args(argv)
    if args.training_throughput:
        RESULTS.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="cryptopredict-bench-"))
        try:
            pairs, cutoffs, rounds = (2, 4, 1) if args.quick else (4, 30, 3)
            lines = [*_header(args.quick), *training_throughput(work, pairs, cutoffs, rounds)]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        (RESULTS / "throughput.md").write_text("\n".join(lines))
        print("\n".join(lines))
        return 0
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            print(f"bench: error: {tool} is not installed (scripts/install-system-packages.sh)", file=sys.stderr)
            return 1
    seconds = 3 if args.quick else 10
    rounds = 5
    starts = 2 if args.quick else 5
    hourly_rows = 3000 if args.quick else 50_000
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cryptopredict-bench-"))
    lines: list[str] = []
    try:
        say("training the daily artifact (BTC/USD, ETH/USD)")
        daily = work / "daily"
        d_wall, d_times = train(["--csv-dir", "data", "--symbols", "BTC/USD,ETH/USD"], daily)
        if args.serving:
            say(f"serving: wrk {seconds} s per target, {rounds} alternating rounds")
            serving, _ = measure_serving(daily, seconds, rounds)
            lines = [*_header(args.quick), *serving_lines(serving, seconds, rounds)]
            (RESULTS / "serving.md").write_text("\n".join(lines))
            chart(serving, RESULTS / "serving.png")
            print("\n".join(lines))
            return 0
        say(f"building a {hourly_rows:,}-row hourly series and training on it")
        hdir = work / "hourly-csv"
        hdir.mkdir()
        make_hourly(ROOT / "data" / "BTC-USD.daily.csv", hdir / "BTC-USD.hourly.csv", hourly_rows)
        hourly = work / "hourly"
        h_wall, h_times = train(
            ["--csv-dir", str(hdir), "--symbols", "BTC/USD", "--timeframe", "1Hour", "--horizon-days", "30"], hourly
        )

        say(f"serving: wrk {seconds} s per target, {rounds} alternating rounds")
        serving, memory = measure_serving(daily, seconds, rounds)

        say(f"cold start: median of {starts}")
        cold: dict[str, float] = {}
        for name, kind, artifact in (
            ("ours, daily artifact", "ours", daily),
            (f"ours, hourly artifact ({hourly_rows:,} rows)", "ours", hourly),
            ("original", "original", daily),
            ("floor", "floor", daily),
        ):
            times = []
            for _ in range(starts):
                with server(kind, artifact) as (_, _, t):
                    times.append(t)
            cold[name] = statistics.median(times)

        say("runtime footprint: a venv for each design")
        api_mb = venv_mb(ROOT / "requirements-api.txt", work / "venv-api")
        orig_mb = venv_mb(ROOT / "bench" / "requirements-original.txt", work / "venv-original")

        say("bare Prophet fits on the same data")
        d_bare = bare_fit_seconds(ROOT / "data" / "BTC-USD.daily.csv")
        h_bare = bare_fit_seconds(hdir / "BTC-USD.hourly.csv")

        say("training 1, 2, 4 and 8 pairs")
        pairs_dir = work / "pairs"
        pairs_dir.mkdir()
        symbols = make_pairs(pairs_dir, 8)
        scale = {}
        for n in (1, 2, 4, 8):
            wall, _ = train(["--csv-dir", str(pairs_dir), "--symbols", ",".join(symbols[:n])], work / f"pairs-{n}")
            scale[n] = wall

        lines += [
            *_header(args.quick),
            *serving_lines(serving, seconds, rounds),
            "",
            f"## Cold start (process start to the first 200 on /bitcoin?date=, median of {starts})",
            "",
            "| server | seconds | / floor |",
            "|---|---:|---:|",
            *[f"| {k} | {v:.2f} | {v / cold['floor']:.2f} |" for k, v in cold.items()],
            "",
            f"- ours (daily) / floor: **{cold['ours, daily artifact'] / cold['floor']:.2f}** (target ≤ 1.5: "
            f"{ok(cold['ours, daily artifact'] <= 1.5 * cold['floor'])})",
            "",
            "## Memory and footprint",
            "",
            "| | ours | original | floor | limit |",
            "|---|---:|---:|---:|---:|",
            f"| RSS after load (MB) | {memory['ours']:.0f} | {memory['original']:.0f} | {memory['floor']:.0f} | "
            f"{memory['limit']:.0f} |",
            "",
            f"- venv with requirements-api.txt: **{api_mb:.0f} MB**; venv with what the original serves with "
            f"(bench/requirements-original.txt): **{orig_mb:.0f} MB** (target ≤ 50 MB: {ok(api_mb <= 50)})",
            "",
            "## Training (train.py wall time, phases from the manifest)",
            "",
            "| data | wall s | " + " | ".join(d_times) + " | bare fit s | wall / bare fit |",
            "|---|---:|" + "---:|" * len(d_times) + "---:|---:|",
            f"| BTC/USD + ETH/USD daily | {d_wall:.1f} | "
            + " | ".join(f"{v:.1f}" for v in d_times.values())
            + f" | {d_bare:.1f} (BTC) | {d_wall / d_bare:.1f} |",
            f"| BTC/USD hourly, {hourly_rows:,} rows | {h_wall:.1f} | "
            + " | ".join(f"{h_times.get(k, 0):.1f}" for k in d_times)
            + f" | {h_bare:.1f} | {h_wall / h_bare:.1f} |",
            "",
            f"- hourly whole run / bare fit: **{h_wall / h_bare:.1f}** (target ≤ 2: {ok(h_wall <= 2 * h_bare)})",
            "",
            "## Pairs trained in one run (daily, backtest included)",
            "",
            "| pairs | wall s | / one pair |",
            "|---:|---:|---:|",
            *[f"| {n} | {w:.1f} | {w / scale[1]:.2f} |" for n, w in scale.items()],
            "",
        ]
        (RESULTS / "results.md").write_text("\n".join(lines))
        chart(serving, RESULTS / "serving.png")
        print("\n".join(lines))
        say(f"wrote {RESULTS / 'results.md'} and {RESULTS / 'serving.png'}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
