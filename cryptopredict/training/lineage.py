"""Champion and track record: read the artifact in production, score what it published, add ours.

See `cryptopredict.ledger` for the ledger itself. A training run given `--baseline-artifact`
(the artifact in production) carries that artifact's ledger forward; without one it is a first
run and the record starts with this model's own forecasts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from cryptopredict.artifact import (
    READABLE_VERSIONS,
    Artifact,
    PairGrid,
    Production,
    format_utc,
    json_bytes,
    read_artifact,
)
from cryptopredict.errors import ArtifactError, OlderSchemaError, TrainingError
from cryptopredict.ledger import Entry, Ledger
from cryptopredict.timeframes import Timeframe
from cryptopredict.training import served
from cryptopredict.training.charts import track_record_chart
from cryptopredict.training.validation import ValidatedBars

__all__ = ["LEDGER_FILE", "chart", "describe_production", "dump", "load_production", "log_line", "update"]

LEDGER_FILE = "ledger.json"


def load_production(path: str | None, log: Callable[[str], None]) -> Artifact | None:
    """The artifact in production, verified file by file (its ledger too); None on a first run."""
    if path is None:
        log("production: none given (a first run): nothing to compare with, the track record starts here")
        return None
    try:
        current = read_artifact(path)
    except OlderSchemaError as exc:
        # The production image of the code before an upgrade: sound, but of a schema this code does not
        # read. Refusing it would stop every scheduled retrain until someone intervened; this run
        # starts a new lineage instead, and says so (nothing of the old one is trusted or carried).
        log(
            f"production: {path} holds an artifact of schema {exc.version}, older than this code reads "
            f"({READABLE_VERSIONS[0]}): nothing to compare with and no track record carried; this run starts a new "
            "lineage, as a first run"
        )
        return None
    except ArtifactError as exc:
        # One line, and nothing of it is carried forward: a tampered record is never re-published.
        msg = f"--baseline-artifact: refused: {exc}"
        raise TrainingError(msg) from None
    if current.ledger is not None and current.ledger.levels != served.LEVELS:
        msg = "--baseline-artifact: its track record states other quantile levels than this code publishes"
        raise TrainingError(msg)
    held = len(current.ledger.entries) if current.ledger else 0
    log(
        f"production: model {current.model_version} ({current.manifest.generation}, trained "
        f"{current.manifest.trained_at}), track record of {held} published forecast(s)"
    )
    return current


def describe_production(current: Artifact | None) -> Production | None:
    """Who the challenger is compared with, for the manifest and the report (None: first run)."""
    if current is None:
        return None
    m = current.manifest
    return Production(
        model_version=m.model_version,
        generation=m.generation,
        run_id=m.run_id,
        trained_at=m.trained_at,
        data_end={entry.symbol: entry.data_end for entry in m.symbols.values()},
        skill={
            f.symbol: {h: e.skill.mape_ratio for h, e in f.backtest.metrics.items()} if f.backtest else {}
            for f in current.forecasts.values()
        },
    )


def _closes(v: ValidatedBars) -> list[tuple[datetime, float]]:
    frame = v.frame
    return [
        (t.to_pydatetime(), float(c)) for t, c in zip(frame["timestamp"], frame["close"], strict=True) if np.isfinite(c)
    ]


def _published(
    symbol: str,
    v: ValidatedBars,
    grid: PairGrid,
    timeframe: Timeframe,
    generation: str,
    model_version: str,
) -> list[Entry]:
    """This run's served forecast at its data end, for each scored horizon inside its grid."""
    origin = v.report.end.to_pydatetime()
    if grid.served is None:
        msg = f"{symbol}: a grid without its served forecast cannot be published"
        raise TrainingError(msg)
    history = grid.history_points
    columns = grid.served.quantiles
    out = []
    for h in timeframe.horizons:
        i = history - 1 + h.steps
        if i >= len(columns[0]):
            continue
        out.append(
            Entry(
                symbol=symbol,
                horizon=h.name,
                origin=origin,
                target=(v.report.end + pd.Timedelta(seconds=timeframe.seconds * h.steps)).to_pydatetime(),
                origin_close=float(v.frame["close"].iloc[-1]),
                quantiles=tuple(float(col[i]) for col in columns),
                generation=generation,
                model_version=model_version,
            )
        )
    return out


def update(
    current: Artifact | None,
    bars: Mapping[str, ValidatedBars],
    grids: Mapping[str, PairGrid],
    timeframe: Timeframe,
    generation: str,
    model_version: str,
) -> tuple[Ledger, int, int]:
    """Production's ledger scored against these bars, plus this run's forecasts (`grids`: the pairs
    served fresh, each with bars), bounded.

    Returns the new ledger, how many entries were scored by this run and how many it published.
    """
    ledger = (current.ledger if current is not None else None) or Ledger(levels=served.LEVELS)
    ledger, scored = ledger.score({s: _closes(v) for s, v in bars.items()}, generation)
    new = [
        e
        for symbol, grid in grids.items()
        for e in _published(symbol, bars[symbol], grid, timeframe, generation, model_version)
    ]
    before = len(ledger.entries)
    ledger = ledger.publish(new)
    published = len(ledger.entries) - before
    newest = max(v.report.end for v in bars.values()).to_pydatetime()
    return ledger.bound(newest), scored, published


def dump(ledger: Ledger) -> bytes:
    return json_bytes(ledger.to_json())


def chart(symbol: str, model_version: str, ledger: Ledger, v: ValidatedBars) -> bytes:
    frame = v.frame
    dates = pd.DatetimeIndex(frame["timestamp"]).tz_convert("UTC").tz_localize(None)
    return track_record_chart(symbol, model_version, ledger, dates, frame["close"].to_numpy(float))


def log_line(ledger: Ledger, scored: int, published: int) -> str:
    if not ledger.entries:
        return "track record: empty"
    pending = sum(1 for e in ledger.entries if e.actual is None)
    newest = format_utc(max(e.target for e in ledger.entries))
    return (
        f"track record: {scored} published forecast(s) scored by this run, {published} added; "
        f"{len(ledger.entries)} kept ({pending} pending), newest target {newest}"
    )
