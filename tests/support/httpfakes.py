"""Real HTTP servers on 127.0.0.1 for client and media tests, recording what they receive."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request a fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    @property
    def route(self) -> str:
        return urlsplit(self.path).path


@dataclass
class Reply:
    """What a fake server answers: `body` may be chunks, written with `pause` between them."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length (only for a bytes body)
    pause: float = 0.0
    drop: bool = False  # close the connection without answering

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}
        )

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Reply:
        return cls(status, headers={"Location": location})


Handler = Callable[[Seen], Reply]


class FakeServer(ThreadingHTTPServer):
    """A threaded HTTP/1.0 server whose answers come from `handler`; `seen` records requests."""

    daemon_threads = True

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.handler = handler
        self.seen: list[Seen] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    def authorizations(self) -> list[str | None]:
        return [seen.headers.get("authorization") for seen in self.seen]


class _RequestHandler(BaseHTTPRequestHandler):
    server: FakeServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.server.seen.append(seen)
        reply = self.server.handler(seen)
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, bytes) and reply.length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        chunks = [reply.body] if isinstance(reply.body, bytes) else reply.body
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(reply.pause)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def make_jwt(exp: float, **claims: Any) -> str:
    """An unsigned-looking JWT with `exp` (the client never verifies signatures)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'exp': int(exp), **claims})}.c2ln"
