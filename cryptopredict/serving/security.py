"""Headers every response carries: no sniffing, no referrer, a strict CSP on HTML, cache rules."""

from __future__ import annotations

from flask import Flask, Response

__all__ = ["CSP", "init_app"]

# Swagger UI runs from our own static files (its initialiser too: no inline script); it styles
# itself with inline style attributes, hence 'unsafe-inline' for styles only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Forecasts change only when a new model is deployed (every six hours at most): browsers and
# CDNs may keep a JSON answer for five minutes, never an error.
JSON_MAX_AGE = 300
_JSON_CACHE = f"public, max-age={JSON_MAX_AGE}"


def _headers(response: Response) -> Response:
    h = response.headers
    # add(), not set(): these two are never set elsewhere, and add skips the search for an old one.
    h.add("X-Content-Type-Options", "nosniff")
    h.add("Referrer-Policy", "no-referrer")
    mimetype = response.mimetype
    if mimetype == "application/json":
        if "Cache-Control" not in h:
            h.add("Cache-Control", _JSON_CACHE if response.status_code == 200 else "no-store")
    elif mimetype == "text/html":
        h.add("Content-Security-Policy", CSP)
        h.setdefault("Cache-Control", "no-cache")
    elif mimetype == "application/problem+json":
        h["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Install the headers on every response, errors included."""
    app.after_request(_headers)
