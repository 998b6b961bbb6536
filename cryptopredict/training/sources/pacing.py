"""Client-side pacing of HTTP requests, to stay under a provider's rate limit (standard library only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cryptopredict.errors import DataSourceError

__all__ = ["DEFAULT_MAX_REQUESTS_PER_MINUTE", "Pacer"]

# Alpaca's free plan allows 200 requests a minute; 180 leaves room for a retry or another client.
DEFAULT_MAX_REQUESTS_PER_MINUTE = 180


class Pacer:
    """Keeps the starts of requests at least 60 / `max_per_minute` seconds apart (one process, any threads).

    A client-side rate limit: Alpaca answers 429 past its limit (200 a minute on the free plan),
    and a retry after a 429 costs more than waiting a little before every request.
    """

    __slots__ = ("_clock", "_lock", "_next", "_sleep", "interval")

    def __init__(
        self,
        max_per_minute: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_per_minute is None:
            max_per_minute = DEFAULT_MAX_REQUESTS_PER_MINUTE  # read at call time: tests lower the wait
        if not max_per_minute > 0:
            msg = f"max requests per minute must be positive, got {max_per_minute}"
            raise DataSourceError(msg)
        self.interval = 60.0 / max_per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: float | None = None

    def wait(self) -> None:
        """Return when the next request may start."""
        with self._lock:
            now = self._clock()
            if self._next is not None and now < self._next:
                self._sleep(self._next - now)
                now = self._clock()
            self._next = max(now, self._next or now) + self.interval
