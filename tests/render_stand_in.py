"""A local stand-in for Render's API (the calls scripts/render-deploy.sh makes) and for the service it runs.

Calls, with Render's shapes: GET /v1/services/{id}/deploys?limit=1 (the last deploy),
POST /v1/services/{id}/deploys {"imageUrl"} (start a deploy of an image), GET
/v1/services/{id}/deploys/{deploy} (its status), POST /v1/services/{id}/rollback {"deployId"};
and a deploy hook, POST /hook/{id}?key=…&imgURL=…. The bearer key (or the hook's key) is checked.
`mode` makes it misbehave: fail (HTTP 500 on starting a deploy), hang (answer after 5 s),
deploy-failed (the deploy ends as update_failed), never-live, unhealthy (live, but the service
keeps serving the previous deploy), bad-key.

By itself it also plays the service: /healthz names the generation of the deploy that is live.
A subclass can run the deployed image for real instead (`start_deploy`, `deploy_ready`,
`switch_to`): tests/test_image.py runs it with buildah, pulled from a local registry.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any

__all__ = ["HOOK_KEY", "KEY", "SERVICE", "RenderStandIn"]

KEY = "rnd_secret_key_for_tests_0123456789"
SERVICE = "srv-secretservice42"
HOOK_KEY = "hook-secret-key-9876"


class RenderStandIn:
    def __init__(self, generation: str = "", version: str = "1.4.2") -> None:
        self.mode = "ok"
        self.version = version
        self.calls: list[tuple[str, str, dict]] = []
        self.images: dict[str, str] = {"dep-0": "the image deployed before"}
        self.generations: dict[str, str] = {"dep-0": generation}  # what each deploy serves (the default service)
        self.live = "dep-0"  # the deploy the service runs
        self.next_generation = ""  # what the next deploy serves (the default service)
        self._reads: dict[str, int] = {}
        self._count = 0

    # --------------------------------------------------------------------- what a deploy does
    def start_deploy(self, deploy: str, image: str) -> None:
        """Begin running `image` as `deploy` (here: remember the generation it will serve)."""
        self.generations[deploy] = self.next_generation

    def deploy_ready(self, deploy: str) -> bool:
        """Whether the deploy passes Render's health check yet."""
        return True

    def switch_to(self, deploy: str) -> None:
        """Move the traffic to `deploy` (on going live, and on a rollback)."""
        self.live = deploy

    # --------------------------------------------------------------------- server
    def start(self) -> RenderStandIn:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def send(self, status: int, body: object) -> None:
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
                    stand_in._api(self, method, self.path[3:], body)
                elif self.path.startswith("/hook/"):
                    stand_in._hook(self)
                else:
                    stand_in._service(self)

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

    def _new_deploy(self, image: str) -> str:
        self._count += 1
        deploy = f"dep-{self._count}"
        self.images[deploy] = image
        self.start_deploy(deploy, image)
        return deploy

    def _api(self, h: Any, method: str, path: str, body: dict) -> None:
        if h.headers.get("Authorization") != f"Bearer {KEY}" or self.mode == "bad-key":
            return h.send(401, {"message": "unauthorized"})
        if self.mode == "hang":
            time.sleep(5)
        base = f"/services/{SERVICE}"
        if method == "GET" and path == f"{base}/deploys?limit=1":
            return h.send(200, [{"deploy": {"id": self.live, "status": "live"}, "cursor": "c1"}])
        if method == "POST" and path == f"{base}/deploys":
            if self.mode == "fail":
                return h.send(500, {"message": "internal error"})
            deploy = self._new_deploy(str(body.get("imageUrl")))
            return h.send(201, {"id": deploy, "status": "created", "image": {"ref": body.get("imageUrl")}})
        if method == "GET" and path.startswith(f"{base}/deploys/") and path.rsplit("/", 1)[1] in self.images:
            deploy = path.rsplit("/", 1)[1]
            reads = self._reads[deploy] = self._reads.get(deploy, 0) + 1
            if self.mode == "deploy-failed":
                return h.send(200, {"id": deploy, "status": "update_failed"})
            if reads < 2 or self.mode == "never-live" or not self.deploy_ready(deploy):
                return h.send(200, {"id": deploy, "status": "update_in_progress"})
            if self.mode != "unhealthy" and self.live != deploy:
                self.switch_to(deploy)
            return h.send(200, {"id": deploy, "status": "live"})
        if method == "POST" and path == f"{base}/rollback":
            self.switch_to(body["deployId"])
            return h.send(202, {"id": f"rollback-to-{body['deployId']}"})
        return h.send(404, {"message": "not found"})

    def _hook(self, h: Any) -> None:
        if f"key={HOOK_KEY}" not in h.path:
            return h.send(401, {"message": "bad key"})
        if self.mode == "fail":
            return h.send(500, {})
        deploy = self._new_deploy(h.path.split("imgURL=", 1)[-1])
        if self.mode != "unhealthy":
            self.switch_to(deploy)
        return h.send(200, {})

    def _service(self, h: Any) -> None:
        if h.path.startswith("/healthz"):
            return h.send(
                200, {"status": "ok", "model_version": self.version, "generation": self.generations[self.live]}
            )
        return h.send(
            200, {"date": "2026-12-04T00:00:00", "prediction": 90000.0, "prediction_low": 1.0, "prediction_high": 2.0}
        )
