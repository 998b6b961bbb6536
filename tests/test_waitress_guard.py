"""Waitress internals the graceful stop (cryptopredict/serving/cli.py, serve) relies on are still there.

serve() drives Waitress's private loop to stop accepting, let requests in flight finish, and exit.
Nothing in Waitress's public API promises these names, so an upgrade may change them silently;
these tests fail first, naming the attribute, on a real server bound to 127.0.0.1.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import socket
import time
import types
from collections.abc import Callable, Iterator

import pytest
import waitress
from waitress.channel import HTTPChannel
from waitress.wasyncore import dispatcher

from tests.helpers import ROOT

pytestmark = pytest.mark.server  # what every test here needs (tests/conftest.py)


def _app(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def server() -> Iterator[object]:
    srv = waitress.create_server(_app, host="127.0.0.1", port=0)
    yield srv
    srv.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    srv.close()
    srv.trigger.close()


def _attribute(obj: object, dotted: str, owner: str) -> object:
    """obj.<dotted>, or a failure naming the missing attribute and who relies on it."""
    for name in dotted.split("."):
        if not hasattr(obj, name):
            pytest.fail(
                f"waitress {importlib.metadata.version('waitress')}: {owner}.{dotted} is gone; "
                "cryptopredict/serving/cli.py serve() relies on it for the graceful stop",
                pytrace=False,
            )
        obj = getattr(obj, name)
    return obj


def _takes(func: object, *params: str) -> bool:
    return callable(func) and set(params) <= set(inspect.signature(func).parameters)


def test_the_installed_waitress_is_the_pinned_one() -> None:
    """The Waitress these checks ran against is the version requirements-api.txt pins."""
    pinned = re.search(r"^waitress==(\S+)", (ROOT / "requirements-api.txt").read_text(), re.MULTILINE)
    assert pinned is not None, "requirements-api.txt pins no waitress"
    assert importlib.metadata.version("waitress") == pinned.group(1)


# (attribute of the server, what serve() does with it, the check that it still can)
SERVER_ATTRIBUTES = [
    ("_map", "lists the open channels", lambda v: isinstance(v, dict)),
    ("asyncore", "is the event-loop module", lambda v: isinstance(v, types.ModuleType)),
    ("asyncore.loop", "turns the loop once", lambda v: _takes(v, "timeout", "map", "use_poll", "count")),
    ("task_dispatcher.shutdown", "stops the worker threads", lambda v: _takes(v, "cancel_pending", "timeout")),
    ("task_dispatcher.queue_logger.warning", "is replaced by QueueNotices (a notice per queued request)", callable),
    ("trigger.close", "closes the loop's wake-up pipe", callable),
]


@pytest.mark.parametrize(("dotted", "use", "still_fits"), SERVER_ATTRIBUTES, ids=[a[0] for a in SERVER_ATTRIBUTES])
def test_the_server_keeps_what_serve_uses(server: object, dotted: str, use: str, still_fits) -> None:
    """Each server attribute serve() touches exists and is of the kind it uses."""
    value = _attribute(server, dotted, "server")
    assert still_fits(value), f"server.{dotted} (which {use}) changed kind: {value!r}"


def test_closing_the_listener_alone_is_dispatcher_close(server: object) -> None:
    """The server is a wasyncore dispatcher, so dispatcher.close(server) closes its listening socket only."""
    assert isinstance(server, dispatcher), f"server is a {type(server).__mro__}, no longer a wasyncore dispatcher"
    assert _takes(_attribute(dispatcher, "close", "wasyncore.dispatcher"), "self")


def test_a_connection_s_channel_keeps_what_serve_uses(server: object) -> None:
    """A connected client's HTTPChannel has a request list, a pending-output count and handle_close."""
    port = server.socket.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        deadline = time.monotonic() + 5
        channels: list[HTTPChannel] = []
        while not channels and time.monotonic() < deadline:
            server.asyncore.loop(timeout=0.1, map=server._map, use_poll=True, count=1)
            channels = [c for c in server._map.values() if isinstance(c, HTTPChannel)]
        assert channels, "no HTTPChannel appeared in server._map for an accepted connection"
        channel = channels[0]
        assert isinstance(_attribute(channel, "requests", "HTTPChannel"), list)
        assert isinstance(_attribute(channel, "total_outbufs_len", "HTTPChannel"), int)
        assert callable(_attribute(channel, "handle_close", "HTTPChannel"))
        channel.handle_close()


def test_a_vanished_attribute_is_named_in_the_failure(server: object) -> None:
    """Were Waitress to rename one of them, the failure would say which and who relies on it."""
    with pytest.raises(pytest.fail.Exception, match=r"server\.task_dispatcher\.drain is gone; cryptopredict/serving"):
        _attribute(server, "task_dispatcher.drain", "server")
