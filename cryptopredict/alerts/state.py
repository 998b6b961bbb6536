"""Alert states: each rule evaluated on a new forecast, and whether it fired (crossed into true since
the previous run). Training computes them and stores them in the artifact; the deploy only posts
what fired (standard library only)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptopredict import quantiles
from cryptopredict.alerts.rules import FORMATS, KINDS, AlertRuleError, Rule, load_rules, parse_horizon, utc_midnight
from cryptopredict.ledger import Ledger
from cryptopredict.timeframes import TIMEFRAMES, parse_utc

__all__ = [
    "ALERTS_FILE",
    "ALERTS_VERSION",
    "Alerts",
    "RuleState",
    "decide",
    "evaluate",
    "holds",
    "log_line",
    "parse_alerts",
    "refused",
]

ALERTS_VERSION = 1
ALERTS_FILE = "alerts.json"


@dataclass(frozen=True, slots=True)
class RuleState:
    """A rule after one run: its value, whether it holds, whether it fired this run."""

    rule: Rule
    value: float | None  # None: nothing to measure yet (a median_move rule's first run)
    active: bool
    fired: bool
    detail: str  # the evaluation in words: value, threshold, what it was, why it fired or not
    basis: float | None = None  # median_move: the median this run published, the next run's basis

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.to_json(),
            "value": self.value,
            "active": self.active,
            "fired": self.fired,
            "detail": self.detail,
            "basis": self.basis,
        }


@dataclass(frozen=True, slots=True)
class Alerts:
    """Every rule's state after a run; `error` is the rule file's one-line refusal, if it was refused."""

    states: tuple[RuleState, ...] = ()
    error: str | None = None
    model_version: str | None = None

    @property
    def fired(self) -> tuple[RuleState, ...]:
        return tuple(s for s in self.states if s.fired)

    def to_json(self) -> dict[str, Any]:
        return {"version": ALERTS_VERSION, "error": self.error, "rules": [s.to_json() for s in self.states]}


def _column_values(payload: Mapping[str, Any], i: int) -> list[float]:
    return [float(col[i]) for col in payload["served"]["quantiles"]]


def _data_end(payload: Mapping[str, Any]) -> datetime:
    step = timedelta(seconds=int(payload["step_seconds"]))
    return parse_utc(payload["start"]) + (int(payload["history_points"]) - 1) * step


def _index(rule: Rule, payload: Mapping[str, Any]) -> int:
    """The grid point a rule looks at: the data end plus its horizon, or its date's 00:00 UTC."""
    step = timedelta(seconds=int(payload["step_seconds"]))
    end = int(payload["history_points"]) - 1
    n = len(payload["served"]["quantiles"][0])
    start = parse_utc(payload["start"])
    data_end = _data_end(payload)
    if rule.horizon is not None:
        lead = parse_horizon(rule.horizon)
        field, what = "horizon", rule.horizon
    else:
        lead = utc_midnight(rule.date or "") - data_end
        field, what = "date", rule.date
        if lead <= timedelta(0):
            msg = f"rule {rule.name!r}: date: {what} is not after {rule.pair}'s data end {data_end.date().isoformat()}"
            raise AlertRuleError(msg)
    steps = lead // step  # a date between two bars looks at the bar at or before it
    if (lead % step and field == "horizon") or steps < 1:
        msg = f"rule {rule.name!r}: horizon: {what} is not a whole number of bars ({step // timedelta(hours=1)}h each)"
        raise AlertRuleError(msg)
    if end + steps >= n:
        last = (start + (n - 1) * step).date().isoformat()
        msg = f"rule {rule.name!r}: {field}: {what} is past the forecast, which ends {last}"
        raise AlertRuleError(msg)
    return end + steps


def _streak(ledger: Ledger | None, rule: Rule) -> float:
    """Scored forecasts of the pair and horizon whose 80% band missed, in a row up to the newest."""
    if ledger is None:
        return 0.0
    entries = ledger.series(rule.pair).get(rule.horizon or "", [])
    scored = sorted((e for e in entries if e.actual is not None), key=lambda e: e.target)
    n = 0
    for e in reversed(scored):
        s = ledger.scores(e)
        if s is None or s["in_80"]:
            break
        n += 1
    return float(n)


def _measure(
    rule: Rule, payload: Mapping[str, Any], ledger: Ledger | None, before: RuleState | None
) -> tuple[float | None, str, float | None]:
    """The rule's value, how it was measured, and (median_move) the median to compare with next time."""
    if rule.kind == "band_misses":
        scored = [h.name for h in TIMEFRAMES[payload["timeframe"]].horizons]
        if rule.horizon not in scored:
            tf = payload["timeframe"]
            msg = f"rule {rule.name!r}: horizon: the track record scores {', '.join(scored)} on {tf} bars"
            raise AlertRuleError(msg)
        value = _streak(ledger, rule)
        return value, f"{value:.0f} missed in a row", None
    i = _index(rule, payload)
    values = _column_values(payload, i)
    levels = [float(x) for x in payload["served"]["levels"]]
    if rule.kind == "median_move":
        median = values[levels.index(0.5)]
        basis = before.basis if before is not None else None
        if basis is None:
            return None, f"median {median:,.10g}; no earlier publication to compare with", median
        move = median / basis - 1
        return move, f"median {median:,.10g} against {basis:,.10g} published before ({move:+.2%})", median
    p, bound = quantiles.probability_below(levels, values, rule.price or 0.0)
    if rule.kind == "probability_above":
        p, bound = 1 - p, {"at most": "at least", "at least": "at most"}.get(bound, bound)
    shown = "" if bound == "exact" else f"{bound} "
    return round(p, 6), f"probability {shown}{p:.1%}", None


def holds(rule: Rule, value: float | None) -> bool:
    """Whether a rule holds at `value` (None: nothing measured, never holds)."""
    if value is None:
        return False
    if rule.kind == "median_move":
        return abs(value) >= rule.threshold
    return value >= rule.threshold


def evaluate(
    rules: Sequence[Rule],
    payloads: Mapping[str, Mapping[str, Any]],
    ledger: Ledger | None,
    previous: Alerts | None,
) -> Alerts:
    """Each rule on this run's forecast (payloads by pair, as the artifact stores them) and track record.

    A rule fires when it holds now and did not after the previous run; a rule the previous run did
    not know (new, watching something else, or a first run) fires when it holds now. Moving a rule
    to another webhook or format keeps its state. Rules no longer listed are dropped.
    """
    before = {s.rule.name: s for s in previous.states} if previous is not None else {}
    out = []
    for rule in rules:
        prior = before.get(rule.name)
        if prior is not None and prior.rule.watch != rule.watch:
            prior = None  # a rule watching something else now starts again, like a new one
        value, measured, basis = _measure(rule, payloads[rule.pair], ledger, prior)
        active = holds(rule, value)
        fired = active and (prior is None or not prior.active)
        if prior is None:
            why = "first evaluation: holds now, fires" if active else "first evaluation: does not hold"
        elif fired:
            why = "crossed since the previous run: fires"
        else:
            why = "still holds: already fired" if active else "does not hold"
        detail = f"{measured} (threshold {rule.threshold:g}): {why}"
        out.append(RuleState(rule, value, active, fired, detail, basis))
    return Alerts(tuple(out))


def refused(error: str, previous: Alerts | None) -> Alerts:
    """A refused rule file: the error, and the previous states carried unchanged (none fires)."""
    states = tuple(replace(s, fired=False) for s in previous.states) if previous is not None else ()
    return Alerts(states, error)


def decide(
    path: str | Path | None,
    payloads: Mapping[str, Mapping[str, Any]],
    ledger: Ledger | None,
    previous: Alerts | None,
) -> Alerts:
    """The rule file (None: no rules) evaluated on this run's forecasts; a refused file keeps the
    previous states and records the refusal, which fails the alert step and nothing else."""
    if path is None:
        return Alerts()
    today = max(_data_end(p) for p in payloads.values()).date()
    try:
        rules = load_rules(path, payloads.keys(), today)
    except AlertRuleError as exc:
        return refused(str(exc), previous)
    try:
        return evaluate(rules, payloads, ledger, previous)
    except AlertRuleError as exc:  # a rule this forecast cannot answer (past its horizon, say)
        return refused(f"{Path(path).name}: {exc}", previous)


def log_line(alerts: Alerts, first_run: bool) -> str:
    """What training says about the alerts in one line."""
    if alerts.error is not None:
        return f"alerts: refused, nothing fires this run (the deploy still goes ahead): {alerts.error}"
    if not alerts.states:
        return "alerts: no rules"
    fired = ", ".join(s.rule.name for s in alerts.fired) or "none"
    first = " (a first run: each rule that holds now fires)" if first_run else ""
    return f"alerts: {len(alerts.states)} rule(s) evaluated{first}; fired: {fired}"


# --------------------------------------------------------------------------- reading (both sides)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _optional_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))


def _parse_rule(raw: Any) -> Rule:
    _check(isinstance(raw, dict), "a rule is not an object")
    strings = ("name", "pair", "kind", "webhook_env", "format")
    _check(all(isinstance(raw.get(k), str) for k in strings), f"a rule lacks one of {', '.join(strings)}")
    _check(raw["kind"] in KINDS and raw["format"] in FORMATS, f"rule {raw['name']!r}: unknown kind or format")
    _check(set(raw) <= {*strings, "threshold", "price", "horizon", "date"}, f"rule {raw['name']!r}: unknown field")
    numbers = raw.get("threshold") is not None and _optional_number(raw["threshold"])
    _check(numbers and _optional_number(raw.get("price")), f"rule {raw['name']!r}: threshold or price is not a number")
    _check(
        all(raw.get(k) is None or isinstance(raw[k], str) for k in ("horizon", "date")),
        f"rule {raw['name']!r}: horizon or date is not text",
    )
    return Rule(
        name=raw["name"],
        pair=raw["pair"],
        kind=raw["kind"],
        threshold=float(raw["threshold"]),
        webhook_env=raw["webhook_env"],
        format=raw["format"],
        price=None if raw.get("price") is None else float(raw["price"]),
        horizon=raw.get("horizon"),
        date=raw.get("date"),
    )


def _parse_state(raw: Any) -> RuleState:
    _check(isinstance(raw, dict), "a rule state is not an object")
    rule = _parse_rule(raw.get("rule"))
    _check(
        isinstance(raw.get("active"), bool) and isinstance(raw.get("fired"), bool),
        f"rule {rule.name!r}: active and fired must be true or false",
    )
    _check(raw["active"] or not raw["fired"], f"rule {rule.name!r}: fired without holding")
    _check(_optional_number(raw.get("value")) and _optional_number(raw.get("basis")), f"rule {rule.name!r}: value")
    _check(isinstance(raw.get("detail"), str), f"rule {rule.name!r}: detail is not text")
    value, basis = raw.get("value"), raw.get("basis")
    return RuleState(
        rule,
        None if value is None else float(value),
        raw["active"],
        raw["fired"],
        raw["detail"],
        None if basis is None else float(basis),
    )


def parse_alerts(obj: Any, model_version: str | None = None) -> Alerts:
    """Alert states from their JSON form; ValueError naming the first thing wrong."""
    _check(isinstance(obj, dict), "not an object")
    _check(obj.get("version") == ALERTS_VERSION, f"unknown version {obj.get('version')!r} (reads {ALERTS_VERSION})")
    _check(obj.get("error") is None or isinstance(obj.get("error"), str), "error is not text")
    _check(isinstance(obj.get("rules"), list), "rules is not a list")
    states = tuple(_parse_state(r) for r in obj["rules"])
    names = [s.rule.name for s in states]
    _check(len(names) == len(set(names)), "a rule name appears twice")
    return Alerts(states, obj["error"], model_version)
