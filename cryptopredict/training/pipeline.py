"""One training run: load bars, validate, fit every symbol in parallel, backtest, gate, write the artifact."""

from __future__ import annotations

import contextlib
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict import __version__
from cryptopredict.alerts.evaluate import decide, log_line
from cryptopredict.alerts.states import ALERTS_FILE
from cryptopredict.artifact import (
    Artifact,
    BacktestRecord,
    Carried,
    Manifest,
    ModelSettings,
    PairEntry,
    PairGrid,
    ValidationRecord,
    carried_pair,
    format_utc,
    from_json,
    json_bytes,
    new_generation,
    write_artifact,
)
from cryptopredict.errors import DataValidationError, TrainingError
from cryptopredict.ledger import Ledger
from cryptopredict.timeframes import Timeframe, get_timeframe, symbol_to_slug
from cryptopredict.training import backtest, forecast, gate, lineage, report, served
from cryptopredict.training.charts import served_chart
from cryptopredict.training.config import TrainConfig
from cryptopredict.training.jobs import FitJob, JobFailed, RefitJob, run_fit, run_refit, try_fit, try_refit
from cryptopredict.training.model import FitResult
from cryptopredict.training.pool import Executor, open_executor
from cryptopredict.training.sources.base import Unreadable, utc_timestamp
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
    return _Run(config, timeframe, timeframe.horizon_steps(horizon_days), log)


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


def load_bars(config: TrainConfig, timeframe: Timeframe) -> dict[str, pd.DataFrame | Unreadable]:
    """Raw bars per symbol from the configured source (not yet validated)."""
    return config.source.load(config.bar_request(), timeframe)


def validate_all(
    config: TrainConfig, timeframe: Timeframe, raw: Mapping[str, pd.DataFrame | Unreadable]
) -> dict[str, ValidatedBars]:
    """Validate every symbol, then keep the bars from `first_bar()` to --end (validation sees them as they came)."""
    return {symbol: _validate_one(config, timeframe, raw[symbol], symbol) for symbol in config.symbols or ()}


def _validate_one(
    config: TrainConfig, timeframe: Timeframe, raw: pd.DataFrame | Unreadable, symbol: str
) -> ValidatedBars:
    if isinstance(raw, Unreadable):  # only with --skip-invalid, whose caller reports it
        raise DataValidationError(symbol, "bars", raw.reason)
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
    ctx: _Run, raw: Mapping[str, pd.DataFrame | Unreadable]
) -> tuple[dict[str, ValidatedBars], dict[str, gate.Check]]:
    """Validate every symbol; with --skip-invalid a pair without bars, unreadable or failing is a failed pair.

    Returns the bars of the symbols kept, and for each failed one the check it failed.
    """
    config, log = ctx.config, ctx.log
    if not config.skip_invalid:
        return validate_all(config, ctx.timeframe, raw), {}
    bars: dict[str, ValidatedBars] = {}
    failed: dict[str, gate.Check] = {}
    for symbol in config.symbols or ():
        if symbol not in raw:
            failed[symbol] = gate.Check(symbol, "bars", False, "no bars from the source")
        else:
            try:
                bars[symbol] = _validate_one(config, ctx.timeframe, raw[symbol], symbol)
            except DataValidationError as exc:
                name = "bars" if exc.check == "bars" else "validation"
                detail = exc.detail if exc.check == "bars" else f"{exc.check}: {exc.detail}"
                failed[symbol] = gate.Check(symbol, name, False, detail)
        if symbol in failed:
            log(f"{symbol}: skipped: {failed[symbol].name}: {failed[symbol].detail}")
    total = len(config.symbols or ())
    if not bars:
        msg = f"every pair was skipped ({total} of {total}); nothing to train"
        raise TrainingError(msg)
    if failed:
        log(f"skipped {len(failed)} of {total} pair(s) (--skip-invalid): {', '.join(failed)}; training {len(bars)}")
    return bars, failed


def _log_bars(bars: Mapping[str, ValidatedBars], log: Log) -> None:
    for symbol, v in bars.items():
        r = v.report
        log(
            f"{symbol}: {r.rows:,} bars {format_utc(r.start.to_pydatetime())} .. "
            f"{format_utc(r.end.to_pydatetime())}, {len(r.gaps)} gap(s)"
        )
        for warning in r.warnings:
            log(f"{symbol}: warning: {warning}")


def _fit_all(
    ctx: _Run, executor: Executor, bars: Mapping[str, ValidatedBars], failed: dict[str, gate.Check]
) -> dict[str, FitResult]:
    """Fit every symbol on all its bars; results in the given symbol order.

    With --skip-invalid a fit that fails is that pair's failed check (added to `failed`), not the run's end.
    """
    config, horizon = ctx.config, ctx.horizon
    jobs = [FitJob(s, v.frame, ctx.timeframe, horizon, config.model, config.model_version) for s, v in bars.items()]
    results: dict[str, FitResult] = {}
    for job, res in executor.map(try_fit if config.skip_invalid else run_fit, jobs):
        if isinstance(res, JobFailed):
            failed[job.symbol] = gate.Check(job.symbol, "fit", False, res.reason)
            ctx.log(f"{job.symbol}: fit failed, pair skipped (--skip-invalid): {res.reason}")
            continue
        results[job.symbol] = res
        ctx.log(
            f"[{len(results)}/{len(jobs)}] {job.symbol}: fitted {len(job.frame):,} rows in "
            f"{res.fit_seconds:.1f} s, {res.grid.history_points + horizon:,} grid points "
            f"predicted in {res.predict_seconds:.1f} s"
        )
    return {s: results[s] for s in bars if s in results}


@dataclass(frozen=True, slots=True)
class _Backtests:
    """Per symbol: the backtest's summary (None when not backtested), the weights it chose to serve, the
    anchor refit, the grid of closes."""

    summaries: dict[str, dict[str, Any] | None]
    weights: dict[str, Mapping[str, backtest.ServedWeight]]
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
    ctx: _Run, executor: Executor, jobs: list[RefitJob], failed: dict[str, gate.Check]
) -> tuple[dict[str, list[backtest.Refit]], dict[str, backtest.Refit]]:
    """Run the refit jobs, logging each symbol's progress a few times; per symbol its cutoffs' refits and its anchor.

    With --skip-invalid a refit that fails fails its pair (added to `failed`; its other refits still run).
    """
    symbols = list(dict.fromkeys(job.symbol for job in jobs))
    total = {s: sum(1 for job in jobs if job.symbol == s) for s in symbols}
    if all(n == 1 for n in total.values()):
        why = "--backtest-cutoffs 0" if ctx.config.backtest.cutoffs == 0 else "not enough history before any cutoff"
        ctx.log(f"backtest: skipped ({why})")
    refits: dict[str, list[backtest.Refit]] = {s: [] for s in symbols}
    anchors: dict[str, backtest.Refit] = {}
    done = dict.fromkeys(symbols, 0)
    every = max(1, max(total.values()) // 4)
    for job, result in executor.map(try_refit if ctx.config.skip_invalid else run_refit, jobs):
        if isinstance(result, JobFailed):
            if job.symbol not in failed:
                what = "anchor refit" if job.anchor else f"refit at cutoff {job.cutoff}"
                failed[job.symbol] = gate.Check(job.symbol, "backtest", False, f"{what} failed: {result.reason}")
                ctx.log(f"{job.symbol}: {what} failed, pair skipped (--skip-invalid): {result.reason}")
            continue
        if job.anchor:
            anchors[job.symbol] = result
        else:
            refits[job.symbol].append(result)
        done[job.symbol] += 1
        n, of = done[job.symbol], total[job.symbol]
        if of > 1 and (n % every == 0 or n == of):
            ctx.log(f"{job.symbol}: backtest refits {n}/{of}")
    return refits, anchors


def _backtest_all(
    ctx: _Run, executor: Executor, bars: Mapping[str, ValidatedBars], failed: dict[str, gate.Check]
) -> _Backtests:
    """Refit every cutoff of every symbol, plus one refit at the data end (the served forecast's
    anchor: the same procedure the backtest scored, run on all the data); score the backtest."""
    config, timeframe = ctx.config, ctx.timeframe
    step = pd.Timedelta(seconds=timeframe.seconds)
    frames = {symbol: backtest.backtest_frame(v.frame, config.model.scale) for symbol, v in bars.items()}
    refits, anchors = _run_refits(ctx, executor, _refit_jobs(ctx, frames), failed)
    frames = {symbol: frame for symbol, frame in frames.items() if symbol not in failed}
    settings = config.backtest.for_timeframe(timeframe.name)
    summaries: dict[str, dict[str, Any] | None] = {}
    weights: dict[str, Mapping[str, backtest.ServedWeight]] = {}
    grids = {symbol: backtest.grid_of(frame, step) for symbol, frame in frames.items()}
    for symbol, grid in grids.items():
        scored = backtest.score(grid, refits[symbol], timeframe.horizons, settings, config.served)
        summaries[symbol], weights[symbol] = scored.summary, scored.weights
        if scored.summary:
            ctx.log(f"{symbol}: " + "; ".join(e["summary"] for e in scored.summary["metrics"].values()))
    return _Backtests(summaries, weights, anchors, grids)


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "cryptopredict": __version__}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


@dataclass(slots=True)
class _Pair:
    """One freshly trained pair's part of the artifact: its manifest entry, grid, files and gate checks."""

    entry: PairEntry
    grid: PairGrid  # with its served distribution
    files: dict[str, bytes]
    checks: list[gate.Check]


def _export_symbol(
    ctx: _Run,
    res: FitResult,
    bars: ValidatedBars,
    backtests: _Backtests,
    production: Artifact | None,
) -> _Pair:
    """One symbol's metadata, served forecast, model file, charts and gate checks."""
    config, timeframe, horizon = ctx.config, ctx.timeframe, ctx.horizon
    r = bars.report
    symbol = r.symbol
    grid_end = r.end + pd.Timedelta(seconds=timeframe.seconds * horizon)
    bt = backtests.summaries[symbol]
    bt_record = from_json(BacktestRecord, bt) if bt else None
    files = {f"{res.slug}.prophet.json": res.model_json.encode()}
    served_grid = forecast.served_grid(
        backtests.grids[symbol], res, backtests.weights[symbol], backtests.anchors[symbol], timeframe.horizons,
        config.served,
    )  # fmt: skip
    grid = replace(res.grid, served=served_grid)
    charts = {
        **res.charts,
        "forecast": served_chart(
            symbol, timeframe.name, config.model_version,
            pd.date_range(r.start.tz_convert("UTC").tz_localize(None), periods=len(grid.yhat),
                          freq=pd.Timedelta(seconds=timeframe.seconds)),
            grid.history_points,
            np.array([np.nan if v is None else v for v in grid.actual], float),
            served.LEVELS,
            np.array(served_grid.quantiles, float).T,
        ),
    }  # fmt: skip
    files.update({f"{res.slug}.{kind}.png": png for kind, png in charts.items()})
    if bt_record:
        files[f"{res.slug}.backtest.png"] = report.backtest_chart(symbol, config.model_version, bt_record)
    entry = PairEntry(
        symbol=symbol,
        rows=r.rows,
        data_start=format_utc(r.start.to_pydatetime()),
        data_end=format_utc(r.end.to_pydatetime()),
        forecast_end=format_utc(grid_end.to_pydatetime()),
        horizon_steps=horizon,
        validation=from_json(ValidationRecord, r.to_dict()),
        fit_seconds=round(res.fit_seconds, 3),
        converged=bool(res.converged),
        model_file=f"{res.slug}.prophet.json",
        backtest=bt_record,
        charts={kind: f"{res.slug}.{kind}.png" for kind in charts},
        backtest_chart=f"{res.slug}.backtest.png" if bt_record else None,
    )
    checks = gate.check_symbol(symbol, grid, bt, res.converged, config.gate)
    checks.append(gate.compare_with_production(symbol, bt_record, production, config.gate))
    return _Pair(entry, grid, files, checks)


def _carriable(production: Artifact | None, timeframe: Timeframe) -> dict[str, str]:
    """The pairs production serves at this run's timeframe, by symbol: each one's slug."""
    if production is None or production.manifest.timeframe != timeframe.name:
        return {}
    return {f.symbol: slug for slug, f in production.forecasts.items()}


def _carry(production: Artifact, slug: str, why: str) -> _Pair:
    """Production's entry for a pair this run failed, as this run writes it again: unchanged, marked carried.

    `carried` says which model trained what is served, when, why this run did not replace it, and for
    how many runs in a row it has been carried.
    """
    grid, files = carried_pair(production, slug)
    entry = production.manifest.symbols[slug]
    # Production's copy (the API image's) holds no files kept for the record: those stay in the image
    # that trained the pair, and this artifact names none it does not hold.
    entry = replace(
        entry,
        model_file=entry.model_file if entry.model_file in files else None,
        backtest_chart=entry.backtest_chart if entry.backtest_chart in files else None,
    )
    before = entry.carried
    carried = Carried(
        model_version=before.model_version if before else production.model_version,
        trained_at=before.trained_at if before else production.manifest.trained_at,
        runs=(before.runs if before else 0) + 1,
        reason=why,
    )
    return _Pair(replace(entry, carried=carried), grid, files, [])


def _why(checks: list[gate.Check], symbol: str) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in checks if c.symbol == symbol and not c.passed)


def _track_record(
    ctx: _Run,
    served_fresh: Mapping[str, _Pair],
    bars: Mapping[str, ValidatedBars],
    production: Artifact | None,
    generation: str,
) -> tuple[Ledger, dict[str, bytes]]:
    """Production's ledger scored on the new bars (of every pair that has them), with this run's fresh
    forecasts published in it; the ledger file and the fresh pairs' track-record charts."""
    version = ctx.config.model_version
    ledger, scored, published = lineage.update(
        production, bars, {s: p.grid for s, p in served_fresh.items()}, ctx.timeframe, generation, version
    )
    ctx.log(lineage.log_line(ledger, scored, published))
    files = {lineage.LEDGER_FILE: lineage.dump(ledger)}
    for symbol, pair in served_fresh.items():
        slug = symbol_to_slug(symbol)
        pair.entry = replace(pair.entry, charts={**pair.entry.charts, "track-record": f"{slug}.track-record.png"})
        files[f"{slug}.track-record.png"] = lineage.chart(symbol, version, ledger, bars[symbol])
    return ledger, files


def _alerts(ctx: _Run, grids: Mapping[str, PairGrid], production: Artifact | None, ledger: Ledger) -> bytes:
    """The watch rules evaluated on the forecasts this artifact serves (`grids` by pair), carrying production's
    states."""
    previous = production.alerts if production is not None else None
    alerts = decide(ctx.config.alert_rules, grids, ledger, previous)
    ctx.log(log_line(alerts, first_run=production is None))
    return json_bytes(alerts.to_json())


def _manifest(
    ctx: _Run,
    timings: Mapping[str, float],
    decision: gate.Decision,
    production: Artifact | None,
    symbols: Mapping[str, PairEntry],
    left_out: Mapping[str, str],
) -> Manifest:
    """The run's records, as the artifact's manifest stores them."""
    config, timeframe = ctx.config, ctx.timeframe
    return Manifest(
        model_version=config.model_version,
        run_id=config.run_id,
        trained_at=format_utc(datetime.now(UTC)),
        source=config.source.name,
        timeframe=timeframe.name,
        step_seconds=timeframe.seconds,
        model_config=from_json(ModelSettings, asdict(config.model)),
        libraries=_library_versions(),
        timings=dict(timings),
        gate=decision.record(),
        production=lineage.describe_production(production),
        ledger=lineage.LEDGER_FILE,
        report="report.md",
        symbols=dict(symbols),
        skipped=dict(left_out),
    )


def _refuse(config: TrainConfig, manifest: Manifest, decision: gate.Decision) -> None:
    """Write the rejection report beside the artifact folder and raise: the gate refused the run."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rejected = out / "rejected-report.md"
    rejected.write_text(report.render_markdown(manifest), encoding="utf-8")
    msg = f"the gate refused the run, no artifact written: {decision.reason()} (report: {rejected})"
    raise TrainingError(msg)


def _log_verdicts(ctx: _Run, decision: gate.Decision, symbols: Mapping[str, PairEntry], now: str) -> None:
    """One line per pair not served fresh, then the count of each verdict."""
    by_symbol = {entry.symbol: entry for entry in symbols.values()}
    for symbol in decision.failed_pairs():
        entry = by_symbol.get(symbol)
        carried = entry.carried if entry is not None else None
        if carried:
            ctx.log(
                f"{symbol}: carried forward from model {carried.model_version} trained {carried.trained_at} "
                f"({carried.age_days(now):.1f} days before this run): {carried.reason}"
            )
        else:
            ctx.log(f"{symbol}: left out (production does not serve it)")
    ctx.log(f"pairs: {decision.summary()}")


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
            bars, failed = _validate_or_skip(ctx, raw)
        _log_bars(bars, log)

        production = lineage.load_production(config.baseline_artifact, log)
        with _timed(timings, "fit"):
            fits = _fit_all(ctx, executor, bars, failed)
        with _timed(timings, "backtest"):
            backtests = _backtest_all(ctx, executor, {s: bars[s] for s in fits}, failed)

    t0 = time.perf_counter()
    trained = {
        s: _export_symbol(ctx, res, bars[s], backtests, production) for s, res in fits.items() if s not in failed
    }
    order = {s: i for i, s in enumerate(symbols)}
    checks = sorted([*failed.values(), *(c for p in trained.values() for c in p.checks)], key=lambda c: order[c.symbol])
    carriable = _carriable(production, timeframe)
    decision = gate.decide(checks, symbols, carriable, config.gate.max_failed_share, config.gate.min_failed_pairs)
    fresh = {s: trained[s] for s, v in decision.pairs.items() if v == "fresh"}
    carried = {
        s: _carry(production, carriable[s], _why(checks, s))
        for s, v in decision.pairs.items()
        if v == "carried" and production is not None
    }
    left_out = {s: _why(checks, s) for s, v in decision.pairs.items() if v == "left out"}
    served_pairs = {s: p for s in symbols if (p := fresh.get(s) or carried.get(s)) is not None}
    slug_of = {s: symbol_to_slug(s) for s in symbols}
    if not decision.passed:
        shown = {slug_of[s]: p.entry for s, p in trained.items()}
        _refuse(config, _manifest(ctx, timings, decision, production, shown, left_out), decision)
    generation = new_generation()
    ledger, files = _track_record(ctx, fresh, bars, production, generation)
    for pair in served_pairs.values():
        files.update(pair.files)
    files[ALERTS_FILE] = _alerts(ctx, {s: p.grid for s, p in served_pairs.items()}, production, ledger)
    entries = {slug_of[s]: p.entry for s, p in served_pairs.items()}
    manifest = replace(_manifest(ctx, timings, decision, production, entries, left_out), alerts=ALERTS_FILE)
    _log_verdicts(ctx, decision, entries, manifest.trained_at)
    manifest = replace(manifest, timings={**manifest.timings, "export": round(time.perf_counter() - t0, 3)})
    files["report.md"] = report.render_markdown(manifest, ledger).encode()
    grids = {slug_of[s]: p.grid for s, p in served_pairs.items()}
    path = write_artifact(config.out, manifest, grids, files, generation)
    log(
        f"wrote {path} (model {config.model_version}, {len(fresh)} pair(s) fresh, {len(carried)} carried, "
        f"{len(left_out)} left out) in {time.perf_counter() - t_start:.1f} s; gate passed; "
        f"report: {path.parent / generation / 'report.md'}"
    )
    return path
