"""How the artifact and the API cope with 60 hourly pairs: `python bench/many_pairs.py`.

Writes 60 seeded hourly CSV series (90 days each by default), trains them all with
`train.py --source csv --symbols all --timeframe 1Hour --backtest-cutoffs 0`, then starts api.py
on the artifact and measures: the artifact's size on disk, the time from starting the server to
its first 200 on /healthz, the server's resident memory (RSS) then and after the pages below,
and the time of GET / and GET /v1/symbols (the first, rendered; then the median of a few, replayed
by the hot path's memo). Prints a Markdown table; `--keep DIR --reuse` measures a kept artifact again.
A separate script from bench/run.py, which measures serving speed and training time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


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


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux /proc), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


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


def serve_and_measure(artifact: Path, repeats: int) -> dict[str, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PY, str(ROOT / "api.py"), "--artifact", str(artifact), "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"many_pairs: api.py exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
            if time.perf_counter() - t0 > 120:
                raise SystemExit("many_pairs: no 200 on /healthz within 120 s")
        started = time.perf_counter() - t0
        rss_start = rss_kib(proc.pid)
        out = {"start to first 200 on /healthz": f"{started:.2f} s", "RSS after start": f"{rss_start / 1024:.0f} MiB"}
        for path in ("/", "/v1/symbols"):
            # The first answer is rendered; later ones are replayed by the hot path's memo.
            first, size = fetch_seconds(base + path)
            median = statistics.median(fetch_seconds(base + path)[0] for _ in range(repeats))
            out[f"GET {path}"] = (
                f"{size / 1024:.0f} KiB; first {first * 1000:.1f} ms, then {median * 1000:.1f} ms (median of {repeats})"
            )
        out["RSS after the pages"] = f"{rss_kib(proc.pid) / 1024:.0f} MiB"
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=60)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--keep", help="keep the CSVs and the artifact in this folder (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="with --keep: serve the artifact already there, no training")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="many-pairs-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        csv_dir, artifact = work / "csv", work / "artifact"
        rows = {"pairs (hourly, days each)": f"{args.pairs} ({args.days})"}
        if not (args.reuse and args.keep):
            write_series(csv_dir, args.pairs, args.days, args.seed)
            say(f"{args.pairs} hourly series of {args.days} days in {csv_dir}; training")
            rows["training, --backtest-cutoffs 0"] = train(csv_dir, artifact, args.workers)
        rows["artifact on disk"] = f"{folder_bytes(artifact) / 2**20:.1f} MiB"
        rows.update(serve_and_measure(artifact, args.repeats))
    print("| measure | value |\n|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


def train(csv_dir: Path, artifact: Path, workers: int) -> str:
    """Train every pair in `csv_dir`; the time it took, for the table."""
    t0 = time.perf_counter()
    subprocess.run(
        [
            PY, str(ROOT / "train.py"), "--source", "csv", "--csv-dir", str(csv_dir), "--symbols", "all",
            "--timeframe", "1Hour", "--backtest-cutoffs", "0", "--workers", str(workers),
            "--model-version", "many-pairs", "--out", str(artifact),
        ],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    return f"{time.perf_counter() - t0:.0f} s on {workers} worker(s)"


if __name__ == "__main__":
    main()
