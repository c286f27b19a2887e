"""KServe Open Inference Protocol v2: model metadata, readiness and ``infer`` over a BYTES tensor of texts.

Outputs: a classifier answers ``label`` (BYTES, [n]) and ``scores`` (FP32, [n, labels]); an embedding
model answers ``embedding`` (FP32, [n, dimensions]), row-major and flattened as the protocol says.
Model names are hub refs, so they contain ``/``: the ``ready`` and ``infer`` routes come first.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from numpy.typing import NDArray

from fmstack.errors import InvalidInput
from fmstack.serve.inference import predict
from fmstack.serve.models import ServedModel
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.schemas import InferRequest, InferResponse, ModelMetadata, TensorMetadata
from fmstack.serve.state import ServerState, server_state, state_of

router = APIRouter(tags=["kserve-v2"])
State = Annotated[ServerState, Depends(server_state)]


@router.get("/v2/models/{name:path}/ready")
async def model_ready(name: str, state: State, request: Request) -> JSONResponse:
    model = state.models.get(name)
    request.state.model = model.name
    ready = model.current is not None and not state.draining
    return JSONResponse({"name": model.name, "ready": ready}, status_code=200 if ready else 503)


@router.post(
    "/v2/models/{name:path}/infer", response_model=InferResponse, openapi_extra=openapi_body(InferRequest)
)
async def infer(name: str, request: Request) -> Response:
    body = await read_body(request, InferRequest)
    texts = _texts(body)
    result = await predict(state_of(request), request, name, texts, None)
    outputs = _outputs(result.info.task, result.info.labels, result.outputs)
    return NumpyJSON(
        {
            "model_name": result.model.name,
            "model_version": str(result.version.number),
            "id": body.id,
            "outputs": outputs,
        }
    )


def _outputs(task: str, labels: tuple[str, ...], values: NDArray[np.float32]) -> list[dict[str, Any]]:
    """Output tensors of a (texts, labels) or (texts, dimensions) result, data flattened row-major."""
    n = len(values)
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()  # written as a JSON list by NumpyJSON
    if task == "classification":
        label = [labels[int(i)] for i in np.argmax(values, axis=1)]
        return [
            {"name": "label", "datatype": "BYTES", "shape": [n], "data": label},
            {"name": "scores", "datatype": "FP32", "shape": [n, len(labels)], "data": flat},
        ]
    return [{"name": "embedding", "datatype": "FP32", "shape": list(values.shape), "data": flat}]


@router.api_route(
    "/v2/models/{name:path}/infer", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def infer_other_method(name: str) -> None:
    # Without this, GET .../infer would reach model metadata below and ask for a model named ".../infer".
    raise HTTPException(405, "Method Not Allowed", headers={"Allow": "POST"})


@router.get("/v2/models/{name:path}", response_model=ModelMetadata)
async def model_metadata(name: str, state: State, request: Request) -> ModelMetadata:
    model = state.models.get(name)
    request.state.model = model.name
    loaded = model.loaded()
    info = loaded.runtime.info
    return ModelMetadata(
        name=model.name,
        versions=[str(loaded.version.number)],
        platform=info.platform,
        inputs=[TensorMetadata(name="text", datatype="BYTES", shape=[-1])],
        outputs=_output_metadata(model, info.task, len(info.labels), info.dimensions),
    )


def _output_metadata(model: ServedModel, task: str, labels: int, dims: int) -> list[TensorMetadata]:
    if task == "classification":
        return [
            TensorMetadata(name="label", datatype="BYTES", shape=[-1]),
            TensorMetadata(name="scores", datatype="FP32", shape=[-1, labels]),
        ]
    return [TensorMetadata(name="embedding", datatype="FP32", shape=[-1, dims or -1])]


def _texts(body: InferRequest) -> list[str]:
    tensors = [t for t in body.inputs if t.datatype == "BYTES"]
    if len(tensors) != 1:
        raise InvalidInput(
            f"expected exactly one BYTES input tensor of texts, got {len(tensors)} "
            f"(inputs: {[(t.name, t.datatype) for t in body.inputs]})"
        )
    tensor = tensors[0]
    texts = list(_flatten(tensor.data))
    if not all(isinstance(t, str) for t in texts):
        raise InvalidInput(
            f"input {tensor.name!r}: every element of a BYTES tensor of texts must be a string"
        )
    expected = int(np.prod(tensor.shape)) if tensor.shape else 0
    if expected != len(texts):
        raise InvalidInput(
            f"input {tensor.name!r}: shape {tensor.shape} holds {expected} texts, data has {len(texts)}"
        )
    return [str(t) for t in texts]


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out
