"""The `api.py` command line: load the artifact, then serve it with Waitress."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from cryptopredict.errors import ArtifactError
from cryptopredict.serving import create_app
from cryptopredict.serving.config import ServeSettings

__all__ = ["QueueNotices", "main", "settle_heap"]


def settle_heap() -> None:
    """Collect once, then freeze everything loaded so far (artifact, Flask, templates) out of the garbage
    collector's reach: a full collection walks every tracked object, measured here at about 10 ms for a
    three-year artifact with all threads stopped, which was most of the p99 latency under load."""
    gc.collect()
    gc.freeze()


class QueueNotices:
    """Stands in for Waitress's queue logger, which logs "Task queue depth is N" for every request
    that waits for a thread (under load, a line per request, written while the dispatcher's lock is
    held). Counts them instead, and says so at most once per `every` seconds on the same logger:
    how many requests waited since the last line and the deepest queue seen."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger or logging.getLogger("waitress.queue")
        self._every, self._clock = every, clock
        self._next = float("-inf")
        self._waited = 0
        self._deepest = 0
        self._lock = threading.Lock()

    def warning(self, msg: str, depth: int = 0, *_: object) -> None:
        """Waitress's call, `warning("Task queue depth is %d", depth)`: counted; logged once a minute."""
        with self._lock:
            self._waited += 1
            self._deepest = max(self._deepest, depth)
            now = self._clock()
            if now < self._next:
                return
            waited, deepest = self._waited, self._deepest
            self._next, self._waited, self._deepest = now + self._every, 0, 0
        self._logger.warning(
            "%d request(s) waited for a free thread in the last %.0f s (deepest queue %d); more threads "
            "(WEB_CONCURRENCY) or instances help if this persists",
            waited,
            self._every,
            deepest,
        )


def build_parser(defaults: ServeSettings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="api.py", description="Serve the forecast artifact over HTTP.")
    p.add_argument("--artifact", help=f"artifact folder (env ARTIFACT_DIR, default {defaults.artifact_dir})")
    p.add_argument("--host", help=f"address to bind (env HOST, default {defaults.host})")
    p.add_argument("--port", type=int, help=f"port (env PORT, default {defaults.port})")
    p.add_argument("--threads", type=int, help=f"worker threads (env WEB_CONCURRENCY, default {defaults.threads})")
    p.add_argument(
        "--check", action="store_true", help="verify the artifact (checksums, grids, track record), then exit"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        defaults = ServeSettings.from_env()
    except ValueError as exc:
        print(f"api.py: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(defaults).parse_args(argv)
    overrides = {"artifact_dir": args.artifact, "host": args.host, "port": args.port, "threads": args.threads}
    if args.check:
        overrides["live_prices"] = "off"  # verifying the artifact asks nothing of Alpaca
    try:
        app = create_app(overrides)
    except ArtifactError as exc:
        print(f"api.py: cannot start: {exc}", file=sys.stderr)
        return 1
    state = app.extensions["cryptopredict"]
    settings, model = state.settings, state.artifact
    if args.check:
        print(
            f"api.py: artifact {settings.artifact_dir} verified: model {model.model_version}, "
            f"{model.manifest.generation}, serving {', '.join(model.forecasts)}",
            file=sys.stderr,
        )
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(
        f"serving {', '.join(model.forecasts)} (model {model.model_version}, trained {model.manifest.trained_at}) "
        f"on http://{settings.host}:{settings.port}"
        + (
            f"; live prices from {settings.alpaca_data_url} every {settings.live_prices_interval:g} s"
            if state.feed is not None
            else ""
        ),
        file=sys.stderr,
        flush=True,
    )
    settle_heap()
    try:
        serve(app, settings)
    finally:
        if state.feed is not None:
            state.feed.stop()
    return 0


def waitress_options(settings: ServeSettings) -> dict[str, object]:
    """Waitress's limits, chosen rather than inherited (its defaults suit an intranet, not the internet)."""
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "threads": settings.threads,
        "ident": "",  # no Server: waitress banner
        "connection_limit": 256,  # beyond this, new connections wait in the backlog
        "backlog": 1024,
        "channel_timeout": 30,  # an idle or trickling client is dropped after 30 s (default 120)
        "max_request_header_size": 16 * 1024,  # request line + headers (default 256 kB)
        "max_request_body_size": 1024,  # every endpoint is GET (default 1 GB)
        "asyncore_use_poll": True,  # select() caps file descriptors at 1024
        "expose_tracebacks": False,
        "clear_untrusted_proxy_headers": True,
    }
    if settings.proxy_count:
        options.update(
            trusted_proxy="*",
            trusted_proxy_count=settings.proxy_count,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
        )
    return options


def serve(app: object, settings: ServeSettings, grace_seconds: float = 20.0) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, finish the requests in flight, and return."""
    from waitress import create_server
    from waitress.channel import HTTPChannel
    from waitress.wasyncore import dispatcher

    server = create_server(app, **waitress_options(settings))
    server.task_dispatcher.queue_logger = QueueNotices()  # type: ignore[attr-defined]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        server.asyncore.loop(timeout=0.5, map=server._map, use_poll=True, count=1)
    # Close the listening socket only (the trigger that wakes the loop stays), then keep the loop
    # turning until every connection with a request in progress or output pending is done.
    dispatcher.close(server)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        channels = [c for c in list(server._map.values()) if isinstance(c, HTTPChannel)]
        busy = [c for c in channels if c.requests or c.total_outbufs_len]
        for idle in set(channels) - set(busy):
            idle.handle_close()
        if not busy:
            break
        server.asyncore.loop(timeout=0.1, map=server._map, use_poll=True, count=1)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    server.trigger.close()
    print("api.py: stopped", file=sys.stderr, flush=True)
