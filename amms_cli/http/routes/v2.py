"""The Open Inference Protocol ("v2", as spoken by Triton, KServe and MLServer) with the binary tensor
data extension: server and model metadata, health, readiness and `infer`."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from amms_cli import __version__
from amms_cli.errors import InvalidInput, ModelNotReady, NotFound, PayloadTooLarge
from amms_cli.http.bodies import JSON_TYPE, json_response, parse_json, read_body
from amms_cli.http.request_state import plane, readiness, settings
from amms_cli.http.routes.native import PREDICT_RESPONSES
from amms_cli.http.routes.signatures import (
    PREDICT,
    PREDICT_PROBA,
    columns_to_records,
    input_spec,
    output_names,
    output_specs,
)
from amms_cli.http.routes.v2_tensors import (
    HEADER_LENGTH,
    Tensor,
    decode_inputs,
    encode_output,
    response_body,
    split_body,
)
from amms_cli.http.routing import PlainRoute
from amms_cli.serving.inference import Prediction
from amms_cli.serving.registry import LoadedVersion, ModelView

router = APIRouter(tags=["v2"], route_class=PlainRoute)
PROTOCOL = "v2"
EXTENSIONS = ["binary_tensor_data"]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {k: v for k, v in PREDICT_RESPONSES.items() if k != 200}
INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An inference request (JSON), optionally followed by binary tensor data whose JSON "
        "header length is given in the Inference-Header-Content-Length header.",
        "content": {
            "application/json": {
                "example": {
                    "id": "42",
                    "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}],
                    "outputs": [{"name": PREDICT}],
                }
            }
        },
    }
}


@dataclass(frozen=True, slots=True)
class InferRequest:
    tensors: list[Tensor]
    outputs: Any  # the raw `outputs` list; checked against the model's outputs once it is resolved
    binary_output: bool
    id: str | None


@router.get("/v2", summary="Server metadata")
async def server_metadata(request: Request) -> Response:
    # the repository extension (routes in admin.py) is there only when the admin API is enabled
    extensions = [*EXTENSIONS, "model_repository"] if settings(request).admin_token else EXTENSIONS
    return json_response({"name": "amms", "version": __version__, "extensions": extensions})


@router.get("/v2/health/live", summary="The server is live")
async def live() -> Response:
    return json_response({"live": True})


@router.get("/v2/health/ready", summary="Every model has a served version", responses=ERROR_RESPONSES)
async def ready(request: Request) -> Response:
    return readiness(plane(request))


@router.get("/v2/models/{name}", summary="Model metadata (the served version)", responses=ERROR_RESPONSES)
async def model_metadata(name: str, request: Request) -> Response:
    return _metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", summary="Model metadata of one version", responses=ERROR_RESPONSES)
async def version_metadata(name: str, version: str, request: Request) -> Response:
    return _metadata(request, name, version)


@router.get("/v2/models/{name}/ready", summary="The model has a served version", responses=ERROR_RESPONSES)
async def model_ready(name: str, request: Request) -> Response:
    return _ready(request, name, None)


@router.get("/v2/models/{name}/versions/{version}/ready", summary="One version is loaded", responses=ERROR_RESPONSES)
async def version_ready(name: str, version: str, request: Request) -> Response:
    return _ready(request, name, version)


@router.post(
    "/v2/models/{name}/infer",
    summary="Inference with the served version",
    openapi_extra=INFER_BODY,
    responses=ERROR_RESPONSES,
)
async def infer(name: str, request: Request) -> Response:
    return await _infer(request, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    summary="Inference with one loaded version",
    openapi_extra=INFER_BODY,
    responses=ERROR_RESPONSES,
)
async def infer_version(name: str, version: str, request: Request) -> Response:
    return await _infer(request, name, version)


def _metadata(request: Request, name: str, version: str | None) -> Response:
    dataplane = plane(request)
    loaded = dataplane.registry.resolve(name, version)
    return json_response(describe(dataplane.view(name), loaded))


def describe(view: ModelView, loaded: LoadedVersion) -> dict[str, Any]:
    spec = input_spec(loaded)
    return {
        "name": view.name,
        "versions": [v.version_text for v in sorted(view.loaded.values(), key=lambda v: v.version)],
        "platform": loaded.manifest.framework,
        "inputs": [spec.describe()] if spec else [],
        "outputs": [output.describe() for output in output_specs(loaded)],
        "properties": {"version": loaded.version_text, "servable": loaded.servable.name},
    }


def _ready(request: Request, name: str, version: str | None) -> Response:
    dataplane = plane(request)
    try:
        dataplane.registry.resolve(name, version)
    except ModelNotReady as exc:
        return json_response({"error": exc.message}, 503)
    except NotFound as exc:
        view = dataplane.view(name)  # an unknown model stays a 404
        if version is None or version not in view.statuses:
            raise
        return json_response({"error": exc.message}, 503)  # a known version that is FAILED or UNLOADED
    return json_response({"name": name, "ready": True})


async def _infer(request: Request, name: str, version: str | None) -> Response:
    started = time.perf_counter()
    dataplane = plane(request)
    with dataplane.failures_recorded(name, version, PROTOCOL, started):
        parsed = await read_infer_request(request, settings(request).body_limit_bytes)
        loaded = dataplane.registry.resolve(name, version)
        wanted = requested_outputs(parsed, loaded)
        model_input = to_model_input(parsed.tensors, loaded)
        result = await dataplane.infer(name, version, model_input, any(n == PREDICT_PROBA for n, _ in wanted))
    response = infer_response(name, result.model, result.prediction, wanted, parsed.id)
    dataplane.record(name, result.model.version_text, PROTOCOL, 200, started)
    return response


async def read_infer_request(request: Request, limit: int) -> InferRequest:
    body = decompress(await read_body(request, limit), request.headers.get("content-encoding"), limit)
    header, binary = split_body(body, request.headers.get(HEADER_LENGTH))
    payload = parse_json(header)
    if not isinstance(payload, dict):
        raise InvalidInput(f"the inference request must be a JSON object, got {type(payload).__name__}")
    if "inputs" not in payload:
        raise InvalidInput("the inference request needs 'inputs' (a list of tensors)")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be an object")
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidInput("the binary_data_output parameter must be true or false")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    tensors = decode_inputs(payload["inputs"], binary)
    return InferRequest(tensors, payload.get("outputs"), binary_output, request_id)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a gzip or deflate Content-Encoding (tritonclient can compress requests), within the body limit."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    wbits = {"gzip": 31, "deflate": 15}.get(encoding.strip().lower())
    if wbits is None:
        raise InvalidInput(f"Content-Encoding {encoding!r} is not supported (use gzip or deflate)")
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the body is not valid {encoding} data: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"the decompressed request body is over the limit of {limit} bytes")
    if not inflater.eof:
        raise InvalidInput(f"the {encoding} body is truncated")
    return data


def requested_outputs(parsed: InferRequest, loaded: LoadedVersion) -> list[tuple[str, bool]]:
    """(output name, as binary) for each requested output; `predict` when none are named."""
    if parsed.outputs is None:
        return [(PREDICT, parsed.binary_output)]
    if not isinstance(parsed.outputs, list) or not parsed.outputs:
        raise InvalidInput("'outputs' must be a non-empty list of {name, parameters} objects")
    available = output_names(loaded)
    wanted = []
    for index, item in enumerate(parsed.outputs):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise InvalidInput(f"outputs[{index}]: expected an object with a 'name'")
        if name not in available:
            raise InvalidInput(f"unknown output '{name}' (model '{loaded.name}' has: {', '.join(available)})")
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidInput(f"output '{name}': 'parameters' must be an object")
        for unsupported in ("classification", "shared_memory_region"):
            if unsupported in parameters:
                raise InvalidInput(f"output '{name}': the {unsupported} parameter is not supported")
        binary = parameters.get("binary_data", parsed.binary_output)
        if not isinstance(binary, bool):
            raise InvalidInput(f"output '{name}': the binary_data parameter must be true or false")
        wanted.append((name, binary))
    return wanted


def to_model_input(tensors: list[Tensor], loaded: LoadedVersion) -> Any:
    """The servable's input: one tensor as it is (shape checked), or one tensor per feature as records."""
    if len(tensors) > 1:
        return _columns(tensors, loaded)
    tensor = tensors[0]
    if tensor.array.size == 0:
        raise InvalidInput(f"input '{tensor.name}' has no elements (shape {tensor.shape})")
    _check_form(tensor, loaded)
    servable = loaded.servable.name
    if servable == "text_input":
        return tensor.array.reshape(-1).tolist()
    if servable == "custom" or tensor.datatype == "BYTES" or tensor.array.ndim == 0:
        return tensor.array.tolist()
    return tensor.array


def _check_form(tensor: Tensor, loaded: LoadedVersion) -> None:
    spec = input_spec(loaded) if loaded.servable.name != "custom" else None
    if spec is None:
        return
    expected = f"expected {spec.datatype} of shape {spec.shape}"
    if (spec.datatype == "BYTES") != (tensor.datatype == "BYTES"):
        raise InvalidInput(f"input '{tensor.name}': {expected}, got {tensor.datatype}")
    # the batch dimension may be left out to send one instance; text may come as [N, 1]
    forms = [spec.shape, spec.shape[1:], *([[-1, 1]] if spec.datatype == "BYTES" else [])]
    if not any(_fits(tensor.shape, form) for form in forms):
        raise InvalidInput(f"input '{tensor.name}': {expected}, got shape {tensor.shape}")


def _fits(shape: list[int], form: list[int]) -> bool:
    return len(shape) == len(form) and all(want in (-1, got) for got, want in zip(shape, form, strict=True))


def _columns(tensors: list[Tensor], loaded: LoadedVersion) -> list[dict[str, Any]]:
    names = loaded.info.feature_names_in
    if loaded.servable.name != "tabular" or not names:
        raise InvalidInput(
            f"model '{loaded.name}' takes one input tensor, got {len(tensors)} ({', '.join(t.name for t in tensors)});"
            " only tabular models with recorded feature names take one tensor per feature"
        )
    for tensor in tensors:
        if tensor.datatype == "BYTES" or not (_fits(tensor.shape, [-1]) or _fits(tensor.shape, [-1, 1])):
            raise InvalidInput(
                f"input '{tensor.name}': expected a numeric column of shape [-1] or [-1, 1], "
                f"got {tensor.datatype} of shape {tensor.shape}"
            )
    return columns_to_records({t.name: t.array.reshape(-1).tolist() for t in tensors}, names, "inputs")


def infer_response(
    name: str, loaded: LoadedVersion, prediction: Prediction, wanted: list[tuple[str, bool]], request_id: str | None
) -> Response:
    outputs, blobs = [], []
    for output_name, binary in wanted:
        if output_name == PREDICT:
            tensor, blob = encode_output(PREDICT, prediction.outputs, binary)
        else:
            classes = {"classes": orjson.dumps(prediction.classes).decode()} if prediction.classes else None
            tensor, blob = encode_output(PREDICT_PROBA, prediction.probabilities, binary, classes)
        outputs.append(tensor)
        blobs.append(blob)
    header: dict[str, Any] = {"model_name": name, "model_version": loaded.version_text}
    if request_id is not None:
        header["id"] = request_id
    header["outputs"] = outputs
    body, json_size = response_body(header, blobs)
    if json_size is None:
        return Response(body, 200, media_type=JSON_TYPE)
    return Response(body, 200, {"Inference-Header-Content-Length": str(json_size)}, "application/octet-stream")
