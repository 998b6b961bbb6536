"""For people and tools: the landing page, Swagger UI, the OpenAPI document, the charts."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from cryptopredict.serving import lookup
from cryptopredict.serving.contract import checked
from cryptopredict.serving.errors import ApiError
from cryptopredict.serving.openapi import document
from cryptopredict.serving.routes import BITCOIN, _forecast_for, _record_for, _state, _verdict, carried
from cryptopredict.timeframes import format_utc

__all__ = ["bp"]

bp = Blueprint("pages", __name__)

CHART_MAX_AGE = 3600  # seconds a browser or proxy may keep a chart


def _send_chart(slug: str, kind: str) -> ResponseReturnValue:
    """A chart's bytes (read and verified with the artifact at start) with an ETag for its generation.

    The body is the artifact's own bytes object, one chunk (not send_file's file wrapper, whose 8 KiB
    chunks the hot path would join into a copy): a chart kept by the memo is held once in memory."""
    artifact = _state().artifact
    entry = artifact.manifest.symbols.get(slug)
    name = entry.charts.get(kind) if entry is not None else None
    if name is None:
        raise ApiError(404, "No chart", f"this artifact has no {kind} chart for {slug}", "no-chart")
    data = artifact.charts[name]
    response = current_app.response_class(data, mimetype="image/png")
    response.cache_control.public = True
    response.cache_control.max_age = CHART_MAX_AGE
    response.expires = int(time.time() + CHART_MAX_AGE)
    # The generation too: a scheduled retrain keeps the version but redraws every chart.
    response.set_etag(f"{artifact.model_version}-{artifact.manifest.generation}-{slug}-{kind}")
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))


def _forecast_kind(model: str) -> str:
    """The served forecast's chart by default; Prophet's own with model=prophet."""
    return "prophet" if model == "prophet" else "forecast"


@bp.get("/bitcoin/forecast")
@checked("bitcoinForecastChart")
def bitcoin_forecast(model: str) -> ResponseReturnValue:
    """BTC/USD's forecast chart (the original contract)."""
    return _send_chart(_forecast_for(BITCOIN).slug, _forecast_kind(model))


@bp.get("/bitcoin/trends")
@checked("bitcoinTrendsChart")
def bitcoin_trends() -> ResponseReturnValue:
    """BTC/USD's trend and seasonality chart (the original contract)."""
    return _send_chart(_forecast_for(BITCOIN).slug, "components")


@bp.get("/v1/forecast/<anything:symbol>/chart.png")
@checked("forecastChart")
def chart(symbol: str, model: str) -> ResponseReturnValue:
    """A pair's forecast chart."""
    return _send_chart(_forecast_for(symbol).slug, _forecast_kind(model))


@bp.get("/v1/forecast/<anything:symbol>/components.png")
@checked("componentsChart")
def components_chart(symbol: str) -> ResponseReturnValue:
    """A pair's trend and seasonality chart."""
    return _send_chart(_forecast_for(symbol).slug, "components")


@bp.get("/v1/track-record/<anything:symbol>/chart.png")
@checked("trackRecordChart")
def track_record_chart(symbol: str) -> ResponseReturnValue:
    """A pair's published forecasts and their 80% bands against the actual closes."""
    _record_for(symbol)
    return _send_chart(symbol, "track-record")


@bp.get("/openapi.json")
@checked("openapi")
def openapi_json() -> ResponseReturnValue:
    """The OpenAPI 3.1 document."""
    return jsonify(document(_state().artifact.model_version))


@bp.get("/docs")
@checked("docs")
def docs() -> ResponseReturnValue:
    """Swagger UI, from local assets only."""
    return render_template("docs.html")


@bp.get("/")
@checked("home")
def home() -> ResponseReturnValue:
    """A page for people: a table of every pair, the live chart (drawn in the browser by static/page.js from the
    API's JSON), the model, its backtest, the docs."""
    state = _state()
    m = state.artifact.manifest
    pairs = []
    for slug, meta in m.symbols.items():
        fc = state.artifact.forecasts.get(slug)
        anchor = state.anchor(slug) if fc is not None else None
        last = lookup.at(fc, fc.end, anchor=anchor) if fc is not None else None
        pairs.append(
            {
                "slug": slug,
                "pair": meta.symbol,
                "meta": meta,
                "backtest": meta.backtest,
                "verdict": _verdict(meta.backtest),
                "has_chart": bool(meta.charts.get("forecast")),
                "record": state.track_record.get(slug),
                "has_record_chart": bool(meta.charts.get("track-record")),
                "last_close": _last_close(fc.actual) if fc is not None else None,
                "at_end": last,
                "anchor": anchor,
                "end": format_utc(fc.end) if fc is not None else None,
                "carried": carried(meta, m),
            }
        )
    return render_template(
        "home.html",
        m=m,
        pairs=pairs,
        gate=m.gate,
        skipped=m.skipped,
        live=state.feed is not None,
        interval=state.settings.live_prices_interval,
        app=current_app,
    )


def _last_close(actual: tuple[float | None, ...]) -> float | None:
    return next((v for v in reversed(actual) if v is not None), None)
