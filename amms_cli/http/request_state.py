"""The shared objects of the running server, as the app's lifespan put them into each request's state."""

from __future__ import annotations

from starlette.requests import Request

from amms_cli.serving.dataplane import DataPlane
from amms_cli.serving.model_server import ModelServer
from amms_cli.serving.settings import ServeSettings

# the keys of the lifespan state (also read by the connection protocol, before any request)
PLANE, SETTINGS, SERVER = "plane", "settings", "server"


def plane(request: Request) -> DataPlane:
    return request.state.plane  # type: ignore[no-any-return]


def settings(request: Request) -> ServeSettings:
    return request.state.settings  # type: ignore[no-any-return]


def model_server(request: Request) -> ModelServer:
    return request.state.server  # type: ignore[no-any-return]
