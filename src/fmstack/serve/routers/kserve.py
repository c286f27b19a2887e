"""KServe Open Inference Protocol v2, complete enough for ``tritonclient.http`` with its defaults.

Server metadata (``GET /v2``), model metadata, readiness, Triton's model configuration and ``infer``
over one BYTES tensor of texts, each also under ``/versions/{version}`` (the hub version number served).
A classifier answers ``label`` (BYTES, [n]) and ``scores`` (FP32, [n, labels]); an embedding model
answers ``embedding`` (FP32, [n, dimensions]), row-major and flattened as the protocol says. Inputs and
outputs may travel in JSON or after it in binary (``serve.binary_tensors``); ``tritonclient`` asks for
binary outputs unless told otherwise. A requested output may ask for Triton's classification extension
(``class_count``): the top k scores as ``"score:index:label"`` strings.

Model names are hub refs, so they contain ``/``: the routes with a suffix (``/ready``, ``/infer``,
``/config``, ``/versions/...``) are declared before the bare ``/v2/models/{name}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from numpy.typing import NDArray
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from fmstack import __version__
from fmstack.errors import InvalidInput, NotFound, Unsupported
from fmstack.serve import binary_tensors
from fmstack.serve.errors import ClientDisconnected
from fmstack.serve.inference import KSERVE_TRUNCATE, predict
from fmstack.serve.models import Loaded, ServedModel
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.runtimes.base import RuntimeInfo
from fmstack.serve.schemas import (
    ConfigTensor,
    InferRequest,
    InferResponse,
    InferTensor,
    ModelConfig,
    ModelMetadata,
    ServerMetadata,
    TensorMetadata,
)
from fmstack.serve.state import ServerState, server_state, state_of

router = APIRouter(tags=["kserve-v2"])
State = Annotated[ServerState, Depends(server_state)]

EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration"]
_CONFIG_TYPES = {"BYTES": "TYPE_STRING", "FP32": "TYPE_FP32"}
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


@router.get("/v2", response_model=ServerMetadata)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="fmstack", version=__version__, extensions=EXTENSIONS)


# -- readiness ------------------------------------------------------------------------------------


@router.get("/v2/models/{name:path}/versions/{version}/ready")
async def model_version_ready(name: str, version: str, state: State, request: Request) -> JSONResponse:
    return _ready(state, request, name, version)


@router.get("/v2/models/{name:path}/ready")
async def model_ready(name: str, state: State, request: Request) -> JSONResponse:
    return _ready(state, request, name, None)


def _ready(state: ServerState, request: Request, name: str, version: str | None) -> JSONResponse:
    model = _model(state, request, name)
    if version is not None:
        _served_version(model, version)
    ready = model.current is not None and model.current.worker.alive and not state.draining
    return JSONResponse({"name": model.name, "ready": ready}, status_code=200 if ready else 503)


# -- inference ------------------------------------------------------------------------------------


@router.post(
    "/v2/models/{name:path}/versions/{version}/infer",
    response_model=InferResponse,
    openapi_extra=openapi_body(InferRequest),
)
async def infer_version(name: str, version: str, request: Request) -> Response:
    return await _infer(name, request, version)


@router.post(
    "/v2/models/{name:path}/infer", response_model=InferResponse, openapi_extra=openapi_body(InferRequest)
)
async def infer(name: str, request: Request) -> Response:
    return await _infer(name, request, None)


async def _infer(name: str, request: Request, version: str | None) -> Response:
    body, binary = await _read(request)
    texts = _texts(body, binary)
    state = state_of(request)
    model = _model(state, request, name)
    loaded = _served_version(model, version) if version is not None else model.loaded()
    _outputs_wanted(body, model.name, loaded.runtime.info)  # refuse a bad request before computing it
    truncate = _flag((body.parameters or {}).get("truncate", False), "parameters.truncate")
    result = await predict(
        state, request, name, texts, None, truncate=truncate, truncate_hint=KSERVE_TRUNCATE
    )
    if version is not None and str(result.version.number) != version:
        raise NotFound(_moved(model.name, version, result.version.number))
    wanted = _outputs_wanted(body, model.name, result.info)
    header: dict[str, Any] = {
        "model_name": result.model.name,
        "model_version": str(result.version.number),
        "id": body.id,
        "outputs": [],
    }
    parts: list[bytes] = []
    for output in wanted:
        tensor, raw = output.render(result.outputs, result.info.labels)
        header["outputs"].append(tensor)
        if raw is not None:
            parts.append(raw)
    if not parts:
        return NumpyJSON(header)
    head = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(
        head + b"".join(parts),
        media_type="application/octet-stream",
        headers={binary_tensors.HEADER: str(len(head))},
    )


async def _read(request: Request) -> tuple[InferRequest, bytes]:
    """The request's JSON part, and the bytes after it when it uses the binary tensor extension."""
    encoding = request.headers.get("content-encoding", "identity")
    if encoding.lower() != "identity":
        raise Unsupported(f"the body is {encoding}-encoded; this server reads uncompressed bodies only")
    length = request.headers.get(binary_tensors.HEADER)
    if length is None:
        return await read_body(request, InferRequest), b""
    # No Content-Type check here, unlike JSON bodies: a browser sends a custom header such as this one
    # only after a CORS preflight, which this server never approves, so no other site can send it.
    try:
        body = await request.body()
    except ClientDisconnect:
        raise ClientDisconnected("the client closed the connection while sending its body") from None
    head, binary = binary_tensors.split_body(body, length)
    try:
        return InferRequest.model_validate_json(head), binary
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _texts(body: InferRequest, binary: bytes) -> list[str]:
    for tensor in body.inputs:
        _refuse_shared_memory("input", tensor.name, tensor.parameters)
    parts = binary_tensors.binary_parts([(t.name, _binary_size(t)) for t in body.inputs], binary)
    tensors = [t for t in body.inputs if t.datatype == "BYTES"]
    if len(tensors) != 1:
        raise InvalidInput(
            f"expected exactly one BYTES input tensor of texts, got {len(tensors)} "
            f"(inputs: {[(t.name, t.datatype) for t in body.inputs]})"
        )
    tensor = tensors[0]
    texts = _decoded(tensor.name, parts[tensor.name]) if tensor.name in parts else _json_texts(tensor)
    expected = int(np.prod(tensor.shape)) if tensor.shape else 0
    if expected != len(texts):
        raise InvalidInput(
            f"input {tensor.name!r}: shape {tensor.shape} holds {expected} texts, data has {len(texts)}"
        )
    return texts


def _binary_size(tensor: InferTensor) -> int | None:
    size = (tensor.parameters or {}).get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"input {tensor.name!r}: binary_data_size must be a byte count, got {size!r}")
    if tensor.data is not None:
        raise InvalidInput(f"input {tensor.name!r} has both 'data' and binary_data_size: send one of them")
    return size


def _decoded(name: str, raw: bytes) -> list[str]:
    texts = []
    for index, element in enumerate(binary_tensors.decode_bytes(name, raw)):
        try:
            texts.append(element.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"input {name!r}: element {index} is not UTF-8 text") from None
    return texts


def _json_texts(tensor: InferTensor) -> list[str]:
    if tensor.data is None:
        raise InvalidInput(
            f"input {tensor.name!r} has no 'data' and no binary_data_size: send the texts in one of them"
        )
    texts = _flatten(tensor.data)
    if not all(isinstance(t, str) for t in texts):
        raise InvalidInput(
            f"input {tensor.name!r}: every element of a BYTES tensor of texts must be a string"
        )
    return texts


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _refuse_shared_memory(kind: str, name: str, parameters: dict[str, Any] | None) -> None:
    if parameters and any(key in parameters for key in _SHARED_MEMORY):
        raise Unsupported(
            f"{kind} {name!r} asks for shared memory, which this server does not offer: "
            "send the data in the request (JSON or binary) instead"
        )


# -- outputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Output:
    """One output tensor to answer: which, in binary or JSON, and as top-k classes or not."""

    name: str
    binary: bool
    classes: int = 0  # > 0: Triton's classification extension, the top k as "score:index:label"

    def render(
        self, values: NDArray[np.float32], labels: tuple[str, ...]
    ) -> tuple[dict[str, Any], bytes | None]:
        """(the tensor's JSON, its binary bytes or None) from the (texts, labels | dimensions) result."""
        if self.name == "label":
            data: Any = [labels[int(i)] for i in np.argmax(values, axis=1)]
            datatype, shape = "BYTES", [len(values)]
        elif self.classes:
            data = _top_classes(values, self.classes, labels if self.name == "scores" else ())
            datatype, shape = "BYTES", [len(values), min(self.classes, values.shape[1])]
        else:
            data = np.ascontiguousarray(values, dtype=np.float32).ravel()  # NumpyJSON writes it as a list
            datatype, shape = "FP32", list(values.shape)
        tensor: dict[str, Any] = {"name": self.name, "datatype": datatype, "shape": shape}
        if not self.binary:
            tensor["data"] = data
            return tensor, None
        raw = (
            binary_tensors.encode_bytes(s.encode() for s in data)
            if datatype == "BYTES"
            else binary_tensors.encode_fp32(values)
        )
        tensor["parameters"] = {"binary_data_size": len(raw)}
        return tensor, raw


def _top_classes(values: NDArray[np.float32], k: int, labels: tuple[str, ...]) -> list[str]:
    """Row-major (texts, k) strings "score:index:label" (":label" only when the output has labels)."""
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]  # (texts, k) column indices, best first
    out = []
    for row, columns in zip(values, top, strict=True):
        for c in columns:
            suffix = f":{labels[c]}" if labels else ""
            out.append(f"{row[c]}:{c}{suffix}")
    return out


def _output_names(info: RuntimeInfo) -> list[str]:
    return ["label", "scores"] if info.task == "classification" else ["embedding"]


def _outputs_wanted(body: InferRequest, model: str, info: RuntimeInfo) -> list[_Output]:
    """The outputs a request asks for (all of them when it names none), each checked."""
    default_binary = _flag((body.parameters or {}).get("binary_data_output", False), "binary_data_output")
    names = _output_names(info)
    if body.outputs is None:
        return [_Output(name, default_binary) for name in names]
    wanted = []
    for requested in body.outputs:
        if requested.name not in names:
            raise InvalidInput(
                f"model {model!r} has no output {requested.name!r}; its outputs are {', '.join(names)}"
            )
        parameters = requested.parameters or {}
        _refuse_shared_memory("output", requested.name, parameters)
        binary = _flag(
            parameters.get("binary_data", default_binary), f"output {requested.name!r}: binary_data"
        )
        classes = parameters.get("classification", 0)
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 0:
            raise InvalidInput(f"output {requested.name!r}: classification must be a count, got {classes!r}")
        if classes and requested.name == "label":
            raise InvalidInput("output 'label' is already the top class; ask classification of 'scores'")
        wanted.append(_Output(requested.name, binary, classes))
    return wanted


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false, got {value!r}")
    return value


@router.api_route(
    "/v2/models/{name:path}/versions/{version}/infer",
    methods=["GET", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
@router.api_route(
    "/v2/models/{name:path}/infer", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def infer_other_method(name: str) -> None:
    # Without this, GET .../infer would reach model metadata below and ask for a model named ".../infer".
    raise HTTPException(405, "Method Not Allowed", headers={"Allow": "POST"})


# -- model configuration and metadata -------------------------------------------------------------


@router.get("/v2/models/{name:path}/versions/{version}/config", response_model=ModelConfig)
async def model_version_config(name: str, version: str, state: State, request: Request) -> ModelConfig:
    return _config(state, request, name, version)


@router.get("/v2/models/{name:path}/config", response_model=ModelConfig)
async def model_config(name: str, state: State, request: Request) -> ModelConfig:
    return _config(state, request, name, None)


def _config(state: ServerState, request: Request, name: str, version: str | None) -> ModelConfig:
    model = _model(state, request, name)
    loaded = _served_version(model, version) if version is not None else model.loaded()
    info = loaded.runtime.info
    inputs, outputs = _tensor_metadata(info)
    return ModelConfig(
        name=model.name,
        platform=info.platform,
        backend="fmstack",
        max_batch_size=0,
        input=[_config_tensor(t) for t in inputs],
        output=[_config_tensor(t) for t in outputs],
        version_policy={"specific": {"versions": [loaded.version.number]}},
        parameters={
            "hub_version": {"string_value": loaded.version.ref},
            "task": {"string_value": info.task},
            "max_length": {"string_value": str(info.max_length)},
        },
    )


def _config_tensor(tensor: TensorMetadata) -> ConfigTensor:
    return ConfigTensor(name=tensor.name, data_type=_CONFIG_TYPES[tensor.datatype], dims=tensor.shape)


@router.get("/v2/models/{name:path}/versions/{version}", response_model=ModelMetadata)
async def model_version_metadata(name: str, version: str, state: State, request: Request) -> ModelMetadata:
    return _metadata(state, request, name, version)


@router.get("/v2/models/{name:path}", response_model=ModelMetadata)
async def model_metadata(name: str, state: State, request: Request) -> ModelMetadata:
    return _metadata(state, request, name, None)


def _metadata(state: ServerState, request: Request, name: str, version: str | None) -> ModelMetadata:
    if name.count("/") > 1 and name not in state.models.models:  # a served name is ns/name[:v | @alias]
        raise NotFound(
            f"no such path: GET /v2/models/{name}; this server offers model metadata, /ready, /config "
            "and /infer (not Triton's statistics, trace, logging or repository extensions)"
        )
    model = _model(state, request, name)
    loaded = _served_version(model, version) if version is not None else model.loaded()
    inputs, outputs = _tensor_metadata(loaded.runtime.info)
    return ModelMetadata(
        name=model.name,
        versions=[str(loaded.version.number)],
        platform=loaded.runtime.info.platform,
        inputs=inputs,
        outputs=outputs,
    )


def _tensor_metadata(info: RuntimeInfo) -> tuple[list[TensorMetadata], list[TensorMetadata]]:
    inputs = [TensorMetadata(name="text", datatype="BYTES", shape=[-1])]
    if info.task == "classification":
        outputs = [
            TensorMetadata(name="label", datatype="BYTES", shape=[-1]),
            TensorMetadata(name="scores", datatype="FP32", shape=[-1, len(info.labels)]),
        ]
    else:
        outputs = [TensorMetadata(name="embedding", datatype="FP32", shape=[-1, info.dimensions or -1])]
    return inputs, outputs


# -- models and versions --------------------------------------------------------------------------


def _model(state: ServerState, request: Request, name: str) -> ServedModel:
    model = state.models.get(name)
    request.state.model = model.name
    return model


def _served_version(model: ServedModel, version: str) -> Loaded:
    """The loaded version when it is ``version`` (the hub version number); NotFound otherwise."""
    loaded = model.loaded()
    if version != str(loaded.version.number):
        raise NotFound(_moved(model.name, version, loaded.version.number))
    return loaded


def _moved(name: str, version: str, serving: int) -> str:
    return (
        f"model {name!r} version {version!r} is not served here; it serves version {serving} "
        "(name that one, or leave the version out)"
    )
