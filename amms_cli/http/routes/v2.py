"""The Open Inference Protocol ("v2", as spoken by Triton, KServe and MLServer) with the binary tensor
data extension: server and model metadata, health, readiness and `infer`."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.errors import InvalidInput, ModelNotReady, NotFound, PayloadTooLarge
from amms_cli.http.bodies import JSON_TYPE, json_response, parse_json, read_body
from amms_cli.http.request_state import plane, settings
from amms_cli.http.routes.health import readiness
from amms_cli.http.routes.native import PREDICT_RESPONSES
from amms_cli.http.routes.v2_tensors import (
    HEADER_LENGTH,
    decode_inputs,
    encode_output,
    response_body,
    split_body,
)
from amms_cli.http.routing import PlainRoute
from amms_cli.repository.manifest import PREDICT, PREDICT_PROBA
from amms_cli.repository.versions import Version
from amms_cli.servables import NamedColumns, RequestInputs, Tensor
from amms_cli.servables.tensors import fits
from amms_cli.serving.inference import Prediction
from amms_cli.serving.loaded_version import LoadedVersion
from amms_cli.serving.registry import ModelView
from amms_cli.serving.signatures import VersionFacts, output_names, output_specs
from amms_cli.version import __version__

router = APIRouter(tags=["v2"], route_class=PlainRoute)
PROTOCOL = "v2"
EXTENSIONS = ["binary_tensor_data"]
PANDAS = "pd"  # request parameters.content_type of MLServer's pandas codec: one input per column
CONTENT_TYPES = (PANDAS, "np", "str")  # accepted; only "pd" changes how inputs are read
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
    columns: bool  # content_type "pd": every tensor is a column of a table (MLServer's pandas codec)


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
    return await _metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", summary="Model metadata of one version", responses=ERROR_RESPONSES)
async def version_metadata(name: str, version: str, request: Request) -> Response:
    return await _metadata(request, name, version)


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


async def _metadata(request: Request, name: str, version: str | None) -> Response:
    dataplane = plane(request)
    facts = dataplane.registry.described(name, version)  # never loads: a model not in memory has a manifest
    return json_response(describe(dataplane.view(name), facts))


def describe(view: ModelView, loaded: VersionFacts) -> dict[str, Any]:
    spec = loaded.servable.input_tensor()
    inputs = [spec] if spec is not None else loaded.servable.column_tensors()
    routable = set(view.loaded) | set(view.on_demand)  # loaded, or loaded by a request (model cache)
    return {
        "name": view.name,
        "versions": sorted(routable, key=Version.parse),
        "platform": loaded.manifest.framework,
        "inputs": [tensor.describe() for tensor in inputs],
        "outputs": [output.describe() for output in output_specs(loaded).values() if output is not None],
        "properties": {"version": loaded.version_text, "servable": loaded.servable.name},
    }


def _ready(request: Request, name: str, version: str | None) -> Response:
    dataplane = plane(request)
    if dataplane.on_demand(name, version):  # not in memory; its first request loads it
        return json_response({"name": name, "ready": True, "resident": False})
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
    with plane(request).inference(name, version, PROTOCOL) as call:
        parsed = await read_infer_request(request, settings(request).body_limit_bytes)
        loaded = await call.resolve()
        wanted = requested_outputs(parsed, loaded)
        inputs = request_inputs(parsed, loaded)
        prediction = await call.infer(inputs, any(n == PREDICT_PROBA for n, _ in wanted))
        return infer_response(loaded, prediction, wanted=wanted, request_id=parsed.id, headers=call.headers())


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
    content_type = parameters.get("content_type")
    if content_type not in (None, *CONTENT_TYPES):
        raise InvalidInput(f"content_type {content_type!r} is not supported (use one of {', '.join(CONTENT_TYPES)})")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    tensors = decode_inputs(payload["inputs"], binary)
    return InferRequest(tensors, payload.get("outputs"), binary_output, request_id, content_type == PANDAS)


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


def requested_outputs(parsed: InferRequest, loaded: VersionFacts) -> list[tuple[str, bool]]:
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


def request_inputs(parsed: InferRequest, loaded: LoadedVersion) -> RequestInputs:
    """One tensor as it is, or one tensor per column for a model that takes named columns."""
    tensors = parsed.tensors
    if len(tensors) > 1 or parsed.columns:
        if not loaded.servable.column_tensors():
            raise InvalidInput(
                f"model '{loaded.name}' takes one input tensor, got {len(tensors)} "
                f"({', '.join(t.name for t in tensors)}); only tabular models with recorded feature names take "
                "one tensor per feature"
            )
        return NamedColumns({tensor.name: _column(tensor) for tensor in tensors})
    tensor = tensors[0]
    if tensor.array.size == 0:
        raise InvalidInput(f"input '{tensor.name}' has no elements (shape {tensor.shape})")
    return tensor


def _column(tensor: Tensor) -> list[object]:
    if not (fits(tensor.shape, [-1]) or fits(tensor.shape, [-1, 1])):
        raise InvalidInput(
            f"input '{tensor.name}': expected a column of shape [-1] or [-1, 1], "
            f"got {tensor.datatype} of shape {tensor.shape}"
        )
    return tensor.array.reshape(-1).tolist()


def infer_response(
    loaded: LoadedVersion,
    prediction: Prediction,
    *,
    wanted: list[tuple[str, bool]],
    request_id: str | None,
    headers: dict[str, str],
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
    header: dict[str, Any] = {"model_name": loaded.name, "model_version": loaded.version_text}
    if request_id is not None:
        header["id"] = request_id
    header["outputs"] = outputs
    body, json_size = response_body(header, blobs)
    if json_size is None:
        return Response(body, 200, headers, JSON_TYPE)
    binary_headers = {**headers, "Inference-Header-Content-Length": str(json_size)}
    return Response(body, 200, binary_headers, "application/octet-stream")
