"""The HTTP endpoints: the original `/bitcoin` contract and the `/v1` API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from cryptopredict.alerts.evaluate import holds as holds_now
from cryptopredict.alerts.rules import parse_horizon as parse_rule_horizon
from cryptopredict.alerts.rules import utc_midnight
from cryptopredict.alerts.states import RuleState
from cryptopredict.artifact import BacktestRecord, Manifest, PairEntry, SymbolForecast, format_utc, to_json
from cryptopredict.ledger import RETENTION_DAYS
from cryptopredict.serving.anchor import Anchor, artifact_anchor
from cryptopredict.serving.contract import checked
from cryptopredict.serving.errors import ApiError
from cryptopredict.serving.hotpath import VOLATILE
from cryptopredict.serving.lookup import (
    OutOfRange,
    Point,
    at,
    between,
    check_levels,
    probability_at,
    quantiles_at,
)
from cryptopredict.serving.state import ServingState
from cryptopredict.serving.track_record import PairRecord
from cryptopredict.timeframes import symbol_to_slug

__all__ = ["bp"]

bp = Blueprint("forecast", __name__)
BITCOIN = "BTC-USD"


def _state() -> ServingState:
    return current_app.extensions["cryptopredict"]


def _forecast_for(slug: str) -> SymbolForecast:
    """A served pair's forecast by its canonical spelling; 404 naming the served ones."""
    state = _state()
    fc = state.artifact.forecasts.get(slug)
    if fc is None:
        served = ", ".join(state.artifact.forecasts)
        raise ApiError(
            404,
            "Unknown symbol",
            f"{slug} is not served; served symbols: {served}",
            "unknown-symbol",
            extra={"served": list(state.artifact.forecasts)},
        )
    return fc


def _anchor(fc: SymbolForecast, model: str = "served") -> Anchor | None:
    """What the pair's served forecast rests on now; Prophet's own forecast is never re-anchored."""
    return _state().anchor(fc.slug) if model == "served" else None


def _at(fc: SymbolForecast, name: str, when: datetime, model: str = "served", anchor: Anchor | None = None) -> Point:
    try:
        return at(fc, when, model, anchor)
    except OutOfRange as exc:
        raise _out_of_range(name, fc, exc) from None


def _levels(fc: SymbolForecast, model: str, levels: list[float] | str | None) -> list[float] | None:
    """The `quantiles` asked for (`all`: every published one), checked against the published ones, or None; only
    the served forecast has them."""
    if levels is None:
        return None
    if model != "served":
        raise ApiError.bad_param("quantiles", "quantiles are published for the served forecast only (drop model)")
    if levels == "all":
        return list(fc.levels)
    try:
        check_levels(fc, levels)
    except ValueError as exc:
        raise ApiError.bad_param("quantiles", str(exc), 422) from None
    return levels


def _quantiles_json(fc: SymbolForecast, when: datetime, levels: list[float], anchor: Anchor | None) -> dict[str, float]:
    return {f"{p:g}": v for p, v in zip(levels, quantiles_at(fc, when, levels, anchor), strict=True)}


def _target(fc: SymbolForecast, date: datetime | None, horizon: timedelta | None) -> tuple[str, datetime]:
    """The bar asked for, by `date` or by `horizon` after the anchor's close, and the parameter that named it.

    The anchor's close is the end of the bar it stands for (its grid time); the bar that closes `horizon`
    after it has the label grid + horizon. The served anchor is the one that counts, for Prophet's own
    forecast too: "in 7 days" means the same instant whichever forecast is asked."""
    if horizon is None:
        if date is None:
            raise ApiError.bad_param("date", "required: give date or horizon")
        return "date", date
    if date is not None:
        raise ApiError.bad_param("horizon", "give either date or horizon, not both")
    return "horizon", _state().anchor(fc.slug).grid + horizon


def _out_of_range(name: str, fc: SymbolForecast, exc: OutOfRange) -> ApiError:
    return ApiError.bad_param(
        name,
        f"{fc.slug} is served from {format_utc(exc.first)} to {format_utc(exc.last)} "
        f"(data from {format_utc(fc.start)} to {format_utc(fc.history_end)}, then the forecast)",
        422,
        valid_range={"start": format_utc(exc.first), "end": format_utc(exc.last)},
    )


def _point_json(p: Point, step: timedelta) -> dict[str, Any]:
    return {
        "date": format_utc(p.date),
        "time": format_utc(p.date + step),
        "kind": p.kind,
        "prediction": p.prediction,
        "prediction_low": p.prediction_low,
        "prediction_high": p.prediction_high,
        "actual_close": p.actual_close,
    }


@bp.get("/bitcoin")
@checked("bitcoin")
def bitcoin(date: datetime, model: str) -> ResponseReturnValue:
    """The original public contract: BTC/USD at one date, four fields, unchanged."""
    fc = _state().artifact.forecasts.get(BITCOIN)
    if fc is None:
        raise ApiError(404, "Not served", "this deployment does not serve BTC-USD", "unknown-symbol")
    p = _at(fc, "date", date, model, _anchor(fc, model))
    return jsonify(
        date=p.date.replace(tzinfo=None).isoformat(timespec="seconds"),
        prediction=p.prediction,
        prediction_low=p.prediction_low,
        prediction_high=p.prediction_high,
    )


@bp.get("/v1/forecast/<anything:symbol>")
@checked("forecast")
def forecast(
    symbol: str,
    date: datetime | None,
    horizon: timedelta | None,
    start: datetime | None,
    end: datetime | None,
    model: str,
    quantiles: list[float] | str | None,
    format: str,
    step: int,
) -> ResponseReturnValue:
    """One point (`date` or `horizon`) or a series of grid points (`start` and `end`), as points or columns."""
    fc = _forecast_for(symbol)
    levels = _levels(fc, model, quantiles)
    anchor = _anchor(fc, model)
    head = _head(fc, model, anchor)
    if date is not None or horizon is not None:
        if start is not None or end is not None:
            raise ApiError.bad_param("horizon" if date is None else "date", "give either one point, or start and end")
        for name, value, default in (("format", format, "points"), ("step", step, 1)):
            if value != default:
                raise ApiError.bad_param(name, "shapes a series: give start and end")
        name, when = _target(fc, date, horizon)
        p = _at(fc, name, when, model, anchor)
        extra = {"quantiles": _quantiles_json(fc, p.date, levels, anchor)} if levels else {}
        return jsonify({**head, **_point_json(p, fc.step), **extra})
    if start is None and end is None:
        raise ApiError.bad_param("date", "required: give date or horizon, or start and end")
    if start is None or end is None:
        missing = "start" if start is None else "end"
        raise ApiError.bad_param(missing, "required with the other end of the range; give start and end")
    if start > end:
        raise ApiError.bad_param("start", f"must not be after end ({format_utc(start)} > {format_utc(end)})")
    cap = _state().settings.max_series_points
    try:
        points = between(fc, start, end, cap, model, anchor, step)
    except OutOfRange as exc:
        outside = "start" if not exc.first <= start <= exc.last else "end"
        raise _out_of_range(outside, fc, exc) from None
    except ValueError as exc:
        raise ApiError.bad_param("end", f"{exc}; narrow the range or raise step", 422, max_points=cap) from None
    series = {**head, "start": format_utc(start), "end": format_utc(end), "step": step, "count": len(points)}
    if format == "columns":
        return jsonify({**series, "columns": _columns_json(fc, points, levels, anchor)})
    return jsonify(
        {
            **series,
            "points": [
                {
                    **_point_json(p, fc.step),
                    **({"quantiles": _quantiles_json(fc, p.date, levels, anchor)} if levels else {}),
                }
                for p in points
            ],
        }
    )


def _columns_json(
    fc: SymbolForecast, points: list[Point], levels: list[float] | None, anchor: Anchor | None
) -> dict[str, Any]:
    """A series as one array per field (the shape chart libraries take), each level's prices an array too."""
    columns: dict[str, Any] = {
        "time": [format_utc(p.date + fc.step) for p in points],
        "date": [format_utc(p.date) for p in points],
        "kind": [p.kind for p in points],
        "median": [p.prediction for p in points],
        "low": [p.prediction_low for p in points],
        "high": [p.prediction_high for p in points],
        "actual": [p.actual_close for p in points],
    }
    if levels:
        per_point = [quantiles_at(fc, p.date, levels, anchor) for p in points]
        columns["quantiles"] = {f"{q:g}": [row[k] for row in per_point] for k, q in enumerate(levels)}
    return columns


def _head(fc: SymbolForecast, model: str, anchor: Anchor | None) -> dict[str, Any]:
    return {
        "symbol": fc.slug,
        "pair": fc.symbol,
        "timeframe": fc.timeframe,
        "model_version": _state().artifact.model_version,
        "model": model,
        # What the forecast after the data rests on (null for Prophet's own, which is never re-anchored).
        "anchor": anchor.to_json() if anchor is not None else None,
    }


@bp.get("/v1/forecast/<anything:symbol>/probability")
@checked("probability")
def probability(
    symbol: str, date: datetime | None, horizon: timedelta | None, above: list[float] | None, below: list[float] | None
) -> ResponseReturnValue:
    """The probability, under the served forecast, that the close of a bar is above (or below) each price."""
    fc = _forecast_for(symbol)
    if (above is None) == (below is None):
        raise ApiError.bad_param("above", "give exactly one of above or below (a price in USD, or several)")
    side, prices = ("above", above) if above is not None else ("below", below)
    anchor = _anchor(fc)
    name, when = _target(fc, date, horizon)
    p = _at(fc, name, when, anchor=anchor)
    values, bounds = [], []
    for price in prices:
        value, bound = probability_at(fc, p.date, side, price, anchor)
        values.append(value)
        bounds.append(bound)
    # One price: the answer as it always was (the price under its side's name); several: the curve alone.
    single = {side: prices[0], "probability": values[0], "bound": bounds[0]} if len(prices) == 1 else {}
    return jsonify(
        {
            **_head(fc, "served", anchor),
            "date": format_utc(p.date),
            "time": format_utc(p.date + fc.step),
            "kind": p.kind,
            **single,
            "side": side,
            "prices": prices,
            "probabilities": values,
            "bounds": bounds,
            "prediction": p.prediction,
            "actual_close": p.actual_close,
        }
    )


@bp.get("/v1/symbols")
@checked("symbols")
def symbols() -> ResponseReturnValue:
    """What is served: each symbol's data window, horizon and timeframe."""
    state = _state()
    entries = state.artifact.manifest.symbols
    return jsonify(
        model_version=state.artifact.model_version,
        symbols=[
            {
                "symbol": fc.slug,
                "pair": fc.symbol,
                "timeframe": fc.timeframe,
                "step_seconds": int(fc.step.total_seconds()),
                "rows": entries[fc.slug].rows,
                "data_start": format_utc(fc.start),
                "data_end": format_utc(fc.history_end),
                "data_end_time": format_utc(fc.history_end + fc.step),
                "forecast_end": format_utc(fc.end),
                "horizon_steps": fc.points - fc.history_points,
                "forecast_url": f"/v1/forecast/{fc.slug}",
                "anchor": state.anchor(fc.slug).to_json(),
                "carried": carried(entries[fc.slug], state.artifact.manifest),
            }
            for fc in state.artifact.forecasts.values()
        ],
    )


@bp.get("/v1/model")
@checked("model")
def model() -> ResponseReturnValue:
    """The model behind the answers: version, training time and data, settings, metrics."""
    m = _state().artifact.manifest
    return jsonify(
        model_version=m.model_version,
        trained_at=m.trained_at,
        source=m.source,
        timeframe=m.timeframe,
        model_config=to_json(m.model_config) if m.model_config is not None else {},
        libraries=dict(m.libraries),
        symbols={
            slug: {
                "pair": entry.symbol,
                "rows": entry.rows,
                "data_start": entry.data_start,
                "data_end": entry.data_end,
                "forecast_end": entry.forecast_end,
                "gaps": len(entry.validation.gaps),
                "warnings": list(entry.validation.warnings),
                "backtest": to_json(entry.backtest),
                "carried": carried(entry, m),
                "verdict": _verdict(entry.backtest),
            }
            for slug, entry in m.symbols.items()
        },
        left_out=dict(m.skipped),
        gate=to_json(m.gate),
    )


def carried(entry: PairEntry, manifest: Manifest) -> dict[str, Any] | None:
    """A carried pair's provenance with its age in days at this model's training; None for a fresh pair."""
    c = entry.carried
    if c is None:
        return None
    return {**to_json(c), "age_days": round(c.age_days(manifest.trained_at), 2)}


def _verdict(backtest: BacktestRecord | None) -> str:
    """Say plainly, per horizon, what the served forecast is and how it did against the last close."""
    if not backtest:
        return "not backtested: the served forecast is the last close with volatility-scaled quantiles"
    return "; ".join(e.summary for e in backtest.metrics.values())


def _record_for(slug: str) -> PairRecord:
    """A pair's track record by its canonical spelling; 404 for one without a record."""
    records = _state().track_record
    if slug not in records:
        have = ", ".join(records) or "none yet"
        raise ApiError(
            404,
            "No track record",
            f"{slug} has no published forecasts in this deployment's record; pairs with one: {have}",
            "unknown-symbol",
            extra={"served": list(records)},
        )
    return records[slug]


def _record_head() -> dict[str, Any]:
    m = _state().artifact.manifest
    return {"model_version": m.model_version, "generation": m.generation, "retention_days": RETENTION_DAYS}


@bp.get("/v1/track-record")
@checked("trackRecord")
def track_record() -> ResponseReturnValue:
    """Every pair's record in summary: what production models published and how it turned out."""
    return jsonify(
        {
            **_record_head(),
            "symbols": {
                slug: {
                    "pair": r.symbol,
                    "horizons": {h: v["summary"] for h, v in r.horizons.items()},
                    "url": f"/v1/track-record/{slug}",
                }
                for slug, r in _state().track_record.items()
            },
        }
    )


@bp.get("/v1/track-record/<anything:symbol>")
@checked("trackRecordPair")
def track_record_pair(symbol: str, horizon: str | None) -> ResponseReturnValue:
    """One pair's published forecasts, per horizon, each scored once its target is known."""
    rec = _record_for(symbol)
    if horizon is not None and horizon not in rec.horizons:
        raise ApiError.bad_param(
            "horizon", f"{symbol} has no record at {horizon}; recorded horizons: {', '.join(rec.horizons)}", 422
        )
    chosen = {horizon: rec.horizons[horizon]} if horizon is not None else rec.horizons
    return jsonify(
        {
            **_record_head(),
            "symbol": symbol,
            "pair": rec.symbol,
            "horizons": [{"horizon": h, **v} for h, v in chosen.items()],
        }
    )


@bp.get("/v1/alerts")
@checked("alerts")
def alerts() -> ResponseReturnValue:
    """The watch rules, each evaluated now at the anchor `/probability` answers at, beside the evaluation the
    training run made (the one that decided whether the rule fired and was posted)."""
    state = _state()
    artifact = state.artifact
    states = artifact.alerts
    trained_at = artifact.manifest.trained
    rules = []
    for s in states.states if states is not None else ():
        fc = artifact.forecasts.get(symbol_to_slug(s.rule.pair))
        value, holds, anchor, when, check = _alert_now(fc, s)
        rules.append(
            {
                # webhook_env names a secret; its name is not one, but nothing about delivery is shown
                **{k: v for k, v in s.rule.to_json().items() if k != "webhook_env"},
                "watches": s.rule.describe(),
                "value": value,
                "holds": holds,
                "anchor": anchor.to_json() if anchor is not None else None,
                "time": format_utc(when) if when is not None else None,
                "check": check,
                "fired": s.fired,
                "detail": s.detail,
                "at_training": {
                    "value": s.value,
                    "holds": s.active,
                    "anchor": artifact_anchor(fc, trained_at).to_json() if anchor is not None else None,
                },
            }
        )
    return jsonify(
        model_version=artifact.model_version,
        generation=artifact.manifest.generation,
        error=states.error if states is not None else None,
        rules=rules,
    )


def _alert_now(
    fc: SymbolForecast | None, s: RuleState
) -> tuple[float | None, bool, Anchor | None, datetime | None, str | None]:
    """A rule's value and whether it holds at the pair's current anchor, that anchor, the close it looks at and
    the URL that answers the same question; a track-record rule (band_misses) keeps training's evaluation."""
    rule = s.rule
    if fc is None or rule.kind == "band_misses":
        return s.value, s.active, None, None, None
    anchor = _state().anchor(fc.slug)
    target = anchor.grid + parse_rule_horizon(rule.horizon) if rule.horizon else utc_midnight(rule.date or "")
    asked = f"horizon={rule.horizon}" if rule.horizon else f"date={rule.date}"
    try:
        if rule.kind == "median_move":
            median = at(fc, target, anchor=anchor).prediction
            # The median published before this model: the one training compared with (basis / (1 + move)).
            before = s.basis / (1 + s.value) if s.basis is not None and s.value is not None else None
            value = None if before is None else float(f"{median / before - 1:.10g}")
            check = f"/v1/forecast/{fc.slug}?{asked}"
        else:
            side = "above" if rule.kind == "probability_above" else "below"
            value, _ = probability_at(fc, target, side, rule.price or 0.0, anchor)
            check = f"/v1/forecast/{fc.slug}/probability?{asked}&{side}={rule.price:.10g}"
    except OutOfRange:  # a live anchor carried the target past the forecast: nothing to measure
        return None, False, anchor, None, None
    return value, holds_now(rule, value), anchor, target + fc.step, check


@bp.get("/healthz")
@checked("healthz")
def healthz() -> ResponseReturnValue:
    """Liveness, which model this process serves, and how the live price feed is doing."""
    state = _state()
    if state.feed is not None:
        request.environ[VOLATILE] = True  # the feed's age changes by the second: never replayed
    response = jsonify(
        status="ok",
        model_version=state.artifact.model_version,
        trained_at=state.artifact.manifest.trained_at,
        # Unique to the training run: what a deploy's smoke test checks to tell new from old.
        generation=state.artifact.manifest.generation,
        run_id=state.artifact.manifest.run_id,
        symbols=list(state.artifact.forecasts),
        live_prices=state.feed.health() if state.feed is not None else {"state": "off"},
    )
    # A liveness probe asks the server, never a cache; the answer also reports the feed's age.
    response.headers["Cache-Control"] = "no-store"
    return response
