"""Alerts: watch rules evaluated by training, stored in the artifact, posted to webhooks after a deploy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptopredict.alerts import AlertRuleError, Alerts, evaluate, load_rules, parse_rules
from cryptopredict.alerts.deliver import deliver, summary
from cryptopredict.artifact import PairGrid, read_artifact
from cryptopredict.ledger import Entry, Ledger
from cryptopredict.serving import create_app
from cryptopredict.serving.anchor import artifact_anchor
from tests.helpers import ROOT, quantile_grid, run_cli
from tests.webhook_receiver import Answer, Receiver

PAIRS = ("BTC/USD", "ETH/USD")
FIRST_DAY = pd.Timestamp("2024-01-01", tz="UTC")
# The three runs see the bars before these days (train.py --end): 100, 120 and 140 daily bars.
RUN_ENDS = ("2024-04-10", "2024-04-30", "2024-05-20")
SECRET = "tok3n-that-must-never-be-printed"  # noqa: S105 (a stand-in webhook token, to look for in the output)

RULES = """
[[rule]]
name = "btc-above-105"
pair = "BTC/USD"
kind = "probability_above"
price = 105
horizon = "7d"
threshold = 0.3
webhook_env = "DISCORD_WEBHOOK_URL"
format = "discord"

[[rule]]
name = "btc-above-1"
pair = "BTC/USD"
kind = "probability_above"
price = 1
horizon = "7d"
threshold = 0.5
webhook_env = "ALERTS_WEBHOOK_URL"

[[rule]]
name = "eth-move"
pair = "ETH/USD"
kind = "median_move"
horizon = "7d"
threshold = 0.05
webhook_env = "SLACK_WEBHOOK_URL"
format = "slack"

[[rule]]
name = "btc-below-1m-by-december"
pair = "BTC/USD"
kind = "probability_below"
price = 1000000
date = 2024-12-31
threshold = 0.999
webhook_env = "ALERTS_WEBHOOK_URL"
format = "json"
"""


def _path(levels: list[tuple[int, float]], days: int, seed: int) -> np.ndarray:
    """Closes through the (day, price) knots, linear between them, with 0.2% seeded noise."""
    rng = np.random.default_rng(seed)
    knots_x, knots_y = zip(*levels, strict=True)
    return np.interp(np.arange(days), knots_x, knots_y) * np.exp(rng.normal(0, 0.002, days))


def _write_bars(folder: Path) -> dict[str, np.ndarray]:
    """140 daily bars a pair: BTC/USD at 110, down to 100 (days 100-104), back to 110 (days 120-124);
    ETH/USD at 100, up to 110 (days 100-104), then to 111 (days 120-124)."""
    closes = {
        "BTC/USD": _path([(0, 110), (100, 110), (104, 100), (120, 100), (124, 110), (139, 110)], 140, 1),
        "ETH/USD": _path([(0, 100), (100, 100), (104, 110), (120, 110), (124, 111), (139, 111)], 140, 2),
    }
    for pair, close in closes.items():
        open_ = np.concatenate([[close[0]], close[:-1]])
        pd.DataFrame(
            {
                "timestamp": pd.date_range(FIRST_DAY, periods=len(close), freq="1D").strftime("%Y-%m-%dT%H:%M:%SZ"),
                "open": open_,
                "high": np.maximum(open_, close) * 1.001,
                "low": np.minimum(open_, close) * 0.999,
                "close": close,
                "volume": 1000.0,
            }
        ).to_csv(folder / f"{pair.replace('/', '-')}.daily.csv", index=False)
    return closes


def _train(csv: Path, out: Path, end: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "train.py", "--source", "csv", "--csv-dir", str(csv), "--symbols", ",".join(PAIRS), "--end", end,
        "--backtest-cutoffs", "0", "--model-version", f"alerts-{out.name}", "--workers", "1", "--out", str(out), *args,
    )  # fmt: skip


def _post_alerts(
    artifact: Path, env: dict[str, str], *args: str, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "cryptopredict.alerts", "--artifact", str(artifact), "--summary", "-", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PUBLIC_URL": "https://forecast.example", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _anchor_of(artifact: Path, pair: str) -> dict[str, object]:
    """The artifact's own anchor for a pair, as the API states it: what training evaluated the rules at."""
    art = read_artifact(artifact)
    return artifact_anchor(art.forecasts[pair.replace("/", "-")], art.manifest.trained).to_json()


def _anchor_text(artifact: Path, pair: str) -> str:
    a = _anchor_of(artifact, pair)
    return f"{a['price']:,.10g} at {a['time']} (artifact)"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], dict[str, np.ndarray], list[str]]:
    """Three successive train.py runs with the rule file, each given the one before as production."""
    root = tmp_path_factory.mktemp("alerts")
    closes = _write_bars(root)
    rules = root / "rules.toml"
    rules.write_text(RULES)
    outs, logs = [], []
    for i, end in enumerate(RUN_ENDS, 1):
        out = root / f"run{i}"
        baseline = ("--baseline-artifact", str(outs[-1])) if outs else ()
        done = _train(root, out, end, "--alert-rules", str(rules), *baseline)
        assert done.returncode == 0, done.stderr
        outs.append(out)
        logs.append(done.stderr)
    return outs, closes, logs


def _env(receiver: Receiver, tag: str) -> dict[str, str]:
    return {
        "DISCORD_WEBHOOK_URL": f"{receiver.url}/discord/{tag}/{SECRET}",
        "SLACK_WEBHOOK_URL": f"{receiver.url}/slack/{tag}/{SECRET}",
        "ALERTS_WEBHOOK_URL": f"{receiver.url}/json/{tag}/{SECRET}",
    }


@pytest.mark.training
@pytest.mark.server
def test_three_runs_post_exactly_the_crossings(runs, receiver: Receiver) -> None:
    """Run 1 posts btc-above-105 (Discord) and btc-above-1 (JSON), run 2 eth-move (Slack), run 3 btc-above-105 again."""
    outs, _closes, logs = runs
    assert "a first run: each rule that holds now fires" in logs[0]
    assert "fired: btc-above-105, btc-above-1" in logs[0]
    assert "fired: eth-move" in logs[1]
    assert "fired: btc-above-105" in logs[2]
    assert "btc-above-1," not in logs[2]
    expected = [
        [("discord", "btc-above-105"), ("json", "btc-above-1")],
        [("slack", "eth-move")],
        [("discord", "btc-above-105")],
    ]
    for i, (out, want) in enumerate(zip(outs, expected, strict=True)):
        before = len(receiver.posts)
        done = _post_alerts(out, _env(receiver, f"run{i}"))
        assert done.returncode == 0, done.stderr
        posts = receiver.posts[before:]
        assert [(p.path.split("/")[1], _rule_of(p.body)) for p in posts] == want
        assert [p.path for p in posts] == [f"/{kind}/run{i}/{SECRET}" for kind, _ in want]
        assert SECRET not in done.stdout + done.stderr
        assert "/discord/" not in done.stdout + done.stderr


@pytest.mark.training
@pytest.mark.server
def test_delivery_runs_with_the_api_requirements_alone(runs, receiver: Receiver, api_only_python: str) -> None:
    """The API image's packages are enough to post: run 1's two messages arrive from a venv without training deps."""
    outs, _closes, _logs = runs
    before = len(receiver.posts)
    done = _post_alerts(outs[0], _env(receiver, "api-only"), python=api_only_python)
    assert done.returncode == 0, done.stderr
    assert [p.path for p in receiver.posts[before:]] == [f"/discord/api-only/{SECRET}", f"/json/api-only/{SECRET}"]


def _rule_of(body: dict) -> str:
    """The rule a posted message is about, in any of the three formats."""
    if "embeds" in body:
        return body["embeds"][0]["title"]
    if "blocks" in body:
        return body["blocks"][0]["text"]["text"].split("*")[1]
    return body["rule"]


@pytest.mark.training
def test_hand_computed_values_in_the_artifacts(runs) -> None:
    """The stored values: BTC above 105 holds, fails, holds; ETH's 7d median moved by the closes' ratio."""
    outs, closes, _logs = runs
    states = [{s.rule.name: s for s in read_artifact(out).alerts.states} for out in outs]  # type: ignore[union-attr]
    assert [s["btc-above-105"].active for s in states] == [True, False, True]
    assert [s["btc-above-105"].fired for s in states] == [True, False, True]
    assert [s["btc-above-1"].fired for s in states] == [True, False, False]
    assert all(s["btc-above-1"].active for s in states)
    eth = closes["ETH/USD"]
    # With no backtest the served median is the last close at every horizon (Prophet's weight is 0);
    # the artifact stores prices to about 7 significant digits.
    assert states[0]["eth-move"].value is None
    assert not states[0]["eth-move"].fired
    assert states[0]["eth-move"].basis == pytest.approx(eth[99], rel=1e-6)
    assert states[1]["eth-move"].value == pytest.approx(eth[119] / eth[99] - 1, abs=1e-6)
    assert states[2]["eth-move"].value == pytest.approx(eth[139] / eth[119] - 1, abs=1e-6)
    assert [s["eth-move"].fired for s in states] == [False, True, False]
    assert [s["btc-below-1m-by-december"].active for s in states] == [False, False, False]
    assert "at least 99.0%" in states[0]["btc-below-1m-by-december"].detail


@pytest.mark.training
@pytest.mark.server
def test_discord_payload_field_by_field(runs, receiver: Receiver) -> None:
    """Discord gets content and one embed naming the pair, the numbers, the model version and the service's page."""
    outs, _closes, _logs = runs
    before = len(receiver.posts)
    assert _post_alerts(outs[2], _env(receiver, "discord-fields")).returncode == 0
    (post,) = receiver.posts[before:]
    assert post.content_type == "application/json"
    body = post.body
    assert set(body) == {"content", "embeds", "allowed_mentions"}
    assert body["content"].startswith("Alert btc-above-105: P(BTC/USD above 105 in 7d) reaches 30%: now ")
    assert body["allowed_mentions"] == {"parse": []}
    (embed,) = body["embeds"]
    assert embed["title"] == "btc-above-105"
    assert embed["url"] == "https://forecast.example"
    assert embed["footer"]["text"] == read_artifact(outs[2]).manifest.generation
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    value = read_artifact(outs[2]).alerts.states[0].value  # type: ignore[union-attr]
    anchor = _anchor_text(outs[2], "BTC/USD")
    assert fields == {
        "Pair": "BTC/USD", "Now": f"{value:.1%}", "Threshold": "30.0%", "Model": "alerts-run3", "Anchor": anchor,
    }  # fmt: skip
    assert body["content"].endswith(f" (evaluated at {anchor})")
    assert all(f["inline"] is True for f in embed["fields"])
    assert "crossed since the previous run: fires" in embed["description"]


@pytest.mark.training
@pytest.mark.server
def test_slack_and_json_payloads_field_by_field(runs, receiver: Receiver) -> None:
    """Slack gets text and blocks (the rule, the numbers, a link); the JSON format gets the plain numbers."""
    outs, closes, _logs = runs
    before = len(receiver.posts)
    assert _post_alerts(outs[1], _env(receiver, "slack-fields")).returncode == 0
    (post,) = receiver.posts[before:]
    eth = closes["ETH/USD"]
    move = eth[119] / eth[99] - 1
    assert (
        post.body["text"]
        == f"Alert eth-move: ETH/USD's 7d median moves 5.0% from the last published one: now {move:+.2%}"
        f" (evaluated at {_anchor_text(outs[1], 'ETH/USD')})"
    )
    head, numbers, context = post.body["blocks"]
    assert head == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*eth-move*: ETH/USD's 7d median moves 5.0% from the last published one"},
    }
    assert [f["text"] for f in numbers["fields"]] == [
        "*Pair*\nETH/USD", f"*Now*\n{move:+.2%}", "*Threshold*\n±5.0%", "*Model*\nalerts-run2",
        f"*Anchor*\n{_anchor_text(outs[1], 'ETH/USD')}",
    ]  # fmt: skip
    assert context["type"] == "context"
    assert context["elements"][0]["text"].endswith(" · <https://forecast.example|the forecast service>")

    before = len(receiver.posts)
    assert _post_alerts(outs[0], _env(receiver, "json-fields")).returncode == 0
    body = next(p.body for p in receiver.posts[before:] if p.path.startswith("/json/"))
    state = next(s for s in read_artifact(outs[0]).alerts.states if s.rule.name == "btc-above-1")  # type: ignore[union-attr]
    anchor_text = _anchor_text(outs[0], "BTC/USD")
    assert body == {
        "rule": "btc-above-1",
        "text": f"Alert btc-above-1: P(BTC/USD above 1 in 7d) reaches 50%: now 99.0% (evaluated at {anchor_text})",
        "pair": "BTC/USD",
        "kind": "probability_above",
        "value": state.value,
        "threshold": 0.5,
        "detail": state.detail,
        "model_version": "alerts-run1",
        "generation": read_artifact(outs[0]).manifest.generation,
        "url": "https://forecast.example",
        "anchor": _anchor_of(outs[0], "BTC/USD"),
    }


@pytest.mark.training
@pytest.mark.server
def test_429_is_waited_out_then_sent(runs, receiver: Receiver) -> None:
    """Discord's 429 with retry_after is honoured: the same message is posted again after that wait, then sent."""
    outs, _closes, _logs = runs
    env = _env(receiver, "ratelimited")
    receiver.script(f"/discord/ratelimited/{SECRET}", Answer(429, {"message": "slow down", "retry_after": 0.4}))
    before = len(receiver.posts)
    done = _post_alerts(outs[2], env)
    assert done.returncode == 0, done.stderr
    posts, times = receiver.posts[before:], receiver.times[before:]
    assert [p.path for p in posts] == [f"/discord/ratelimited/{SECRET}"] * 2
    assert posts[0].body == posts[1].body
    assert times[1] - times[0] >= 0.4
    assert "btc-above-105: sent (discord to DISCORD_WEBHOOK_URL): HTTP 204" in done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.training
@pytest.mark.server
@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(500), "HTTP 500"),
        (
            Answer(404, {"message": "Unknown Webhook"}),
            "HTTP 404: the webhook refused it (check the secret), not retried",
        ),
        (Answer(204, delay=3), "no answer in 0.5 s"),
    ],
    ids=["500", "404", "timeout"],
)
def test_failed_delivery_is_reported_without_the_url(runs, receiver: Receiver, answer: Answer, outcome: str) -> None:
    """A 500, a 4xx or a stalled webhook: the rule is reported not sent, the step exits 1, the URL never shows."""
    outs, _closes, _logs = runs
    tag = f"fail{answer.status}{answer.delay:g}"
    env = _env(receiver, tag)
    receiver.script(f"/discord/{tag}/{SECRET}", answer)
    before = len(receiver.posts)
    done = _post_alerts(outs[2], env, "--timeout", "0.5")
    assert done.returncode == 1
    assert len(receiver.posts[before:]) == 1  # never retried
    assert f"btc-above-105: NOT sent (discord to DISCORD_WEBHOOK_URL): {outcome}" in done.stderr
    assert "| btc-above-105 | P(BTC/USD above 105 in 7d) reaches 30% |" in done.stdout
    assert f"discord to `DISCORD_WEBHOOK_URL`: {outcome} |" in done.stdout
    assert (f"- `DISCORD_WEBHOOK_URL`: {outcome}" in done.stdout) == (answer.status == 404)
    assert SECRET not in done.stdout + done.stderr
    assert receiver.url not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.server
def test_a_webhook_refusing_is_reported_once(receiver: Receiver, tmp_path: Path) -> None:
    """After a 404, later rules on the same webhook are not posted, and the summary names the refusal once."""
    rules = load_rules(_two_rules(tmp_path), ["BTC/USD"], date(2024, 1, 1))
    alerts = evaluate(rules, {"BTC/USD": _grid((80, 100, 125))}, None, None)
    url = receiver.script(f"/gone/{SECRET}", Answer(404))
    before = len(receiver.posts)
    out = deliver(Alerts(alerts.states, None, "m1"), "gen-x", {"HOOK": url})
    assert len(receiver.posts[before:]) == 1
    assert [d.sent for d in out] == [False, False]
    assert [d.refused for d in out] == [True, False]
    assert out[1].outcome == "not tried: this webhook refused an earlier message (HTTP 404)"
    text = summary(Alerts(alerts.states, None, "m1"), "gen-x", out)
    assert text.count("- `HOOK`: HTTP 404") == 1
    assert SECRET not in text


@pytest.mark.training
def test_unset_webhook_variable_is_named_not_crashed(runs) -> None:
    """A rule whose webhook variable is not set is reported by the variable's name; the step exits 1."""
    outs, _closes, _logs = runs
    done = _post_alerts(outs[1], {})
    assert done.returncode == 1
    assert "eth-move: NOT sent (slack to SLACK_WEBHOOK_URL): SLACK_WEBHOOK_URL is not set" in done.stderr


@pytest.mark.training
def test_api_shows_rules_and_states(runs) -> None:
    """GET /v1/alerts lists each rule, its value, whether it holds and whether it fired, but no webhook."""
    outs, _closes, _logs = runs
    client = create_app({"artifact_dir": str(outs[2])}).test_client()
    r = client.get("/v1/alerts")
    assert r.status_code == 200
    body = r.get_json()
    assert body["model_version"] == "alerts-run3"
    assert body["error"] is None
    rules = {x["name"]: x for x in body["rules"]}
    assert list(rules) == ["btc-above-105", "btc-above-1", "eth-move", "btc-below-1m-by-december"]
    assert rules["btc-above-105"]["holds"] is True
    assert rules["btc-above-105"]["fired"] is True
    assert rules["btc-above-1"]["holds"] is True
    assert rules["btc-above-1"]["fired"] is False
    assert rules["btc-below-1m-by-december"]["date"] == "2024-12-31"
    assert rules["eth-move"]["watches"] == "ETH/USD's 7d median moves 5.0% from the last published one"
    assert all("webhook_env" not in x for x in body["rules"])
    assert client.get("/v1/alerts?x=1").status_code == 400


@pytest.mark.training
def test_api_evaluates_each_rule_at_the_anchor_probability_answers_at(runs) -> None:
    """Each rule's value is what its `check` call answers, at the anchor both name (the artifact's own here);
    training's evaluation, which decided what fired, is shown beside it with the same anchor."""
    outs, _closes, _logs = runs
    client = create_app({"artifact_dir": str(outs[2])}).test_client()
    rules = {x["name"]: x for x in client.get("/v1/alerts").get_json()["rules"]}
    for name in ("btc-above-105", "btc-above-1", "btc-below-1m-by-december"):
        rule = rules[name]
        answer = client.get(rule["check"]).get_json()
        assert (rule["value"], rule["anchor"], rule["time"]) == (
            answer["probability"],
            answer["anchor"],
            answer["time"],
        )
        assert rule["at_training"]["anchor"] == rule["anchor"] == _anchor_of(outs[2], "BTC/USD")
        assert rule["at_training"]["value"] == pytest.approx(rule["value"], abs=1e-6)
        assert rule["holds"] is rule["at_training"]["holds"]
    assert rules["btc-above-105"]["check"] == "/v1/forecast/BTC-USD/probability?horizon=7d&above=105"
    assert rules["btc-below-1m-by-december"]["time"] == "2025-01-01T00:00:00Z"
    move = rules["eth-move"]
    median = client.get(move["check"]).get_json()["prediction"]
    before = move["at_training"]["value"]
    state = next(s for s in read_artifact(outs[2]).alerts.states if s.rule.name == "eth-move")  # type: ignore[union-attr]
    assert move["value"] == pytest.approx(median / (state.basis / (1 + before)) - 1, abs=1e-9)
    assert move["value"] == pytest.approx(before, abs=1e-9)


@pytest.mark.training
def test_tampered_states_refused_in_one_line(runs, tmp_path: Path) -> None:
    """An alerts.json edited after training fails the checksum: train.py --baseline-artifact refuses it in one line."""
    outs, _closes, _logs = runs
    prod = tmp_path / "prod"
    shutil.copytree(outs[0], prod)
    gen = read_artifact(prod).generation_dir
    states = json.loads((gen / "alerts.json").read_text())
    states["rules"][0]["active"] = False
    (gen / "alerts.json").write_text(json.dumps(states))
    done = _train(outs[0].parent, tmp_path / "next", RUN_ENDS[1], "--baseline-artifact", str(prod))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("train.py: error: --baseline-artifact: refused: checksum mismatch for ")
    assert "alerts.json" in lines[-1]
    assert "Traceback" not in done.stderr


@pytest.mark.training
@pytest.mark.server
def test_bad_rule_file_fails_the_alert_step_not_training(runs, tmp_path: Path, receiver: Receiver) -> None:
    """A bad rule file: training still writes the artifact, recording the refusal; the alert step then fails on it."""
    outs, _closes, _logs = runs
    bad = tmp_path / "alerts.toml"
    bad.write_text(RULES.replace('pair = "ETH/USD"', 'pair = "DOGE/USD"'))
    done = _train(
        outs[0].parent, tmp_path / "next", RUN_ENDS[1], "--alert-rules", str(bad), "--baseline-artifact", str(outs[0])
    )
    assert done.returncode == 0, done.stderr
    msg = "alerts.toml: rule 'eth-move': pair: 'DOGE/USD' is not a trained pair (trained: BTC/USD, ETH/USD)"
    assert f"alerts: refused, nothing fires this run (the deploy still goes ahead): {msg}" in done.stderr
    alerts = read_artifact(tmp_path / "next").alerts
    assert alerts is not None
    assert alerts.error == msg
    # Production's states are carried unchanged, so a later good run still knows what had crossed.
    assert [s.rule.name for s in alerts.states] == [s.rule.name for s in read_artifact(outs[0]).alerts.states]  # type: ignore[union-attr]
    assert not alerts.fired
    before = len(receiver.posts)
    posted = _post_alerts(tmp_path / "next", _env(receiver, "bad-file"))
    assert posted.returncode == 1
    assert f"alerts: error: the rule file was refused: {msg}" in posted.stderr
    assert len(receiver.posts) == before


@pytest.mark.training
def test_removed_rule_drops_its_state(runs, tmp_path: Path) -> None:
    """A rule left out of the file is gone from the next artifact; a rule kept keeps its crossing memory."""
    outs, _closes, _logs = runs
    fewer = tmp_path / "fewer.toml"
    fewer.write_text(RULES.split('[[rule]]\nname = "eth-move"')[0])
    done = _train(
        outs[0].parent, tmp_path / "next", RUN_ENDS[2], "--alert-rules", str(fewer), "--baseline-artifact", str(outs[1])
    )
    assert done.returncode == 0, done.stderr
    states = read_artifact(tmp_path / "next").alerts.states  # type: ignore[union-attr]
    assert [s.rule.name for s in states] == ["btc-above-105", "btc-above-1"]
    assert [s.fired for s in states] == [True, False]  # 105: crossed again; 1: held in run 2 already


# ----------------------------------------------------------------------------------- hand-made forecasts

LEVELS = (0.1, 0.5, 0.9)


def _grid(at_7d: tuple[float, float, float]) -> PairGrid:
    """A daily grid of 10 history points and 10 forecast points; the 7-day quantiles are `at_7d` (the served
    distribution's parameters, which the rules do not read, left empty)."""
    columns = [[100.0] * 20 for _ in LEVELS]
    for col, v in zip(columns, at_7d, strict=True):
        col[9 + 7] = v
    flat = [100.0] * 20
    return quantile_grid(columns, flat, flat, flat, history_points=10, levels=LEVELS, start="2024-01-01T00:00:00Z")


def _two_rules(folder: Path) -> Path:
    """Two rules on one webhook, both true on `_grid((80, 100, 125))`: P(below 1000) is at least 0.9."""
    path = folder / "two.toml"
    path.write_text(
        "".join(
            f'[[rule]]\nname = "r{i}"\npair = "BTC/USD"\nkind = "probability_below"\nprice = 1000\n'
            f'horizon = "7d"\nthreshold = 0.5\nwebhook_env = "HOOK"\n'
            for i in range(2)
        )
    )
    return path


def test_crossings_over_three_forecasts_by_hand() -> None:
    """P(above 100) is 0.5, then 0.1, then 0.69 (log-linear between 90 and 110): fires, stays quiet, fires again."""
    doc = {
        "rule": [
            {"name": "above", "pair": "BTC/USD", "kind": "probability_above", "price": 100, "horizon": "7d",
             "threshold": 0.3, "webhook_env": "HOOK"},
            {"name": "stays", "pair": "BTC/USD", "kind": "probability_below", "price": 1000, "horizon": "7d",
             "threshold": 0.5, "webhook_env": "HOOK"},
            {"name": "move", "pair": "BTC/USD", "kind": "median_move", "horizon": "7d", "threshold": 0.05,
             "webhook_env": "HOOK"},
        ]
    }  # fmt: skip

    rules = parse_rules(doc, ["BTC/USD"], date(2024, 1, 10))
    previous = None
    seen = []
    for quantiles in ((80, 100, 125), (60, 75, 100), (90, 110, 130)):
        previous = evaluate(rules, {"BTC/USD": _grid(quantiles)}, None, previous)
        seen.append({s.rule.name: (s.value, s.active, s.fired) for s in previous.states})
    p3 = 1 - (0.1 + 0.4 * np.log(100 / 90) / np.log(110 / 90))
    assert [s["above"] for s in seen] == [
        (0.5, True, True),
        (0.1, False, False),
        (pytest.approx(p3, abs=1e-6), True, True),
    ]
    assert [s["stays"] for s in seen] == [(0.9, True, True), (0.9, True, False), (0.9, True, False)]
    assert [s["move"] for s in seen] == [
        (None, False, False),
        (pytest.approx(-0.25), True, True),
        (pytest.approx(110 / 75 - 1), True, False),
    ]


def test_band_misses_counts_the_streak_up_to_the_newest() -> None:
    """Three scored 7d forecasts missed their 80% band in a row after one that held: a streak of 3 fires at 3."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    entries = [
        Entry("BTC/USD", "7d", t0 + timedelta(days=i), t0 + timedelta(days=i + 7), 100.0, (95.0, 100.0, 105.0),
              "gen-a", "m", actual=actual, scored_by="gen-b")
        for i, actual in enumerate((101.0, 120.0, 80.0, 130.0))
    ]  # fmt: skip
    ledger = Ledger(levels=LEVELS, entries=tuple(entries))
    doc = {"rule": [{"name": "misses", "pair": "BTC/USD", "kind": "band_misses", "horizon": "7d", "threshold": 3,
                     "webhook_env": "HOOK"}]}  # fmt: skip

    rules = parse_rules(doc, ["BTC/USD"], date(2024, 1, 10))
    (state,) = evaluate(rules, {"BTC/USD": _grid((90, 100, 110))}, ledger, None).states
    assert (state.value, state.active, state.fired) == (3.0, True, True)
    held = Ledger(levels=LEVELS, entries=(*entries[:3], replace(entries[3], actual=100.0)))
    (state,) = evaluate(rules, {"BTC/USD": _grid((90, 100, 110))}, held, None).states
    assert (state.value, state.active) == (0.0, False)


_GOOD = (
    '[[rule]]\nname = "r"\npair = "BTC/USD"\nkind = "probability_above"\nprice = 100\nhorizon = "7d"\n'
    'threshold = 0.3\nwebhook_env = "HOOK"\nformat = "json"\n'
)
_WHERE = "rules.toml: rule 'r': "


@pytest.mark.parametrize(
    ("line", "bad", "message"),
    [
        ('pair = "BTC/USD"', 'pair = "DOGE/USD"', "pair: 'DOGE/USD' is not a trained pair (trained: BTC/USD)"),
        (
            'kind = "probability_above"',
            'kind = "probability_sideways"',
            "kind: 'probability_sideways' is not one of probability_above, probability_below, median_move, band_misses",
        ),
        ("threshold = 0.3", "threshold = 1.5", "threshold: a probability strictly between 0 and 1, got 1.5"),
        ('horizon = "7d"', "date = 2023-12-31", "date: 2023-12-31 is past: the forecast starts after 2024-01-10"),
        ('horizon = "7d"', 'horizon = "7 days"', "horizon: '7 days' is not a horizon like 30d or 24h"),
        (
            'webhook_env = "HOOK"',
            'webhook_env = "https://discord.example/api/webhooks/1"',
            "webhook_env: expected the name of an environment variable like DISCORD_WEBHOOK_URL, got "
            "'https://discord.example/api/webhooks/1'",
        ),
        ('format = "json"', 'format = "teams"', "format: 'teams' is not one of discord, slack, json"),
        ("price = 100", "price = -5", "price: expected a positive number of USD, got -5"),
        (
            "price = 100",
            'price = 100\ncolour = "red"',
            "colour: unknown field (expected some of: name, pair, kind, price, horizon, date, threshold, webhook_env, "
            "format)",
        ),
    ],
    ids=["pair", "kind", "threshold", "past-date", "horizon", "webhook-url", "format", "price", "unknown-field"],
)
def test_bad_rules_are_refused_in_one_line(tmp_path: Path, line: str, bad: str, message: str) -> None:
    """Each bad rule is refused with one line naming the rule and the field."""
    assert load_rules(_write(tmp_path, _GOOD), ["BTC/USD"], date(2024, 1, 10))
    with pytest.raises(AlertRuleError) as err:
        load_rules(_write(tmp_path, _GOOD.replace(line, bad)), ["BTC/USD"], date(2024, 1, 10))
    assert str(err.value) == _WHERE + message


@pytest.mark.parametrize(
    ("line", "bad", "message"),
    [
        (
            'name = "r"', 'name = "r r"',
            "rules.toml: rule 1: name: expected letters, digits, '.', '_' or '-' (at most 64), got 'r r'",
        ),
        (
            "threshold = 0.3", "threshold 0.3",
            "rules.toml: not valid TOML (Expected '=' after a key in a key/value pair (at line 7, column 11))",
        ),
        ("[[rule]]", "[[rules]]", "rules.toml: unknown top-level key 'rules' (rules are [[rule]] tables)"),
    ],
    ids=["name", "toml", "table"],
)  # fmt: skip
def test_bad_rule_files_are_refused_in_one_line(tmp_path: Path, line: str, bad: str, message: str) -> None:
    """A bad name, broken TOML or a misspelt table is refused with one line naming where."""
    with pytest.raises(AlertRuleError) as err:
        load_rules(_write(tmp_path, _GOOD.replace(line, bad)), ["BTC/USD"], date(2024, 1, 10))
    assert str(err.value) == message


def _write(folder: Path, text: str) -> Path:
    path = folder / "rules.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ('horizon = "30d"', "rules.toml: rule 'r': horizon: 30d is past the forecast, which ends 2024-01-20"),
        ('horizon = "36h"', "rules.toml: rule 'r': horizon: 36h is not a whole number of bars (24h each)"),
        ("date = 2024-01-10", "rules.toml: rule 'r': date: 2024-01-10 is past: the forecast starts after 2024-01-10"),
    ],
    ids=["past-horizon", "part-bar", "at-data-end"],
)
def test_rule_the_forecast_cannot_answer_is_recorded_as_a_refusal(tmp_path: Path, target: str, message: str) -> None:
    """A rule past the forecast's end, between bars or at the data end is refused in one line, and the previous
    states are kept with nothing fired."""
    from cryptopredict.alerts.evaluate import decide

    grids = {"BTC/USD": _grid((80, 100, 125))}
    previous = decide(_write(tmp_path, _GOOD), grids, None, None)
    assert [s.fired for s in previous.states] == [True]
    refused = decide(_write(tmp_path, _GOOD.replace('horizon = "7d"', target)), grids, None, previous)
    assert refused.error == message
    assert [(s.rule, s.value, s.active, s.fired) for s in refused.states] == [
        (previous.states[0].rule, previous.states[0].value, True, False)
    ]


def test_committed_rule_file_is_empty_and_its_example_valid() -> None:
    """alerts.toml holds no rule, and its commented example rules, uncommented, pass validation."""
    committed = ROOT / "alerts.toml"
    assert load_rules(committed, PAIRS, date(2026, 1, 1)) == ()
    text = committed.read_text()
    example = "\n".join(
        line.removeprefix("# ").split("  #")[0]
        for line in text.split("one [[rule]] table per rule:\n", 1)[1].splitlines()
    )
    rules = parse_rules(tomllib.loads(example.replace("#", "")), PAIRS, date(2026, 1, 1))
    assert [(r.name, r.kind, r.format) for r in rules] == [
        ("btc-above-100k", "probability_above", "discord"),
        ("eth-weekly-move", "median_move", "slack"),
        ("btc-band-misses", "band_misses", "json"),
    ]


def test_missing_artifact_is_one_line(tmp_path: Path) -> None:
    """Delivery pointed at a folder without an artifact says so in one line and exits 1, no traceback."""
    done = _post_alerts(tmp_path / "none", {})
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"alerts: error: no artifact at {tmp_path / 'none'}: manifest.json not found (run train.py first)"
    )


def test_a_changed_rule_starts_afresh_but_a_moved_one_keeps_its_state(tmp_path: Path) -> None:
    """A new threshold makes a holding rule fire again as if new; a new webhook or format does not."""
    grids = {"BTC/USD": _grid((80, 100, 125))}
    first = evaluate(load_rules(_write(tmp_path, _GOOD), ["BTC/USD"], date(2024, 1, 1)), grids, None, None)
    moved = _GOOD.replace('webhook_env = "HOOK"', 'webhook_env = "OTHER_HOOK"').replace('"json"', '"slack"')
    again = evaluate(load_rules(_write(tmp_path, moved), ["BTC/USD"], date(2024, 1, 1)), grids, None, first)
    assert [(s.active, s.fired) for s in (*first.states, *again.states)] == [(True, True), (True, False)]
    stricter = _GOOD.replace("threshold = 0.3", "threshold = 0.4")
    new = evaluate(load_rules(_write(tmp_path, stricter), ["BTC/USD"], date(2024, 1, 1)), grids, None, again)
    assert [(s.active, s.fired) for s in new.states] == [(True, True)]
    assert "first evaluation: holds now, fires" in new.states[0].detail
