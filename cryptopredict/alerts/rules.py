"""Watch rules: read `alerts.toml` with tomllib and validate each rule, with one-line errors naming
the rule and the field (standard library only)."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptopredict.errors import CryptopredictError

__all__ = ["FORMATS", "KINDS", "AlertRuleError", "Rule", "load_rules", "parse_horizon", "parse_rules"]

KINDS = ("probability_above", "probability_below", "median_move", "band_misses")
FORMATS = ("discord", "slack", "json")
_PROBABILITY = ("probability_above", "probability_below")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_HORIZON = re.compile(r"([1-9][0-9]{0,3})([dh])")
_FIELDS = ("name", "pair", "kind", "price", "horizon", "date", "threshold", "webhook_env", "format")
# A band_misses streak longer than the ledger keeps per pair and horizon could never be reached.
MAX_STREAK = 100
# median_move: a fraction of the previous median (0.05 is 5%); past 10 (1000%) it is a typo.
MAX_MOVE = 10.0


class AlertRuleError(CryptopredictError):
    """The rule file cannot be read or one of its rules is invalid; the message names which and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One watch rule, validated: what to watch, when it is true, where to post it."""

    name: str
    pair: str
    kind: str
    threshold: float
    webhook_env: str
    format: str = "json"
    price: float | None = None
    horizon: str | None = None
    date: str | None = None  # YYYY-MM-DD, the close at 00:00 UTC that day

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def watch(self) -> tuple[object, ...]:
        """What the rule watches, without where it posts: a rule whose watch changed starts afresh."""
        return (self.pair, self.kind, self.price, self.horizon, self.date, self.threshold)

    @property
    def target(self) -> str:
        """Where the rule looks, in words: 'on 2026-12-31' or 'in 30d'."""
        return f"on {self.date}" if self.date else f"in {self.horizon}"

    def describe(self) -> str:
        """The rule in words, as messages and the job summary show it."""
        if self.kind in _PROBABILITY:
            side = "above" if self.kind == "probability_above" else "below"
            return f"P({self.pair} {side} {self.price:,.10g} {self.target}) reaches {self.threshold:.0%}"
        if self.kind == "median_move":
            return f"{self.pair}'s {self.horizon} median moves {self.threshold:.1%} from the last published one"
        return f"{self.pair}'s {self.horizon} 80% band missed {self.threshold:.0f} published forecasts in a row"


def parse_horizon(text: str) -> timedelta:
    """'30d' or '24h' as a timedelta; ValueError otherwise."""
    m = _HORIZON.fullmatch(text)
    if not m:
        msg = f"{text!r} is not a horizon like 30d or 24h"
        raise ValueError(msg)
    n = int(m.group(1))
    return timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n)


def load_rules(path: str | Path, pairs: Collection[str], today: date) -> tuple[Rule, ...]:
    """The rules of a TOML file, validated against the pairs trained and the forecast's first day."""
    where = Path(path)
    try:
        doc = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{where}: cannot read the rule file ({exc.strerror})"
        raise AlertRuleError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{where.name}: not valid TOML ({exc})"
        raise AlertRuleError(msg) from None
    return parse_rules(doc, pairs, today, where=where.name)


def parse_rules(
    doc: Mapping[str, Any], pairs: Collection[str], today: date, where: str = "alerts.toml"
) -> tuple[Rule, ...]:
    """Rules from a parsed rule file (`[[rule]]` tables); AlertRuleError naming the rule and the field."""
    extra = sorted(set(doc) - {"rule"})
    if extra:
        msg = f"{where}: unknown top-level key {extra[0]!r} (rules are [[rule]] tables)"
        raise AlertRuleError(msg)
    tables = doc.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        msg = f"{where}: 'rule' must be an array of tables ([[rule]])"
        raise AlertRuleError(msg)
    rules: list[Rule] = []
    for i, table in enumerate(tables, 1):
        rule = _rule(table, f"{where}: rule {i}", pairs, today)
        if any(r.name == rule.name for r in rules):
            msg = f"{where}: rule {rule.name!r}: name: used by an earlier rule too"
            raise AlertRuleError(msg)
        rules.append(rule)
    return tuple(rules)


def _rule(t: Mapping[str, Any], where: str, pairs: Collection[str], today: date) -> Rule:
    name = t.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        msg = f"{where}: name: expected letters, digits, '.', '_' or '-' (at most 64), got {name!r}"
        raise AlertRuleError(msg)
    where = where.rsplit(": rule ", 1)[0] + f": rule {name!r}"

    def bad(field: str, why: str) -> AlertRuleError:
        return AlertRuleError(f"{where}: {field}: {why}")

    unknown = sorted(set(t) - set(_FIELDS))
    if unknown:
        raise bad(unknown[0], f"unknown field (expected some of: {', '.join(_FIELDS)})")
    pair, kind = t.get("pair"), t.get("kind")
    if not isinstance(pair, str) or pair not in pairs:
        raise bad("pair", f"{pair!r} is not a trained pair (trained: {', '.join(sorted(pairs))})")
    if kind not in KINDS:
        raise bad("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    fmt = t.get("format", "json")
    if fmt not in FORMATS:
        raise bad("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    env = t.get("webhook_env")
    if not isinstance(env, str) or not _ENV.fullmatch(env):
        raise bad("webhook_env", f"expected the name of an environment variable like DISCORD_WEBHOOK_URL, got {env!r}")
    price = _price(t, kind, bad)
    horizon, when = _target(t, kind, today, bad)
    return Rule(name, pair, kind, _threshold(t.get("threshold"), kind, bad), env, fmt, price, horizon, when)


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _price(t: Mapping[str, Any], kind: str, bad: Any) -> float | None:
    if kind not in _PROBABILITY:
        if "price" in t:
            raise bad("price", f"only probability_above and probability_below take a price, not {kind}")
        return None
    price = _number(t.get("price"))
    if price is None or price <= 0:
        raise bad("price", f"expected a positive number of USD, got {t.get('price')!r}")
    return price


def _target(t: Mapping[str, Any], kind: str, today: date, bad: Any) -> tuple[str | None, str | None]:
    horizon, when = t.get("horizon"), t.get("date")
    if when is not None and kind not in _PROBABILITY:
        raise bad("date", f"{kind} looks at a horizon, not a date")
    if (horizon is None) == (when is None) and kind in _PROBABILITY:
        raise bad("horizon", "give either a horizon (like 30d) or a date (like 2026-12-31), not both or neither")
    if horizon is None and when is None:
        raise bad("horizon", f"{kind} needs a horizon like 7d")
    if horizon is not None:
        try:
            parse_horizon(horizon if isinstance(horizon, str) else repr(horizon))
        except ValueError as exc:
            raise bad("horizon", str(exc)) from None
        return horizon, None
    if isinstance(when, datetime) or not isinstance(when, date | str):
        raise bad("date", f"expected a date like 2026-12-31, got {when!r}")
    try:
        day = when if isinstance(when, date) else date.fromisoformat(when)
    except ValueError:
        raise bad("date", f"expected a date like 2026-12-31, got {when!r}") from None
    if day <= today:
        raise bad("date", f"{day.isoformat()} is past: the forecast starts after {today.isoformat()}")
    return None, day.isoformat()


def _threshold(value: Any, kind: str, bad: Any) -> float:
    x = _number(value)
    if kind in _PROBABILITY and (x is None or not 0 < x < 1):
        raise bad("threshold", f"a probability strictly between 0 and 1, got {value!r}")
    if kind == "median_move" and (x is None or not 0 < x <= MAX_MOVE):
        raise bad("threshold", f"a fraction of the median above 0 and at most {MAX_MOVE:g} (0.05 is 5%), got {value!r}")
    if kind == "band_misses" and (x is None or x != int(x) or not 1 <= x <= MAX_STREAK):
        raise bad("threshold", f"a whole number of misses from 1 to {MAX_STREAK}, got {value!r}")
    return float(x)  # type: ignore[arg-type]  # checked above for every kind


def utc_midnight(day: str) -> datetime:
    """A rule's date as the instant its close is forecast for: 00:00 UTC that day."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
