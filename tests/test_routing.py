"""PlainRoute: endpoints get the request and the path's strings; endpoints it would call wrongly are refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from amms_cli.http.routing import PlainRoute


def app_with(router: APIRouter) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


def get(app: FastAPI, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(call())


def test_endpoint_gets_the_request_and_decoded_path_parameters() -> None:
    router = APIRouter(route_class=PlainRoute)

    @router.get("/models/{name}/versions/{version}")
    async def show(name: str, request: Request, version: str) -> Response:
        return JSONResponse({"name": name, "version": version, "path": request.url.path})

    response = get(app_with(router), "/models/my%20model/versions/1.2.0")
    assert response.status_code == 200
    assert response.json() == {"name": "my model", "version": "1.2.0", "path": "/models/my model/versions/1.2.0"}


def test_endpoint_without_request_and_openapi_still_documents_the_route() -> None:
    router = APIRouter(route_class=PlainRoute)

    @router.get("/live", summary="up")
    async def live() -> Response:
        return JSONResponse({"live": True})

    app = app_with(router)
    assert get(app, "/live").json() == {"live": True}
    assert app.openapi()["paths"]["/live"]["get"]["summary"] == "up"


async def needs_nothing() -> None:
    return None


def test_refuses_a_dependency_it_would_skip() -> None:
    router = APIRouter(route_class=PlainRoute)
    with pytest.raises(TypeError, match="has dependencies"):

        @router.get("/x", dependencies=[Depends(needs_nothing)])
        async def guarded() -> Response:
            return Response()


def test_refuses_a_parameter_that_is_not_a_path_string() -> None:
    router = APIRouter(route_class=PlainRoute)
    with pytest.raises(TypeError, match="exactly the path parameters"):

        @router.get("/items/{item}")
        async def typed(item: int) -> Response:
            return Response()

    with pytest.raises(TypeError, match="exactly the path parameters"):

        @router.get("/search")
        async def query(q: str) -> Response:  # a query parameter FastAPI would have filled
            return Response()

    with pytest.raises(TypeError, match="plain"):

        @router.get("/items/{item:int}")
        async def converted(item: str) -> Response:
            return Response()


def test_refuses_a_sync_endpoint_or_one_not_returning_a_response() -> None:
    router = APIRouter(route_class=PlainRoute)
    with pytest.raises(TypeError, match="async"):

        @router.get("/sync")
        def sync() -> Response:
            return Response()

    with pytest.raises(TypeError, match="return a Response"):

        @router.get("/dict")
        async def data() -> dict[str, int]:
            return {}
