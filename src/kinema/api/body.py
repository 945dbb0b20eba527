"""Reading request bodies under a byte cap and read deadlines, whatever the framing.

A declared ``Content-Length`` over the cap is refused before anything is read; a chunked body (or one whose
length was not declared) is counted as it arrives and cut off with 413 as soon as it passes the cap, so the
server never holds more than the cap. Every read has an idle deadline and the whole body an overall one
(408 past either). A client that goes away mid-body is logged once, at INFO, and answered with nothing.

JSON bodies are also refused with a 422 ``json_invalid`` when they nest deeper than :data:`MAX_JSON_DEPTH`
(Python's decoder raises ``RecursionError`` near depth 1000, which used to surface as a 500).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from kinema.api.errors import ApiError
from kinema.errors import InputError

__all__ = [
    "MAX_JSON_DEPTH",
    "BodyLimits",
    "ClientGone",
    "body_chunks",
    "json_depth",
    "parse_json",
    "read_body",
    "read_json_body",
    "too_large",
]

log = logging.getLogger("kinema.api")

#: kinema's own inputs nest 4 levels deep (body → dynamic_masks → mask → trajectories → point); 64 leaves room
#: for clients that send extra fields, and stays far below the decoder's recursion limit.
MAX_JSON_DEPTH = 64


class ClientGone(ApiError):
    """The client disconnected before its body was read; there is nobody left to answer."""

    def __init__(self) -> None:
        super().__init__(499, "the client closed the connection before sending its whole body", "client_closed")


class BodyLimits:
    """The cap and deadlines of one body read (from :class:`~kinema.settings.Settings`)."""

    def __init__(self, max_bytes: int, *, idle_timeout_s: float = 30.0, total_timeout_s: float = 300.0):
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s

    @classmethod
    def for_request(cls, request: Request, max_bytes: int) -> BodyLimits:
        settings = request.app.state.settings
        return cls(max_bytes, idle_timeout_s=settings.body_idle_timeout_s, total_timeout_s=settings.body_timeout_s)


def too_large(limit: int, what: str = "the request body") -> ApiError:
    """413 in fal's shape; ``Connection: close`` so the server stops reading what the client still sends."""
    return ApiError(413, f"{what} is larger than {limit} bytes", "payload_too_large", {"Connection": "close"})


def _timed_out(what: str) -> ApiError:
    return ApiError(408, f"{what} took too long to arrive", "request_timeout", {"Connection": "close"})


def _check_declared_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise too_large(limit)


async def body_chunks(request: Request, limits: BodyLimits) -> AsyncGenerator[bytes, None]:
    """The body's chunks as they arrive; raises 413/408 :class:`ApiError` or :class:`ClientGone`."""
    _check_declared_length(request, limits.max_bytes)
    clock = asyncio.get_running_loop().time
    deadline = clock() + limits.total_timeout_s
    stream = request.stream().__aiter__()
    size = 0
    while True:
        wait = min(limits.idle_timeout_s, deadline - clock())
        try:
            if wait <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=wait)
        except StopAsyncIteration:
            return
        except TimeoutError:
            log.info("request body timed out", extra={"path": request.url.path, "received_bytes": size})
            raise _timed_out("the request body") from None
        except ClientDisconnect:
            log.info("client disconnected mid-body", extra={"path": request.url.path, "received_bytes": size})
            raise ClientGone() from None
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(limits.max_bytes)
        if chunk:
            yield chunk


async def read_body(request: Request, limits: BodyLimits) -> bytearray:
    """The whole body (at most ``limits.max_bytes``), not copied into ``bytes`` (the JSON decoder takes both)."""
    buf = bytearray()
    async for chunk in body_chunks(request, limits):
        buf += chunk
    return buf


def json_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests (a scalar is 0), counting at most to ``limit + 1``; iterative, no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest


def _json_invalid(msg: str) -> InputError:
    return InputError.single(["body"], msg, "json_invalid")


def parse_json(raw: bytes | bytearray) -> Any:
    """``json.loads`` with fal's 422 for anything that is not JSON or nests deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        payload = json.loads(raw or b"null")
    except RecursionError:
        raise _json_invalid(f"the body is not valid JSON: it nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise _json_invalid(f"the body is not valid JSON: {exc}") from None
    if json_depth(payload, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise _json_invalid(f"the body is not valid JSON: it nests deeper than {MAX_JSON_DEPTH} levels")
    return payload


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """Read at most ``max_bytes`` of body (413 past it, 408 if too slow) and decode it as JSON (422 if not)."""
    return parse_json(await read_body(request, BodyLimits.for_request(request, max_bytes)))
