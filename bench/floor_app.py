"""The floor: a Flask app answering a constant small JSON, served like ours (bench reference)."""

from flask import Flask, jsonify


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/bitcoin")
    def bitcoin():
        return jsonify(date="2026-06-01T00:00:00", prediction=1.0, prediction_low=0.5, prediction_high=2.0)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app
