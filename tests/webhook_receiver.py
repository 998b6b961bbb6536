"""A local webhook receiver on 127.0.0.1: records every post and answers as each path is scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Post:
    path: str
    content_type: str
    body: Any


@dataclass(frozen=True)
class Answer:
    status: int = 204
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before answering: a stalled webhook


class Receiver:
    """Each path answers its scripted answers in order, then 204; `posts` holds what arrived."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.times: list[float] = []
        self._script: dict[str, deque[Answer]] = defaultdict(deque)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(Post(self.path, self.headers.get("Content-Type", ""), json.loads(raw)))
                receiver.times.append(time.monotonic())
                script = receiver._script[self.path]
                answer = script.popleft() if script else Answer()
                time.sleep(answer.delay)
                data = b"" if answer.body is None else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers:
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, path: str, *answers: Answer) -> str:
        """Queue answers for `path`; returns the full URL of that path."""
        self._script[path].extend(answers)
        return self.url + path

    def start(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
