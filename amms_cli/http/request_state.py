"""What every protocol module needs: the shared objects of the running server, and model facts."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from amms_cli.http.bodies import json_response
from amms_cli.serving.dataplane import DataPlane
from amms_cli.serving.registry import ModelView
from amms_cli.serving.settings import ServeSettings


def plane(request: Request) -> DataPlane:
    return request.state.plane  # type: ignore[no-any-return]


def settings(request: Request) -> ServeSettings:
    return request.state.settings  # type: ignore[no-any-return]


def readiness(dataplane: DataPlane) -> Response:
    """200 {"ready": true} once every model has a served version; 503 naming the ones still waiting."""
    if dataplane.is_ready():
        return json_response({"ready": True})
    waiting = [view.name for view in dataplane.views() if view.served is None]
    return json_response({"ready": False, "error": f"not ready: waiting for {waiting or 'the first load'}"}, 503)


def describe_model(view: ModelView) -> dict[str, Any]:
    """The native description of a model: served version, each version's state, input schema."""
    served = view.served
    manifest = served.manifest if served else None
    servable = served.servable if served else None
    return {
        "name": view.name,
        "aspired_version": view.entry.aspired_version,
        "served_version": served.version_text if served else None,
        "ready": served is not None,
        "framework": manifest.framework if manifest else None,
        "servable": servable.name if servable else view.entry.servable_name,
        "input_schema": servable.schema(manifest.input) if servable and manifest else None,
        "example": servable.example(manifest.input) if servable and manifest else None,
        "classes": served.model.classes if served else None,
        "versions": [
            {
                "version": str(status.version),
                "state": status.state.value,
                "reason": status.reason,
                "framework": status.framework,
                "load_seconds": round(status.load_seconds, 4) if status.load_seconds is not None else None,
                "loaded": str(status.version) in view.loaded,
            }
            for status in view.sorted_statuses()
        ],
    }
