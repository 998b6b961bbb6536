"""Query parameters: each read once, bounded in length, parsed strictly, refused with a reason."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from datetime import UTC, date, datetime

from werkzeug.datastructures import MultiDict

from cryptopredict.serving.errors import ApiError
from cryptopredict.serving.openapi import MAX_PARAM_LENGTH

__all__ = ["MAX_PARAM_LENGTH", "check_known", "parse_levels", "parse_model", "parse_price", "parse_when", "single"]

_EXPECTED = "expected an ISO 8601 date like 2024-06-01 or datetime like 2024-06-01T12:00:00Z"
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
# A plain decimal number: no sign, no nan/inf, no underscores (float() would take all three).
NUMBER_PATTERN = r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)
MAX_LEVELS = 23


def check_known(args: MultiDict[str, str], allowed: Collection[str]) -> None:
    """Refuse parameters this endpoint does not take: a typo should not be silently ignored."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        name = unknown[0]
        shown = name if len(name) <= MAX_PARAM_LENGTH else name[:MAX_PARAM_LENGTH] + "..."
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ApiError.bad_param(shown, f"unknown parameter; this endpoint accepts: {accepted}")


def single(args: MultiDict[str, str], name: str, *, required: bool) -> str | None:
    """The one value of `name`, or None when absent and optional."""
    values = args.getlist(name)
    if len(values) > 1:
        raise ApiError.bad_param(name, f"given {len(values)} times; give it once")
    if not values:
        if required:
            raise ApiError.bad_param(name, f"required; {_EXPECTED}")
        return None
    value = values[0]
    if len(value) > MAX_PARAM_LENGTH:
        raise ApiError.bad_param(name, f"too long ({len(value):,} characters, at most {MAX_PARAM_LENGTH})")
    if value == "":
        raise ApiError.bad_param(name, f"empty; {_EXPECTED}")
    return value


def parse_when(name: str, value: str) -> datetime:
    """A date or ISO datetime as an aware UTC datetime; naive means UTC, offsets are converted."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError.bad_param(name, f"{_why_not(value)}; {_EXPECTED}") from None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:30 has no UTC time in datetime's range
        raise ApiError.bad_param(name, "outside the representable range once converted to UTC", 422) from None


def _why_not(value: str) -> str:
    """Say what is wrong with a value fromisoformat refused, as precisely as cheaply possible."""
    shown = value if value.isprintable() else repr(value)
    m = _DATE_PREFIX.match(value)
    if m:
        try:
            date(*(int(g) for g in m.groups()))
        except ValueError as exc:  # "month must be in 1..12", "day is out of range for month"
            return f"{shown!s} is not a calendar date ({exc})"
    elif re.match(r"^\d{5,}-", value):
        return f"{shown} has a year past 9999"
    return f"cannot read {shown!r} as a date"


def parse_model(args: MultiDict[str, str], models: Collection[str]) -> str:
    """Which forecast to answer from: `model=served` (the default) or `model=prophet`."""
    value = single(args, "model", required=False)
    if value is None:
        return "served"
    if value not in models:
        raise ApiError.bad_param("model", f"{value!r} is not one of: {', '.join(models)}")
    return value


def _number(name: str, text: str) -> float:
    if not _NUMBER.match(text):
        shown = text if text.isprintable() else repr(text)
        raise ApiError.bad_param(name, f"{shown!r} is not a plain decimal number")
    value = float(text)
    if not math.isfinite(value):
        raise ApiError.bad_param(name, f"{text} is too large")
    return value


def parse_price(name: str, text: str) -> float:
    """A price in USD: a plain decimal number above 0."""
    value = _number(name, text)
    if value <= 0:
        raise ApiError.bad_param(name, "must be a price above 0")
    return value


def parse_levels(text: str) -> list[float]:
    """`quantiles=0.05,0.5,0.95`: up to MAX_LEVELS distinct levels strictly between 0 and 1."""
    parts = text.split(",")
    if len(parts) > MAX_LEVELS:
        raise ApiError.bad_param("quantiles", f"{len(parts)} levels; give at most {MAX_LEVELS}")
    levels = []
    for part in parts:
        value = _number("quantiles", part.strip())
        if not 0 < value < 1:
            raise ApiError.bad_param("quantiles", f"{part.strip()} is not a probability strictly between 0 and 1")
        levels.append(value)
    if len(set(levels)) != len(levels):
        raise ApiError.bad_param("quantiles", "a level is given twice")
    return levels
