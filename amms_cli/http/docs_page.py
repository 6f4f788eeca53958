"""`/docs` without the internet: Swagger UI's JavaScript, CSS and icon served by amms itself from the
`fastapi-swagger` package (a maintained, MIT-licensed release of each Swagger UI version; Swagger UI
itself is Apache-2.0), instead of FastAPI's default page, which loads them from cdn.jsdelivr.net and
fastapi.tiangolo.com and stays blank on a private network or an air-gapped cluster."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response

DOCS_URL = "/docs"
ASSETS_URL = f"{DOCS_URL}/assets"
ASSET_PACKAGE = "fastapi_swagger.resources"
ASSETS = {  # file name -> media type
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
UI_PARAMETERS = {
    "validatorUrl": None,  # Swagger UI would send the document to validator.swagger.io
    "displayRequestDuration": True,
}
ASSET_CACHE = "public, max-age=86400"


@cache
def _asset(name: str) -> bytes:
    return resources.files(ASSET_PACKAGE).joinpath(name).read_bytes()


def install(app: FastAPI) -> None:
    """Add `/docs` and its assets to an app created with `docs_url=None`."""

    async def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            swagger_ui_parameters=UI_PARAMETERS,
        )

    async def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return Response(f"no docs asset {name}", status_code=404, media_type="text/plain")
        return Response(_asset(name), media_type=media_type, headers={"Cache-Control": ASSET_CACHE})

    app.add_api_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(ASSETS_URL + "/{name}", asset, methods=["GET"], include_in_schema=False)
