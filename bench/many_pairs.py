"""How the artifact and the API cope with 60 hourly pairs: `python bench/many_pairs.py`.

Writes seeded hourly CSV series (a year each by default) and trains `--fit-pairs` of them for real
(Prophet, the backtest with its default cutoffs, the served grid, every chart), in process so the
gate's coverage rule can be set aside (`min_independent` out of reach: random walks, not a model to
judge). Fitting and backtesting 60 pairs of a year would take about half an hour of both cores,
so the other pairs are copies of the trained ones written through the artifact's own writer: each
copy's prices scaled by its own factor (rounded to 8 digits as training does), its charts and
model file copied under its name. The artifact has every file a 60-pair run writes, at the sizes a
run writes them. The API's copy is made from it as the Dockerfile's train stage makes it (without the
files kept for the record: Prophet's models, the backtest charts, the report). Then api.py starts on
that copy and the bench measures: the size on disk of both, the
time from starting the server to its first 200 on /healthz (the median of `--starts`), its resident
memory (RSS) then and after the pages below, and the time of GET / and GET /v1/symbols (the first,
rendered; then the median of a few, replayed by the hot path's memo). Prints a Markdown table;
`--keep DIR --reuse` measures a kept artifact again, `--artifact DIR` any artifact (the bundled
sample's, say). A separate script from bench/run.py, which measures serving speed and training time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(ROOT))

from cryptopredict import artifact as contract  # noqa: E402
from cryptopredict.artifact.export import copy_served  # noqa: E402


def say(msg: str) -> None:
    print(f"many_pairs: {msg}", file=sys.stderr, flush=True)


def write_series(folder: Path, pairs: int, days: int, seed: int) -> None:
    """`pairs` seeded hourly random walks ending at the last whole hour of 2026-04-18, as <PAIR>.hourly.csv."""
    rng = np.random.default_rng(seed)
    n = days * 24
    index = pd.date_range(end=pd.Timestamp("2026-04-18T23:00:00Z"), periods=n, freq="1h")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(pairs):
        first = float(rng.choice([0.5, 3.0, 40.0, 250.0, 3000.0, 60000.0]))
        close = first * np.exp(np.cumsum(rng.normal(0.0, 0.006, n)))
        open_ = np.concatenate([[first], close[:-1]])
        spread = np.abs(rng.normal(0.0, 0.003, (2, n)))
        frame = pd.DataFrame(
            {
                "timestamp": index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "open": open_,
                "high": np.maximum(open_, close) * (1 + spread[0]),
                "low": np.minimum(open_, close) * (1 - spread[1]),
                "close": close,
                "volume": np.abs(rng.normal(1000.0, 300.0, n)),
            }
        )
        frame.to_csv(folder / f"P{i:02d}-USD.hourly.csv", index=False, float_format="%.8g")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def rss_kib(pid: int, kind: str = "VmRSS") -> int:
    """Resident memory of a process (Linux /proc), KiB: all of it, or RssAnon / RssFile."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1])
    return 0


def rss_text(pid: int) -> str:
    """RSS, and how much of it is the process's own memory and how much pages of files it maps (the grids:
    clean page cache, shared, that the kernel takes back under pressure)."""
    anon, file = rss_kib(pid, "RssAnon"), rss_kib(pid, "RssFile")
    return f"{rss_kib(pid) / 1024:.0f} MiB ({anon / 1024:.0f} anonymous, {file / 1024:.0f} file pages)"


def fetch_seconds(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 (127.0.0.1 only)
        body = r.read()
    return time.perf_counter() - t0, len(body)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(artifact: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """api.py on `artifact`: the process, its base URL and the seconds to its first 200 on /healthz."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PY, str(ROOT / "api.py"), "--artifact", str(artifact), "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"many_pairs: api.py exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as r:  # noqa: S310
                if r.status == 200:
                    return proc, base, time.perf_counter() - t0
        except OSError:
            time.sleep(0.01)
        if time.perf_counter() - t0 > 120:
            proc.kill()
            raise SystemExit("many_pairs: no 200 on /healthz within 120 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def serve_and_measure(artifact: Path, repeats: int, starts: int) -> dict[str, str]:
    times, rss = [], []
    for _ in range(starts - 1):
        proc, _, started = start_server(artifact)
        times.append(started)
        rss.append(rss_kib(proc.pid))
        stop(proc)
    proc, base, started = start_server(artifact)
    times.append(started)
    rss.append(rss_kib(proc.pid))
    at_start = rss_text(proc.pid)
    try:
        out = {
            f"start to first 200 on /healthz (median of {starts})": f"{statistics.median(times):.2f} s "
            f"(from {min(times):.2f} to {max(times):.2f})",
            f"RSS after start (median of {starts}; the last)": f"{statistics.median(rss) / 1024:.0f} MiB; {at_start}",
        }
        for path in ("/", "/v1/symbols"):
            # The first answer is rendered; later ones are replayed by the hot path's memo.
            first, size = fetch_seconds(base + path)
            median = statistics.median(fetch_seconds(base + path)[0] for _ in range(repeats))
            out[f"GET {path}"] = (
                f"{size / 1024:.0f} KiB; first {first * 1000:.1f} ms, then {median * 1000:.1f} ms (median of {repeats})"
            )
        out["RSS after the pages"] = rss_text(proc.pid)
        return out
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--fit-pairs", type=int, default=2, help="pairs fitted and backtested for real (default: 2)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--starts", type=int, default=5, help="server starts measured (default: 5)")
    p.add_argument("--keep", help="keep the CSVs and the artifact in this folder (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="with --keep: serve the artifact already there, no training")
    p.add_argument("--artifact", help="measure this artifact as it is (no series, no training)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="many-pairs-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        csv_dir, artifact = work / "csv", work / "artifact"
        rows = {"artifact schema": str(contract.SCHEMA_VERSION)}
        if args.artifact:
            artifact = Path(args.artifact)
            rows["artifact"] = f"{len(contract.read_artifact(artifact).forecasts)} pair(s), as given"
        elif not (args.reuse and args.keep):
            write_series(csv_dir, args.fit_pairs, args.days, args.seed)
            say(f"{args.fit_pairs} hourly series of {args.days} days in {csv_dir}; training")
            rows["pairs (hourly, days each)"] = f"{args.pairs} ({args.days})"
            rows[f"training {args.fit_pairs} pair(s), backtest at its default cutoffs"] = train(
                csv_dir, work / "trained", args.workers
            )
            t0 = time.perf_counter()
            copy_pairs(work / "trained", artifact, args.pairs)
            rows[f"the other {args.pairs - args.fit_pairs} pairs: scaled copies, through the writer"] = (
                f"{time.perf_counter() - t0:.0f} s"
            )
        rows["artifact on disk (the train stage's)"] = (
            f"{folder_bytes(artifact) / 2**20:.1f} MiB ({describe(artifact)})"
        )
        # What the API image holds: the artifact without the files kept for the record (the Dockerfile's train
        # stage runs `python -m cryptopredict.artifact served`). Made again each time, from the artifact.
        served = work / "served"
        shutil.rmtree(served, ignore_errors=True)
        copy_served(artifact, served)
        rows["artifact as the API image holds it"] = f"{folder_bytes(served) / 2**20:.1f} MiB ({describe(served)})"
        rows.update(serve_and_measure(served, args.repeats, args.starts))
    print("| measure | value |\n|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


def train(csv_dir: Path, out: Path, workers: int) -> str:
    """Train every pair in `csv_dir` with the backtest, the gate's coverage rule out of reach; the time it took."""
    from cryptopredict.training.config import GateConfig, TrainConfig
    from cryptopredict.training.pipeline import run
    from cryptopredict.training.sources.csv import CsvSource

    t0 = time.perf_counter()
    config = TrainConfig(
        source=CsvSource(str(csv_dir)),
        symbols=None,
        timeframe="1Hour",
        workers=workers,
        model_version="many-pairs",
        out=str(out),
        gate=GateConfig(min_independent=10**6, max_mape_ratio=10.0),
    )
    run(config, log=say)
    return f"{time.perf_counter() - t0:.0f} s on {workers} worker(s)"


def _scaled(values: Sequence[float | None], factor: float) -> tuple[float | None, ...]:
    return tuple(None if v is None else float(f"{v * factor:.8g}") for v in values)


def _grid_files(manifest: contract.Manifest) -> set[str]:
    return {name for grid in manifest.grids.values() for name in (grid.files.series.file, grid.files.served.file)}


def copy_pairs(trained_dir: Path, out: Path, pairs: int) -> None:
    """Write `pairs` pairs into `out`: the trained ones, then copies of them, each a new pair (C00-USD,
    ...) whose prices are the trained pair's times its own factor, with the trained pair's charts and
    model file under its name and its manifest entry."""
    trained = contract.read_artifact(trained_dir)
    manifest = trained.manifest
    grid_files = _grid_files(manifest)
    sources = sorted(trained.forecasts)

    def read(name: str) -> bytes:
        return (trained.generation_dir / name).read_bytes()

    shared = {
        name: read(name)
        for name in manifest.files
        if name not in grid_files and not any(name.startswith(f"{slug}.") for slug in sources)
    }
    symbols, grids, files = {}, {}, dict(shared)
    for i in range(pairs):
        source = sources[i % len(sources)]
        slug = source if i < len(sources) else f"C{i:02d}-USD"
        grid = contract.grid_of(trained.forecasts[source])
        if slug != source:
            factor = 1 + 0.01 * i
            # The served distribution is laid at the closes: scaled with them, its parameters unchanged.
            keys = ("yhat", "yhat_lower", "yhat_upper", "actual")
            scaled = {key: _scaled(getattr(grid, key), factor) for key in keys}
            grid = replace(grid, **scaled, symbol=slug.replace("-", "/"))
        grids[slug] = grid
        text = json.dumps(contract.to_json(manifest.symbols[source])).replace(f"{source}.", f"{slug}.")
        symbols[slug] = replace(contract.from_json(contract.PairEntry, json.loads(text)), symbol=slug.replace("-", "/"))
        for name in manifest.files:
            if name.startswith(f"{source}.") and name not in grid_files:
                files[name.replace(f"{source}.", f"{slug}.", 1)] = read(name)
    contract.write_artifact(out, replace(manifest, symbols=symbols), grids, files)


def describe(artifact: Path) -> str:
    """What the artifact's bytes are: grids, charts, models, the rest."""
    read = contract.read_artifact(artifact)
    manifest, gen = read.manifest, read.generation_dir
    grids = _grid_files(manifest)
    kinds = {"grids": 0, "charts": 0, "models": 0, "rest": 0}
    for name in manifest.files:
        if name in read.absent_record_files:
            continue
        size = (gen / name).stat().st_size
        models = "models" if name.endswith(".prophet.json") else "rest"
        kinds["grids" if name in grids else "charts" if name.endswith(".png") else models] += size
    kinds["rest"] += (artifact / contract.MANIFEST_NAME).stat().st_size
    return ", ".join(f"{kind} {size / 2**20:.1f} MiB" for kind, size in kinds.items())


if __name__ == "__main__":
    main()
