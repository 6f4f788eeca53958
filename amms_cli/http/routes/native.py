"""The native API: `POST /models/{name}/predict`, `GET /models`, `GET /models/{name}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.errors import InvalidInput
from amms_cli.http.bodies import json_response, read_json_object
from amms_cli.http.request_state import plane, settings
from amms_cli.http.routing import PlainRoute
from amms_cli.servables import JsonInputs
from amms_cli.serving.registry import ModelView

router = APIRouter(tags=["native"], route_class=PlainRoute)
PROTOCOL = "native"

PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "inputs": {"description": "model input; its form depends on the model's servable"},
                        "probabilities": {"type": "boolean", "description": "also return class probabilities"},
                    },
                }
            }
        },
    }
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Predictions",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "version", "outputs"],
                    "properties": {
                        "model": {"type": "string"},
                        "version": {"type": "string"},
                        "outputs": {"type": "array"},
                        "probabilities": {"type": "array"},
                        "classes": {"type": "array"},
                    },
                }
            }
        },
    },
    **{
        code: {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, text in (
            (400, "Invalid input"),
            (404, "Unknown model or version"),
            (413, "Body too large"),
            (500, "The model failed"),
            (503, "Model loading or unavailable"),
        )
    },
}


async def _predict(request: Request, name: str, version: str | None) -> Response:
    with plane(request).inference(name, version, PROTOCOL) as call:
        body, raw = await read_json_object(request, settings(request).body_limit_bytes)
        inputs, proba = _check_body(body)
        prediction = await call.infer(JsonInputs(inputs, raw), proba)
        loaded = await call.resolve()
        payload: dict[str, Any] = {"model": name, "version": loaded.version_text, "outputs": prediction.outputs}
        if prediction.probabilities is not None:
            payload["probabilities"] = prediction.probabilities
            payload["classes"] = prediction.classes
        return json_response(payload, headers=call.headers())


def _check_body(body: dict[str, Any]) -> tuple[Any, bool]:
    """The `inputs` and whether probabilities are asked for."""
    if "inputs" not in body:
        raise InvalidInput("request body needs an 'inputs' field")
    unknown = set(body) - {"inputs", "probabilities"}
    if unknown:
        raise InvalidInput(f"unknown field '{sorted(unknown)[0]}' (expected 'inputs' and optional 'probabilities')")
    proba = body.get("probabilities", False)
    if not isinstance(proba, bool):
        raise InvalidInput("'probabilities' must be true or false")
    return body["inputs"], proba


def describe_model(view: ModelView) -> dict[str, Any]:
    """The native description of a model: served version, each version's state, input schema. With the
    model cache on, a model that is not in memory is described from the manifest of the version its
    first request would load (`resident` false)."""
    served = view.served
    described = view.described
    return {
        "name": view.name,
        "aspired_version": view.entry.aspired_version,
        "served_version": described.version_text if described else None,
        "ready": described is not None,
        "resident": served is not None,
        "framework": described.manifest.framework if described else None,
        "servable": described.servable.name if described else view.entry.servable_name,
        "input_schema": described.servable.schema() if described else None,
        "example": described.servable.example() if described else None,
        "smoke_check": described is not None and described.manifest.input.smoke_example is not None,
        "classes": served.model.classes if served else (described.manifest.input.classes if described else None),
        "memory_bytes": sum(loaded.memory_bytes for loaded in view.loaded.values()),
        "versions": [
            {
                "version": str(status.version),
                "state": status.state.value,
                "reason": status.reason,
                "framework": status.framework,
                "load_seconds": round(status.load_seconds, 4) if status.load_seconds is not None else None,
                "memory_bytes": status.memory_bytes if str(status.version) in view.loaded else None,
                "loaded": str(status.version) in view.loaded,
            }
            for status in view.sorted_statuses()
        ],
    }


@router.post(
    "/models/{name}/predict",
    summary="Predict with the served version of any model",
    openapi_extra=PREDICT_BODY,
    responses=PREDICT_RESPONSES,
    response_class=Response,
)
async def predict(name: str, request: Request) -> Response:
    return await _predict(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/predict",
    summary="Predict with one loaded version",
    openapi_extra=PREDICT_BODY,
    responses=PREDICT_RESPONSES,
    response_class=Response,
)
async def predict_version(name: str, version: str, request: Request) -> Response:
    return await _predict(request, name, version)


@router.get("/models", summary="Every configured model with its served version")
async def list_models(request: Request) -> Response:
    return json_response({"models": [describe_model(view) for view in plane(request).views()]})


@router.get("/models/{name}", summary="One model: each version's state, input schema and example")
async def get_model(name: str, request: Request) -> Response:
    return json_response(describe_model(plane(request).view(name)))
