"""Reading request bodies with a size limit and turning them into JSON, and writing JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from amms_cli.errors import InvalidInput, PayloadTooLarge

JSON_TYPE = "application/json"


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
    # The ASGI messages themselves rather than request.stream(): an async generator per request
    # costs more than the body of a small prediction takes to parse.
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunk if len(chunks) == 1 else b"".join(chunks)


def parse_json(body: bytes) -> Any:
    if not body:
        raise InvalidInput("empty request body (expected a JSON object)")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if _is_depth_error(exc):
            # orjson (>= 3.11) stops at 1024 levels; older releases parse deeper and the
            # servables then refuse the shape, so either way the client learns the same thing.
            raise InvalidInput("malformed JSON: nested too deeply (at most 1024 levels)") from None
        raise InvalidInput(f"malformed JSON: {exc}") from None


def _is_depth_error(exc: orjson.JSONDecodeError) -> bool:
    text = str(exc)
    return "depth limit" in text or "recursion limit" in text


async def read_json_object(request: Request, limit: int) -> tuple[dict[str, Any], bytes]:
    """The body as a JSON object, and the raw bytes it was parsed from."""
    raw = await read_body(request, limit)
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidInput(f"request body must be a JSON object, got {type(data).__name__}")
    return data, raw


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, JSON_TYPE)
