"""The original design, as the benchmark's reference: load a fitted Prophet model at start and
call `model.predict()` on every request.

The original service unpickled its model; this project allows no pickle anywhere, so the same
fitted model is loaded with Prophet's own `model_from_json` from the artifact (same model, same
per-request predict cost). ARTIFACT_DIR names the artifact whose BTC-USD model is served.
"""

import json
import os
from pathlib import Path

import pandas as pd
from flask import Flask, jsonify, request
from prophet.serialize import model_from_json


def create_app() -> Flask:
    root = Path(os.environ.get("ARTIFACT_DIR", "artifacts"))
    manifest = json.loads((root / "manifest.json").read_text())
    meta = manifest["symbols"]["BTC-USD"]
    model = model_from_json((root / manifest["generation"] / meta["model_file"]).read_text())
    log_scale = manifest["model_config"]["scale"] == "log"
    app = Flask(__name__)

    @app.get("/bitcoin")
    def bitcoin():
        when = pd.Timestamp(request.args["date"])
        fc = model.predict(pd.DataFrame({"ds": [when]})).iloc[0]
        values = [fc["yhat"], fc["yhat_lower"], fc["yhat_upper"]]
        if log_scale:
            import math

            values = [math.exp(v) for v in values]
        return jsonify(date=when.isoformat(), prediction=values[0], prediction_low=values[1], prediction_high=values[2])

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app
