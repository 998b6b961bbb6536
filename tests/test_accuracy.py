"""`model=prophet` answers Prophet's own numbers (compared with `predict()` of the saved model); the
served forecast's grid keeps its promises (anchored, ordered, positive)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient

from cryptopredict.artifact import Artifact, format_utc
from cryptopredict.training.model import quiet_prophet
from tests.helpers import file_of


def _prophet_model(artifact: Artifact, slug: str):
    quiet_prophet()
    from prophet.serialize import model_from_json

    name = artifact.manifest.symbols[slug].model_file
    return model_from_json(file_of(artifact, name).read_text())


def _served(client: FlaskClient, slug: str, when) -> dict:
    r = client.get(f"/v1/forecast/{slug}?date={format_utc(when)}&model=prophet")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


@pytest.mark.parametrize("slug", ["BTC-USD", "ETH-USD"])
def test_grid_points_equal_prophet_predict(artifact: Artifact, client: FlaskClient, slug: str) -> None:
    """At grid points, in the data and in the forecast, model=prophet answers exp(yhat) of the saved model to 1e-6."""
    fc = artifact.forecasts[slug]
    rng = np.random.default_rng(0)
    idx = sorted({0, fc.history_points - 1, fc.history_points, fc.points - 1, *rng.integers(0, fc.points, 12)})
    times = [fc.start + int(i) * fc.step for i in idx]
    model = _prophet_model(artifact, slug)
    ds = pd.DataFrame({"ds": pd.to_datetime([t.replace(tzinfo=None) for t in times])})
    expected = np.exp(model.predict(ds)["yhat"].to_numpy())
    served = np.array([_served(client, slug, t)["prediction"] for t in times])
    np.testing.assert_allclose(served, expected, rtol=1e-6)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9])
def test_between_grid_points_is_within_half_a_percent(artifact: Artifact, client: FlaskClient, fraction: float) -> None:
    """Between grid points the linear interpolation stays within 0.5% of Prophet's own predict()."""
    fc = artifact.forecasts["BTC-USD"]
    rng = np.random.default_rng(1)
    times = [fc.start + int(i) * fc.step + fc.step * fraction for i in rng.integers(0, fc.points - 1, 15)]
    times = sorted(t - timedelta(microseconds=t.microsecond) for t in times)  # predict() sorts by ds
    model = _prophet_model(artifact, "BTC-USD")
    ds = pd.DataFrame({"ds": pd.to_datetime([t.replace(tzinfo=None) for t in times])})
    expected = np.exp(model.predict(ds)["yhat"].to_numpy())
    served = np.array([_served(client, "BTC-USD", t)["prediction"] for t in times])
    np.testing.assert_allclose(served, expected, rtol=5e-3)


def test_intervals_contain_their_prediction_and_stay_positive(artifact: Artifact) -> None:
    """Every grid point has 0 < low <= prediction <= high (the log scale keeps prices positive)."""
    for fc in artifact.forecasts.values():
        low, mid, high = (np.array(s) for s in (fc.yhat_lower, fc.yhat, fc.yhat_upper))
        assert np.all(low > 0)
        assert np.all(low <= mid)
        assert np.all(mid <= high)


def test_served_quantiles_never_cross_and_stay_positive(artifact: Artifact) -> None:
    """At every grid point the served quantiles are positive and ascend with their level."""
    for fc in artifact.forecasts.values():
        q = np.array([np.asarray(c) for c in fc.quantiles])
        assert q.shape == (len(fc.levels), fc.points)
        assert np.all(q > 0)
        assert np.all(np.diff(q, axis=0) >= 0)


def test_with_no_weight_the_served_median_is_the_last_close(artifact: Artifact) -> None:
    """Where the backtest gave Prophet no weight at any horizon, every forecast point's median is the last close."""
    checked = 0
    for fc in artifact.forecasts.values():
        weights = [e.weight for e in fc.backtest.metrics.values()]
        if any(weights):
            continue
        median = np.asarray(fc.quantiles[fc.level_index(0.5)])
        last = fc.actual[fc.history_points - 1]
        np.testing.assert_allclose(median[fc.history_points :], last, rtol=1e-7)
        checked += 1
    assert checked >= 1, "the session artifact gives Prophet no weight for at least one pair"
