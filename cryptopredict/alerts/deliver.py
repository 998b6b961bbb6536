"""Post the rules that fired in an artifact to their webhooks (Discord, Slack or plain JSON).

Delivery only carries out what training decided: it reads the artifact's alert states and posts
each rule that fired, to the URL held by the environment variable the rule names. The URL is a
secret: it is never printed, on success or failure. `requests` is imported only here.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptopredict.alerts.states import Alerts, RuleState

__all__ = ["MAX_ATTEMPTS", "MAX_WAIT", "Delivery", "deliver", "message", "summary"]

MAX_ATTEMPTS = 3  # a 429 is retried after the wait it names, twice at most
MAX_WAIT = 60.0  # seconds: a longer rate-limit wait is reported instead of waited out


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one fired rule's message."""

    rule: str
    webhook_env: str
    format: str
    sent: bool
    outcome: str  # 'HTTP 204', 'HTTP 404: the webhook refused it, not retried', 'no answer in 10 s'...
    refused: bool = False  # a 4xx other than 429: the webhook itself is wrong; reported once


def _value(s: RuleState) -> str:
    if s.value is None:
        return "n/a"
    if s.rule.kind == "median_move":
        return f"{s.value:+.2%}"
    if s.rule.kind == "band_misses":
        return f"{s.value:.0f}"
    return f"{s.value:.1%}"


def _threshold(s: RuleState) -> str:
    if s.rule.kind == "band_misses":
        return f"{s.rule.threshold:.0f} in a row"
    return f"{s.rule.threshold:.1%}" if s.rule.kind != "median_move" else f"±{s.rule.threshold:.1%}"


def _anchor(anchor: Mapping[str, Any]) -> str:
    return f"{anchor['price']:,.10g} at {anchor['time']} ({anchor['source']})"


def message(
    s: RuleState,
    model_version: str,
    generation: str,
    public_url: str | None,
    anchor: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body posted for a fired rule, in the rule's format; `anchor` (price, time, source) is the one the
    rule was evaluated at, named in the message (none for a track-record rule)."""
    r = s.rule
    text = f"Alert {r.name}: {r.describe()}: now {_value(s)}"
    numbers = [("Pair", r.pair), ("Now", _value(s)), ("Threshold", _threshold(s)), ("Model", model_version)]
    if anchor is not None:
        text += f" (evaluated at {_anchor(anchor)})"
        numbers.append(("Anchor", _anchor(anchor)))
    if r.format == "discord":
        embed: dict[str, Any] = {
            "title": r.name,
            "description": s.detail,
            "fields": [{"name": k, "value": v, "inline": True} for k, v in numbers],
            "footer": {"text": generation},
        }
        if public_url:
            embed["url"] = public_url
        # allowed_mentions: a rule's text can never ping @everyone.
        return {"content": text, "embeds": [embed], "allowed_mentions": {"parse": []}}
    if r.format == "slack":
        link = f" · <{public_url}|the forecast service>" if public_url else ""
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{r.name}*: {r.describe()}"}},
                {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in numbers]},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{s.detail}{link}"}]},
            ],
        }
    return {
        "rule": r.name,
        "text": text,
        "pair": r.pair,
        "kind": r.kind,
        "value": s.value,
        "threshold": r.threshold,
        "detail": s.detail,
        "model_version": model_version,
        "generation": generation,
        "url": public_url,
        "anchor": dict(anchor) if anchor is not None else None,
    }


def _retry_after(response: Any) -> float | None:
    """Discord's `retry_after` (seconds, in the JSON body), else the Retry-After header."""
    try:
        wait = float(response.json()["retry_after"])
    except (ValueError, KeyError, TypeError):
        try:
            wait = float(response.headers.get("Retry-After", ""))
        except ValueError:
            return None
    return wait if math.isfinite(wait) and wait >= 0 else None


def _post(url: str, body: Mapping[str, Any], timeout: float, sleep: Callable[[float], None]) -> tuple[bool, str, bool]:
    """(sent, outcome, refused); no text from `requests` is kept: its messages can hold the URL."""
    import requests  # the API image has it; imported here only, like the live price feed

    data = json.dumps(body, allow_nan=False).encode()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            r = requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=timeout)
        except requests.Timeout:
            return False, f"no answer in {timeout:g} s", False
        except requests.RequestException as exc:
            return False, f"could not connect ({type(exc).__name__})", False
        if 200 <= r.status_code < 300:
            return True, f"HTTP {r.status_code}", False
        if r.status_code != 429:
            if 400 <= r.status_code < 500:
                return False, f"HTTP {r.status_code}: the webhook refused it (check the secret), not retried", True
            return False, f"HTTP {r.status_code}", False
        wait = _retry_after(r)
        if wait is None or wait > MAX_WAIT:
            return False, f"HTTP 429: rate limited for {'an unstated time' if wait is None else f'{wait:g} s'}", False
        if attempt < MAX_ATTEMPTS:
            sleep(wait)
    return False, f"HTTP 429: still rate limited after {MAX_ATTEMPTS} attempts", False


def deliver(
    alerts: Alerts,
    generation: str,
    env: Mapping[str, str],
    public_url: str | None = None,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    anchors: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Delivery]:
    """Post every fired rule to the webhook its `webhook_env` names in `env`; one Delivery per rule.

    `anchors` (by pair, like `BTC/USD`): the anchor each pair's rules were evaluated at, which the message
    names: training evaluates at the artifact's own anchor (its last close), as `/v1/alerts` shows."""
    out: list[Delivery] = []
    refused: dict[str, str] = {}  # webhook_env -> the 4xx it answered: not tried again this run
    for s in alerts.fired:
        r = s.rule
        url = env.get(r.webhook_env, "")
        if r.webhook_env in refused:
            sent, outcome, bad = (
                False,
                f"not tried: this webhook refused an earlier message ({refused[r.webhook_env]})",
                False,
            )
        elif not url:
            sent, outcome, bad = False, f"{r.webhook_env} is not set", False
        elif not url.startswith(("https://", "http://")):
            sent, outcome, bad = False, f"{r.webhook_env} does not hold an http(s) URL", False
        else:
            anchor = (anchors or {}).get(r.pair) if r.kind != "band_misses" else None
            body = message(s, alerts.model_version or "unknown", generation, public_url, anchor)
            sent, outcome, bad = _post(url, body, timeout, sleep)
            if bad:
                refused[r.webhook_env] = outcome.split(":", 1)[0]
        out.append(Delivery(r.name, r.webhook_env, r.format, sent, outcome, bad))
    return out


def summary(alerts: Alerts, generation: str, deliveries: list[Delivery]) -> str:
    """The job summary: each rule's state and what was sent (Markdown)."""
    lines = ["## Alerts", ""]
    if alerts.error is not None:
        lines += [
            f"**The rule file was refused**: {alerts.error}",
            "",
            "Nothing fired this run; the deploy stands.",
            "",
        ]
    sent = sum(d.sent for d in deliveries)
    lines.append(
        f"Model {alerts.model_version} ({generation}): {len(alerts.states)} rule(s), "
        f"{len(alerts.fired)} fired, {sent} sent."
    )
    if alerts.states:
        by_rule = {d.rule: d for d in deliveries}
        lines += ["", "| rule | watches | now | state | sent |", "|---|---|---|---|---|"]
        for s in alerts.states:
            d = by_rule.get(s.rule.name)
            what = "—" if d is None else f"{d.format} to `{d.webhook_env}`: {d.outcome}"
            lines.append(f"| {s.rule.name} | {s.rule.describe()} | {_value(s)} | {s.detail} | {what} |")
    refusals = {d.webhook_env: d.outcome for d in deliveries if d.refused}
    if refusals:
        lines += ["", "Webhooks that refused a message (fix the secret; delivery never fails the deploy):"]
        lines += [f"- `{env}`: {outcome}" for env, outcome in refusals.items()]
    return "\n".join(lines) + "\n"
