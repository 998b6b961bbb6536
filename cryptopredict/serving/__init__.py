"""The light side: a Flask app serving the precomputed forecast artifact (no pandas, no Prophet)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.routing import PathConverter

from cryptopredict.artifact import read_artifact
from cryptopredict.serving import pages, routes, security, track_record
from cryptopredict.serving.anchor import AnchorBoard, artifact_anchor
from cryptopredict.serving.config import ServeSettings
from cryptopredict.serving.errors import register_error_handlers
from cryptopredict.serving.hotpath import HotPath
from cryptopredict.serving.live import LiveFeed
from cryptopredict.serving.state import ServingState

__all__ = ["create_app"]

# Seconds a browser may keep a preflight's answer (Chromium keeps one at most two hours).
PREFLIGHT_MAX_AGE = 7200


class _AnythingConverter(PathConverter):
    """Like `path`, but also matches control characters, so a hostile symbol gets a 400 that
    names the parameter rather than a bare 404."""

    regex = "(?s:[^/].*?)"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then `test_config`; the artifact is verified
    here, so a bad one stops the process before it serves anything (raises ArtifactError).

    With LIVE_PRICES=alpaca the live price feed starts polling in the background (stop it with
    `app.extensions["cryptopredict"].feed.stop()`); the app answers from the artifact's anchors
    until a checked live price arrives."""
    settings = ServeSettings.from_env(**dict(test_config or {}))
    artifact = read_artifact(settings.artifact_dir)
    trained_at = artifact.manifest.trained
    board = AnchorBoard({slug: artifact_anchor(fc, trained_at) for slug, fc in artifact.forecasts.items()})
    feed = LiveFeed(settings, artifact.forecasts, board) if settings.live_prices == "alpaca" else None
    state = ServingState(
        artifact=artifact, settings=settings, track_record=track_record.build(artifact), board=board, feed=feed
    )
    app = Flask(__name__)
    app.url_map.converters["anything"] = _AnythingConverter
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["cryptopredict"] = state
    # The API is public and read-only and takes no credentials, so '*' is the safe default.
    any_origin = "*" in settings.cors_origins
    CORS(
        app,
        origins="*" if any_origin else list(settings.cors_origins),
        send_wildcard=any_origin,  # a literal '*' (not the echoed origin) keeps shared caches simple
        supports_credentials=False,
        methods=["GET", "HEAD", "OPTIONS"],
        max_age=PREFLIGHT_MAX_AGE,
        expose_headers=["ETag"],
        # flask-cors adds Vary: Origin only when more than one origin is listed; security adds it
        # to every answer whenever the origins are restricted (one listed origin included).
        vary_header=False,
    )
    register_error_handlers(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(pages.bp)
    security.init_app(app, settings.live_prices_interval if feed is not None else None, not any_origin)
    # Ahead of the whole Flask stack, CORS and headers included: it replays what they answered,
    # keyed by the anchors' generation (which only live prices move).
    app.wsgi_app = HotPath(  # type: ignore[method-assign]
        app.wsgi_app, settings.hot_cache_mb * 2**20, lambda: board.current().generation
    )
    if feed is not None:
        feed.start()
    return app
