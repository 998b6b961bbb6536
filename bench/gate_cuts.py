"""The promotion gate on real closes, before and after: `python bench/gate_cuts.py` (about 20 minutes).

Trains each bundled pair alone, default settings, on its bars before each of a grid of cut dates
(`train.py --end CUT`), and judges every backtest twice: by the gate's coverage test with its skill
checks (`gate.horizon_checks`, what `train.py` now applies) and by the 70%-90% window the gate used
before (`gate_error_rates.outside_window`, with the same skill checks). The run itself trains with the
horizon checks set aside, so that the backtest of a refused run can be judged too; what the structural
checks (convergence, intervals, quantiles) refuse, they refuse in both columns. Writes
bench/results/gate-cuts.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptopredict.artifact import read_artifact, to_json  # noqa: E402
from cryptopredict.errors import CryptopredictError  # noqa: E402
from cryptopredict.training import gate  # noqa: E402
from cryptopredict.training.config import GateConfig, TrainConfig  # noqa: E402
from cryptopredict.training.gate_error_rates import outside_window  # noqa: E402
from cryptopredict.training.pipeline import run  # noqa: E402
from cryptopredict.training.sources.csv import CsvSource  # noqa: E402

# Half-yearly cuts over each pair's sample, from the first that leaves a year to train on and room
# for a backtest.
CUTS = {
    "BTC/USD": [f"{y}-{md}" for y in range(2019, 2026) for md in ("06-30", "12-31")] + ["2026-03-31"],
    "ETH/USD": [f"{y}-{md}" for y in range(2020, 2025) for md in ("06-30", "12-31")] + ["2025-06-30"],
}
# Horizon checks out of reach while training, so that every backtest is written and judged here.
_NEUTRAL = GateConfig(min_independent=10**9)


def _verdicts(backtest: dict) -> tuple[list[str], list[str]]:
    """The failed checks by the gate now, and by the window before (its skill checks are the same)."""
    if not backtest:
        return [], []
    checks = gate.horizon_checks("X", backtest, GateConfig())
    now = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    before = [f"{c.name}: {c.detail}" for c in checks if not c.passed and c.name.startswith("skill")]
    for name, e in backtest["metrics"].items():
        served = e["served"]
        judged = e["independent"] >= 20 and served["coverage"] is not None and served["coverage_independent"] >= 20
        if judged and outside_window(served["coverage"]):
            before.append(
                f"coverage {name}: 80% interval held {served['coverage']:.0%} of {served['coverage_n']} actual closes "
                "(outside 70%-90%)"
            )
    return now, before


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--csv-dir", default=str(ROOT / "data"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "gate-cuts.md"))
    p.add_argument("--workers", type=int, default=None)
    args = p.parse_args()
    rows = []
    refused = {"now": 0, "before": 0}
    total = sum(len(c) for c in CUTS.values())
    done = 0
    for symbol, cuts in CUTS.items():
        for cut in cuts:
            done += 1
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                config = TrainConfig(
                    source=CsvSource(args.csv_dir), symbols=(symbol,), end=cut, out=tmp, workers=args.workers,
                    gate=_NEUTRAL,
                )  # fmt: skip
                try:
                    run(config, log=lambda _line: None)
                except CryptopredictError as e:
                    rows.append((symbol, cut, "-", f"refused by both: {e}", f"refused by both: {e}"))
                    refused["now"] += 1
                    refused["before"] += 1
                    print(f"[{done}/{total}] {symbol} {cut}: refused while training: {e}", file=sys.stderr)
                    continue
                entry = next(iter(read_artifact(Path(tmp)).manifest.symbols.values()))
            bt = to_json(entry.backtest)
            now, before = _verdicts(bt)
            refused["now"] += bool(now)
            refused["before"] += bool(before)
            n = len(bt["cutoffs"]) if bt else 0
            rows.append((symbol, cut, str(n), "; ".join(now) or "ships", "; ".join(before) or "ships"))
            print(
                f"[{done}/{total}] {symbol} {cut}: {n} cutoffs, now {'refused' if now else 'ships'}, "
                f"before {'refused' if before else 'ships'} ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    lines = [
        f"Each pair alone, default settings, trained on its bars before each cut: refused {refused['now']} of "
        f"{total} runs by the coverage test, {refused['before']} of {total} by the 70%-90% window.",
        "",
        "| pair | cut | cutoffs | gate now (coverage test) | gate before (70%-90% window) |",
        "|---|---|---:|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
