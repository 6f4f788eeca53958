"""The native API: `POST /models/{name}/predict`, `GET /models`, `GET /models/{name}`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.errors import InvalidInput
from amms_cli.http.bodies import json_response, read_json_object
from amms_cli.http.request_state import describe_model, plane, settings
from amms_cli.http.routing import PlainRoute

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
    started = time.perf_counter()
    dataplane = plane(request)
    with dataplane.failures_recorded(name, version, PROTOCOL, started):
        body = await read_json_object(request, settings(request).body_limit_bytes)
        if "inputs" not in body:
            raise InvalidInput("request body needs an 'inputs' field")
        unknown = set(body) - {"inputs", "probabilities"}
        if unknown:
            raise InvalidInput(f"unknown field '{sorted(unknown)[0]}' (expected 'inputs' and optional 'probabilities')")
        proba = body.get("probabilities", False)
        if not isinstance(proba, bool):
            raise InvalidInput("'probabilities' must be true or false")
        result = await dataplane.infer(name, version, body["inputs"], proba)
    loaded, prediction = result.model, result.prediction
    payload: dict[str, Any] = {"model": name, "version": loaded.version_text, "outputs": prediction.outputs}
    if prediction.probabilities is not None:
        payload["probabilities"] = prediction.probabilities
        payload["classes"] = prediction.classes
    dataplane.record(name, loaded.version_text, PROTOCOL, 200, started)
    return json_response(payload)


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
