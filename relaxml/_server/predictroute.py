"""`PredictRoute`: `POST /predict`, the busiest route, answered straight from ASGI.

On a one-task request, Starlette's router, its `Request`, its exception middleware and its
response classes cost about as much as the rest of relaxml's work together. This middleware
answers `POST /predict` itself with the very steps of the routed endpoint: the body read under
its size limit (`bodies.receive_json`), `routes.predict`, the answer encoded as `routes.render`
encodes it, and every failure answered as the app's exception handlers answer it. Any other
request (another path or method, or a path under a `root_path`) goes on to the router.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import Failure
from ..settings import Settings
from .bodies import receive_json
from .handlers import error_response
from .routes import predict, render, unexpected

PATH = "/predict"

_HEADERS_TYPE = (b"content-type", b"application/json")


class _Template:
    """What the access log reads of a matched route: its path template."""

    path = PATH


class PredictRoute:
    """Answers `POST /predict` without the router; passes every other request on."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_body_size
        self._route = _Template()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self._route  # the access log's metrics label, as the router sets it
        backend: Any = scope["app"].state.backend
        try:
            body = await receive_json(scope, receive, self.limit)
            data = render(await predict(backend, body, scope), backend)
        except Failure as error:
            await error_response(error)(scope, receive, send)
            return
        except Exception as exc:  # a relaxml bug: logged in full, a short JSON 500
            await error_response(unexpected(PATH, exc))(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(data)).encode()), _HEADERS_TYPE],
            }
        )
        await send({"type": "http.response.body", "body": data})
