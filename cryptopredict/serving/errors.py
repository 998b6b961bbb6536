"""Every error the API returns, as RFC 9457 `application/problem+json`, mapped in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException, MethodNotAllowed

__all__ = ["PROBLEM_JSON", "PROBLEM_TYPES", "ApiError", "InvalidParam", "register_error_handlers"]

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "urn:cryptopredict:problem:"
# Every problem type this API sends (the document lists them; a test checks each answer's type is one).
PROBLEM_TYPES = {
    "invalid-parameter": "a parameter is missing, unknown, repeated, or outside its documented form (400)",
    "unacceptable-value": "a parameter in its documented form that names nothing acceptable, e.g. 2024-02-30 (422)",
    "out-of-range": "a date outside the served window, or a range over the point limit (422)",
    "unknown-symbol": "the pair is not served, or has no track record (404)",
    "no-chart": "the artifact has no such chart for the pair (404)",
    "about:blank": "an HTTP error with no more to say than its status: no such path (404), method not allowed (405)",
}
_log = logging.getLogger("cryptopredict.serving")


@dataclass(frozen=True, slots=True)
class InvalidParam:
    """One bad request parameter: which one, where it was, and why it was refused."""

    name: str
    reason: str
    location: str = "query"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "in": self.location, "reason": self.reason}


@dataclass(slots=True)
class ApiError(Exception):
    """An error a client caused (or may see); `to_dict()` is its problem document."""

    status: int
    title: str
    detail: str
    kind: str = "about:blank"
    invalid_params: list[InvalidParam] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def bad_param(
        cls, name: str, reason: str, status: int = 400, location: str = "query", kind: str | None = None, **extra: Any
    ) -> ApiError:
        """A single parameter refused: 400 when malformed, 422 when well-formed but out of range."""
        kind = kind or ("invalid-parameter" if status == 400 else "out-of-range")
        title = {"invalid-parameter": "Invalid parameter", "unacceptable-value": "Parameter value not acceptable"}.get(
            kind, "Parameter out of range"
        )
        return cls(status, title, f"{name}: {reason}", kind, [InvalidParam(name, reason, location)], dict(extra))

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.kind if ":" in self.kind else _TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.invalid_params:
            doc["invalid_params"] = [p.to_dict() for p in self.invalid_params]
        doc.update(self.extra)
        return doc


def problem_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(error.to_dict()), status=error.status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _from_http(exc: HTTPException) -> Response:
    code = exc.code or 500
    headers = {}
    detail = exc.description or exc.name
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
        detail = f"this path answers {', '.join(exc.valid_methods)}, not the method used"
    if code == 404:
        detail = "no such path; see /v1/symbols, /v1/forecast/{symbol} and /bitcoin?date=YYYY-MM-DD"
    return problem_response(ApiError(code, exc.name, detail), headers)


def register_error_handlers(app: Flask) -> None:
    """Map ApiError, werkzeug's HTTP errors and anything unexpected to problem+json."""
    app.register_error_handler(ApiError, problem_response)
    app.register_error_handler(HTTPException, _from_http)

    def _unexpected(exc: Exception) -> Response:
        # A bug, not bad input: log the traceback for the operator, tell the client nothing internal.
        _log.exception("unhandled error")
        return problem_response(ApiError(500, "Internal Server Error", "the server failed to answer this request"))

    app.register_error_handler(Exception, _unexpected)
