"""Serving settings: typed defaults, overridden by the environment, then by arguments or tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

__all__ = ["ServeSettings"]


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

    _ENV: ClassVar[dict[str, str]] = {
        "artifact_dir": "ARTIFACT_DIR",
        "host": "HOST",
        "port": "PORT",
        "threads": "WEB_CONCURRENCY",
        "cors_origins": "CORS_ORIGINS",
        "max_series_points": "MAX_SERIES_POINTS",
        "proxy_count": "PROXY_COUNT",
        "hot_cache_mb": "HOT_CACHE_MB",
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
    if name == "cors_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    return raw
