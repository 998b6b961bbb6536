"""Record the golden artifact's answers: `python tests/golden/record_answers.py` (a deliberate step).

Every surface that answers from the served distribution or Prophet's series, for both golden pairs:
points inside the data, at its end, between bars and after it, ranges as points and as columns,
every published quantile, probabilities above and below (exact and bounds), Prophet's own forecast,
and the answers re-anchored at a live price. tests/test_golden.py checks the API still gives them,
to the printed digit, after any change to how the artifact stores the forecast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "tests" / "golden" / "answers.json"
# Daily bars 2025-01-01 .. 2025-03-31, forecast to 2025-04-30.
URLS = [
    "/bitcoin?date=2025-01-01",
    "/bitcoin?date=2025-03-01",
    "/bitcoin?date=2025-03-31",
    "/bitcoin?date=2025-04-15T06:00:00",
    "/bitcoin?date=2025-04-30",
    *(
        url.format(slug=slug)
        for slug in ("BTC-USD", "ETH-USD")
        for url in (
            "/v1/forecast/{slug}?date=2025-01-02",
            "/v1/forecast/{slug}?date=2025-02-14T12:00:00Z",
            "/v1/forecast/{slug}?date=2025-03-31",
            "/v1/forecast/{slug}?date=2025-04-01T18:00:00Z",
            "/v1/forecast/{slug}?horizon=7d",
            "/v1/forecast/{slug}?horizon=29d",
            "/v1/forecast/{slug}?date=2025-04-20&quantiles=all",
            "/v1/forecast/{slug}?date=2025-03-10&quantiles=0.01,0.25,0.75,0.99",
            "/v1/forecast/{slug}?start=2025-03-25&end=2025-04-05",
            "/v1/forecast/{slug}?start=2025-01-01&end=2025-04-30&format=columns&step=7&quantiles=all",
            "/v1/forecast/{slug}?date=2025-04-10&model=prophet",
            "/v1/forecast/{slug}?start=2025-03-29&end=2025-04-03&model=prophet",
            "/v1/forecast/{slug}/probability?horizon=14d&above=1000,50000,85000,90000,1000000",
            "/v1/forecast/{slug}/probability?date=2025-04-30&below=1000,2000,80000,10000000",
        )
    ),
]


def answers(artifact_dir: Path | None = None) -> dict[str, object]:
    """Each URL's JSON answer from the golden artifact, or the one at `artifact_dir` (status and body)."""
    from cryptopredict.serving import create_app
    from tests.helpers import GOLDEN

    client = create_app({"artifact_dir": str(artifact_dir or GOLDEN)}).test_client()
    out = {}
    for url in URLS:
        r = client.get(url)
        out[url] = {"status": r.status_code, "body": r.get_json()}
    return out


def live_answers(artifact_dir: Path | None = None) -> dict[str, object]:
    """Each pair re-anchored at a checked live price 1.3% above its last close, observed 30 hours after its
    last bar closed: points at several leads (below one step, at whole steps, between them), every
    published quantile, and a probability, as `cryptopredict.serving.lookup` gives them."""
    from datetime import timedelta

    from cryptopredict.artifact import read_artifact
    from cryptopredict.serving import lookup
    from cryptopredict.serving.anchor import Anchor, artifact_anchor, check_live
    from tests.helpers import GOLDEN

    artifact = read_artifact(artifact_dir or GOLDEN)
    out: dict[str, object] = {}
    for slug, fc in artifact.forecasts.items():
        base = artifact_anchor(fc, artifact.manifest.trained)
        observed = fc.history_end + fc.step + timedelta(hours=30)
        live = check_live(fc, round(base.price * 1.013, 2), observed, observed, 60.0)
        assert isinstance(live, Anchor), live
        answers = {}
        for hours in (31, 36, 48, 60, 24 * 7, 24 * 20 + 5):
            when = live.grid + timedelta(hours=hours)
            p = lookup.at(fc, when, anchor=live)
            answers[f"at +{hours}h"] = [p.kind, p.prediction, p.prediction_low, p.prediction_high]
            answers[f"quantiles +{hours}h"] = lookup.quantiles_at(fc, when, fc.levels, anchor=live)
            for side in ("above", "below"):
                answers[f"{side} +{hours}h"] = list(lookup.probability_at(fc, when, side, base.price, live))
        out[slug] = {"anchor": live.to_json(), "answers": answers}
    return out


def main() -> None:
    OUT.write_text(json.dumps({"http": answers(), "live": live_answers()}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
