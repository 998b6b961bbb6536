"""One training run: load bars, validate, fit every symbol in parallel, write the artifact."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptopredict import __version__
from cryptopredict.artifact import format_utc, new_generation, write_artifact
from cryptopredict.errors import DataSourceError, TrainingError
from cryptopredict.timeframes import Timeframe, get_timeframe, symbol_to_slug
from cryptopredict.training import backtest, gate, record, report, served
from cryptopredict.training.charts import served_chart
from cryptopredict.training.config import TrainConfig
from cryptopredict.training.model import FitResult, fit_and_forecast, quiet_prophet
from cryptopredict.training.validation import ValidatedBars, validate_bars

__all__ = ["DEFAULT_ALPACA_START", "load_bars", "run", "validate_all"]

DEFAULT_ALPACA_START = "2021-01-01"
_LIBRARIES = ("prophet", "cmdstanpy", "pandas", "numpy", "alpaca-py")

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _utc(value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        msg = f"cannot parse {value!r} as a date or datetime"
        raise DataSourceError(msg) from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def load_bars(config: TrainConfig, timeframe: Timeframe) -> dict[str, pd.DataFrame]:
    """Raw bars per symbol from the configured source (not yet validated)."""
    if config.source == "csv":
        from cryptopredict.training.csv_source import read_bars

        return read_bars(config.csv_dir, config.symbols, timeframe)
    if config.source == "alpaca":
        from cryptopredict.training.alpaca_source import fetch_bars

        start = _utc(config.start or DEFAULT_ALPACA_START)
        return fetch_bars(
            config.symbols,
            timeframe,
            start=start.to_pydatetime(),
            end=None if config.end is None else _utc(config.end).to_pydatetime(),
            url=config.alpaca_url,
            api_key=os.environ.get("ALPACA_API_KEY") or None,
            secret_key=os.environ.get("ALPACA_SECRET_KEY") or None,
            # Only a fetch that runs up to now ends in a bar that is still forming.
            drop_last=config.end is None,
        )
    msg = f"unknown source {config.source!r}; expected 'csv' or 'alpaca'"
    raise DataSourceError(msg)


def validate_all(
    config: TrainConfig, timeframe: Timeframe, raw: Mapping[str, pd.DataFrame]
) -> dict[str, ValidatedBars]:
    """Validate every symbol, then apply --start/--end (validation sees the data as it arrived)."""
    start, end = _utc(config.start), _utc(config.end)
    out: dict[str, ValidatedBars] = {}
    for symbol in config.symbols:
        checked = validate_bars(raw[symbol], symbol, timeframe, config.validation)
        if start is not None or end is not None:
            frame = checked.frame
            keep = pd.Series(True, index=frame.index)
            if start is not None:
                keep &= frame["timestamp"] >= start
            if end is not None:
                keep &= frame["timestamp"] < end
            # Re-validate the slice: the row minimum and the gap report apply to what is fitted.
            checked = validate_bars(frame[keep].reset_index(drop=True), symbol, timeframe, config.validation)
        out[symbol] = checked
    return out


Runner = Callable[[Callable[..., Any], Mapping[Any, tuple[Any, ...]]], Iterator[tuple[Any, Any]]]


@contextlib.contextmanager
def _runner(workers: int) -> Iterator[Runner]:
    """Run jobs in `workers` processes (one pool for fits and backtest), yielding results as they finish."""
    if workers <= 1:
        yield lambda fn, jobs: ((key, fn(*args)) for key, args in jobs.items())
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=quiet_prophet)

    def run(fn: Callable[..., Any], jobs: Mapping[Any, tuple[Any, ...]]) -> Iterator[tuple[Any, Any]]:
        futures = {pool.submit(fn, *args): key for key, args in jobs.items()}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()

    try:
        yield run
    finally:
        # On a failure, do not wait for the other symbols' fits to finish.
        pool.shutdown(wait=True, cancel_futures=True)


def _fit_all(
    run_jobs: Runner,
    config: TrainConfig,
    timeframe: Timeframe,
    bars: Mapping[str, ValidatedBars],
    horizon: int,
    log: Log,
) -> dict[str, FitResult]:
    jobs = {
        symbol: (v.frame, symbol, symbol_to_slug(symbol), timeframe, horizon, config.model, config.model_version)
        for symbol, v in bars.items()
    }
    results: dict[str, FitResult] = {}
    for symbol, res in run_jobs(fit_and_forecast, jobs):
        results[symbol] = res
        log(
            f"[{len(results)}/{len(jobs)}] {symbol}: fitted {len(bars[symbol].frame):,} rows in "
            f"{res.fit_seconds:.1f} s, {res.payload['history_points'] + horizon:,} grid points "
            f"predicted in {res.predict_seconds:.1f} s"
        )
    return {s: results[s] for s in config.symbols}


def _backtest_all(
    run_jobs: Runner,
    config: TrainConfig,
    timeframe: Timeframe,
    bars: Mapping[str, ValidatedBars],
    horizon: int,
    log: Log,
) -> tuple[dict[str, dict[str, Any] | None], dict[str, backtest.Refit], dict[str, backtest.Grid]]:
    """Refit every cutoff of every symbol, plus one refit at the data end (the served forecast's
    anchor: the same procedure the backtest scored, run on all the data); score the backtest."""
    step = pd.Timedelta(seconds=timeframe.seconds)
    horizons = backtest.HORIZONS[timeframe.name]
    settings = config.backtest.for_timeframe(timeframe.name)
    steps = [h.steps for h in horizons]
    frames = {symbol: backtest.backtest_frame(v.frame, config.model.scale) for symbol, v in bars.items()}
    jobs: dict[tuple[str, int], tuple[Any, ...]] = {}
    for symbol, frame in frames.items():
        # The anchor first: it is needed whatever the backtest finds.
        end = frame["ds"].iloc[-1] + step
        jobs[symbol, -1] = (frame, end, step, range(1, horizon + 1), config.model, settings.window, False)
        for i, cutoff in enumerate(backtest.plan_cutoffs(frame["ds"], step, horizons, settings)):
            jobs[symbol, i] = (frame, cutoff, step, steps, config.model, settings.window)
    total = {s: sum(1 for key in jobs if key[0] == s) for s in bars}
    if all(n == 1 for n in total.values()):
        why = "--backtest-cutoffs 0" if config.backtest.cutoffs == 0 else "not enough history before any cutoff"
        log(f"backtest: skipped ({why})")
    refits: dict[str, list[backtest.Refit]] = {s: [] for s in bars}
    anchors: dict[str, backtest.Refit] = {}
    done = dict.fromkeys(bars, 0)
    every = max(1, max(total.values()) // 4)
    for (symbol, i), result in run_jobs(backtest.refit, jobs):
        if i < 0:
            anchors[symbol] = result
        else:
            refits[symbol].append(result)
        done[symbol] += 1
        if total[symbol] > 1 and (done[symbol] % every == 0 or done[symbol] == total[symbol]):
            log(f"{symbol}: backtest refits {done[symbol]}/{total[symbol]}")
    results: dict[str, dict[str, Any] | None] = {}
    grids = {symbol: backtest.grid_of(frame, step) for symbol, frame in frames.items()}
    for symbol, grid in grids.items():
        summary = backtest.evaluate(grid, refits[symbol], horizons, settings, config.served)
        results[symbol] = summary
        if summary:
            log(f"{symbol}: " + "; ".join(e["summary"] for e in summary["metrics"].values()))
    return results, anchors, grids


def _served_payload(
    config: TrainConfig,
    timeframe: Timeframe,
    grid: backtest.Grid,
    fit: FitResult,
    bt: dict[str, Any] | None,
    anchor: backtest.Refit,
) -> dict[str, Any]:
    """The served forecast's quantile grid, for the artifact."""
    lc = grid.log_close
    sigma = served.ewma_volatility(lc, config.served.volatility_halflife(grid.step))
    history = fit.payload["history_points"]
    fitted = np.log(np.maximum(np.asarray(fit.payload["yhat"][:history], float), 1e-12))
    # Clipped like the forecast's change: a linear-scale fit may dip to (or below) zero.
    limit = backtest.MAX_LOG_CHANGE
    history_change = np.concatenate([[0.0], np.clip(np.diff(fitted), -limit, limit)])
    horizons = backtest.HORIZONS[timeframe.name]
    metrics = (bt or {}).get("metrics", {})
    weights = [metrics[h.name]["weight"] if h.name in metrics else 0.0 for h in horizons]
    q = np.exp(
        served.grid_quantiles(
            lc, sigma, history_change, backtest.predicted_change(anchor), [h.steps for h in horizons], weights
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


def run(config: TrainConfig, log: Log = _stderr) -> Path:
    """Train every configured symbol and write the artifact; returns the manifest path."""
    t_start = time.perf_counter()
    try:
        timeframe = get_timeframe(config.timeframe)
        slugs = [symbol_to_slug(s) for s in config.symbols]
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if not config.symbols:
        msg = "no symbols to train"
        raise TrainingError(msg)
    if len(set(slugs)) != len(slugs):
        msg = f"symbols given twice: {', '.join(config.symbols)}"
        raise TrainingError(msg)
    horizon_days = config.horizon_days if config.horizon_days is not None else timeframe.default_horizon_days
    if horizon_days < 1:
        msg = f"horizon must be at least 1 day, got {horizon_days}"
        raise TrainingError(msg)
    horizon = horizon_days * 86400 // timeframe.seconds

    where = config.csv_dir if config.source == "csv" else (config.alpaca_url or "Alpaca")
    log(f"loading {timeframe.name} bars for {', '.join(config.symbols)} from {where} ({config.source})")
    t0 = time.perf_counter()
    raw = load_bars(config, timeframe)
    t_fetch = time.perf_counter() - t0
    t0 = time.perf_counter()
    bars = validate_all(config, timeframe, raw)
    t_validate = time.perf_counter() - t0
    for symbol, v in bars.items():
        r = v.report
        log(
            f"{symbol}: {r.rows:,} bars {format_utc(r.start.to_pydatetime())} .. "
            f"{format_utc(r.end.to_pydatetime())}, {len(r.gaps)} gap(s)"
        )
        for warning in r.warnings:
            log(f"{symbol}: warning: {warning}")

    production = record.load_production(config.baseline_artifact, log)
    workers = config.workers or os.cpu_count() or 1
    with _runner(workers) as run_jobs:
        t0 = time.perf_counter()
        fits = _fit_all(run_jobs, config, timeframe, bars, horizon, log)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        backtests, anchors, grids = _backtest_all(run_jobs, config, timeframe, bars, horizon, log)
        t_backtest = time.perf_counter() - t0

    t0 = time.perf_counter()
    symbols_meta: dict[str, dict[str, Any]] = {}
    extra: dict[str, bytes] = {}
    checks: list[gate.Check] = []
    for symbol, res in fits.items():
        report_ = bars[symbol].report
        grid_end = report_.end + pd.Timedelta(seconds=timeframe.seconds * horizon)
        bt = backtests[symbol]
        symbols_meta[res.slug] = {
            "symbol": symbol,
            "rows": report_.rows,
            "data_start": format_utc(report_.start.to_pydatetime()),
            "data_end": format_utc(report_.end.to_pydatetime()),
            "forecast_end": format_utc(grid_end.to_pydatetime()),
            "horizon_steps": horizon,
            "validation": report_.to_dict(),
            "fit_seconds": round(res.fit_seconds, 3),
            "converged": res.converged,
            "model_file": f"{res.slug}.prophet.json",
            "backtest": bt,
        }
        extra[f"{res.slug}.prophet.json"] = res.model_json.encode()
        res.payload["served"] = _served_payload(config, timeframe, grids[symbol], res, bt, anchors[symbol])
        charts = {
            **res.charts,
            "forecast": served_chart(
                symbol, timeframe.name, config.model_version,
                pd.date_range(report_.start.tz_convert("UTC").tz_localize(None), periods=len(res.payload["yhat"]),
                              freq=pd.Timedelta(seconds=timeframe.seconds)),
                res.payload["history_points"],
                np.array([np.nan if v is None else v for v in res.payload["actual"]], float),
                served.LEVELS,
                np.array(res.payload["served"]["quantiles"], float).T,
            ),
        }  # fmt: skip
        symbols_meta[res.slug]["charts"] = {kind: f"{res.slug}.{kind}.png" for kind in charts}
        extra.update({f"{res.slug}.{kind}.png": png for kind, png in charts.items()})
        if bt:
            symbols_meta[res.slug]["backtest_chart"] = f"{res.slug}.backtest.png"
            extra[f"{res.slug}.backtest.png"] = report.backtest_chart(symbol, config.model_version, bt)
        checks += gate.check_symbol(symbol, res.payload, bt, res.converged, config.gate)
        checks.append(gate.compare_with_production(symbol, bt, production, config.gate))
    generation = new_generation()
    ledger, scored, published = record.update(
        production, bars, {s: r.payload for s, r in fits.items()}, timeframe, generation, config.model_version
    )
    log(record.log_line(ledger, scored, published))
    extra[record.LEDGER_FILE] = record.dump(ledger)
    for symbol, res in fits.items():
        symbols_meta[res.slug]["charts"]["track-record"] = f"{res.slug}.track-record.png"
        extra[f"{res.slug}.track-record.png"] = record.chart(symbol, config.model_version, ledger, bars[symbol])
    decision = gate.decide(checks)
    manifest = {
        "model_version": config.model_version,
        "run_id": config.run_id,
        "trained_at": format_utc(datetime.now(UTC)),
        "source": config.source,
        "timeframe": timeframe.name,
        "step_seconds": timeframe.seconds,
        "model_config": asdict(config.model),
        "libraries": _library_versions(),
        "timings": {
            "fetch": round(t_fetch, 3),
            "validate": round(t_validate, 3),
            "fit": round(t_fit, 3),
            "backtest": round(t_backtest, 3),
        },
        "gate": decision.to_dict(),
        "production": record.describe_production(production),
        "ledger": record.LEDGER_FILE,
        "track_record": record.summaries(ledger),
        "report": "report.md",
        "symbols": symbols_meta,
    }
    if not decision.passed:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        rejected = out / "rejected-report.md"
        rejected.write_text(report.render_markdown(manifest, manifest["gate"]), encoding="utf-8")
        msg = f"the gate refused the model, no artifact written: {decision.reason()} (report: {rejected})"
        raise TrainingError(msg)
    manifest["timings"]["export"] = round(time.perf_counter() - t0, 3)
    extra["report.md"] = report.render_markdown(manifest, manifest["gate"]).encode()
    path = write_artifact(config.out, manifest, {r.slug: r.payload for r in fits.values()}, extra, generation)
    log(
        f"wrote {path} (model {config.model_version}, {len(fits)} symbol(s)) in "
        f"{time.perf_counter() - t_start:.1f} s; gate passed; report: {path.parent / generation / 'report.md'}"
    )
    return path
