"""TensorFlow Serving REST: `:predict` in row (`instances`) or columnar (`inputs`) form, model status
(`model_version_status`) and metadata (a signature_def per output kind). Versions are semver strings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.errors import InvalidInput, NotFound
from amms_cli.http.bodies import json_response, read_json_object
from amms_cli.http.request_state import plane, settings
from amms_cli.http.routes.native import PREDICT_RESPONSES
from amms_cli.http.routing import PlainRoute
from amms_cli.repository.manifest import PREDICT, PREDICT_PROBA
from amms_cli.servables import JsonInputs, NamedColumns, RequestInputs, TensorSpec
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.registry import ModelView, VersionState, VersionStatus
from amms_cli.serving.signatures import VersionFacts, output_specs

router = APIRouter(tags=["tensorflow-serving"], route_class=PlainRoute)
PROTOCOL = "tfserving"
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {k: v for k, v in PREDICT_RESPONSES.items() if k != 200}
STATES = {
    VersionState.LOADING: "LOADING",
    VersionState.AVAILABLE: "AVAILABLE",
    VersionState.FAILED: "END",
    VersionState.UNLOADED: "END",
    VersionState.ON_DEMAND: "START",  # known, loads when a request asks (TF Serving's state before LOADING)
}
TF_DTYPES = {
    "BOOL": "DT_BOOL",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "FP16": "DT_HALF",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}
PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "signature_name": {"type": "string", "description": "serving_default or predict_proba"},
                        "instances": {"description": "row format: a list with one item per row"},
                        "inputs": {"description": "columnar format: one tensor, or feature name -> column"},
                    },
                },
                "example": {"instances": [[5.1, 3.5, 1.4, 0.2]]},
            }
        },
    }
}


@router.post(
    "/v1/models/{name}:predict",
    summary="Predict with the served version",
    openapi_extra=PREDICT_BODY,
    responses=ERROR_RESPONSES,
)
async def predict(name: str, request: Request) -> Response:
    return await _predict(request, name, None)


@router.post(
    "/v1/models/{name}/versions/{version}:predict",
    summary="Predict with one loaded version",
    openapi_extra=PREDICT_BODY,
    responses=ERROR_RESPONSES,
)
async def predict_version(name: str, version: str, request: Request) -> Response:
    return await _predict(request, name, version)


@router.get("/v1/models/{name}", summary="Status of every version", responses=ERROR_RESPONSES)
async def model_status(name: str, request: Request) -> Response:
    return json_response(status_body(plane(request).view(name), None))


@router.get("/v1/models/{name}/versions/{version}", summary="Status of one version", responses=ERROR_RESPONSES)
async def version_status(name: str, version: str, request: Request) -> Response:
    return json_response(status_body(plane(request).view(name), version))


@router.get("/v1/models/{name}/metadata", summary="Signatures of the served version", responses=ERROR_RESPONSES)
async def model_metadata(name: str, request: Request) -> Response:
    return json_response(metadata_body(plane(request).registry.described(name, None)))


@router.get(
    "/v1/models/{name}/versions/{version}/metadata",
    summary="Signatures of one loaded version",
    responses=ERROR_RESPONSES,
)
async def version_metadata(name: str, version: str, request: Request) -> Response:
    return json_response(metadata_body(plane(request).registry.described(name, version)))


async def _predict(request: Request, name: str, version: str | None) -> Response:
    with plane(request).inference(name, version, PROTOCOL) as call:
        body, raw = await read_json_object(request, settings(request).body_limit_bytes)
        row_format = _check_body(body)
        proba = wants_probabilities(body.get("signature_name"), await call.resolve())
        inputs = JsonInputs(body["instances"], raw) if row_format else columnar_inputs(body["inputs"], raw)
        prediction = await call.infer(inputs, proba)
        values = prediction.probabilities if proba else prediction.outputs
        return json_response({"predictions" if row_format else "outputs": values}, headers=call.headers())


def _check_body(body: dict[str, Any]) -> bool:
    """True for the row format (`instances`), False for the columnar one (`inputs`)."""
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise InvalidInput(f"unknown field '{unknown[0]}' (expected 'instances' or 'inputs', and 'signature_name')")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidInput("give either 'instances' (row format) or 'inputs' (columnar format), exactly one of them")
    return "instances" in body


def signature_names(loaded: LoadedVersion) -> list[str]:
    return [DEFAULT_SIGNATURE, PREDICT_PROBA] if loaded.model.has_predict_proba else [DEFAULT_SIGNATURE]


def wants_probabilities(signature: Any, loaded: LoadedVersion) -> bool:
    if signature in (None, "", DEFAULT_SIGNATURE, "predict"):
        return False
    if signature == PREDICT_PROBA and loaded.model.has_predict_proba:
        return True
    known = ", ".join(signature_names(loaded))
    raise InvalidInput(f"unknown signature_name {signature!r} (model '{loaded.name}' has: {known})")


def columnar_inputs(inputs: Any, raw: bytes) -> RequestInputs:
    """Columnar `inputs`: an object is named columns (or one named tensor), anything else one tensor."""
    return NamedColumns(inputs, raw) if isinstance(inputs, dict) else JsonInputs(inputs, raw)


def status_body(view: ModelView, version: str | None) -> dict[str, Any]:
    statuses = view.sorted_statuses()
    if version is not None:
        if version not in view.statuses:
            known = ", ".join(str(s.version) for s in statuses) or "none"
            raise NotFound(f"model '{view.name}' has no version {version} (versions: {known})")
        statuses = [view.statuses[version]]
    return {"model_version_status": [version_status_entry(status) for status in statuses]}


def version_status_entry(status: VersionStatus) -> dict[str, Any]:
    failed = status.state == VersionState.FAILED
    return {
        "version": str(status.version),
        "state": STATES.get(status.state, "UNKNOWN"),
        "status": {
            "error_code": "UNKNOWN" if failed else "OK",
            "error_message": (status.reason or "") if failed else "",
        },
    }


def metadata_body(loaded: VersionFacts) -> dict[str, Any]:
    inputs = signature_inputs(loaded)
    outputs = output_specs(loaded)
    signatures = {DEFAULT_SIGNATURE: _signature(inputs, "predictions", outputs[PREDICT], PREDICT)}
    if PREDICT_PROBA in outputs:
        signatures[PREDICT_PROBA] = _signature(inputs, "probabilities", outputs[PREDICT_PROBA], PREDICT_PROBA)
    return {
        "model_spec": {"name": loaded.name, "signature_name": "", "version": loaded.version_text},
        "metadata": {"signature_def": {"signature_def": signatures}},
    }


def signature_inputs(loaded: VersionFacts) -> dict[str, dict[str, Any]]:
    """One input per named column (the keys of columnar `inputs`) when the servable takes columns, else one."""
    columns = loaded.servable.column_tensors()
    if columns:
        return {spec.name: tensor_info(spec) for spec in columns}
    spec = loaded.servable.input_tensor()
    return {spec.name if spec else "input": tensor_info(spec, "input")}


def _signature(inputs: dict[str, Any], output_key: str, output: TensorSpec | None, name: str) -> dict[str, Any]:
    return {"inputs": inputs, "outputs": {output_key: tensor_info(output, name)}, "method_name": PREDICT_METHOD}


def tensor_info(spec: TensorSpec | None, name: str = "") -> dict[str, Any]:
    """A TensorInfo; an unknown tensor (None) is DT_INVALID of unknown rank, as TensorFlow writes it."""
    if spec is None:
        return {"dtype": "DT_INVALID", "tensor_shape": {"dim": [], "unknown_rank": True}, "name": name}
    return {
        "dtype": TF_DTYPES[spec.datatype],
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False},
        "name": spec.name,
    }
