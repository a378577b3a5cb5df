"""Reading a JSON request body: size limit first (413), then a clear 400 for bad JSON."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request

from .errors import BadRequest, HTTPError

_PARSE_IN_THREAD = 1024 * 1024  # parse bodies above 1 MiB off the event loop


def _too_large(limit: int) -> HTTPError:
    return HTTPError(
        413,
        "body_too_large",
        f"the request body is larger than {limit} bytes (set RELAXML_MAX_BODY_SIZE to raise it)",
    )


async def read_json(request: Request, limit: int) -> Any:
    """The decoded JSON body of `request`, at most `limit` bytes long."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
    body = b"".join(parts)
    if not body.strip():
        raise BadRequest("the request body is empty: expected a JSON object")
    try:
        if len(body) > _PARSE_IN_THREAD:
            return await anyio.to_thread.run_sync(json.loads, body)
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
