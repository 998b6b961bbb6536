"""One training run: load bars, validate, fit every symbol in parallel, backtest, gate, write the artifact."""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict import __version__
from cryptopredict.alerts.state import ALERTS_FILE, decide, log_line
from cryptopredict.artifact import Artifact, format_utc, new_generation, write_artifact
from cryptopredict.errors import DataValidationError, TrainingError
from cryptopredict.ledger import Ledger
from cryptopredict.timeframes import Timeframe, get_timeframe, symbol_to_slug
from cryptopredict.training import backtest, gate, record, report, served
from cryptopredict.training.charts import served_chart
from cryptopredict.training.config import TrainConfig
from cryptopredict.training.execution import Executor, open_executor
from cryptopredict.training.jobs import FitJob, RefitJob, run_fit, run_refit
from cryptopredict.training.model import FitResult
from cryptopredict.training.sources.base import utc_timestamp
from cryptopredict.training.validation import ValidatedBars, validate_bars

__all__ = ["load_bars", "run", "validate_all"]

_LIBRARIES = ("prophet", "cmdstanpy", "pandas", "numpy", "alpaca-py")

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the seconds the block took as `timings[name]` (rounded for the manifest)."""
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 3)


@dataclass(frozen=True, slots=True)
class _Run:
    """What every step of one run shares: its settings, checked, and where progress goes."""

    config: TrainConfig
    timeframe: Timeframe
    horizon: int  # forecast steps after the last bar
    log: Log


def _check(config: TrainConfig, log: Log) -> _Run:
    """Refuse settings no run can use; resolve the timeframe and the horizon in bars."""
    try:
        timeframe = get_timeframe(config.timeframe)
        slugs = [symbol_to_slug(s) for s in config.symbols or ()]
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if config.symbols is not None and not config.symbols:
        msg = "no symbols to train"
        raise TrainingError(msg)
    if len(set(slugs)) != len(slugs):
        msg = f"symbols given twice: {', '.join(config.symbols or ())}"
        raise TrainingError(msg)
    horizon_days = config.horizon_days if config.horizon_days is not None else timeframe.default_horizon_days
    if horizon_days < 1:
        msg = f"horizon must be at least 1 day, got {horizon_days}"
        raise TrainingError(msg)
    return _Run(config, timeframe, horizon_days * 86400 // timeframe.seconds, log)


def _every_pair(ctx: _Run) -> _Run:
    """The run with `symbols=None` (--symbols all) replaced by every pair the source lists."""
    config = ctx.config
    lister = getattr(config.source, "list_symbols", None)
    if lister is None:
        msg = f"the {config.source.name} source cannot list its pairs; name them with --symbols"
        raise TrainingError(msg)
    symbols = tuple(lister(ctx.timeframe))
    ctx.log(f"--symbols all: {len(symbols)} pair(s) from {config.source.describe()}")
    return _check(replace(config, symbols=symbols), ctx.log)


def load_bars(config: TrainConfig, timeframe: Timeframe) -> dict[str, pd.DataFrame]:
    """Raw bars per symbol from the configured source (not yet validated)."""
    return config.source.load(config.bar_request(), timeframe)


def validate_all(
    config: TrainConfig, timeframe: Timeframe, raw: Mapping[str, pd.DataFrame]
) -> dict[str, ValidatedBars]:
    """Validate every symbol, then keep the bars from `first_bar()` to --end (validation sees them as they came)."""
    return {symbol: _validate_one(config, timeframe, raw[symbol], symbol) for symbol in config.symbols or ()}


def _validate_one(config: TrainConfig, timeframe: Timeframe, raw: pd.DataFrame, symbol: str) -> ValidatedBars:
    start, end = utc_timestamp(config.first_bar()), utc_timestamp(config.end)
    checked = validate_bars(raw, symbol, timeframe, config.validation)
    if start is not None or end is not None:
        frame = checked.frame
        keep = pd.Series(True, index=frame.index)
        if start is not None:
            keep &= frame["timestamp"] >= start
        if end is not None:
            keep &= frame["timestamp"] < end
        # Re-validate the slice: the row minimum and the gap report apply to what is fitted.
        checked = validate_bars(frame[keep].reset_index(drop=True), symbol, timeframe, config.validation)
    return checked


def _validate_or_skip(
    ctx: _Run, raw: Mapping[str, pd.DataFrame]
) -> tuple[_Run, dict[str, ValidatedBars], dict[str, str]]:
    """Validate every symbol; with --skip-invalid leave out (and report) those without bars or failing.

    Returns the run narrowed to the symbols kept, their bars, and why each skipped one was skipped.
    """
    config, log = ctx.config, ctx.log
    if not config.skip_invalid:
        return ctx, validate_all(config, ctx.timeframe, raw), {}
    bars: dict[str, ValidatedBars] = {}
    skipped: dict[str, str] = {}
    for symbol in config.symbols or ():
        if symbol not in raw:
            skipped[symbol] = "no bars from the source"
        else:
            try:
                bars[symbol] = _validate_one(config, ctx.timeframe, raw[symbol], symbol)
            except DataValidationError as exc:
                skipped[symbol] = f"{exc.check}: {exc.detail}"
        if symbol in skipped:
            log(f"{symbol}: skipped: {skipped[symbol]}")
    total = len(config.symbols or ())
    if not bars:
        msg = f"every pair was skipped ({total} of {total}); nothing to train"
        raise TrainingError(msg)
    if skipped:
        log(f"skipped {len(skipped)} of {total} pair(s) (--skip-invalid): {', '.join(skipped)}; training {len(bars)}")
    return replace(ctx, config=replace(config, symbols=tuple(bars))), bars, skipped


def _log_bars(bars: Mapping[str, ValidatedBars], log: Log) -> None:
    for symbol, v in bars.items():
        r = v.report
        log(
            f"{symbol}: {r.rows:,} bars {format_utc(r.start.to_pydatetime())} .. "
            f"{format_utc(r.end.to_pydatetime())}, {len(r.gaps)} gap(s)"
        )
        for warning in r.warnings:
            log(f"{symbol}: warning: {warning}")


def _fit_all(ctx: _Run, executor: Executor, bars: Mapping[str, ValidatedBars]) -> dict[str, FitResult]:
    """Fit every symbol on all its bars; results in the configured symbol order."""
    config, horizon = ctx.config, ctx.horizon
    jobs = [FitJob(s, v.frame, ctx.timeframe, horizon, config.model, config.model_version) for s, v in bars.items()]
    results: dict[str, FitResult] = {}
    for job, res in executor.map(run_fit, jobs):
        results[job.symbol] = res
        ctx.log(
            f"[{len(results)}/{len(jobs)}] {job.symbol}: fitted {len(job.frame):,} rows in "
            f"{res.fit_seconds:.1f} s, {res.payload['history_points'] + horizon:,} grid points "
            f"predicted in {res.predict_seconds:.1f} s"
        )
    return {s: results[s] for s in config.symbols or ()}


@dataclass(frozen=True, slots=True)
class _Backtests:
    """Per symbol: the backtest's summary (None when not backtested), the anchor refit, the grid of closes."""

    summaries: dict[str, dict[str, Any] | None]
    anchors: dict[str, backtest.Refit]
    grids: dict[str, backtest.Grid]


def _refit_jobs(ctx: _Run, frames: Mapping[str, pd.DataFrame]) -> list[RefitJob]:
    """Per symbol, the anchor refit at the data end (first: needed whatever the backtest finds), then every cutoff."""
    config, timeframe, horizon = ctx.config, ctx.timeframe, ctx.horizon
    step = pd.Timedelta(seconds=timeframe.seconds)
    settings = config.backtest.for_timeframe(timeframe.name)
    steps = [h.steps for h in timeframe.horizons]
    jobs = []
    for symbol, frame in frames.items():
        end = frame["ds"].iloc[-1] + step
        jobs.append(RefitJob(symbol, frame, end, step, range(1, horizon + 1), config.model, settings.window, True))
        jobs += [
            RefitJob(symbol, frame, cutoff, step, steps, config.model, settings.window)
            for cutoff in backtest.plan_cutoffs(frame["ds"], step, timeframe.horizons, settings)
        ]
    return jobs


def _run_refits(
    ctx: _Run, executor: Executor, jobs: list[RefitJob]
) -> tuple[dict[str, list[backtest.Refit]], dict[str, backtest.Refit]]:
    """Run the refit jobs, logging each symbol's progress a few times; per symbol its cutoffs' refits and its anchor."""
    symbols = list(dict.fromkeys(job.symbol for job in jobs))
    total = {s: sum(1 for job in jobs if job.symbol == s) for s in symbols}
    if all(n == 1 for n in total.values()):
        why = "--backtest-cutoffs 0" if ctx.config.backtest.cutoffs == 0 else "not enough history before any cutoff"
        ctx.log(f"backtest: skipped ({why})")
    refits: dict[str, list[backtest.Refit]] = {s: [] for s in symbols}
    anchors: dict[str, backtest.Refit] = {}
    done = dict.fromkeys(symbols, 0)
    every = max(1, max(total.values()) // 4)
    for job, result in executor.map(run_refit, jobs):
        if job.anchor:
            anchors[job.symbol] = result
        else:
            refits[job.symbol].append(result)
        done[job.symbol] += 1
        n, of = done[job.symbol], total[job.symbol]
        if of > 1 and (n % every == 0 or n == of):
            ctx.log(f"{job.symbol}: backtest refits {n}/{of}")
    return refits, anchors


def _backtest_all(ctx: _Run, executor: Executor, bars: Mapping[str, ValidatedBars]) -> _Backtests:
    """Refit every cutoff of every symbol, plus one refit at the data end (the served forecast's
    anchor: the same procedure the backtest scored, run on all the data); score the backtest."""
    config, timeframe = ctx.config, ctx.timeframe
    step = pd.Timedelta(seconds=timeframe.seconds)
    frames = {symbol: backtest.backtest_frame(v.frame, config.model.scale) for symbol, v in bars.items()}
    refits, anchors = _run_refits(ctx, executor, _refit_jobs(ctx, frames))
    settings = config.backtest.for_timeframe(timeframe.name)
    summaries: dict[str, dict[str, Any] | None] = {}
    grids = {symbol: backtest.grid_of(frame, step) for symbol, frame in frames.items()}
    for symbol, grid in grids.items():
        summary = backtest.evaluate(grid, refits[symbol], timeframe.horizons, settings, config.served)
        summaries[symbol] = summary
        if summary:
            ctx.log(f"{symbol}: " + "; ".join(e["summary"] for e in summary["metrics"].values()))
    return _Backtests(summaries, anchors, grids)


def _served_payload(
    ctx: _Run,
    grid: backtest.Grid,
    fit: FitResult,
    bt: dict[str, Any] | None,
    anchor: backtest.Refit,
) -> dict[str, Any]:
    """The served forecast's quantile grid, for the artifact."""
    lc = grid.log_close
    sigma = served.ewma_volatility(lc, ctx.config.served.volatility_halflife(grid.step))
    history = fit.payload["history_points"]
    fitted = np.log(np.maximum(np.asarray(fit.payload["yhat"][:history], float), 1e-12))
    # Clipped like the forecast's change: a linear-scale fit may dip to (or below) zero.
    limit = backtest.MAX_LOG_CHANGE
    history_change = np.concatenate([[0.0], np.clip(np.diff(fitted), -limit, limit)])
    horizons = ctx.timeframe.horizons
    metrics = (bt or {}).get("metrics", {})
    weights = [metrics[h.name]["weight"] if h.name in metrics else 0.0 for h in horizons]
    errors = {
        h.steps: np.asarray(metrics[h.name]["error_z"], float)
        for h in horizons
        if h.name in metrics and metrics[h.name].get("error_z")
    }
    q = np.exp(
        served.grid_quantiles(
            lc, sigma, history_change, backtest.predicted_change(anchor), [h.steps for h in horizons], weights, errors
        )
    )
    return {
        "levels": list(served.LEVELS),
        "quantiles": [[float(f"{v:.8g}") for v in q[:, k].tolist()] for k in range(q.shape[1])],
        "weights": {h.name: w for h, w in zip(horizons, weights, strict=True)},
    }


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "cryptopredict": __version__}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


@dataclass(slots=True)
class _Outputs:
    """What the artifact gathers while the symbols are exported: metadata, files, gate checks."""

    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    checks: list[gate.Check] = field(default_factory=list)


def _export_symbol(
    out: _Outputs,
    ctx: _Run,
    res: FitResult,
    bars: ValidatedBars,
    backtests: _Backtests,
    production: Artifact | None,
) -> None:
    """Add one symbol's metadata, served forecast, model file, charts and gate checks to `out`."""
    config, timeframe, horizon = ctx.config, ctx.timeframe, ctx.horizon
    r = bars.report
    symbol = r.symbol
    grid_end = r.end + pd.Timedelta(seconds=timeframe.seconds * horizon)
    bt = backtests.summaries[symbol]
    meta = out.symbols[res.slug] = {
        "symbol": symbol,
        "rows": r.rows,
        "data_start": format_utc(r.start.to_pydatetime()),
        "data_end": format_utc(r.end.to_pydatetime()),
        "forecast_end": format_utc(grid_end.to_pydatetime()),
        "horizon_steps": horizon,
        "validation": r.to_dict(),
        "fit_seconds": round(res.fit_seconds, 3),
        "converged": res.converged,
        "model_file": f"{res.slug}.prophet.json",
        "backtest": bt,
    }
    out.files[f"{res.slug}.prophet.json"] = res.model_json.encode()
    res.payload["served"] = _served_payload(ctx, backtests.grids[symbol], res, bt, backtests.anchors[symbol])
    charts = {
        **res.charts,
        "forecast": served_chart(
            symbol, timeframe.name, config.model_version,
            pd.date_range(r.start.tz_convert("UTC").tz_localize(None), periods=len(res.payload["yhat"]),
                          freq=pd.Timedelta(seconds=timeframe.seconds)),
            res.payload["history_points"],
            np.array([np.nan if v is None else v for v in res.payload["actual"]], float),
            served.LEVELS,
            np.array(res.payload["served"]["quantiles"], float).T,
        ),
    }  # fmt: skip
    meta["charts"] = {kind: f"{res.slug}.{kind}.png" for kind in charts}
    out.files.update({f"{res.slug}.{kind}.png": png for kind, png in charts.items()})
    if bt:
        meta["backtest_chart"] = f"{res.slug}.backtest.png"
        out.files[f"{res.slug}.backtest.png"] = report.backtest_chart(symbol, config.model_version, bt)
    out.checks += gate.check_symbol(symbol, res.payload, bt, res.converged, config.gate)
    out.checks.append(gate.compare_with_production(symbol, bt, production, config.gate))


def _track_record(
    out: _Outputs,
    ctx: _Run,
    fits: Mapping[str, FitResult],
    bars: Mapping[str, ValidatedBars],
    production: Artifact | None,
    generation: str,
) -> Ledger:
    """Score production's ledger on the new bars, publish this run's forecasts in it, add its files to `out`."""
    version = ctx.config.model_version
    ledger, scored, published = record.update(
        production, bars, {s: r.payload for s, r in fits.items()}, ctx.timeframe, generation, version
    )
    ctx.log(record.log_line(ledger, scored, published))
    out.files[record.LEDGER_FILE] = record.dump(ledger)
    for symbol, res in fits.items():
        out.symbols[res.slug]["charts"]["track-record"] = f"{res.slug}.track-record.png"
        out.files[f"{res.slug}.track-record.png"] = record.chart(symbol, version, ledger, bars[symbol])
    return ledger


def _alerts(
    out: _Outputs, ctx: _Run, fits: Mapping[str, FitResult], production: Artifact | None, ledger: Ledger
) -> None:
    """Evaluate the watch rules on this run's forecasts, carrying production's states; add them to `out`."""
    previous = production.alerts if production is not None else None
    alerts = decide(ctx.config.alert_rules, {s: r.payload for s, r in fits.items()}, ledger, previous)
    ctx.log(log_line(alerts, first_run=production is None))
    out.files[ALERTS_FILE] = json.dumps(alerts.to_json(), allow_nan=False, separators=(",", ":")).encode()


def _manifest(
    ctx: _Run,
    timings: Mapping[str, float],
    gate_: Mapping[str, Any],
    production: Artifact | None,
    ledger: Ledger,
    symbols: Mapping[str, Any],
    skipped: Mapping[str, str],
) -> dict[str, Any]:
    """The run's metadata, as the artifact's manifest stores it."""
    config, timeframe = ctx.config, ctx.timeframe
    return {
        "model_version": config.model_version,
        "run_id": config.run_id,
        "trained_at": format_utc(datetime.now(UTC)),
        "source": config.source.name,
        "timeframe": timeframe.name,
        "step_seconds": timeframe.seconds,
        "model_config": asdict(config.model),
        "libraries": _library_versions(),
        "timings": dict(timings),
        "gate": gate_,
        "production": record.describe_production(production),
        "ledger": record.LEDGER_FILE,
        "track_record": record.summaries(ledger),
        "report": "report.md",
        "symbols": symbols,
        # --skip-invalid: the pairs left out, each with why.
        "skipped": dict(skipped),
    }


def _refuse(
    config: TrainConfig, manifest: Mapping[str, Any], decision: gate.Decision, gate_: Mapping[str, Any]
) -> None:
    """Write the rejection report beside the artifact folder and raise: the gate refused the model."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rejected = out / "rejected-report.md"
    rejected.write_text(report.render_markdown(manifest, gate_), encoding="utf-8")
    msg = f"the gate refused the model, no artifact written: {decision.reason()} (report: {rejected})"
    raise TrainingError(msg)


def run(config: TrainConfig, log: Log = _stderr) -> Path:
    """Train every configured symbol and write the artifact; returns the manifest path."""
    t_start = time.perf_counter()
    ctx = _check(config, log)
    timeframe = ctx.timeframe
    timings: dict[str, float] = {}
    # Opened before the fetch: an unreachable cluster fails the run before any bars are downloaded.
    # The listing and the fetch themselves stay here, on the driver.
    with open_executor(config) as executor:
        if config.symbols is None:
            with _timed(timings, "list"):
                ctx = _every_pair(ctx)
            config = ctx.config
        symbols = config.symbols or ()
        names = ", ".join(symbols) if len(symbols) <= 10 else f"{len(symbols)} pairs ({', '.join(symbols[:5])}, ...)"
        log(f"loading {timeframe.name} bars for {names} from {config.source.describe()}")
        with _timed(timings, "fetch"):
            raw = load_bars(config, timeframe)
        with _timed(timings, "validate"):
            ctx, bars, skipped = _validate_or_skip(ctx, raw)
        config = ctx.config
        _log_bars(bars, log)

        production = record.load_production(config.baseline_artifact, log)
        with _timed(timings, "fit"):
            fits = _fit_all(ctx, executor, bars)
        with _timed(timings, "backtest"):
            backtests = _backtest_all(ctx, executor, bars)

    t0 = time.perf_counter()
    out = _Outputs()
    for symbol, res in fits.items():
        _export_symbol(out, ctx, res, bars[symbol], backtests, production)
    generation = new_generation()
    ledger = _track_record(out, ctx, fits, bars, production, generation)
    _alerts(out, ctx, fits, production, ledger)
    decision = gate.decide(out.checks)
    gate_ = decision.to_dict()
    manifest = {**_manifest(ctx, timings, gate_, production, ledger, out.symbols, skipped), "alerts": ALERTS_FILE}
    if not decision.passed:
        _refuse(config, manifest, decision, gate_)
    manifest["timings"]["export"] = round(time.perf_counter() - t0, 3)
    out.files["report.md"] = report.render_markdown(manifest, gate_).encode()
    path = write_artifact(config.out, manifest, {r.slug: r.payload for r in fits.values()}, out.files, generation)
    log(
        f"wrote {path} (model {config.model_version}, {len(fits)} symbol(s)) in "
        f"{time.perf_counter() - t_start:.1f} s; gate passed; report: {path.parent / generation / 'report.md'}"
    )
    return path
