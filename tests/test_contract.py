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
from werkzeug.datastructures import MultiDict

from cryptopredict.serving import contract
from cryptopredict.serving.contract import OPERATIONS
from cryptopredict.serving.errors import PROBLEM_TYPES


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA-262): \\d, \\w and \\s are ASCII, unlike Python's."""
    if validator.is_type(instance, "string") and not re.search(pattern, instance, re.ASCII):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The published schema's judge: Draft 2020-12 with JSON Schema's own regex semantics for `pattern`.
Judge = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})

# Every published level written out: 107 characters, which the quantiles parameter must admit.
ALL_LEVELS = (
    "0.01,0.025,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95,0.975,0.99"
)

# Values a client might send, well-formed or not; each is tried on every parameter.
CANDIDATES = [
    # dates and datetimes, in and out of the documented forms
    "2026-01-15", "2025-06-01", "20240601", "2024-W22-6", "2024-06-01T12:00:00,5", "2024-06-01T12:00:00Z",
    "2024-06-01 12:00", "2024-06-01T12", "2024-06-01Z", "2024-06-01T12:00:00.123456+05:30", "2024-06-01T12+0530",
    "2024-06-01T12:00:00.1234567", "2024-02-30", "2024-06-01T25:00", "2024-13-01", "10000-01-01", "1900-01-01",
    # numbers and levels
    "0.5", "0.05,0.5,0.95", ".5", "5.", "1.5", "0", "1", "1e3", "6.5E4", "1e99999", "-1", "+5", "nan", "inf",
    "0x10", "1_000", "0.5,0.5", ",".join(["0.5"] * 24), "0.5,", "0.1,0.2 ", ALL_LEVELS,
    ",".join(str(60000 + 1000 * k) for k in range(50)), ",".join(str(60000 + 1000 * k) for k in range(51)),
    # words, horizons, pairs
    "served", "prophet", "Served", "arima", "columns", "points", "Columns", "all", "7",
    "7d", "24h", "7w", "12345d", "BTC-USD", "btc-usd", "A-USD", "BTC-U5D",
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
_SERIES = {"date": None, "start": "2025-12-01", "end": "2026-01-15"}
INSTEAD = {("forecast", "start"): {"date": None, "end": "2026-02-01"}, ("forecast", "end"): {"date": None,
           "start": "2025-12-01"}, ("probability", "below"): {"above": None}, ("forecast", "horizon"): {"date": None},
           ("probability", "horizon"): {"date": None}, ("forecast", "format"): _SERIES,
           ("forecast", "step"): _SERIES}  # fmt: skip


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


# --------------------------------------------------------------------------- the declarations themselves
# In-process checks of contract.py's own parts (the server tests above go through Flask and the
# document is built once): each refusal's exact words and status, each part of a declaration.

_LETTERS = contract.Param("x", "Some letters.", r"^[a-z]+$", "lowercase letters", example="abc", parse=str.upper)


def _refusal(read: Any) -> contract.ApiError:
    with pytest.raises(contract.ApiError) as refused:
        read()
    return refused.value


def test_a_value_of_the_longest_length_is_read_and_one_longer_is_refused_saying_so() -> None:
    """64 characters are parsed; 65 are a 400 naming the parameter, the length and the limit, before the pattern."""
    assert _LETTERS.read("a" * 64) == "A" * 64
    error = _refusal(lambda: _LETTERS.read("a" * 65))
    assert (error.status, error.kind, error.detail) == (
        400,
        "invalid-parameter",
        "x: too long (65 characters, at most 64)",
    )
    assert [(p.name, p.location) for p in error.invalid_params] == [("x", "query")]


def test_a_value_outside_the_pattern_is_quoted_and_an_unprintable_one_escaped() -> None:
    """The refusal quotes a printable value as sent and shows an unprintable one escaped, never raw."""
    assert _refusal(lambda: _LETTERS.read("ab1")).detail == "x: 'ab1' is not lowercase letters"
    detail = _refusal(lambda: _LETTERS.read("a\nb")).detail
    assert detail == "x: \"'a\\\\nb'\" is not lowercase letters"
    assert "\n" not in detail


def test_a_well_formed_value_the_parser_refuses_is_a_422_naming_the_parameter() -> None:
    """parse's ValueError becomes 'unacceptable-value' for that parameter, where it was given."""
    price = next(p for p in OPERATIONS["probability"].params if p.name == "above")
    error = _refusal(lambda: price.read("0"))
    assert (error.status, error.kind, error.detail) == (422, "unacceptable-value", "above: must be a price above 0")
    assert [(p.name, p.reason, p.location) for p in error.invalid_params] == [
        ("above", "must be a price above 0", "query")
    ]
    symbol = next(p for p in OPERATIONS["forecast"].params if p.where == "path")
    assert _refusal(lambda: symbol.read("BTC_USD")).invalid_params[0].location == "path"


def test_a_declaration_is_documented_as_it_is_checked() -> None:
    """The parameter's OpenAPI entry: its name, place, requirement (a path parameter always), description, schema."""
    assert _LETTERS.to_openapi() == {
        "name": "x",
        "in": "query",
        "required": False,
        "description": "Some letters.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-z]+$", "examples": ["abc"]},
    }
    path = contract.Param("p", "d", r"^a$", "an a", where="path")
    assert path.to_openapi()["required"] is True
    assert "examples" not in path.schema()


def test_the_declaration_helpers_give_the_documented_forms() -> None:
    """A time parameter takes ISO dates and datetimes, a price plain decimals; a JSON answer names its schema."""
    when = contract._when("date", "When.", required=True, example="2026-06-01")
    assert (when.name, when.description, when.required, when.example) == ("date", "When.", True, "2026-06-01")
    assert (when.pattern, when.form, when.parse) == (contract._WHEN_PATTERN, contract._WHEN_FORM, contract.parse_when)
    assert not contract._when("start", "d").required
    price = contract._prices("above", "Above.", "65000")
    assert (price.name, price.description, price.example, price.parse) == (
        "above",
        "Above.",
        "65000",
        contract.parse_prices,
    )
    assert price.form == "up to 50 comma-separated plain decimal numbers such as 65000 or 6.5e4,7e4"
    assert price.read("6.5e4") == [65000.0]
    assert price.read("6.5e4,70000") == [65000.0, 70000.0]
    assert (
        _refusal(lambda: price.read("65 000")).detail
        == "above: '65 000' is not up to 50 comma-separated plain decimal numbers such as 65000 or 6.5e4,7e4"
    )
    assert _refusal(lambda: price.read("7e4,70000")).detail == "above: a price is given twice"
    # MAX_PRICES (50) long prices are read, in the document's pattern and length as by the server; 51 are not.
    fifty = ",".join(f"{65000 + i}.123456789012" for i in range(50))
    assert len(fifty) > 64
    assert len(price.read(fifty)) == 50
    assert re.search(price.schema()["pattern"], fifty)
    assert len(fifty) <= price.schema()["maxLength"]
    fifty_one = fifty + ",1"
    assert not re.search(price.schema()["pattern"], fifty_one)
    assert "is not up to 50 comma-separated" in _refusal(lambda: price.read(fifty_one)).detail
    assert contract._json("Forecast") == {"application/json": {"schema": {"$ref": "#/components/schemas/Forecast"}}}


def test_an_operation_reads_its_declared_parameters_and_refuses_others() -> None:
    """Defaults fill absent parameters, path values are read, an undeclared name is refused by name."""
    op = OPERATIONS["forecast"]
    values = op.read(MultiDict({"date": "2026-06-01"}), {"symbol": "btc-usd"})
    assert values["symbol"] == "BTC-USD"
    assert values["model"] == "served"
    assert values["date"].isoformat() == "2026-06-01T00:00:00+00:00"
    error = _refusal(lambda: op.read(MultiDict({"date": "2026-06-01", "dates": "x"}), {"symbol": "BTC-USD"}))
    assert error.detail.startswith("dates: unknown parameter; this endpoint accepts: ")


def test_a_checked_view_gets_its_parsed_parameters_and_names_its_operation() -> None:
    """The decorator hands the view the operation's values by name and marks it with the operation."""
    app = Flask(__name__)
    seen: dict[str, Any] = {}

    @contract.checked("forecast")
    def view(**values: Any) -> str:
        seen.update(values)
        return "ok"

    assert view.operation is OPERATIONS["forecast"]  # type: ignore[attr-defined]
    with app.test_request_context("/v1/forecast/eth-usd?date=2026-06-01&model=prophet"):
        assert view(symbol="eth-usd") == "ok"
    assert (seen["symbol"], seen["model"]) == ("ETH-USD", "prophet")


def test_a_missing_required_parameter_and_a_refused_path_value_are_named_where_they_belong() -> None:
    """A required parameter left out is a 400 saying what it looks like; a path value its parser refuses is a
    422 located in the path."""
    missing = _refusal(lambda: OPERATIONS["bitcoin"].read(MultiDict(), {}))
    assert missing.detail == f"date: required; {contract._WHEN_FORM}"
    number = contract.Param("n", "A number.", r"^[a-z0-9]+$", "letters or digits", where="path", parse=int)
    refused = _refusal(lambda: number.read("abc"))
    assert (refused.status, refused.invalid_params[0].location) == (422, "path")
