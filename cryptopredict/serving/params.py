"""Parameter values: read once, bounded in length, parsed strictly; a value that cannot be read says why."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

from werkzeug.datastructures import MultiDict

from cryptopredict.serving.errors import ApiError
from cryptopredict.timeframes import slug_to_symbol, symbol_to_slug

__all__ = [
    "MAX_LEVELS",
    "MAX_PARAM_LENGTH",
    "MAX_PRICES",
    "MAX_STEP",
    "check_known",
    "parse_horizon",
    "parse_levels",
    "parse_price",
    "parse_prices",
    "parse_slug",
    "parse_step",
    "parse_when",
    "single",
]

MAX_PARAM_LENGTH = 64
MAX_LEVELS = 23
MAX_PRICES = 50  # prices in one probability call (a curve)
MAX_STEP = 1000
_DATE_PREFIX = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})")


def check_known(args: MultiDict[str, str], allowed: Collection[str]) -> None:
    """Refuse parameters this endpoint does not take: a typo should not be silently ignored."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        name = unknown[0]
        shown = name if len(name) <= MAX_PARAM_LENGTH else name[:MAX_PARAM_LENGTH] + "..."
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ApiError.bad_param(shown, f"unknown parameter; this endpoint accepts: {accepted}")


def single(
    args: MultiDict[str, str], name: str, *, required: bool, expected: str, max_length: int = MAX_PARAM_LENGTH
) -> str | None:
    """The one value of `name`, or None when absent and optional; `expected` says what a value looks like."""
    values = args.getlist(name)
    if len(values) > 1:
        raise ApiError.bad_param(name, f"given {len(values)} times; give it once")
    if not values:
        if required:
            raise ApiError.bad_param(name, f"required; {expected}")
        return None
    value = values[0]
    if len(value) > max_length:
        raise ApiError.bad_param(name, f"too long ({len(value):,} characters, at most {max_length})")
    if value == "":
        raise ApiError.bad_param(name, f"empty; {expected}")
    return value


# Each parser below takes a value already in its documented form and raises ValueError, with the
# reason, for one that is well-formed but cannot be accepted (a 31 June, a level of 1.5).


def parse_when(value: str) -> datetime:
    """A date or ISO datetime as an aware UTC datetime; naive means UTC, offsets are converted."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_why_not(value)) from None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:30 has no UTC time in datetime's range
        msg = "outside the representable range once converted to UTC"
        raise ValueError(msg) from None


def _why_not(value: str) -> str:
    """Say what is wrong with a well-formed value fromisoformat refused."""
    m = _DATE_PREFIX.match(value)
    if m:
        try:
            date(*(int(g) for g in m.groups()))
        except ValueError as exc:  # "month must be in 1..12", "day is out of range for month"
            return f"{value} is not a calendar date ({exc})"
    try:
        datetime.fromisoformat(value[:10])
    except ValueError as exc:
        return f"{value} is not a calendar date ({exc})"
    return f"{value} is not a time of day (hours 0-23, minutes and seconds 0-59)"


def parse_slug(value: str) -> str:
    """The pair in its canonical spelling (`btc-usd` -> `BTC-USD`)."""
    return symbol_to_slug(slug_to_symbol(value))


def parse_price(value: str) -> float:
    """A price in USD above 0."""
    price = float(value)
    if not math.isfinite(price):
        msg = f"{value} is too large"
        raise ValueError(msg)
    if price <= 0:
        msg = "must be a price above 0"
        raise ValueError(msg)
    return price


def parse_prices(value: str) -> list[float]:
    """`90000,100000`: one or more prices in USD above 0, each once."""
    prices = [parse_price(part) for part in value.split(",")]
    if len(set(prices)) != len(prices):
        msg = "a price is given twice"
        raise ValueError(msg)
    return prices


def parse_horizon(value: str) -> timedelta:
    """`7d` or `24h`: a lead time after the anchor, above 0."""
    lead = timedelta(days=int(value[:-1])) if value[-1] == "d" else timedelta(hours=int(value[:-1]))
    if not lead:
        msg = "must be a lead time above 0"
        raise ValueError(msg)
    return lead


def parse_step(value: str) -> int:
    """Every how many grid points a series keeps: 1 (all) or more."""
    step = int(value)
    if not 1 <= step <= MAX_STEP:
        msg = f"must be from 1 to {MAX_STEP}"
        raise ValueError(msg)
    return step


def parse_levels(value: str) -> list[float] | str:
    """`0.05,0.5,0.95`: distinct levels strictly between 0 and 1; or `all` (every published level)."""
    if value == "all":
        return value
    levels = [float(part) for part in value.split(",")]
    for level, part in zip(levels, value.split(","), strict=True):
        if not 0 < level < 1:
            msg = f"{part} is not a probability strictly between 0 and 1"
            raise ValueError(msg)
    if len(set(levels)) != len(levels):
        msg = "a level is given twice"
        raise ValueError(msg)
    return levels
