"""Alert states: what a rule's evaluation left in the artifact's `alerts.json`, written by training and
read by both sides (standard library only). The evaluation itself is `cryptopredict.alerts.evaluate`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cryptopredict.alerts.rules import FORMATS, KINDS, Rule

__all__ = ["ALERTS_FILE", "ALERTS_VERSION", "Alerts", "RuleState", "parse_alerts"]

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
