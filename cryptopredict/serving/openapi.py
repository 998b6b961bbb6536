"""The OpenAPI 3.1 document, written from the operations the routes check requests with
(`contract.py`), the answers' schemas, and the problem types the server sends."""

from __future__ import annotations

import copy
from typing import Any

from cryptopredict.serving.contract import CONTRACT_VERSION, OPERATIONS, Operation
from cryptopredict.serving.errors import PROBLEM_TYPES

__all__ = ["document"]


_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_METRICS = {
    "type": "object",
    "required": ["mae", "mape", "mase", "coverage", "n"],
    "properties": {
        "mae": {**_NUM, "description": "mean absolute error, USD"},
        "mape": {**_NUM, "description": "mean absolute percentage error, as a fraction"},
        "mase": {
            **_NUM_OR_NULL,
            "description": "MAE over the naive one-step MAE of the training window; null where the closes never "
            "moved (a stablecoin)",
        },
        "coverage": {**_NUM_OR_NULL, "description": "share of actual closes inside the 80% interval"},
        "pinball": {**_NUM, "description": "mean pinball loss over the published quantiles, log prices"},
        "n": {"type": "integer"},
    },
}
_BOUND = {
    "enum": ["exact", "at least", "at most"],
    "description": "beyond the published 1%-99% quantiles only a bound is known",
}
_CI = {"type": ["array", "null"], "items": _NUM, "description": "90% moving-block bootstrap interval"}
_ANCHOR_REF = {"$ref": "#/components/schemas/Anchor"}
_DATE_LABEL = {
    **_TIME,
    "description": "the bar's label, as the data stamps it: the instant the bar opens (or the instant asked, "
    "between two bars); its price is the close at `time`",
}
_CLOSE_TIME = {
    **_TIME,
    "description": "the instant the price is for: the bar's close, one step after `date`. The anchor's `time` is on "
    "the same scale: a point whose `time` is at or before it has closed",
}
_KIND = {
    "enum": ["fitted", "forecast", "elapsed"],
    "description": "`fitted`: inside the data (for the served forecast, the forecast made one bar earlier); "
    "`forecast`: after the data and after the anchor; `elapsed`: after the data but closed at or before a live "
    "anchor's time (its close is not in the data): the artifact's forecast for it, from the data end",
}
_NUMS = {"type": "array", "items": _NUM}
_STEP_FIELD = {"type": "integer", "description": "every how many grid points were kept (1: all)"}
_CARRIED_REF = {"$ref": "#/components/schemas/Carried"}
_SCHEMAS: dict[str, Any] = {
    "Anchor": {
        "type": "object",
        "additionalProperties": False,
        "required": ["price", "time", "source"],
        "description": "What the served forecast after the data rests on: the artifact's last close, or a "
        "live price (LIVE_PRICES=alpaca) checked against the artifact and at most LIVE_PRICES_MAX_AGE old. "
        "A target after it is that price moved by the artifact's forecast, with the artifact's spread for "
        "the lead time from it.",
        "properties": {
            "price": {**_NUM, "exclusiveMinimum": 0, "description": "USD"},
            "time": {**_TIME, "description": "when the price was observed (a bar's close: its end)"},
            "source": {"enum": ["live", "artifact"]},
        },
    },
    "BitcoinPrediction": {
        "type": "object",
        "additionalProperties": False,
        "required": ["date", "prediction", "prediction_low", "prediction_high"],
        "properties": {
            "date": {
                "type": "string",
                "description": "the instant answered, UTC, no offset",
                "examples": ["2024-06-01T00:00:00"],
            },
            "prediction": _NUM,
            "prediction_low": {**_NUM, "description": "lower end of the 80% interval"},
            "prediction_high": {**_NUM, "description": "upper end of the 80% interval"},
        },
    },
    "Point": {
        "type": "object",
        "required": ["date", "time", "kind", "prediction", "prediction_low", "prediction_high", "actual_close"],
        "properties": {
            "date": _DATE_LABEL,
            "time": _CLOSE_TIME,
            "kind": _KIND,
            "prediction": {**_NUM, "description": "the median (served) or Prophet's yhat"},
            "prediction_low": {**_NUM, "description": "lower end of the 80% interval (the 10% quantile)"},
            "prediction_high": {**_NUM, "description": "upper end of the 80% interval (the 90% quantile)"},
            "actual_close": {**_NUM_OR_NULL, "description": "the real close where known"},
            "quantiles": {
                "type": "object",
                "additionalProperties": _NUM,
                "description": "price at each requested level, keyed by the level",
            },
        },
    },
    "Probability": {
        "allOf": [
            {"$ref": "#/components/schemas/ForecastHead"},
            {
                "type": "object",
                "required": ["date", "time", "kind", "side", "prices", "probabilities", "bounds", "prediction"],
                "properties": {
                    "date": _DATE_LABEL,
                    "time": _CLOSE_TIME,
                    "kind": _KIND,
                    "above": {**_NUM, "description": "the price asked about, when one price was given with above"},
                    "below": {**_NUM, "description": "the price asked about, when one price was given with below"},
                    "probability": {
                        **_NUM,
                        "minimum": 0,
                        "maximum": 1,
                        "description": "when one price was given: the probability for it",
                    },
                    "bound": {**_BOUND, "description": "when one price was given: " + _BOUND["description"]},
                    "side": {"enum": ["above", "below"], "description": "which side of each price is asked about"},
                    "prices": {**_NUMS, "description": "every price asked about, in the order given"},
                    "probabilities": {
                        "type": "array",
                        "items": {**_NUM, "minimum": 0, "maximum": 1},
                        "description": "the probability for each price, in the same order: a curve",
                    },
                    "bounds": {"type": "array", "items": _BOUND, "description": "for each price, as `bound`"},
                    "prediction": {**_NUM, "description": "the served median at that bar"},
                    "actual_close": _NUM_OR_NULL,
                },
            },
        ]
    },
    "ForecastHead": {
        "type": "object",
        "required": ["symbol", "pair", "timeframe", "model_version"],
        "properties": {
            "symbol": {"type": "string"},
            "pair": {"type": "string"},
            "timeframe": {"enum": ["1Day", "1Hour"]},
            "model_version": {"type": "string"},
            "model": {"enum": ["served", "prophet"]},
            "anchor": {
                "oneOf": [_ANCHOR_REF, {"type": "null"}],
                "description": "what the served forecast rests on; null for Prophet's own (never re-anchored)",
            },
        },
    },
    "ForecastPoint": {"allOf": [{"$ref": "#/components/schemas/ForecastHead"}, {"$ref": "#/components/schemas/Point"}]},
    "ForecastSeries": {
        "allOf": [
            {"$ref": "#/components/schemas/ForecastHead"},
            {
                "type": "object",
                "required": ["start", "end", "step", "count", "points"],
                "properties": {
                    "start": _TIME,
                    "end": _TIME,
                    "step": _STEP_FIELD,
                    "count": {"type": "integer"},
                    "points": {"type": "array", "items": {"$ref": "#/components/schemas/Point"}},
                },
            },
        ]
    },
    "ForecastColumns": {
        "allOf": [
            {"$ref": "#/components/schemas/ForecastHead"},
            {
                "type": "object",
                "required": ["start", "end", "step", "count", "columns"],
                "properties": {
                    "start": _TIME,
                    "end": _TIME,
                    "step": _STEP_FIELD,
                    "count": {"type": "integer"},
                    "columns": {"$ref": "#/components/schemas/SeriesColumns"},
                },
            },
        ]
    },
    "SeriesColumns": {
        "type": "object",
        "description": "A series (format=columns) as one array per field, each `count` long, in time order",
        "required": ["time", "date", "kind", "median", "low", "high", "actual"],
        "properties": {
            "time": {"type": "array", "items": _TIME, "description": _CLOSE_TIME["description"]},
            "date": {"type": "array", "items": _TIME, "description": _DATE_LABEL["description"]},
            "kind": {"type": "array", "items": {"enum": _KIND["enum"]}, "description": _KIND["description"]},
            "median": {**_NUMS, "description": "the median (served) or Prophet's yhat"},
            "low": {**_NUMS, "description": "lower end of the 80% interval"},
            "high": {**_NUMS, "description": "upper end of the 80% interval"},
            "actual": {"type": "array", "items": _NUM_OR_NULL, "description": "the real close where known"},
            "quantiles": {
                "type": "object",
                "additionalProperties": _NUMS,
                "description": "with `quantiles`: the prices at each level, keyed by the level",
            },
        },
    },
    "Symbols": {
        "type": "object",
        "required": ["model_version", "symbols"],
        "properties": {
            "model_version": {"type": "string"},
            "symbols": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["symbol", "pair", "timeframe", "data_start", "data_end", "forecast_end"],
                    "properties": {
                        "symbol": {"type": "string"},
                        "pair": {"type": "string"},
                        "timeframe": {"type": "string"},
                        "step_seconds": {"type": "integer"},
                        "rows": {"type": ["integer", "null"]},
                        "data_start": _TIME,
                        "data_end": {**_TIME, "description": "the label of the data's last bar (the instant it opens)"},
                        "data_end_time": {
                            **_TIME,
                            "description": "when the data's last close was: the end of the bar `data_end` labels",
                        },
                        "forecast_end": _TIME,
                        "horizon_steps": {"type": "integer"},
                        "forecast_url": {"type": "string"},
                        "anchor": _ANCHOR_REF,
                        "carried": _CARRIED_REF,
                    },
                },
            },
        },
    },
    "Carried": {
        "type": ["object", "null"],
        "description": "null: served from the model's own run. Else the run failed this pair and the forecast "
        "served is the one an earlier run trained, carried forward unchanged: which model, when, why",
        "required": ["model_version", "trained_at", "age_days", "runs", "reason"],
        "properties": {
            "model_version": {"type": "string", "description": "the model that trained the forecast served"},
            "trained_at": _TIME,
            "age_days": {**_NUM, "description": "days from that training to this model's"},
            "runs": {"type": "integer", "description": "training runs in a row that carried it"},
            "reason": {"type": "string", "description": "why the newest run did not replace it"},
        },
    },
    "Backtest": {
        "type": ["object", "null"],
        "required": ["cutoffs", "horizons", "metrics"],
        "properties": {
            "cutoffs": {"type": "array", "items": _TIME},
            "spacing_seconds": {"type": "integer", "description": "time between neighbouring cutoffs"},
            "window": {"type": "integer", "description": "bars each refit saw (0: all before its cutoff)"},
            "horizons": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "steps": {"type": "integer"}}},
            },
            "metrics": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["served", "prophet", "naive", "drift", "weight", "skill", "beats_naive", "summary"],
                    "properties": {
                        "steps": {"type": "integer"},
                        "independent": {"type": "integer", "description": "cutoffs whose outcomes do not overlap"},
                        "served": {
                            **_METRICS,
                            "properties": {
                                **_METRICS["properties"],
                                "coverage_n": {
                                    "type": "integer",
                                    "description": "cutoffs whose band was the one served (known before them)",
                                },
                                "coverage_independent": {
                                    "type": "integer",
                                    "description": "of those, cutoffs whose outcomes do not overlap",
                                },
                            },
                            "description": "the forecast as served (the final weight, its band); coverage counted "
                            "on the cutoffs whose band was known before them",
                        },
                        "nested": {
                            "type": "object",
                            "description": "the weighting procedure, nested: at each cutoff the weight chosen on "
                            "outcomes known before it; its loss against naive sets the served weight to 0",
                            "properties": {
                                **_METRICS["properties"],
                                "mape_ratio": _NUM_OR_NULL,
                                "mape_ratio_ci90": _CI,
                                "weighted_cutoffs": {
                                    "type": ["integer", "null"],
                                    "description": "cutoffs where the procedure used a weight above 0",
                                },
                            },
                        },
                        "weight_basis": {
                            "type": "string",
                            "description": "why the served weight is what it is (earned, no_skill, too_few, "
                            "unscored, nested_loss)",
                        },
                        "error_z": {
                            "type": ["array", "null"],
                            "items": _NUM,
                            "description": "standardised quantiles of the served point's own out-of-sample errors: "
                            "its band where the weight is above 0",
                        },
                        "prophet": _METRICS,
                        "naive": {**_METRICS, "description": "the last close, with empirical quantiles"},
                        "drift": _METRICS,
                        "weight": {**_NUM, "description": "share of Prophet's predicted change served"},
                        "weight_evidence": {
                            "type": "object",
                            "description": "what the served weight was chosen on: every scored cutoff",
                            "properties": {
                                "n": {"type": "integer", "description": "cutoffs scored"},
                                "independent": {"type": "integer", "description": "of those, non-overlapping"},
                                "needed": {"type": "integer", "description": "non-overlapping outcomes needed"},
                                "best": {**_NUM_OR_NULL, "description": "the weight that did best on them"},
                                "dm_stat": _NUM_OR_NULL,
                                "p_value": _NUM_OR_NULL,
                            },
                        },
                        "weights_used": {
                            "type": "object",
                            "description": "the weights the nested procedure used across the cutoffs",
                            "properties": {"mean": _NUM, "max": _NUM},
                        },
                        "skill": {
                            "type": "object",
                            "properties": {
                                "mape_ratio": _NUM_OR_NULL,
                                "mape_ratio_ci90": _CI,
                                "prophet_mape_ratio": _NUM_OR_NULL,
                                "pinball_ratio": _NUM_OR_NULL,
                                "dm_stat": _NUM_OR_NULL,
                                "p_value": _NUM_OR_NULL,
                            },
                        },
                        "coverage_ci90": _CI,
                        "beats_naive": {"type": "boolean"},
                        "summary": {"type": "string"},
                    },
                },
            },
        },
    },
    "Model": {
        "type": "object",
        "required": ["model_version", "trained_at", "timeframe", "symbols"],
        "properties": {
            "model_version": {"type": "string"},
            "trained_at": _TIME,
            "source": {"type": ["string", "null"]},
            "timeframe": {"type": "string"},
            "model_config": {"type": "object"},
            "libraries": {"type": "object", "additionalProperties": {"type": "string"}},
            "gate": {
                "type": ["object", "null"],
                "properties": {
                    "passed": {"type": "boolean"},
                    "refusal": {"type": ["string", "null"]},
                    "max_failed_share": {
                        **_NUM,
                        "description": "the run is refused when more than this share of its pairs fails",
                    },
                    "pairs": {
                        "type": "object",
                        "description": "each pair's verdict: served fresh from this run, carried forward from the "
                        "model before, or left out",
                        "additionalProperties": {"enum": ["fresh", "carried", "left out"]},
                    },
                    "checks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "symbol": {"type": "string"},
                                "name": {"type": "string"},
                                "passed": {"type": "boolean"},
                                "detail": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "left_out": {
                "type": "object",
                "description": "pairs the run failed that no earlier model served: not served, each with why",
                "additionalProperties": {"type": "string"},
            },
            "symbols": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "pair": {"type": ["string", "null"]},
                        "rows": {"type": ["integer", "null"]},
                        "data_start": _TIME_OR_NULL,
                        "data_end": _TIME_OR_NULL,
                        "forecast_end": _TIME_OR_NULL,
                        "gaps": {"type": "integer"},
                        "warnings": {"type": "array", "items": {"type": "string"}},
                        "backtest": {"$ref": "#/components/schemas/Backtest"},
                        "carried": _CARRIED_REF,
                        "verdict": {
                            "type": "string",
                            "description": "per horizon, what the served forecast is and how it did against naive",
                        },
                    },
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "model_version", "trained_at", "symbols"],
        "properties": {
            "status": {"const": "ok"},
            "model_version": {"type": "string"},
            "trained_at": _TIME,
            "generation": {"type": "string", "description": "the artifact generation: unique to its training run"},
            "run_id": {"type": ["string", "null"], "description": "the training run's identity, when given"},
            "symbols": {"type": "array", "items": {"type": "string"}},
            "live_prices": {"$ref": "#/components/schemas/LivePrices"},
        },
    },
    "LivePrices": {
        "type": "object",
        "required": ["state"],
        "description": "The live price feed: `off` (LIVE_PRICES unset: answers rest on the artifact), "
        "`starting` (no poll answered yet), `ok` (the last poll answered), `failing` (the last poll failed)",
        "properties": {
            "state": {"enum": ["off", "starting", "ok", "failing"]},
            "interval_seconds": _NUM,
            "max_age_seconds": _NUM,
            "last_success": _TIME_OR_NULL,
            "age_seconds": {**_NUM_OR_NULL, "description": "seconds since the last poll that answered"},
            "polls": {"type": "integer"},
            "failures": {"type": "integer", "description": "polls that failed as a whole"},
            "refusals": {"type": "integer", "description": "prices refused by the checks, over all polls"},
            "live_symbols": {"type": "array", "items": {"type": "string"}, "description": "pairs answered live now"},
            "last_error": {"type": ["string", "null"]},
        },
    },
    "RecordSummary": {
        "type": "object",
        "required": ["published", "scored", "pending", "mape", "naive_mape", "coverage_80", "summary"],
        "properties": {
            "published": {"type": "integer"},
            "scored": {"type": "integer", "description": "published forecasts whose target close is known"},
            "pending": {"type": "integer"},
            "mape": {**_NUM_OR_NULL, "description": "mean absolute percentage error of the median, scored ones"},
            "naive_mape": {**_NUM_OR_NULL, "description": "the same for the last close at each origin"},
            "mape_ratio": _NUM_OR_NULL,
            "coverage_80": {**_NUM_OR_NULL, "description": "share of scored closes inside the 80% band"},
            "pinball": {**_NUM_OR_NULL, "description": "mean pinball loss over the published quantiles, log prices"},
            "summary": {"type": "string"},
        },
    },
    "RecordEntry": {
        "type": "object",
        "required": [
            "origin",
            "target",
            "origin_close",
            "prediction",
            "prediction_low",
            "prediction_high",
            "actual_close",
            "status",
            "model_version",
            "generation",
        ],
        "properties": {
            "origin": {**_TIME, "description": "the last bar the publishing model saw"},
            "target": {**_TIME, "description": "the bar forecast"},
            "origin_close": {**_NUM, "description": "the close at the origin: the naive forecast"},
            "prediction": {**_NUM, "description": "the published median"},
            "prediction_low": {**_NUM, "description": "the published 10% quantile"},
            "prediction_high": {**_NUM, "description": "the published 90% quantile"},
            "actual_close": _NUM_OR_NULL,
            "status": {"enum": ["pending", "held", "missed"], "description": "did the 80% band hold the close"},
            "abs_pct_error": _NUM_OR_NULL,
            "naive_abs_pct_error": _NUM_OR_NULL,
            "pinball": _NUM_OR_NULL,
            "model_version": {"type": "string"},
            "generation": {"type": "string", "description": "the artifact that published it"},
        },
    },
    "RecordHead": {
        "type": "object",
        "required": ["model_version", "generation", "retention_days"],
        "properties": {
            "model_version": {"type": "string"},
            "generation": {"type": "string"},
            "retention_days": {"type": "integer", "description": "entries older than this are dropped"},
        },
    },
    "Alerts": {
        "type": "object",
        "required": ["model_version", "generation", "error", "rules"],
        "properties": {
            "model_version": {"type": "string"},
            "generation": {"type": "string"},
            "error": {
                "type": ["string", "null"],
                "description": "why the rule file was refused at training (then nothing fired); null when it was read",
            },
            "rules": {"type": "array", "items": {"$ref": "#/components/schemas/AlertRule"}},
        },
    },
    "AlertRule": {
        "type": "object",
        "description": "A watch rule, evaluated now at the pair's current anchor (the one `/probability` answers at), "
        "beside the evaluation the training run made, which decided whether it fired and was posted",
        "required": [
            "name",
            "pair",
            "kind",
            "threshold",
            "format",
            "watches",
            "value",
            "holds",
            "anchor",
            "fired",
            "at_training",
        ],
        "properties": {
            "name": {"type": "string"},
            "pair": {"type": "string"},
            "kind": {"enum": ["probability_above", "probability_below", "median_move", "band_misses"]},
            "price": _NUM,
            "horizon": {"type": "string"},
            "date": {"type": "string", "format": "date"},
            "threshold": _NUM,
            "format": {"enum": ["discord", "slack", "json"]},
            "watches": {"type": "string", "description": "the rule in words"},
            "value": {
                "type": ["number", "null"],
                "description": "now, at `anchor`: a probability (what `check` answers), a median's move as a fraction "
                "from the median published before, or a count of misses; null when there is nothing to measure",
            },
            "holds": {"type": "boolean", "description": "whether the rule holds now, at `anchor`"},
            "anchor": {
                "anyOf": [_ANCHOR_REF, {"type": "null"}],
                "description": "the anchor `value` was computed at; null for a track-record rule (band_misses)",
            },
            "time": {**_TIME_OR_NULL, "description": "the close the rule looks at (null: none)"},
            "check": {
                "type": ["string", "null"],
                "description": "the API call that answers the same question at the same anchor",
            },
            "fired": {"type": "boolean", "description": "crossed into holding at training, with this model: posted"},
            "detail": {"type": "string", "description": "training's evaluation in words"},
            "at_training": {"$ref": "#/components/schemas/AlertEvaluation"},
        },
    },
    "AlertEvaluation": {
        "type": "object",
        "description": "The rule as the training run evaluated it: the evaluation a posted alert reports",
        "required": ["value", "holds", "anchor"],
        "properties": {
            "value": _NUM_OR_NULL,
            "holds": {"type": "boolean"},
            "anchor": {
                "anyOf": [_ANCHOR_REF, {"type": "null"}],
                "description": "the artifact's own anchor (its last close); null for a track-record rule",
            },
        },
    },
    "TrackRecord": {
        "allOf": [
            {"$ref": "#/components/schemas/RecordHead"},
            {
                "type": "object",
                "required": ["symbols"],
                "properties": {
                    "symbols": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["pair", "horizons", "url"],
                            "properties": {
                                "pair": {"type": "string"},
                                "horizons": {
                                    "type": "object",
                                    "additionalProperties": {"$ref": "#/components/schemas/RecordSummary"},
                                },
                                "url": {"type": "string"},
                            },
                        },
                    },
                },
            },
        ]
    },
    "PairTrackRecord": {
        "allOf": [
            {"$ref": "#/components/schemas/RecordHead"},
            {
                "type": "object",
                "required": ["symbol", "pair", "horizons"],
                "properties": {
                    "symbol": {"type": "string"},
                    "pair": {"type": "string"},
                    "horizons": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["horizon", "summary", "entries"],
                            "properties": {
                                "horizon": {"type": "string"},
                                "summary": {"$ref": "#/components/schemas/RecordSummary"},
                                "entries": {"type": "array", "items": {"$ref": "#/components/schemas/RecordEntry"}},
                            },
                        },
                    },
                },
            },
        ]
    },
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "enum": [t if ":" in t else f"urn:cryptopredict:problem:{t}" for t in PROBLEM_TYPES],
                "description": "; ".join(f"{t}: {what}" for t, what in PROBLEM_TYPES.items()),
            },
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "invalid_params": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "in", "reason"],
                    "properties": {
                        "name": {"type": "string"},
                        "in": {"enum": ["query", "path"]},
                        "reason": {"type": "string"},
                    },
                },
            },
            "valid_range": {"type": "object", "properties": {"start": _TIME, "end": _TIME}},
            "served": {"type": "array", "items": {"type": "string"}},
            "max_points": {"type": "integer"},
        },
    },
}

# Objects a client names, hoisted out of the answers above into components of their own (a generator makes
# one class per component, named as here, instead of names pieced together from the path to it, some of
# which collide). Parents come before their children.
_NAMED = (
    ("Symbols/properties/symbols/items", "Symbol"),
    ("Backtest/properties/horizons/items", "BacktestHorizon"),
    ("Backtest/properties/metrics/additionalProperties", "HorizonMetrics"),
    ("HorizonMetrics/properties/served", "ServedMetrics"),
    ("HorizonMetrics/properties/nested", "NestedMetrics"),
    ("HorizonMetrics/properties/prophet", "Metrics"),
    ("HorizonMetrics/properties/weight_evidence", "WeightEvidence"),
    ("HorizonMetrics/properties/weights_used", "WeightsUsed"),
    ("HorizonMetrics/properties/skill", "Skill"),
    ("Model/properties/gate", "Gate"),
    ("Gate/properties/checks/items", "GateCheck"),
    ("Model/properties/symbols/additionalProperties", "ModelSymbol"),
    ("TrackRecord/allOf/1/properties/symbols/additionalProperties", "PairRecordSummary"),
    ("PairTrackRecord/allOf/1/properties/horizons/items", "HorizonRecord"),
    ("Problem/properties/invalid_params/items", "InvalidParam"),
    ("Problem/properties/valid_range", "ValidRange"),
)
_SAME_AS = {"HorizonMetrics/properties/drift": "Metrics", "HorizonMetrics/properties/naive": "Metrics"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _components(schemas: dict[str, Any]) -> dict[str, Any]:
    """The components a generator reads without surprises: the objects of `_NAMED` hoisted into named
    schemas, and no object-or-null component (a generator names its object half after the first place
    it meets it, and again at the next: duplicate classes); each use is `anyOf: [the object, null]`."""
    out = copy.deepcopy(schemas)

    def holder(pointer: str) -> tuple[Any, str | int]:
        *parents, last = pointer.split("/")
        node: Any = out
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node, int(last) if isinstance(node, list) else last

    for pointer, name in _NAMED:
        node, key = holder(pointer)
        out[name] = node[key]
        node[key] = _ref(name)
    for pointer, name in _SAME_AS.items():
        node, key = holder(pointer)
        described = node[key].get("description")
        node[key] = {**_ref(name), **({"description": described} if described else {})}
    nullable = {name for name, s in out.items() if s.get("type") == ["object", "null"]}
    for name in nullable:
        out[name]["type"] = "object"

    def unnull(node: Any) -> Any:
        if isinstance(node, list):
            return [unnull(x) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        if ref.rsplit("/", 1)[-1] in nullable:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {"anyOf": [{"$ref": ref}, {"type": "null"}], **rest}
        return {k: unnull(v) for k, v in node.items()}

    return {name: unnull(s) for name, s in out.items()}


COMPONENTS = _components(_SCHEMAS)

_ERROR_TEXT = {
    400: "A parameter is missing, unknown, repeated, too long, or outside its documented form",
    404: "No such pair (or chart, or track record) in this deployment",
    405: "Only GET, HEAD and OPTIONS are allowed",
    422: "A parameter in its documented form that cannot be accepted: a date that does not exist or is outside "
    "the served window, a range over the point limit, a level outside the published ones, a price of 0, a "
    "horizon without a record",
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": op.ok}}
    if op.validated:
        what = "changes with the model" if op.cached else "a digest of the answer's bytes; its gzip form's ends in -gz"
        responses["200"]["headers"] = {"ETag": {"schema": {"type": "string"}, "description": what}}
        responses["304"] = {"description": "Not modified since the ETag given in If-None-Match"}
    for status in (*op.errors, 405):
        responses[str(status)] = {"description": _ERROR_TEXT[status], "content": _PROBLEM}
    return {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [p.to_openapi() for p in op.params],
        "responses": responses,
    }


def document(model_version: str) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document: versioned by the contract, naming this deployment's model version."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cryptopredict",
            # The contract's own version (a generated client's package version); the model is another matter.
            "version": CONTRACT_VERSION,
            "x-model-version": model_version,
            "summary": "Crypto price forecasts from a Prophet model, precomputed at train time.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "original", "description": "The original public contract, unchanged"},
            {"name": "forecast", "description": "Every pair, points and series, charts"},
            {"name": "track record", "description": "What production published, scored against what happened"},
            {"name": "alerts", "description": "Watch rules evaluated at training, posted after each deploy"},
            {"name": "service", "description": "What is served and how good it is"},
        ],
        "paths": {op.path: {"get": _operation(op)} for op in OPERATIONS.values()},
        "components": {"schemas": COMPONENTS},
    }
