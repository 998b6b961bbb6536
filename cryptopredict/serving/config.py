"""Serving settings: typed defaults, overridden by the environment, then by arguments or tests."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

__all__ = ["LIVE_SOURCES", "ServeSettings"]

LIVE_SOURCES = ("off", "alpaca")
# Seconds settings and their accepted ranges. Alpaca's free plan allows 200 requests a minute: one
# process polling every second uses 60 of them; tests poll faster against a local fake.
_SECONDS = {
    "live_prices_interval": (0.05, 3600.0),
    "live_prices_max_age": (0.5, 86400.0),
    "live_prices_timeout": (0.05, 60.0),
}


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Everything the API process can be told, with the environment variable for each."""

    artifact_dir: str = "artifacts"  # ARTIFACT_DIR
    host: str = "127.0.0.1"  # HOST (the image sets 0.0.0.0)
    port: int = 8080  # PORT (Render sets it)
    threads: int = 8  # WEB_CONCURRENCY
    cors_origins: tuple[str, ...] = ("*",)  # CORS_ORIGINS, comma-separated; '*' = any origin
    max_series_points: int = 1000  # MAX_SERIES_POINTS: cap on one range request
    # How many reverse proxies stand in front (Render: 1). X-Forwarded-For/-Proto are believed
    # only that many hops deep, and ignored (removed) when 0.
    proxy_count: int = 0  # PROXY_COUNT
    # Memory for whole answers replayed ahead of Flask (cryptopredict.serving.hotpath); 0 = off.
    hot_cache_mb: int = 64  # HOT_CACHE_MB
    # The live price feed (cryptopredict.serving.live): "off", or "alpaca" to re-anchor every answer
    # at Alpaca's latest price, polled in the background; off by default (no outbound request at all).
    live_prices: str = "off"  # LIVE_PRICES
    live_prices_interval: float = 60.0  # LIVE_PRICES_INTERVAL, seconds between polls
    live_prices_max_age: float = 600.0  # LIVE_PRICES_MAX_AGE, seconds a live price may be used
    live_prices_timeout: float = 5.0  # LIVE_PRICES_TIMEOUT, seconds to connect, and to wait for the reply
    alpaca_data_url: str = "https://data.alpaca.markets"  # ALPACA_DATA_URL (a proxy, or a local fake)
    # Optional for crypto data; sent when set. Never printed (repr=False).
    alpaca_api_key: str | None = field(default=None, repr=False)  # ALPACA_API_KEY
    alpaca_secret_key: str | None = field(default=None, repr=False)  # ALPACA_SECRET_KEY

    _ENV: ClassVar[dict[str, str]] = {
        "artifact_dir": "ARTIFACT_DIR",
        "host": "HOST",
        "port": "PORT",
        "threads": "WEB_CONCURRENCY",
        "cors_origins": "CORS_ORIGINS",
        "max_series_points": "MAX_SERIES_POINTS",
        "proxy_count": "PROXY_COUNT",
        "hot_cache_mb": "HOT_CACHE_MB",
        "live_prices": "LIVE_PRICES",
        "live_prices_interval": "LIVE_PRICES_INTERVAL",
        "live_prices_max_age": "LIVE_PRICES_MAX_AGE",
        "live_prices_timeout": "LIVE_PRICES_TIMEOUT",
        "alpaca_data_url": "ALPACA_DATA_URL",
        "alpaca_api_key": "ALPACA_API_KEY",
        "alpaca_secret_key": "ALPACA_SECRET_KEY",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Defaults, then `environ` (os.environ by default), then keyword overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = cls._ENV.get(f.name)
            raw = env.get(var) if var else None
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, var, raw.strip())
        return replace(cls(**values), **{k: v for k, v in overrides.items() if v is not None})


def _parse(name: str, var: str, raw: str) -> Any:
    if name in ("port", "threads", "max_series_points", "proxy_count", "hot_cache_mb"):
        try:
            value = int(raw)
        except ValueError:
            msg = f"{var} must be a whole number, got {raw!r}"
            raise ValueError(msg) from None
        low, high = {"port": (1, 65535), "proxy_count": (0, 10), "hot_cache_mb": (0, 4096)}.get(name, (1, 100_000))
        if not low <= value <= high:
            msg = f"{var} must be between {low} and {high}, got {value}"
            raise ValueError(msg)
        return value
    if name in _SECONDS:
        try:
            seconds = float(raw)
        except ValueError:
            msg = f"{var} must be a number of seconds, got {raw!r}"
            raise ValueError(msg) from None
        low, high = _SECONDS[name]
        if not low <= seconds <= high:  # NaN fails this too
            msg = f"{var} must be between {low:g} and {high:g} seconds, got {raw}"
            raise ValueError(msg)
        return seconds
    if name == "live_prices":
        if raw not in LIVE_SOURCES:
            msg = f"{var} must be one of {', '.join(LIVE_SOURCES)}, got {raw!r}"
            raise ValueError(msg)
        return raw
    if name == "alpaca_data_url" and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", raw):
        msg = f"{var} must be an http(s) URL like https://data.alpaca.markets, got {raw!r}"
        raise ValueError(msg)
    if name == "cors_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    return raw
