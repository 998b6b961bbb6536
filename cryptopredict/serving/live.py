"""The live price feed: a background thread that polls Alpaca's latest crypto bars and offers each
checked price to the anchor board (`cryptopredict.serving.anchor`).

Off by default (`LIVE_PRICES=off`): then nothing here runs and the API makes no outbound request.
With `LIVE_PRICES=alpaca` one request every `LIVE_PRICES_INTERVAL` seconds asks for every served
pair at once (`GET {ALPACA_DATA_URL}/v1beta3/crypto/us/latest/bars?symbols=BTC/USD,ETH/USD`), with a
connect and a read timeout; after a failure the next try waits twice as long each time (up to five
intervals), or as long as a 429's Retry-After says. A request never waits for Alpaca: answers read
whatever anchors the board holds, and the server answers before the first poll returns.

A price is the close of the pair's latest minute bar, observed at the end of that minute (or when it
arrived, if sooner). What the poll could not use is counted and logged once per change of state,
never once per poll.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptopredict.artifact import SymbolForecast
from cryptopredict.serving.anchor import Anchor, AnchorBoard, check_live
from cryptopredict.serving.config import ServeSettings
from cryptopredict.timeframes import format_utc

__all__ = ["LATEST_BARS_PATH", "LiveFeed"]

LATEST_BARS_PATH = "/v1beta3/crypto/us/latest/bars"
# A minute bar is stamped when it opens; its close is the price at the end of that minute at the latest.
_BAR = timedelta(minutes=1)
# The longest a 429's Retry-After is obeyed for.
_MAX_RETRY_AFTER = 3600.0

log = logging.getLogger("cryptopredict.live")


class FeedError(Exception):
    """One poll failed as a whole; `kind` names the kind of failure (logged once per change)."""

    def __init__(self, kind: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.retry_after = retry_after


class LiveFeed:
    """Polls Alpaca in a daemon thread until `stop()`; `health()` says how it is doing."""

    def __init__(
        self,
        settings: ServeSettings,
        forecasts: Mapping[str, SymbolForecast],
        board: AnchorBoard,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        import requests  # the serving side imports it only with the feed on

        self._requests = requests
        self._session = requests.Session()
        headers = {"Accept": "application/json", "User-Agent": "cryptopredict-api"}
        if settings.alpaca_api_key and settings.alpaca_secret_key:
            headers |= {"APCA-API-KEY-ID": settings.alpaca_api_key, "APCA-API-SECRET-KEY": settings.alpaca_secret_key}
        self._session.headers.update(headers)
        self._url = settings.alpaca_data_url.rstrip("/") + LATEST_BARS_PATH
        self._interval = settings.live_prices_interval
        self._max_age = settings.live_prices_max_age
        self._timeout = settings.live_prices_timeout
        self._forecasts = dict(forecasts)
        self._pairs = {fc.symbol: slug for slug, fc in self._forecasts.items()}
        self._board = board
        self._wall, self._mono = wall, mono
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # What health() reports.
        self.polls = 0
        self.failures = 0
        self.refusals = 0
        self._failing_in_a_row = 0
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._state = "starting"
        # The last logged state, whole and per pair, so each change is logged once.
        self._logged: str | None = None
        self._pair_logged: dict[str, str] = {}

    # ------------------------------------------------------------------------------------ thread

    def start(self) -> None:
        """Start polling in the background (the first poll at once); returns immediately."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="live-prices", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling and wait for the thread (at most the request timeout, by default)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * self._timeout + 1 if timeout is None else timeout)
            log.info("live prices: stopped after %d poll(s)", self.polls)
        self._session.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            delay = self.poll_once()

    # -------------------------------------------------------------------------------------- poll

    def poll_once(self) -> float:
        """One request and its checks; returns the seconds to wait before the next."""
        try:
            bars = self._fetch()
        except FeedError as exc:
            with self._lock:
                self.polls += 1
                self.failures += 1
                self._failing_in_a_row += 1
                self._state, self._last_error = "failing", str(exc)
                delay = min(self._interval * 2 ** (self._failing_in_a_row - 1), 5 * self._interval)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, _MAX_RETRY_AFTER))
            self._log_state(
                f"failing:{exc.kind}",
                logging.WARNING,
                f"live prices: poll failed: {exc}; answers keep their last checked anchor (live prices up to "
                f"{self._max_age:g} s old, then the artifact's); next try in {delay:g} s",
            )
            return delay
        now, mono = self._wall(), self._mono()
        accepted: dict[str, tuple[Anchor, float]] = {}
        refused: dict[str, tuple[str, str]] = {}
        for pair, slug in self._pairs.items():
            verdict = self._check(slug, bars.get(pair), now)
            if isinstance(verdict, Anchor):
                accepted[slug] = (verdict, mono + self._max_age - (now - verdict.time).total_seconds())
            else:
                refused[pair] = verdict
        self._board.offer(accepted)
        with self._lock:
            self.polls += 1
            self.refusals += len(refused)
            self._failing_in_a_row = 0
            self._last_success = now
            self._state, self._last_error = "ok", None
        self._log_state(
            "ok", logging.INFO, f"live prices: ok: {len(accepted)} of {len(self._pairs)} pair(s) checked and live"
        )
        for pair in self._pairs:
            kind, reason = refused.get(pair, ("live", ""))
            if self._pair_logged.get(pair, "live") != kind:
                self._pair_logged[pair] = kind
                if kind == "live":
                    log.info("live prices: %s is live again", pair)
                else:
                    log.warning("live prices: %s refused: %s; it keeps its last checked anchor", pair, reason)
        return self._interval

    def _fetch(self) -> Mapping[str, Any]:
        """The `bars` object of one reply; FeedError for anything but a well-formed 200."""
        requests = self._requests
        try:
            reply = self._session.get(
                self._url,
                params={"symbols": ",".join(self._pairs)},
                timeout=(self._timeout, self._timeout),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise FeedError("timeout", f"no answer within {self._timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise FeedError("connection", f"cannot connect ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise FeedError("request", f"request failed ({type(exc).__name__})") from None
        if reply.status_code == 429:
            raise FeedError("429", "rate limited (HTTP 429)", _retry_after(reply.headers.get("Retry-After")))
        if reply.status_code != 200:
            raise FeedError(f"http{reply.status_code}", f"HTTP {reply.status_code} from the data API")
        try:
            body = reply.json()
        except ValueError:
            raise FeedError("json", "the reply is not JSON") from None
        bars = body.get("bars") if isinstance(body, dict) else None
        if not isinstance(bars, dict):
            raise FeedError("shape", "the reply has no `bars` object")
        return bars

    def _check(self, slug: str, bar: object, now: datetime) -> Anchor | tuple[str, str]:
        if bar is None:
            return "missing", "the reply has no bar for it"
        if not isinstance(bar, dict) or not isinstance(bar.get("t"), str):
            return "shape", "its bar has no time"
        try:
            opened = datetime.fromisoformat(bar["t"])
        except ValueError:
            return "shape", f"its bar's time {bar['t'][:40]!r} is not an ISO 8601 time"
        if opened.tzinfo is None:
            return "shape", f"its bar's time {bar['t'][:40]!r} has no offset"
        observed = min(opened.astimezone(UTC) + _BAR, max(now, opened.astimezone(UTC)))
        return check_live(self._forecasts[slug], bar.get("c"), observed, now, self._max_age)

    def _log_state(self, state: str, level: int, message: str) -> None:
        if state != self._logged:
            self._logged = state
            log.log(level, "%s", message)

    # ------------------------------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        """For /healthz: ok/failing/starting, the last success and its age, counts, the last error."""
        now = self._wall()
        with self._lock:
            last = self._last_success
            live = [s for s, a in self._board.current().by_slug.items() if a.live]
            return {
                "state": self._state,
                "interval_seconds": self._interval,
                "max_age_seconds": self._max_age,
                "last_success": format_utc(last) if last else None,
                "age_seconds": round((now - last).total_seconds(), 3) if last else None,
                "polls": self.polls,
                "failures": self.failures,
                "refusals": self.refusals,
                "live_symbols": live,
                "last_error": self._last_error,
            }


def _retry_after(raw: str | None) -> float | None:
    """Seconds from a Retry-After header (its delay-seconds form); None when absent or unreadable."""
    try:
        seconds = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
