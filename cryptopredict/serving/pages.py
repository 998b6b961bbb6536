"""For people and tools: the landing page, Swagger UI, the OpenAPI document, the charts."""

from __future__ import annotations

import hashlib
import io
import threading

from flask import Blueprint, current_app, jsonify, render_template, request, send_file
from flask.typing import ResponseReturnValue

from cryptopredict.serving.errors import ApiError
from cryptopredict.serving.lookup import MODELS
from cryptopredict.serving.openapi import document
from cryptopredict.serving.params import check_known, parse_model
from cryptopredict.serving.routes import BITCOIN, _forecast_for, _record_for, _state, _verdict

__all__ = ["bp"]

bp = Blueprint("pages", __name__)
_KINDS = {"chart.png": "forecast", "components.png": "components"}
# Charts are read on first request and kept: a few hundred kB per pair, checked against the
# manifest's SHA-256 like every other artifact file.
_charts: dict[tuple[str, str, str], bytes] = {}
_charts_lock = threading.Lock()


def _chart_bytes(slug: str, kind: str) -> bytes:
    artifact = _state().artifact
    key = (artifact.manifest["generation"], slug, kind)
    with _charts_lock:
        if key in _charts:
            return _charts[key]
    name = (artifact.manifest["symbols"].get(slug, {}).get("charts") or {}).get(kind)
    if name is None:
        raise ApiError(404, "No chart", f"this artifact has no {kind} chart for {slug}", "no-chart")
    data = artifact.file_path(name).read_bytes()
    if hashlib.sha256(data).hexdigest() != artifact.manifest["files"][name]:
        raise ApiError(404, "No chart", f"the {kind} chart for {slug} changed on disk since start", "no-chart")
    with _charts_lock:
        _charts[key] = data
    return data


def _send_chart(slug: str, kind: str) -> ResponseReturnValue:
    if kind == "forecast":
        # The served forecast's chart by default; Prophet's own with model=prophet.
        check_known(request.args, ("model",))
        if parse_model(request.args, MODELS) == "prophet":
            kind = "prophet"
    else:
        check_known(request.args, ())
    data = _chart_bytes(slug, kind)
    artifact = _state().artifact
    response = send_file(
        io.BytesIO(data),
        mimetype="image/png",
        # The generation too: a scheduled retrain keeps the version but redraws every chart.
        etag=f"{artifact.model_version}-{artifact.manifest['generation']}-{slug}-{kind}",
        conditional=True,
        max_age=3600,
        last_modified=None,
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/bitcoin/forecast")
def bitcoin_forecast() -> ResponseReturnValue:
    """BTC/USD's forecast chart (the original contract)."""
    return _send_chart(_forecast_for(BITCOIN).slug, "forecast")


@bp.get("/bitcoin/trends")
def bitcoin_trends() -> ResponseReturnValue:
    """BTC/USD's trend and seasonality chart (the original contract)."""
    return _send_chart(_forecast_for(BITCOIN).slug, "components")


@bp.get("/v1/forecast/<anything:symbol>/<any('chart.png', 'components.png'):name>")
def chart(symbol: str, name: str) -> ResponseReturnValue:
    """A pair's forecast or components chart."""
    return _send_chart(_forecast_for(symbol).slug, _KINDS[name])


@bp.get("/v1/track-record/<anything:symbol>/chart.png")
def track_record_chart(symbol: str) -> ResponseReturnValue:
    """A pair's published forecasts and their 80% bands against the actual closes."""
    return _send_chart(_record_for(symbol)[0], "track-record")


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """The OpenAPI 3.1 document."""
    check_known(request.args, ())
    return jsonify(document(_state().artifact.model_version))


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """Swagger UI, from local assets only."""
    check_known(request.args, ())
    return render_template("docs.html")


@bp.get("/")
def home() -> ResponseReturnValue:
    """A page for people: each pair's chart, the model, its backtest, links to the docs."""
    check_known(request.args, ())
    artifact = _state().artifact
    m = artifact.manifest
    pairs = [
        {
            "slug": slug,
            "pair": meta.get("symbol", slug),
            "meta": meta,
            "backtest": meta.get("backtest"),
            "verdict": _verdict(meta.get("backtest")),
            "has_chart": bool((meta.get("charts") or {}).get("forecast")),
            "record": _state().track_record.get(slug),
            "has_record_chart": bool((meta.get("charts") or {}).get("track-record")),
        }
        for slug, meta in m["symbols"].items()
    ]
    return render_template("home.html", m=m, pairs=pairs, gate=m.get("gate"), app=current_app)
