"""Reading a JSON request body: size limit first (413), then a clear 400 for bad or deep JSON."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from ..errors import BadRequest, HTTPError
from ..protocol import MAX_DEPTH, ascii_int, depth_exceeds

_PARSE_IN_THREAD = 1024 * 1024  # parse bodies above 1 MiB off the event loop
_COUNT_BELOW = 8 * 1024  # bodies up to this long have their brackets counted before a walk

# Strict decoding refuses raw surrogate bytes (which `json.loads` on bytes lets through), so a
# lone UTF-16 surrogate can then only come from a `\udXXX` escape: look for one in the text
# (a fast search for the literal prefix) before walking the strings.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _too_large(limit: int, setting: str) -> HTTPError:
    return HTTPError(
        413,
        "body_too_large",
        f"the request body is larger than {limit} bytes (set {setting} to raise it)",
    )


async def read_json(request: Request, limit: int, *, setting: str = "RELAXML_MAX_BODY_SIZE") -> Any:
    """The decoded JSON body of `request`, at most `limit` bytes long (`setting` raises it)."""
    return await receive_json(request.scope, request.receive, limit, setting=setting)


async def receive_json(
    scope: Scope, receive: Receive, limit: int, *, setting: str = "RELAXML_MAX_BODY_SIZE"
) -> Any:
    """The decoded JSON body of an ASGI request, at most `limit` bytes long.

    The size is checked from `Content-Length` before reading and again while receiving, so an
    oversized body is refused without being read whole.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = ascii_int(value.decode("latin-1").strip())
            if declared is not None and declared > limit:
                raise _too_large(limit, setting)
            break
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _too_large(limit, setting)
        parts.append(part)
        if not message.get("more_body", False):
            break
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    if not body.strip():
        raise BadRequest("the request body is empty: expected a JSON object")
    if len(body) > _PARSE_IN_THREAD:
        return await anyio.to_thread.run_sync(parse_json, body)
    return parse_json(body)


def parse_json(body: bytes) -> Any:
    """`body` decoded as JSON, nested at most `MAX_DEPTH` deep and holding only text (no lone
    surrogate); `BadRequest` (400) if not."""
    try:
        encoding = json.detect_encoding(body)
        text = body.decode(encoding)
        value = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if isinstance(value, (dict, list)) and not _shallow(body) and _deep(body, encoding, value):
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text) and has_lone_surrogate(value):
        raise BadRequest(
            "the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"
        )
    return value


def _shallow(body: bytes) -> bool:
    """Whether a short body holds too few brackets (those in strings count too) to nest
    deeper than `MAX_DEPTH`: counted in C, cheaper than the walk. A long body always has more
    brackets than that, so it is walked without counting."""
    return len(body) <= _COUNT_BELOW and body.count(b"[") + body.count(b"{") <= MAX_DEPTH


def _deep(body: bytes, encoding: str, value: object) -> bool:
    """Whether `value`, parsed from `body`, nests deeper than `MAX_DEPTH`: read from the
    body's text when `nests_deeper` can tell (a UTF-8 body of up to 1 MiB), else walked."""
    deep = None
    if encoding.startswith("utf-8") and len(body) <= _PARSE_IN_THREAD:
        deep = nests_deeper(body, MAX_DEPTH)
    return depth_exceeds(value, MAX_DEPTH) if deep is None else deep


def nests_deeper(body: bytes, limit: int) -> bool | None:
    """Whether the arrays and objects of `body`, valid JSON in UTF-8, nest more than `limit`
    deep, read from its text in a few passes in C (about half the time of walking the parsed
    value); None when a string in it holds a bracket, escapes abound, or levels are so many
    that peeling them would cost more than the walk, and only a walk can tell.

    Escapes are blanked first (`\\"` is no quote). Then only quotes and brackets are kept,
    and each pair of quotes with nothing between them dropped: a quote left over means a
    string holds a bracket (some run of quotes between two brackets is then odd). Otherwise
    what is left is exactly the nesting of the arrays and objects, and each round of dropping
    every empty pair peels one level off.
    """
    at = body.find(b"\\")
    if at == -1:
        skeleton = body.translate(None, _NOT_SKELETON)
    else:
        blanked = bytearray(body)
        for _ in range(_MOST_ESCAPES):  # a backslash escapes the next character (one more
            blanked[at + 1] = 0x5F  # backslash too): blank it, "_", and go on after it
            at = body.find(b"\\", at + 2)
            if at == -1:
                break
        else:
            return None
        skeleton = bytes(blanked).translate(None, _NOT_SKELETON)
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:
        return None
    skeleton = skeleton.translate(_ONE_KIND)
    budget = _PEEL_PASSES * len(skeleton)  # bytes the rounds may go through, all together
    for _ in range(limit):
        if not skeleton:
            return False
        budget -= len(skeleton)
        if budget < 0:  # many deep levels (a shape made to be slow to peel): walk instead
            return None
        skeleton = skeleton.replace(b"[]", b"")
    return bool(skeleton)


_MOST_ESCAPES = 256  # more escapes than this: walk the parsed value instead
_PEEL_PASSES = 16  # the rounds may go through the skeleton this many times over, then walk
_NOT_SKELETON = bytes(sorted(set(range(256)) - set(b'"[]{}')))  # deleted by translate
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def has_lone_surrogate(value: object) -> bool:
    """Whether a string in `value` (keys included) holds a lone surrogate (checked iteratively)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _too_deep() -> BadRequest:
    return BadRequest(
        f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep"
    )
