"""The OpenAPI document: the fixed routes, plus one documented predict operation per model whose
request schema and example come from its servable. Rebuilt only when the snapshot's models change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from amms_cli.http.routes.native import PREDICT_RESPONSES
from amms_cli.serving.registry import ModelView, Snapshot
from amms_cli.version import __version__

DESCRIPTION = (
    "Every model is served through three protocols: the native API (`/models/...`), TensorFlow Serving "
    "REST (`/v1/models/...`) and the Open Inference Protocol v2 (`/v2/...`). Each configured model also "
    "has its own documented predict operation below, with its input schema and an example."
)
ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _doc_key(snapshot: Snapshot) -> tuple[Any, ...]:
    described = ((name, view.described) for name, view in sorted(snapshot.models.items()))
    return tuple((name, d.version_text, d.servable.name) if d else (name, None, None) for name, d in described)


def model_operation(view: ModelView) -> dict[str, Any]:
    served = view.described  # the served version, or the one its first request would load
    inputs_schema: dict[str, Any] = {"description": "model input"}
    example = None
    if served is not None:
        inputs_schema = served.servable.schema()
        example = served.servable.example()
    body_schema = {
        "type": "object",
        "required": ["inputs"],
        "properties": {"inputs": inputs_schema, "probabilities": {"type": "boolean"}},
        "additionalProperties": False,
    }
    content: dict[str, Any] = {"schema": body_schema}
    if example is not None:
        content["example"] = {"inputs": example}
    version = served.version_text if served else "none yet"
    framework = served.manifest.framework if served else "unknown"
    return {
        "post": {
            "tags": ["models"],
            "summary": f"Predict with {view.name} (serving {version}, {framework})",
            "operationId": f"predict_model_{view.name.replace('.', '_').replace('-', '_')}",
            "requestBody": {"required": True, "content": {"application/json": content}},
            "responses": {str(code): value for code, value in PREDICT_RESPONSES.items()},
        }
    }


class OpenAPIDocument:
    """Callable installed as `app.openapi`; caches the document per snapshot model set."""

    def __init__(self, app: FastAPI, snapshot: Callable[[], Snapshot]) -> None:
        self.app = app
        self.snapshot = snapshot
        self._key: tuple[Any, ...] | None = None
        self._doc: dict[str, Any] = {}

    def __call__(self) -> dict[str, Any]:
        snapshot = self.snapshot()
        key = _doc_key(snapshot)
        if key != self._key:
            self._doc = self._build(snapshot)
            self._key = key
        return self._doc

    def _build(self, snapshot: Snapshot) -> dict[str, Any]:
        doc = get_openapi(title="amms", version=__version__, description=DESCRIPTION, routes=self.app.routes)
        doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for name, view in sorted(snapshot.models.items()):
            doc["paths"][f"/models/{name}/predict"] = model_operation(view)
        return doc
