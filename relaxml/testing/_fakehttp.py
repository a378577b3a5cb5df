"""The HTTP side of `FakeLabelStudio`: a threaded server whose handler records each request,
applies the failures a test asked for, and answers with `_routes.route`."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._routes import Reply, route

if TYPE_CHECKING:
    from ._fakelabelstudio import FakeLabelStudio


def handler_for(fake: FakeLabelStudio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            with fake.lock:
                fake.requests.append((method, path))
                fake.queries.append((method, path, query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            failure = fake.injected_failure(path)
            if failure is not None and not failure[1]:
                reply = Reply(failure[0], {"detail": "failure injected by the test"})
            else:
                reply = route(fake, method, path, query, body, self.headers.get("Authorization"))
                if failure is not None:  # done, but the answer is lost
                    reply = Reply(failure[0], {"detail": "answer lost, as the test asked"})
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
