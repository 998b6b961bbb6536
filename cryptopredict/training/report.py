"""The training report: a Markdown summary and a backtest chart per symbol."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

__all__ = ["backtest_chart", "render_markdown"]


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _symbol_table(backtest: Mapping[str, Any]) -> list[str]:
    lines = [
        "| horizon | method | MAE (USD) | MAPE | MASE | 80% coverage | beats naive |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for horizon, entry in backtest["metrics"].items():
        for method in ("model", "naive", "drift"):
            m = entry[method]
            beats = ("yes" if entry["beats_naive"] else "no") if method == "model" else ""
            lines.append(
                f"| {horizon} | {method} | {_num(m['mae'], ',.2f')} | {_num(m['mape'], '.2%')} | "
                f"{_num(m['mase'], '.2f')} | {_num(m['coverage'], '.0%')} | {beats} |"
            )
    return lines


def render_markdown(manifest: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    """The report as Markdown: run facts, the gate's decision, and a metrics table per symbol."""
    verdict = "**passed**: the model is promoted" if gate["passed"] else "**refused**: no artifact was written"
    lines = [
        f"# Training report: model {manifest['model_version']}",
        "",
        f"Trained {manifest['trained_at']} on {manifest['timeframe']} bars from `{manifest['source']}`; "
        f"scale `{manifest['model_config']['scale']}`, changepoint prior "
        f"{manifest['model_config']['changepoint_prior_scale']}.",
        "",
        f"## Gate: {verdict}",
        "",
        "| symbol | check | result | detail |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c['symbol']} | {c['name']} | {'pass' if c['passed'] else '**FAIL**'} | {c['detail']} |"
        for c in gate["checks"]
    ]
    for meta in manifest["symbols"].values():
        lines += ["", f"## {meta['symbol']}", ""]
        lines.append(f"{meta['rows']:,} bars, {meta['data_start']} to {meta['data_end']}.")
        backtest = meta.get("backtest")
        if not backtest:
            lines.append("Not backtested: not enough history before the newest cutoff.")
            continue
        lines += [
            f"Backtest: {len(backtest['cutoffs'])} cutoffs from {backtest['cutoffs'][0]} to "
            f"{backtest['cutoffs'][-1]}; each refit saw only bars before its cutoff. MASE is the MAE over "
            "the naive one-step MAE of the refit's own training window.",
            "",
            *_symbol_table(backtest),
        ]
    timings = manifest.get("timings", {})
    if timings:
        lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    return "\n".join(lines) + "\n"


def backtest_chart(symbol: str, model_version: str, backtest: Mapping[str, Any]) -> bytes:
    """Grouped bars of MAE per horizon for the model and both baselines, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    horizons = list(backtest["metrics"])
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    width = 0.26
    colours = {"model": "#1f77b4", "naive": "#7f7f7f", "drift": "#ff7f0e"}
    for i, method in enumerate(("model", "naive", "drift")):
        values = [backtest["metrics"][h][method]["mae"] for h in horizons]
        xs = [x + (i - 1) * width for x in range(len(horizons))]
        bars = ax.bar(xs, values, width, label=method, color=colours[method])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(horizons)), [f"{h} ahead" for h in horizons])
    ax.set_ylabel("mean absolute error (USD)")
    ax.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
    ax.set_title(
        f"{symbol} backtest, model {model_version}: {len(backtest['cutoffs'])} cutoffs "
        f"{backtest['cutoffs'][0][:10]} to {backtest['cutoffs'][-1][:10]}",
        fontsize=10,
    )
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
