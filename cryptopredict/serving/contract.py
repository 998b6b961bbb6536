"""The API's contract: one declaration per operation, which the routes check every request against
and from which `openapi.py` writes the document, so the two cannot disagree.

A parameter the document does not declare is refused (400); a value outside its documented form
(its pattern, its length) is refused (400) naming the parameter; a value in the documented form
that cannot be accepted (a 31 June, a level of 1.5, a date outside the served window) is a 422.
`tests/test_contract.py` sends values the document allows and values it forbids and checks that
the server agrees. (Why not flask-openapi3: it brings pydantic, 10 MB installed, and measured here
took the server's imports from about 0.21 s to 0.37 s; see the README's API section.)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import request
from werkzeug.datastructures import MultiDict

from cryptopredict.serving.errors import PROBLEM_TYPES, ApiError
from cryptopredict.serving.params import (
    MAX_LEVELS,
    MAX_PARAM_LENGTH,
    MAX_PRICES,
    MAX_STEP,
    check_known,
    parse_horizon,
    parse_levels,
    parse_prices,
    parse_slug,
    parse_step,
    parse_when,
    single,
)

__all__ = ["CONTRACT_VERSION", "OPERATIONS", "PROBLEM_TYPES", "Operation", "Param", "checked"]

# The contract's semantic version, the document's info.version: the major number moves when an answer or a
# parameter a client relies on changes or goes, the minor when one is added (1.1: explicit time, horizon,
# columns, step, quantiles=all, probability curves, alerts at the anchor), the patch for words alone (1.1.1:
# model=prophet says it is served to 7 significant digits).
CONTRACT_VERSION = "1.1.1"


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class Param:
    """One query or path parameter: what the document shows, and exactly what the route accepts."""

    name: str
    description: str
    pattern: str
    form: str  # the documented form in words, for the refusal ("a pair like BTC-USD")
    required: bool = False
    where: str = "query"
    example: str | None = None
    parse: Callable[[str], Any] = str  # a value in the documented form -> the route's value; ValueError -> 422
    default: Any = None
    max_length: int = MAX_PARAM_LENGTH

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": self.max_length, "pattern": self.pattern}
        if self.example is not None:
            s["examples"] = [self.example]
        return s

    def to_openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": self.schema(),
        }

    def read(self, raw: str) -> Any:
        """Check `raw` against the documented form (400 when outside it), then parse it (422 when refused)."""
        if len(raw) > self.max_length:
            raise self._refuse(f"too long ({len(raw):,} characters, at most {self.max_length})")
        if not _regex(self.pattern).fullmatch(raw):  # fullmatch: '$' would let a final newline through
            shown = raw if raw.isprintable() else repr(raw)
            raise self._refuse(f"{shown!r} is not {self.form}")
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ApiError.bad_param(self.name, str(exc), 422, location=self.where, kind="unacceptable-value") from None

    def _refuse(self, reason: str) -> ApiError:
        return ApiError.bad_param(self.name, reason, location=self.where)


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint: its path, its parameters, and what it answers."""

    path: str
    operation_id: str
    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    ok: dict[str, Any] = field(default_factory=dict)  # the 200 response's content
    errors: tuple[int, ...] = (400,)
    cached: bool = False  # answers carry an ETag and honour If-None-Match (every JSON answer does too)

    @property
    def validated(self) -> bool:
        """Whether a 200 carries an ETag and If-None-Match may answer 304: charts, and every JSON answer."""
        return self.cached or _JSON_OK in self.ok

    @property
    def query_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.where == "query")

    def read(self, args: MultiDict[str, str], path: Mapping[str, str]) -> dict[str, Any]:
        """Every declared parameter, checked and parsed (its default when absent); refuse undeclared ones."""
        check_known(args, self.query_names)
        values: dict[str, Any] = {}
        for p in self.params:
            raw = (
                path[p.name]
                if p.where == "path"
                else single(args, p.name, required=p.required, expected=p.form, max_length=p.max_length)
            )
            values[p.name] = p.default if raw is None else p.read(raw)
        return values


def checked(operation_id: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route decorator: the view gets the operation's parameters checked and parsed, by name."""
    op = OPERATIONS[operation_id]

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked_view(**path: str) -> Any:
            return view(**op.read(request.args, path))

        checked_view.operation = op  # type: ignore[attr-defined]  # tests match routes to the document
        return checked_view

    return decorate


_WHEN = (
    "A date (`2024-06-01`) or ISO 8601 datetime (`2024-06-01T12:00:00Z`); a naive time is UTC, an "
    "offset is converted to UTC. It names a bar by its label, the instant the bar opens (as the data "
    "does): the answer's `time` is when that bar closes, one step later. Between two bars the value "
    "is interpolated linearly."
)
_WHEN_FORM = "an ISO 8601 date like 2024-06-01 or datetime like 2024-06-01T12:00:00Z"
# The forms datetime.fromisoformat reads: a date, then optionally a time (hours, minutes, seconds,
# up to 6 fraction digits) with an optional offset. A form that is right but names no real instant
# (2024-02-30, 25:00) is a 422.
# [0-9], never \d: Python's \d takes any Unicode digit, JSON Schema's (ECMA-262) only ASCII ones.
_WHEN_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
_NUMBER = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?"


def _when(name: str, description: str, *, required: bool = False, example: str | None = None) -> Param:
    return Param(name, description, _WHEN_PATTERN, _WHEN_FORM, required, example=example, parse=parse_when)


def _prices(name: str, description: str, example: str | None = None) -> Param:
    return Param(
        name, description, rf"^{_NUMBER}(,{_NUMBER}){{0,{MAX_PRICES - 1}}}$",
        f"up to {MAX_PRICES} comma-separated plain decimal numbers such as 65000 or 6.5e4,7e4", example=example,
        parse=parse_prices, max_length=_PRICES_LENGTH,
    )  # fmt: skip


# Long enough for every published level written out (107 characters) or MAX_PRICES prices.
_LEVELS_LENGTH = 256
_PRICES_LENGTH = 1024

_HORIZON = Param(
    "horizon",
    "A lead time counted from the anchor's close, instead of `date`: `7d` (days) or `24h` (hours). The answer is "
    "the bar that closes that long after the anchor's `time` (after the data's last close, or after a live price).",
    r"^[0-9]{1,4}[dh]$",
    "a lead time like 7d or 24h",
    example="7d",
    parse=parse_horizon,
)
_FORMAT = Param(
    "format",
    "The shape of a series (`start` and `end`): `points` (the default: an array of point objects) or `columns` "
    "(one array per field, the shape a chart library takes: `time`, `date`, `kind`, `median`, `low`, `high`, "
    "`actual`, one array per requested quantile level).",
    r"^(points|columns)$",
    "one of: points, columns",
    example="columns",
    default="points",
)
_STEP = Param(
    "step",
    f"Keep every Nth grid point of a series, from `start` (1, the default, keeps all; at most {MAX_STEP}): a whole "
    "history in one call within the point limit.",
    r"^[0-9]{1,4}$",
    f"a whole number from 1 to {MAX_STEP}",
    example="7",
    parse=parse_step,
    default=1,
)


_SYMBOL = Param(
    "symbol",
    "A served pair, spelled like `BTC-USD` (any case).",
    r"^[A-Za-z0-9]{1,12}-[A-Za-z]{2,6}$",
    "a pair like BTC-USD",
    where="path",
    example="BTC-USD",
    parse=parse_slug,
)
_DATE_REQUIRED = _when("date", _WHEN, required=True, example="2026-06-01")
_MODEL = Param(
    "model",
    "Which forecast: `served` (the default: anchored at the last close, Prophet's predicted change "
    "weighted by the skill it showed out of sample, calibrated quantiles) or `prophet` (Prophet's own "
    "forecast and 80% interval, as fitted, to 7 significant digits, for comparison).",
    r"^(served|prophet)$",
    "one of: served, prophet",
    example="served",
    default="served",
)
_QUANTILES = Param(
    "quantiles",
    f"Comma-separated probability levels strictly between 0 and 1 (at most {MAX_LEVELS}, each once), or `all` "
    "(every published level); the answer adds the served forecast's price at each. Published: 0.01, 0.025, 0.05, "
    "0.1 to 0.9 by 0.05, 0.95, 0.975, 0.99; a level between two published ones is interpolated in log price.",
    rf"^(all|{_NUMBER}(,{_NUMBER}){{0,{MAX_LEVELS - 1}}})$",
    f"all, or up to {MAX_LEVELS} comma-separated decimal numbers like 0.05,0.5,0.95",
    example="0.05,0.5,0.95",
    parse=parse_levels,
    max_length=_LEVELS_LENGTH,
)

_JSON_OK = "application/json"


def _json(ref: str) -> dict[str, Any]:
    return {_JSON_OK: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


# format: binary beside contentMediaType: what generators read as "bytes, not text".
_PNG = {"image/png": {"schema": {"type": "string", "format": "binary", "contentMediaType": "image/png"}}}
_HTML = {"text/html": {"schema": {"type": "string"}}}

# fmt: off
OPERATIONS: dict[str, Operation] = {
    op.operation_id: op
    for op in (
        Operation(
            "/bitcoin", "bitcoin", "BTC/USD at one date (the original contract)", "original",
            (_DATE_REQUIRED, _MODEL), _json("BitcoinPrediction"), (400, 404, 422),
        ),
        Operation(
            "/bitcoin/forecast", "bitcoinForecastChart", "BTC/USD forecast chart", "original",
            (_MODEL,), ok=_PNG, errors=(400, 404), cached=True,
        ),
        Operation(
            "/bitcoin/trends", "bitcoinTrendsChart", "BTC/USD trend and seasonality chart", "original",
            ok=_PNG, errors=(400, 404), cached=True,
        ),
        Operation(
            "/v1/forecast/{symbol}", "forecast",
            "One point (`date` or `horizon`) or a series (`start` and `end`, as points or columns) for a pair",
            "forecast",
            (
                _SYMBOL,
                _when("date", _WHEN + " Or give `horizon`, or `start` and `end`.", example="2026-06-01"),
                _HORIZON,
                _when("start", "First instant of a series. " + _WHEN, example="2026-06-01"),
                _when("end", "Last instant, inclusive. " + _WHEN, example="2026-06-10"),
                _MODEL,
                _QUANTILES,
                _FORMAT,
                _STEP,
            ),
            {
                _JSON_OK: {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/ForecastPoint"},
                            {"$ref": "#/components/schemas/ForecastSeries"},
                            {"$ref": "#/components/schemas/ForecastColumns"},
                        ]
                    }
                }
            },
            (400, 404, 422),
        ),
        Operation(
            "/v1/forecast/{symbol}/probability", "probability",
            "The probability that a pair's close on a date is above (or below) one price or several (a curve)",
            "forecast",
            (
                _SYMBOL,
                _when("date", _WHEN + " Or give `horizon`.", example="2026-06-01"),
                _HORIZON,
                _prices(
                    "above", "A price in USD, or several comma-separated (a curve in one call); give this or `below`.",
                    example="100000",
                ),
                _prices("below", "A price in USD, or several comma-separated; give this or `above`."),
            ),
            _json("Probability"), (400, 404, 422),
        ),
        Operation(
            "/v1/forecast/{symbol}/chart.png", "forecastChart", "A pair's forecast chart", "forecast",
            (_SYMBOL, _MODEL), _PNG, (400, 404), cached=True,
        ),
        Operation(
            "/v1/forecast/{symbol}/components.png", "componentsChart", "A pair's trend and seasonality chart",
            "forecast", (_SYMBOL,), _PNG, (400, 404), cached=True,
        ),
        Operation(
            "/v1/track-record", "trackRecord",
            "Every pair's track record in summary: published forecasts scored against what happened",
            "track record", ok=_json("TrackRecord"),
        ),
        Operation(
            "/v1/track-record/{symbol}", "trackRecordPair",
            "A pair's published forecasts, per horizon, each scored once its target time has passed",
            "track record",
            (
                _SYMBOL,
                Param(
                    "horizon", "Only this horizon (as the record names it, e.g. `7d` or `24h`).", r"^[0-9]{1,4}[dh]$",
                    "a horizon like 7d or 24h", example="7d",
                ),
            ),
            _json("PairTrackRecord"), (400, 404, 422),
        ),
        Operation(
            "/v1/track-record/{symbol}/chart.png", "trackRecordChart",
            "A pair's published medians and 80% bands against the actual closes", "track record",
            (_SYMBOL,), _PNG, (400, 404), cached=True,
        ),
        Operation(
            "/v1/alerts", "alerts",
            "The watch rules the deployed model was trained with: each one's value, whether it holds, whether it fired",
            "alerts", ok=_json("Alerts"),
        ),
        Operation("/v1/symbols", "symbols", "The pairs served, with their windows", "service", ok=_json("Symbols")),
        Operation(
            "/v1/model", "model", "Model version, training data, backtest against baselines, gate", "service",
            ok=_json("Model"),
        ),
        Operation("/healthz", "healthz", "Liveness and the loaded model version", "service", ok=_json("Health")),
        Operation("/", "home", "This page for people: charts, model, links", "service", ok=_HTML),
        Operation(
            "/openapi.json", "openapi", "This document", "service",
            ok={_JSON_OK: {"schema": {"type": "object"}}},
        ),
        Operation("/docs", "docs", "Swagger UI for this document, from local files", "service", ok=_HTML),
    )
}
# fmt: on
