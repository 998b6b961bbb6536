"""Sixty seconds of mixed load with wrk: every valid request answered 2xx, memory flat."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, http_get, require_tool, stop

SOAK_SECONDS = 60
WRK = require_tool("wrk")
pytestmark = [pytest.mark.slow, pytest.mark.server]  # a minute of load

# Valid requests over every endpoint; wrk picks one per request in turn.
MIXED_LUA = r"""
local paths = {
  "/bitcoin?date=2026-06-01", "/bitcoin?date=2024-06-01T12:30:00Z",
  "/v1/forecast/BTC-USD?date=2025-03-01", "/v1/forecast/eth-usd?start=2025-01-01&end=2025-01-30",
  "/v1/symbols", "/v1/model", "/healthz", "/openapi.json", "/", "/docs",
  "/bitcoin/forecast", "/v1/forecast/ETH-USD/components.png", "/static/docs.js",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def test_sixty_seconds_of_mixed_load_serve_every_request_with_flat_memory(artifact_dir: Path, tmp_path: Path) -> None:
    """wrk -c 64 for 60 s over all endpoints: no non-2xx, no socket errors, RSS growth under 5% from 10 s to 60 s,
    and a log of a few lines, not one per queued request."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "api.py", "--artifact", str(artifact_dir), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "WEB_CONCURRENCY": "8"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http_get(base + "/healthz", timeout=1)
                break
            except OSError:
                assert server.poll() is None, "the server exited at start"
                assert time.monotonic() < deadline, "the server did not answer in 30 s"
                time.sleep(0.1)
        script = tmp_path / "mixed.lua"
        script.write_text(MIXED_LUA)
        samples: dict[int, int] = {}

        def sample() -> None:
            start = time.monotonic()
            for at in (10, SOAK_SECONDS - 1):
                time.sleep(max(0.0, start + at - time.monotonic()))
                samples[at] = _rss_kb(server.pid)

        sampler = threading.Thread(target=sample)
        sampler.start()
        wrk = subprocess.run(
            [WRK, "-t2", "-c64", f"-d{SOAK_SECONDS}s", "--timeout", "10s", "-s", str(script), base],
            capture_output=True, text=True, timeout=SOAK_SECONDS + 60, check=False,
        )  # fmt: skip
        sampler.join()
        assert server.poll() is None, "the server died under load"
    finally:
        stop(server, timeout=30)
        log.close()
    out = wrk.stdout
    print(out)
    assert wrk.returncode == 0, out + wrk.stderr
    served = int(re.search(r"(\d+) requests in", out).group(1))
    assert served > 1000, out
    assert "Non-2xx or 3xx responses" not in out, out
    assert "Socket errors" not in out, out
    growth = (samples[SOAK_SECONDS - 1] - samples[10]) / samples[10]
    print(f"soak: {served} requests, RSS {samples[10]} kB at 10 s, {samples[SOAK_SECONDS - 1]} kB at 59 s")
    assert growth < 0.05, samples
    # Waitress notes every request that waited for a thread; the log says so once a minute at most.
    lines = (tmp_path / "server.log").read_text().splitlines()
    queue_notes = [line for line in lines if "waitress.queue" in line]
    assert 1 <= len(queue_notes) <= 2, queue_notes[:5]
    assert len(lines) <= 5, lines[:10]
