"""Headers every response carries: no sniffing, no referrer, a strict CSP on HTML, cache rules."""

from __future__ import annotations

from flask import Flask, Response, request

from cryptopredict.serving.caching import finish

__all__ = ["CSP", "init_app"]

# Swagger UI runs from our own static files (its initialiser too: no inline script); it styles
# itself with inline style attributes, hence 'unsafe-inline' for styles only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Forecasts change only when a new model is deployed (every six hours at most): browsers and
# CDNs may keep a JSON answer for five minutes, never an error. With live prices they change with
# every poll, so no longer than one poll interval.
JSON_MAX_AGE = 300


def json_cache_control(live_interval: float | None) -> str:
    """The Cache-Control of a 200 JSON answer: five minutes, or one live-price interval if shorter."""
    seconds = JSON_MAX_AGE if live_interval is None else min(JSON_MAX_AGE, int(live_interval))
    return f"public, max-age={seconds}"


def _headers(response: Response, json_cache: str) -> Response:
    h = response.headers
    # add(), not set(): these two are never set elsewhere, and add skips the search for an old one.
    h.add("X-Content-Type-Options", "nosniff")
    h.add("Referrer-Policy", "no-referrer")
    mimetype = response.mimetype
    if mimetype == "application/json":
        if "Cache-Control" not in h:
            h.add("Cache-Control", json_cache if response.status_code == 200 else "no-store")
    elif mimetype == "text/html":
        h.add("Content-Security-Policy", CSP)
        h.setdefault("Cache-Control", "no-cache")
    elif mimetype == "application/problem+json":
        h["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, live_interval: float | None = None, vary_origin: bool = False) -> None:
    """Install the headers on every response, errors included (`live_interval`: the feed's, when on;
    `vary_origin`: whether CORS answers differ by origin), then the validators and the encoding."""
    json_cache = json_cache_control(live_interval)
    app.after_request(lambda response: finish(_headers(response, json_cache), request, vary_origin))
