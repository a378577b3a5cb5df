"""A fake Label Studio REST API on 127.0.0.1, for delivery tests. Real HTTP, in a thread."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeLabelStudio:
    """Stores predictions like Label Studio; `mode` makes it misbehave on purpose.

    Modes: `ok`; `down` (503 on everything); `lose` (store, then answer 500, as when the
    response is lost); `refuse` (400 for tasks in `refused`).
    """

    def __init__(self, token: str = "good-token-123") -> None:
        self.token = token
        self.mode = "ok"
        self.refused: set[int] = set()
        self.predictions: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.imports: list[int] = []  # the size of each bulk import, in order
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def by_task(self) -> dict[int, int]:
        with self.lock:
            counts: dict[int, int] = {}
            for p in self.predictions:
                counts[p["task"]] = counts.get(p["task"], 0) + 1
            return counts

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.route("GET")

            def do_POST(self) -> None:
                self.route("POST")

            def route(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.lock:
                    fake.calls.append((method, url.path))
                if fake.mode == "down":
                    self.answer(503, {"detail": "down"})
                    return
                if self.headers.get("Authorization") != f"Token {fake.token}":
                    self.answer(401, {"detail": "Authentication credentials were not provided."})
                    return
                query = parse_qs(url.query)
                if method == "GET" and url.path.startswith("/api/projects/"):
                    self.answer(200, {"id": int(url.path.split("/")[3])})
                elif method == "GET" and url.path == "/api/predictions/":
                    with fake.lock:
                        found = [
                            p
                            for p in fake.predictions
                            if str(p["project"]) in query.get("project", [str(p["project"])])
                            and str(p["task"]) in query.get("task", [str(p["task"])])
                        ]
                    self.answer(200, found)
                elif method == "POST" and url.path.endswith("/import/predictions"):
                    project = int(url.path.split("/")[3])
                    with fake.lock:
                        fake.imports.append(len(body))
                    self.store(body, project)
                elif method == "POST" and url.path == "/api/predictions/":
                    self.store([body], 0)
                else:
                    self.answer(404, {"detail": "Not found."})

            def store(self, items: list[dict[str, Any]], project: int) -> None:
                if fake.mode == "refuse" and any(i["task"] in fake.refused for i in items):
                    self.answer(400, {"detail": "task does not exist"})
                    return
                with fake.lock:
                    for item in items:
                        fake.predictions.append({"project": project, **item})
                if fake.mode == "lose":
                    self.answer(500, {"detail": "lost"})
                    return
                self.answer(201, {"created": len(items)})

        return Handler
