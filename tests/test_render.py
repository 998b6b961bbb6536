"""scripts/render-deploy.sh through Render's API path, against a local stand-in of that API and the service.

The stand-in implements the calls the script makes (the last deploy, start a deploy of an image,
read its status, roll back) with Render's shapes, checks the bearer key, and can be told to fail,
hang, or report the deploy failed. It also plays the service: /healthz names the generation of
whatever deploy is live, so the smoke test sees exactly what Render would be serving.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import ROOT

KEY = "rnd_secret_key_for_tests_0123456789"
SERVICE = "srv-secretservice42"
HOOK_KEY = "hook-secret-key-9876"
IMAGE = "ghcr.io/acme/cryptopredict:1.4.2-20261204101500"
OLD_GENERATION, NEW_GENERATION = "gen-20261204T040000Z-aaaaaaaa", "gen-20261204T101500Z-bbbbbbbb"


@dataclass
class StandIn:
    """Render's API (under /v1) and the service, in one local server; `mode` picks a misbehaviour."""

    mode: str = "ok"  # ok | fail | hang | deploy-failed | never-live | unhealthy | bad-key
    calls: list[tuple[str, str, dict]] = field(default_factory=list)
    live: str = "dep-old"  # the deploy the service runs
    generations: dict[str, str] = field(default_factory=lambda: {"dep-old": OLD_GENERATION})
    reads: int = 0

    def start(self) -> StandIn:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                stand_in.calls.append((method, self.path, body))
                if self.path.startswith("/v1/"):
                    stand_in.api(self, method, self.path[3:], body)
                elif self.path.startswith("/hook"):
                    stand_in.hook(self)
                else:
                    stand_in.service(self)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def api(self, h: http.server.BaseHTTPRequestHandler, method: str, path: str, body: dict) -> None:
        if h.headers.get("Authorization") != f"Bearer {KEY}" or self.mode == "bad-key":
            return h._send(401, {"message": "unauthorized"})  # type: ignore[attr-defined]
        if self.mode == "hang":
            time.sleep(5)
        base = f"/services/{SERVICE}"
        if method == "GET" and path == f"{base}/deploys?limit=1":
            return h._send(200, [{"deploy": {"id": self.live, "status": "live"}, "cursor": "c1"}])  # type: ignore[attr-defined]
        if method == "POST" and path == f"{base}/deploys":
            if self.mode == "fail":
                return h._send(500, {"message": "internal error"})  # type: ignore[attr-defined]
            self.generations["dep-new"] = NEW_GENERATION
            return h._send(201, {"id": "dep-new", "status": "created", "image": {"ref": body.get("imageUrl")}})  # type: ignore[attr-defined]
        if method == "GET" and path == f"{base}/deploys/dep-new":
            self.reads += 1
            if self.mode == "deploy-failed":
                return h._send(200, {"id": "dep-new", "status": "update_failed"})  # type: ignore[attr-defined]
            if self.reads < 2 or self.mode == "never-live":
                return h._send(200, {"id": "dep-new", "status": "update_in_progress"})  # type: ignore[attr-defined]
            if self.mode != "unhealthy":
                self.live = "dep-new"
            return h._send(200, {"id": "dep-new", "status": "live"})  # type: ignore[attr-defined]
        if method == "POST" and path == f"{base}/rollback":
            self.live = body["deployId"]
            return h._send(202, {"id": "dep-rollback"})  # type: ignore[attr-defined]
        return h._send(404, {"message": "not found"})  # type: ignore[attr-defined]

    def hook(self, h: http.server.BaseHTTPRequestHandler) -> None:
        if f"key={HOOK_KEY}" not in h.path:
            return h._send(401, {"message": "bad key"})  # type: ignore[attr-defined]
        if self.mode == "fail":
            return h._send(500, {})  # type: ignore[attr-defined]
        self.generations["dep-new"] = NEW_GENERATION
        self.live = "dep-new"
        return h._send(200, {})  # type: ignore[attr-defined]

    def service(self, h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/healthz"):
            return h._send(200, {"status": "ok", "model_version": "1.4.2", "generation": self.generations[self.live]})  # type: ignore[attr-defined]
        return h._send(
            200, {"date": "2026-12-04T00:00:00", "prediction": 90000.0, "prediction_low": 1.0, "prediction_high": 2.0}
        )  # type: ignore[attr-defined]


@pytest.fixture
def stand_in() -> StandIn:
    s = StandIn().start()
    yield s  # type: ignore[misc]
    s.close()


def deploy(stand_in: StandIn, *, hook: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    """Run render-deploy.sh as the deploy job does, with the API (or the hook) and the service on the stand-in."""
    secrets = (
        {"RENDER_DEPLOY_HOOK_URL": f"{stand_in.url}/hook/{SERVICE}?key={HOOK_KEY}"}
        if hook
        else {"RENDER_API_KEY": KEY, "RENDER_SERVICE_ID": SERVICE}
    )
    return subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "render-deploy.sh")],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "IMAGE": IMAGE,
            "VERSION": "1.4.2",
            "GENERATION": NEW_GENERATION,
            "RENDER_API_URL": f"{stand_in.url}/v1",
            "PUBLIC_URL": stand_in.url,
            "RENDER_POLL_WAIT": "0",
            "RENDER_POLL_TRIES": "5",
            "RENDER_HTTP_TIMEOUT": "2",
            "SMOKE_TRIES": "2",
            "SMOKE_WAIT": "0",
            **secrets,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _no_secret_in(proc: subprocess.CompletedProcess[str]) -> None:
    printed = proc.stdout + proc.stderr
    for secret in (KEY, SERVICE, HOOK_KEY, "hook/"):
        assert secret not in printed, f"{secret!r} printed"


def test_the_api_path_deploys_the_image_waits_until_live_and_passes_the_smoke_test(stand_in: StandIn) -> None:
    """Last deploy read, the run's image deployed by URL, status polled to live, the new generation served."""
    proc = deploy(stand_in)
    assert proc.returncode == 0, proc.stderr
    calls = [(m, p) for m, p, _ in stand_in.calls if p.startswith("/v1/")]
    assert calls[:2] == [
        ("GET", f"/v1/services/{SERVICE}/deploys?limit=1"),
        ("POST", f"/v1/services/{SERVICE}/deploys"),
    ]
    assert next(b for m, p, b in stand_in.calls if m == "POST") == {"imageUrl": IMAGE}
    assert ("GET", f"/v1/services/{SERVICE}/deploys/dep-new") in calls
    assert "passed: 1.4.2 generation " + NEW_GENERATION in proc.stderr
    _no_secret_in(proc)


@pytest.mark.parametrize(
    ("mode", "message", "rolled_back"),
    [
        ("fail", "Render API: start a deploy of " + IMAGE + ": HTTP 500", False),
        ("hang", "Render API: list the last deploy: no answer", False),
        ("bad-key", "HTTP 401: check the RENDER_API_KEY secret", False),
        ("deploy-failed", "deploy dep-new ended as update_failed; the previous deploy keeps serving", False),
        ("never-live", "deploy dep-new not live after 5 checks (status update_in_progress)", False),
        ("unhealthy", f"serving 1.4.2 {OLD_GENERATION} instead of 1.4.2 {NEW_GENERATION}", True),
    ],
)
def test_a_failing_render_fails_the_deploy_in_one_line_and_prints_no_secret(
    stand_in: StandIn, mode: str, message: str, rolled_back: bool
) -> None:
    """Each misbehaviour: exit 1, one error line saying what happened; a failed smoke test rolls back."""
    stand_in.mode = mode
    proc = deploy(stand_in)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, proc.stderr
    assert message in errors[0] or message in proc.stderr, proc.stderr
    rollback = [b for m, p, b in stand_in.calls if p.endswith("/rollback")]
    assert rollback == ([{"deployId": "dep-old"}] if rolled_back else [])
    _no_secret_in(proc)


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_the_deploy_hook_path_never_prints_the_hook_url(stand_in: StandIn, mode: str) -> None:
    """The hook URL holds a key: neither on success nor on failure does any part of it appear."""
    stand_in.mode = mode
    proc = deploy(stand_in, hook=True)
    hooks = [p for m, p, _ in stand_in.calls if p.startswith("/hook")]
    assert len(hooks) == 1
    assert "imgurl=ghcr.io%2facme%2fcryptopredict%3a1.4.2-20261204101500" in hooks[0].lower()
    if mode == "ok":
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1
        assert "the deploy hook answered HTTP 500" in proc.stderr
    _no_secret_in(proc)


def test_an_unreachable_hook_says_so_without_its_url(tmp_path: Path) -> None:
    """Nothing listening at the hook: one line, and the URL (with its key) is not in it."""
    proc = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "render-deploy.sh")],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "IMAGE": IMAGE,
            "VERSION": "1.4.2",
            "GENERATION": NEW_GENERATION,
            "RENDER_DEPLOY_HOOK_URL": f"http://127.0.0.1:9/deploy/{SERVICE}?key={HOOK_KEY}",
            "RENDER_HTTP_TIMEOUT": "2",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "the deploy hook gave no answer" in proc.stderr
    _no_secret_in(proc)
