"""The management API (`/admin/...`) and the v2 model repository extension (`/v2/repository/...`).

Enabled only when the server has an admin token (AMMS_ADMIN_TOKEN); every request needs
`Authorization: Bearer <token>`, compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.errors import Forbidden, Unauthorized
from amms_cli.http.bodies import json_response
from amms_cli.http.request_state import model_server, plane, settings
from amms_cli.http.routes.native import describe_model
from amms_cli.serving.registry import ModelView


def require_token(request: Request) -> None:
    token = settings(request).admin_token
    if not token:
        raise Forbidden("the admin API is disabled; start the server with AMMS_ADMIN_TOKEN set to enable it")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("admin API: send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Forbidden("admin API: the bearer token is wrong")


router = APIRouter(tags=["admin"], dependencies=[Depends(require_token)])


def repository_rows(views: list[ModelView]) -> list[dict[str, Any]]:
    return [
        {
            "name": view.name,
            "version": str(status.version),
            "state": status.state.value,
            "reason": status.reason or "",
            "served": view.served is not None and view.served.version == status.version,
        }
        for view in views
        for status in view.sorted_statuses()
    ]


@router.get("/admin/repository", summary="Every configured model and each version on disk, with state and reason")
async def repository(request: Request) -> Response:
    views = plane(request).views()
    return json_response({"models": [describe_model(view) for view in views]})


@router.post("/admin/reload", summary="Re-read the config and rescan the repository now")
async def reload(request: Request) -> Response:
    reconciler = model_server(request).reconciler
    config_error = await reconciler.reload_config()
    await reconciler.reconcile()
    views = plane(request).views()
    body: dict[str, Any] = {"config_error": config_error, "models": [describe_model(view) for view in views]}
    return json_response(body)


async def _load(request: Request, name: str) -> ModelView:
    dataplane = plane(request)
    dataplane.view(name)  # 404 for an unknown model
    await model_server(request).reconciler.release(name)
    return dataplane.view(name)


async def _unload(request: Request, name: str) -> ModelView:
    dataplane = plane(request)
    dataplane.view(name)
    await model_server(request).reconciler.hold(name)
    return dataplane.view(name)


@router.post("/admin/models/{name}/load", summary="Load a model (again): clears failures and admin unloads")
async def load(name: str, request: Request) -> Response:
    return json_response(describe_model(await _load(request, name)))


@router.post("/admin/models/{name}/unload", summary="Unload every version of a model until it is loaded again")
async def unload(name: str, request: Request) -> Response:
    return json_response(describe_model(await _unload(request, name)))


@router.post("/v2/repository/index", summary="v2 repository extension: every model version and its state")
async def v2_index(request: Request) -> Response:
    return json_response(repository_rows(plane(request).views()))


@router.post("/v2/repository/models/{name}/load", summary="v2 repository extension: load a model")
async def v2_load(name: str, request: Request) -> Response:
    view = await _load(request, name)
    if view.served is None:
        return json_response({"error": f"model '{name}' did not load: {describe_model(view)['versions']}"}, 400)
    return json_response({})


@router.post("/v2/repository/models/{name}/unload", summary="v2 repository extension: unload a model")
async def v2_unload(name: str, request: Request) -> Response:
    await _unload(request, name)
    return json_response({})
