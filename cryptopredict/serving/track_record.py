"""The track record as the API serves it: built once per process from the artifact's ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptopredict.artifact import Artifact, format_utc
from cryptopredict.ledger import Entry, Ledger, summarize
from cryptopredict.timeframes import symbol_to_slug

__all__ = ["PairRecord", "build"]


@dataclass(frozen=True, slots=True)
class PairRecord:
    """One pair's record: per horizon (shortest first) its summary and entries, as JSON-ready dicts."""

    symbol: str  # 'BTC/USD'
    horizons: Mapping[str, Mapping[str, Any]]  # horizon -> {"summary": ..., "entries": [...]}


def _entry_json(ledger: Ledger, e: Entry) -> dict[str, Any]:
    lo, hi = ledger.band_indices()
    scores = ledger.scores(e)
    status = "pending" if scores is None else "held" if scores["in_80"] else "missed"
    return {
        "origin": format_utc(e.origin),
        "target": format_utc(e.target),
        "origin_close": e.origin_close,
        "prediction": e.quantiles[ledger.median_index],
        "prediction_low": e.quantiles[lo],
        "prediction_high": e.quantiles[hi],
        "actual_close": e.actual,
        "status": status,
        "abs_pct_error": None if scores is None else scores["abs_pct_error"],
        "naive_abs_pct_error": None if scores is None else scores["naive_abs_pct_error"],
        "pinball": None if scores is None else scores["pinball"],
        "model_version": e.model_version,
        "generation": e.generation,
    }


def build(artifact: Artifact) -> dict[str, PairRecord]:
    """Every pair in the artifact's ledger, by slug (empty when the artifact has no ledger)."""
    ledger = artifact.ledger
    if ledger is None:
        return {}
    out = {}
    for symbol in ledger.symbols:
        horizons = {
            h: {"summary": summarize(ledger, entries), "entries": [_entry_json(ledger, e) for e in entries]}
            for h, entries in ledger.series(symbol).items()
        }
        out[symbol_to_slug(symbol)] = PairRecord(symbol=symbol, horizons=horizons)
    return out
