"""One renderer for every error: `{"error": "..."}` with the status the AmmsError carries."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.errors import AmmsError, ModelBusy
from amms_cli.http.bodies import json_response

log = logging.getLogger("amms.server")


async def amms_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AmmsError)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, ModelBusy) else None
    return json_response({"error": exc.message}, int(exc.status), headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path} (see /docs)"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return json_response({"error": detail}, exc.status_code, dict(exc.headers or {}))


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return json_response({"error": f"{where}: {first.get('msg')}"}, 422)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    error_id = uuid.uuid4().hex[:8]
    log.error("unexpected error [error id %s] on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return json_response({"error": f"internal error (error id {error_id}; details in the server log)"}, 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AmmsError, amms_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
