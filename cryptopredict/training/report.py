"""The training report: a Markdown summary and a backtest chart per symbol."""

from __future__ import annotations

from typing import Any

from cryptopredict.artifact import BacktestRecord, GateRecord, Manifest
from cryptopredict.ledger import Ledger, summarize
from cryptopredict.training import charts

__all__ = ["METHODS", "backtest_chart", "render_markdown"]

# The served forecast first, then the nested procedure that set its weight; naive's coverage is that of
# its empirical quantiles.
METHODS = ("served", "nested", "naive", "drift", "prophet")


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _ci(ci: Any, fmt: str) -> str:
    return f" [{format(ci[0], fmt)}, {format(ci[1], fmt)}]" if ci and None not in ci else ""


def _symbol_table(backtest: BacktestRecord) -> list[str]:
    lines = [
        "| horizon | served MAPE / naive's [90% CI] | nested procedure's [90% CI] | Prophet's MAPE / naive's | "
        "weight on Prophet | 80% coverage [90% CI] | quantile score / naive's | DM p (nested better) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for horizon, e in backtest.metrics.items():
        sk = e.skill
        lines.append(
            f"| {horizon} | {_num(sk.mape_ratio, '.3f')}{_ci(sk.mape_ratio_ci90, '.3f')} | "
            f"{_num(e.nested.mape_ratio, '.3f')}{_ci(e.nested.mape_ratio_ci90, '.3f')} | "
            f"{_num(sk.prophet_mape_ratio, '.2f')} | {e.weight:.1f} ({e.weight_basis.replace('_', ' ')}) | "
            f"{_num(e.served.coverage, '.0%')}{_ci(e.coverage_ci90, '.0%')} | "
            f"{_num(sk.pinball_ratio, '.3f')} | {_num(sk.p_value, '.2f')} |"
        )
    lines += ["", "| horizon | method | MAE (USD) | MAPE | MASE | 80% coverage |", "|---|---|---:|---:|---:|---:|"]
    for horizon, e in backtest.metrics.items():
        for method in METHODS:
            m = getattr(e, method)
            lines.append(
                f"| {horizon} | {method} | {_num(m.mae, ',.2f')} | {_num(m.mape, '.2%')} | "
                f"{_num(m.mase, '.2f')} | {_num(m.coverage, '.0%')} |"
            )
    lines += [""] + [f"- {e.summary}." for e in backtest.metrics.values()]
    return lines


def _champion(manifest: Manifest) -> list[str]:
    """This run (the challenger) against the artifact in production (the champion), horizon by horizon."""
    prod = manifest.production
    lines = ["", "## Challenger against production", ""]
    if not prod:
        return [*lines, "No artifact in production was given: a first run, nothing to compare with."]
    lines += [
        f"Production: model {prod.model_version}, {prod.generation} (run {prod.run_id or '–'}), "
        f"trained {prod.trained_at}. Each side's figure is its served MAPE over naive's on its own backtest "
        "(below 1: better than the last close).",
        "",
        "| pair | horizon | challenger | production |",
        "|---|---|---:|---:|",
    ]
    for entry in manifest.symbols.values():
        theirs = prod.skill.get(entry.symbol, {})
        for h, e in (entry.backtest.metrics if entry.backtest else {}).items():
            lines.append(f"| {entry.symbol} | {h} | {_num(e.skill.mape_ratio, '.3f')} | {_num(theirs.get(h), '.3f')} |")
    return lines


def _track_record(ledger: Ledger | None) -> list[str]:
    """What production published before, scored against the closes this run has."""
    lines = [
        "",
        "## Track record",
        "",
        "Forecasts published at each production model's data end, scored once their target is inside the data.",
        "",
        "| pair | horizon | published | scored | MAPE | last close's MAPE | 80% band held |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for symbol in ledger.symbols if ledger is not None else ():
        for h, entries in ledger.series(symbol).items():
            r = summarize(ledger, entries)
            held = "–" if r["coverage_80"] is None else f"{round(r['coverage_80'] * r['scored'])} of {r['scored']}"
            lines.append(
                f"| {symbol} | {h} | {r['published']} | {r['scored']} | {_num(r['mape'], '.2%')} | "
                f"{_num(r['naive_mape'], '.2%')} | {held} |"
            )
    return lines


def _pairs(manifest: Manifest, gate: GateRecord) -> list[str]:
    """Each pair's verdict: served fresh, production's forecast carried forward (and how old), or left out."""
    if not gate.pairs:
        return []
    entries = {entry.symbol: entry for entry in manifest.symbols.values()}
    lines = ["## Pairs", "", "| pair | served | why not from this run |", "|---|---|---|"]
    for symbol, verdict in gate.pairs.items():
        entry = entries.get(symbol)
        carried = entry.carried if entry is not None else None
        if verdict == "fresh":
            what, why = "fresh, from this run", ""
        elif not gate.passed:
            what, why = "**failed**", manifest.skipped.get(symbol, "")
        elif carried:
            runs = f", carried {carried.runs} runs in a row" if carried.runs > 1 else ""
            what = (
                f"**carried** from model {carried.model_version} trained {carried.trained_at} "
                f"({carried.age_days(manifest.trained_at):.1f} days before this run{runs})"
            )
            why = carried.reason
        else:
            what, why = "**left out** (production does not serve it)", manifest.skipped.get(symbol, "")
        lines.append(f"| {symbol} | {what} | {why.replace('|', '/')} |")
    return [*lines, ""]


def render_markdown(manifest: Manifest, ledger: Ledger | None = None) -> str:
    """The report as Markdown: run facts, the gate's decision, the track record (`ledger`) and a metrics
    table per symbol."""
    gate = manifest.gate or GateRecord(passed=True, refusal=None, pairs={}, max_failed_share=0.0, checks=())
    if gate.passed:
        counts = {v: sum(1 for got in gate.pairs.values() if got == v) for v in ("carried", "left out")}
        verdict = "**passed**: the model is promoted" + "".join(f", {n} pair(s) {v}" for v, n in counts.items() if n)
    else:
        verdict = f"**refused**: {gate.refusal or 'a check failed'}; no artifact was written"
    settings = manifest.model_config
    lines = [
        f"# Training report: model {manifest.model_version}",
        "",
        f"Trained {manifest.trained_at} on {manifest.timeframe} bars from `{manifest.source}`"
        + (
            f"; scale `{settings.scale}`, changepoint prior {settings.changepoint_prior_scale}."
            if settings is not None
            else "."
        ),
        "",
        f"## Gate: {verdict}",
        "",
        *_pairs(manifest, gate),
        "",
        "| symbol | check | result | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.symbol} | {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.detail} |" for c in gate.checks]
    lines += _champion(manifest) + _track_record(ledger)
    for entry in manifest.symbols.values():
        lines += ["", f"## {entry.symbol}", ""]
        lines.append(f"{entry.rows:,} bars, {entry.data_start} to {entry.data_end}.")
        backtest = entry.backtest
        if not backtest:
            lines.append("Not backtested: not enough history before the newest cutoff.")
            continue
        lines += [
            f"Backtest: {len(backtest.cutoffs)} cutoffs from {backtest.cutoffs[0]} to "
            f"{backtest.cutoffs[-1]}; each refit saw only bars before its cutoff, and the served forecast "
            "at each cutoff used the weight and quantiles chosen on outcomes known before it. MASE is the MAE "
            "over the naive one-step MAE of the refit's own training window; the quantile score is the mean "
            "pinball loss over the published quantiles on log prices, against the last close with the "
            "empirical quantiles of past returns; DM p is a one-sided Diebold-Mariano test of the served "
            "forecast against the last close.",
            "",
            *_symbol_table(backtest),
        ]
    if manifest.timings:
        lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in manifest.timings.items())]
    return "\n".join(lines) + "\n"


_LABELS = {"prophet": "Prophet as fitted", "nested": "nested weighting"}


def backtest_chart(symbol: str, model_version: str, backtest: BacktestRecord) -> bytes:
    """Grouped bars of MAPE per horizon: the served forecast, the baselines and Prophet as fitted, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    horizons = list(backtest.metrics)
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    width = 0.16
    colours = {"served": "#1f77b4", "nested": "#9ecae1", "naive": "#7f7f7f", "drift": "#ff7f0e", "prophet": "#d62728"}
    for i, method in enumerate(METHODS):
        values = [(getattr(backtest.metrics[h], method).mape or 0.0) * 100 for h in horizons]
        xs = [x + (i - (len(METHODS) - 1) / 2) * width for x in range(len(horizons))]
        bars = ax.bar(xs, values, width, label=_LABELS.get(method, method),
                      color=colours[method])  # fmt: skip
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=6, padding=2)
    ax.set_xticks(range(len(horizons)), [f"{h} ahead" for h in horizons])
    ax.set_ylabel("mean absolute percentage error (%)")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.0f}%"))
    ax.set_title(
        f"{symbol} backtest, model {model_version}: {len(backtest.cutoffs)} cutoffs "
        f"{backtest.cutoffs[0][:10]} to {backtest.cutoffs[-1][:10]}",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return charts.png(fig)
