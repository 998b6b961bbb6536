"""The published document and the server agree: what the document forbids is refused, what it allows is read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, ValidationError, validators

from cryptopredict.serving.contract import OPERATIONS
from cryptopredict.serving.errors import PROBLEM_TYPES


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA-262): \\d, \\w and \\s are ASCII, unlike Python's."""
    if validator.is_type(instance, "string") and not re.search(pattern, instance, re.ASCII):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The published schema's judge: Draft 2020-12 with JSON Schema's own regex semantics for `pattern`.
Judge = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})

# Values a client might send, well-formed or not; each is tried on every parameter.
CANDIDATES = [
    # dates and datetimes, in and out of the documented forms
    "2026-01-15", "2025-06-01", "20240601", "2024-W22-6", "2024-06-01T12:00:00,5", "2024-06-01T12:00:00Z",
    "2024-06-01 12:00", "2024-06-01T12", "2024-06-01Z", "2024-06-01T12:00:00.123456+05:30", "2024-06-01T12+0530",
    "2024-06-01T12:00:00.1234567", "2024-02-30", "2024-06-01T25:00", "2024-13-01", "10000-01-01", "1900-01-01",
    # numbers and levels
    "0.5", "0.05,0.5,0.95", ".5", "5.", "1.5", "0", "1", "1e3", "6.5E4", "1e99999", "-1", "+5", "nan", "inf",
    "0x10", "1_000", "0.5,0.5", ",".join(["0.5"] * 24), "0.5,", "0.1,0.2 ",
    # words, horizons, pairs
    "served", "prophet", "Served", "arima", "7d", "24h", "7w", "12345d", "BTC-USD", "btc-usd", "A-USD", "BTC-U5D",
    "TOOLONGNAME1234-USD", "BTC_USD", "Ⓑ-USD",
    # digits that are not ASCII: Python's \d takes them, JSON Schema's (ECMA-262) does not
    "١٠٠٠٠٠", "٢٠٢٥-٠٤-٠٥", "２０２５-04-05", "2025-04-0５", "٧d", "0.٥", "１e3",
    # shapes every parameter refuses
    "", "x" * 65, "2024-06-01\x00", " 2024-06-01",
]  # fmt: skip

# For each operation, a request every parameter of which is valid; one parameter at a time is replaced.
BASE: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "bitcoin": ({}, {"date": "2026-01-15"}),
    "bitcoinForecastChart": ({}, {}),
    "forecast": ({"symbol": "BTC-USD"}, {"date": "2026-01-15"}),
    "probability": ({"symbol": "BTC-USD"}, {"date": "2026-01-15", "above": "100000"}),
    "forecastChart": ({"symbol": "BTC-USD"}, {}),
    "componentsChart": ({"symbol": "BTC-USD"}, {}),
    "trackRecordPair": ({"symbol": "BTC-USD"}, {}),
    "trackRecordChart": ({"symbol": "BTC-USD"}, {}),
}
# Parameters that exclude each other: giving one means dropping these from the base request.
INSTEAD = {("forecast", "start"): {"date": None, "end": "2026-02-01"}, ("forecast", "end"): {"date": None,
           "start": "2025-12-01"}, ("probability", "below"): {"above": None}}  # fmt: skip


def _cases() -> list[Any]:
    cases = []
    for op_id in BASE:
        for param in OPERATIONS[op_id].params:
            for value in CANDIDATES:
                if param.where == "path" and ("/" in value or value in ("", " 2024-06-01")):
                    continue  # not a path segment at all: a different URL, not a different value
                cases.append(pytest.param(op_id, param.name, value, id=f"{op_id}-{param.name}-{value[:24]!r}"))
    return cases


@pytest.fixture(scope="module")
def api(artifact_dir) -> FlaskClient:
    """One app for the module's thousand requests (the app reads nothing per request)."""
    from cryptopredict.serving import create_app

    return create_app({"artifact_dir": str(artifact_dir), "max_series_points": 100}).test_client()


@pytest.fixture(scope="module")
def document(api: FlaskClient) -> dict[str, Any]:
    return api.get("/openapi.json").get_json()


def _send(client: FlaskClient, op_id: str, name: str, value: str) -> Any:
    op = OPERATIONS[op_id]
    path, query = dict(BASE[op_id][0]), dict(BASE[op_id][1])
    for key, replacement in INSTEAD.get((op_id, name), {}).items():
        if replacement is None:
            query.pop(key, None)
        else:
            query[key] = replacement
    if any(p.where == "path" and p.name == name for p in op.params):
        path[name] = value
    else:
        query[name] = value
    url = op.path.format(**{k: quote(v, safe="") for k, v in path.items()})
    return client.get(url + ("?" + urlencode(query) if query else ""))


@pytest.mark.parametrize(("op_id", "name", "value"), _cases())
def test_the_server_refuses_exactly_what_the_document_forbids(
    api: FlaskClient, document: dict[str, Any], op_id: str, name: str, value: str
) -> None:
    """A value outside the parameter's published schema is a 400 naming it; a value inside it is never refused as
    malformed (it may be a 422 for a date that does not exist or lies outside the window)."""
    op = OPERATIONS[op_id]
    published = next(p for p in document["paths"][op.path]["get"]["parameters"] if p["name"] == name)
    allowed = Judge(published["schema"]).is_valid(value)
    r = _send(api, op_id, name, value)
    doc = r.get_json(silent=True) or {}
    named = [p["name"] for p in doc.get("invalid_params", [])]
    if allowed:
        assert not (r.status_code == 400 and name in named), doc.get("detail")
        assert str(r.status_code) in document["paths"][op.path]["get"]["responses"], r.status_code
    else:
        assert r.status_code == 400, (r.status_code, doc.get("detail"))
        assert named == [name], doc


def test_the_sample_covers_both_sides_of_every_parameter(document: dict[str, Any]) -> None:
    """Every parameter of the sampled operations meets at least one allowed and one forbidden candidate, so the
    agreement test above checks both directions for each."""
    for op_id in BASE:
        op = OPERATIONS[op_id]
        for published in document["paths"][op.path]["get"]["parameters"]:
            verdicts = {Judge(published["schema"]).is_valid(v) for v in CANDIDATES}
            assert verdicts == {True, False}, (op_id, published["name"])


def test_every_route_is_one_declared_operation_and_every_operation_a_route(app: Flask) -> None:
    """Each URL rule (static files aside) runs through exactly the operation the document shows for its path."""
    routed = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        op = getattr(app.view_functions[rule.endpoint], "operation", None)
        assert op is not None, f"{rule.rule} is not a checked operation"
        assert rule.rule.replace("<anything:symbol>", "{symbol}") == op.path
        routed[op.operation_id] = op
    assert set(routed) == set(OPERATIONS)


def test_every_problem_the_server_sends_has_a_documented_type(client: FlaskClient, document: dict[str, Any]) -> None:
    """Bad requests of every kind answer with a `type` the document lists (and no undocumented one)."""
    listed = set(document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"])
    sent = set()
    for url in (
        "/bitcoin?date=garbage",
        "/bitcoin?date=2024-02-30",
        "/bitcoin?date=1900-01-01",
        "/v1/forecast/DOGE-USD?date=2026-01-15",
        "/no/such/path",
    ):
        sent.add(client.get(url).get_json()["type"])
    sent.add(client.post("/bitcoin?date=2026-01-15").get_json()["type"])
    assert sent <= listed
    assert len(sent) == 5  # invalid, unacceptable, out of range, unknown symbol, about:blank (404 and 405)
    assert len(listed) == len(PROBLEM_TYPES)


def test_every_published_pattern_means_the_same_in_python_and_in_json_schema(document: dict[str, Any]) -> None:
    """No class whose meaning differs between Python's re and ECMA-262 (\\d, \\w, \\s take Unicode in Python):
    with them the server accepted Arabic-Indic digits as a price while the document forbids them."""
    operations = [m for op in document["paths"].values() for m in op.values()]
    patterns = [p["schema"]["pattern"] for m in operations for p in m.get("parameters", [])]
    assert patterns
    for pattern in patterns:
        for cls in ("\\d", "\\w", "\\s", "\\D", "\\W", "\\S", "\\b"):
            assert cls not in pattern, f"{pattern} uses {cls}"
