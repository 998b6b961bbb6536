"""A client generated from the served document, as a Python user of the API would make one: openapi-python-client
writes it, a fresh venv installs it with its hashed run-time requirements alone, and it calls every operation
against a real server and parses every answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cryptopredict.serving.contract import CONTRACT_VERSION, OPERATIONS
from tests.helpers import ROOT, http_get

# Charts are bytes to a client, not text it cannot decode.
GENERATOR_CONFIG = "content_type_overrides:\n  image/png: application/octet-stream\n"

# Runs in the fresh venv: each operation through the generated client; prints what it parsed, by call.
CALLS = r"""
import json, sys
from cryptopredict_client import Client
from cryptopredict_client.api.original import bitcoin, bitcoin_forecast_chart, bitcoin_trends_chart
from cryptopredict_client.api.forecast import components_chart, forecast, forecast_chart, probability
from cryptopredict_client.api.track_record import track_record, track_record_chart, track_record_pair
from cryptopredict_client.api.alerts import alerts
from cryptopredict_client.api.service import docs, healthz, home, model, openapi, symbols

client = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)
out = {}


def parsed(name, module, *args, **kwargs):
    r = module.sync_detailed(*args, client=client, **kwargs)
    out[name] = {"status": int(r.status_code), "type": type(r.parsed).__name__}
    return r.parsed


def raw(name, module, *args, **kwargs):
    r = module.sync_detailed(*args, client=client, **kwargs)
    out[name] = {"status": int(r.status_code), "head": r.content[:15].decode("latin-1")}


p = parsed("bitcoin", bitcoin, date="2025-06-01")
out["bitcoin"]["values"] = [p.date, p.prediction, p.prediction_low, p.prediction_high]
p = parsed("forecast-point", forecast, "BTC-USD", date="2025-06-01", quantiles="all")
out["forecast-point"]["values"] = [p.time.isoformat(), p.kind.value, p.prediction, p.quantiles["0.99"],
                                   p.anchor.price, p.anchor.source.value]
p = parsed("forecast-horizon", forecast, "btc-usd", horizon="7d")
out["forecast-horizon"]["values"] = [p.date.isoformat(), p.time.isoformat(), p.prediction]
p = parsed("forecast-series", forecast, "BTC-USD", start="2025-06-01", end="2025-06-10", step="3")
out["forecast-series"]["values"] = [p.count, p.step, [x.prediction for x in p.points]]
p = parsed("forecast-columns", forecast, "ETH-USD", start="2026-04-10", end="2026-04-30", format_="columns",
           quantiles="0.05,0.95")
out["forecast-columns"]["values"] = [p.columns.median, [k.value for k in p.columns.kind],
                                     p.columns.quantiles["0.95"], p.columns.actual]
p = parsed("forecast-prophet", forecast, "BTC-USD", date="2026-05-01", model="prophet")
out["forecast-prophet"]["values"] = [p.prediction, p.anchor]
p = parsed("probability", probability, "BTC-USD", date="2026-05-01", above="70000")
out["probability"]["values"] = [p.probability, p.bound.value, p.above]
p = parsed("probability-curve", probability, "BTC-USD", horizon="24h", below="60000,70000,80000")
out["probability-curve"]["values"] = [p.probabilities, [b.value for b in p.bounds], p.side.value]
p = parsed("symbols", symbols)
out["symbols"]["values"] = [[s.symbol for s in p.symbols], [s.data_end_time.isoformat() for s in p.symbols]]
p = parsed("model", model)
btc = p.symbols.additional_properties["BTC-USD"]
out["model"]["values"] = [p.model_version, type(btc.backtest).__name__,
                          sorted(btc.backtest.metrics.additional_properties), type(p.gate).__name__, btc.carried]
p = parsed("track-record", track_record)
out["track-record"]["values"] = [sorted(p.symbols.additional_properties)]
p = parsed("track-record-pair", track_record_pair, "BTC-USD", horizon="7d")
out["track-record-pair"]["values"] = [[h.horizon for h in p.horizons], [len(h.entries) for h in p.horizons]]
p = parsed("alerts", alerts)
out["alerts"]["values"] = [p.model_version, len(p.rules)]
p = parsed("healthz", healthz)
out["healthz"]["values"] = [p.status, p.model_version, p.live_prices.state.value]
p = parsed("openapi", openapi)
out["openapi"]["values"] = [p.additional_properties["info"]["version"]]
for name, module, args in (
    ("bitcoin-forecast-chart", bitcoin_forecast_chart, ()),
    ("bitcoin-trends-chart", bitcoin_trends_chart, ()),
    ("forecast-chart", forecast_chart, ("BTC-USD",)),
    ("components-chart", components_chart, ("BTC-USD",)),
    ("track-record-chart", track_record_chart, ("BTC-USD",)),
    ("home", home, ()),
    ("docs", docs, ()),
):
    raw(name, module, *args)
p = parsed("refused", forecast, "BTC-USD", date="tomorrow")
out["refused"]["values"] = [p.status, [x.name for x in p.invalid_params], p.type_.value]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def client_python(live_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The generated client installed (with requirements-client.txt alone) in a fresh venv; its python."""
    root = tmp_path_factory.mktemp("client")
    (root / "openapi.json").write_bytes(http_get(live_server + "/openapi.json").body)
    (root / "config.yaml").write_text(GENERATOR_CONFIG)
    bin_dir = Path(sys.executable).parent  # the generator and ruff, which it runs on what it wrote
    gen = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", "openapi.json", "--meta", "setup",
         "--config", "config.yaml", "--output-path", "client"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(root)},
    )  # fmt: skip
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert "Warning" not in gen.stdout + gen.stderr, gen.stdout + gen.stderr
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = str(root / "venv" / "bin" / "python")
    for args in (
        ["--require-hashes", "--no-deps", "-r", str(ROOT / "requirements-client.txt")],
        ["--no-deps", "--no-build-isolation", str(root / "client")],
    ):
        done = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    return python


@pytest.fixture(scope="module")
def calls(client_python: str, live_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the generated client parsed from each operation, by call."""
    script = tmp_path_factory.mktemp("calls") / "calls.py"
    script.write_text(CALLS)
    run = subprocess.run(
        [client_python, str(script), live_server], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def get(base: str, path: str) -> Any:
    return http_get(base + path).json()


def test_the_generated_package_is_versioned_by_the_contract(client_python: str) -> None:
    """The generated package installs, and its version is the contract's semver (a model version is not one)."""
    version = subprocess.run(
        [client_python, "-c", "import importlib.metadata as m; print(m.version('cryptopredict-client'))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert version == CONTRACT_VERSION


def test_every_operation_is_called_and_answers(calls: dict[str, Any]) -> None:
    """Every operation of the contract is called through the client: JSON into its named model, charts and pages
    as bytes, a refusal parsed as a Problem."""
    called = {
        "bitcoin": "bitcoin", "bitcoinForecastChart": "bitcoin-forecast-chart",
        "bitcoinTrendsChart": "bitcoin-trends-chart", "forecast": "forecast-point", "probability": "probability",
        "forecastChart": "forecast-chart", "componentsChart": "components-chart", "trackRecord": "track-record",
        "trackRecordPair": "track-record-pair", "trackRecordChart": "track-record-chart", "alerts": "alerts",
        "symbols": "symbols", "model": "model", "healthz": "healthz", "home": "home", "openapi": "openapi",
        "docs": "docs",
    }  # fmt: skip
    assert set(called) == set(OPERATIONS)
    for op_id, name in called.items():
        assert calls[name]["status"] == 200, (op_id, calls[name])
    types = {name: c.get("type") for name, c in calls.items()}
    assert types["bitcoin"] == "BitcoinPrediction"
    assert types["forecast-point"] == types["forecast-horizon"] == types["forecast-prophet"] == "ForecastPoint"
    assert types["forecast-series"] == "ForecastSeries"
    assert types["forecast-columns"] == "ForecastColumns"
    assert types["probability"] == types["probability-curve"] == "Probability"
    assert (types["symbols"], types["model"], types["alerts"], types["healthz"]) == (
        "Symbols",
        "Model",
        "Alerts",
        "Health",
    )
    assert (types["track-record"], types["track-record-pair"]) == ("TrackRecord", "PairTrackRecord")
    for chart in ("bitcoin-forecast-chart", "bitcoin-trends-chart", "forecast-chart", "components-chart",
                  "track-record-chart"):  # fmt: skip
        assert calls[chart]["head"].startswith("\x89PNG"), chart
    assert calls["home"]["head"].lower().startswith("<!doctype html>")
    assert calls["refused"] == {
        "status": 400, "type": "Problem",
        "values": [400, ["date"], "urn:cryptopredict:problem:invalid-parameter"],
    }  # fmt: skip


def test_the_parsed_answers_hold_the_servers_numbers(calls: dict[str, Any], live_server: str) -> None:
    """Each parsed answer carries the numbers the server sent, field for field."""
    v = {name: c.get("values") for name, c in calls.items()}
    b = get(live_server, "/bitcoin?date=2025-06-01")
    assert v["bitcoin"] == [b["date"], b["prediction"], b["prediction_low"], b["prediction_high"]]
    p = get(live_server, "/v1/forecast/BTC-USD?date=2025-06-01&quantiles=all")
    assert v["forecast-point"] == [
        p["time"].replace("Z", "+00:00"), p["kind"], p["prediction"], p["quantiles"]["0.99"],
        p["anchor"]["price"], p["anchor"]["source"],
    ]  # fmt: skip
    h = get(live_server, "/v1/forecast/BTC-USD?horizon=7d")
    assert v["forecast-horizon"] == [
        h["date"].replace("Z", "+00:00"),
        h["time"].replace("Z", "+00:00"),
        h["prediction"],
    ]
    s = get(live_server, "/v1/forecast/BTC-USD?start=2025-06-01&end=2025-06-10&step=3")
    assert v["forecast-series"] == [4, 3, [x["prediction"] for x in s["points"]]]
    c = get(live_server, "/v1/forecast/ETH-USD?start=2026-04-10&end=2026-04-30&format=columns&quantiles=0.05,0.95")
    cols = c["columns"]
    assert v["forecast-columns"] == [cols["median"], cols["kind"], cols["quantiles"]["0.95"], cols["actual"]]
    assert v["forecast-prophet"][1] is None  # Prophet's own forecast rests on no anchor: null parsed as None
    pr = get(live_server, "/v1/forecast/BTC-USD/probability?date=2026-05-01&above=70000")
    assert v["probability"] == [pr["probability"], pr["bound"], 70000.0]
    curve = get(live_server, "/v1/forecast/BTC-USD/probability?horizon=24h&below=60000,70000,80000")
    assert v["probability-curve"] == [curve["probabilities"], curve["bounds"], "below"]
    sym = get(live_server, "/v1/symbols")["symbols"]
    assert v["symbols"] == [[x["symbol"] for x in sym], [x["data_end_time"].replace("Z", "+00:00") for x in sym]]
    horizons = sorted(get(live_server, "/v1/model")["symbols"]["BTC-USD"]["backtest"]["metrics"])
    assert v["model"] == ["test-1.0.0", "Backtest", horizons, "Gate", None]
    assert v["track-record"] == [sorted(get(live_server, "/v1/track-record")["symbols"])]
    assert v["track-record-pair"][0] == ["7d"]
    assert v["alerts"] == ["test-1.0.0", 0]
    assert v["healthz"] == ["ok", "test-1.0.0", "off"]
    assert v["openapi"] == [CONTRACT_VERSION]
