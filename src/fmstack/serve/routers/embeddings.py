"""``POST /v1/embeddings``, compatible with OpenAI's API (and its official clients)."""

from __future__ import annotations

import base64

import numpy as np
from fastapi import APIRouter, Request, Response
from numpy.typing import NDArray

from fmstack.errors import InvalidInput
from fmstack.serve.inference import predict
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.prediction_log import REQUEST_ID_HEADER, new_request_id
from fmstack.serve.schemas import INFERENCE_ERRORS, EmbeddingRequest, EmbeddingResponse, error_responses
from fmstack.serve.state import state_of

router = APIRouter(tags=["embeddings"])


def _texts(body: EmbeddingRequest) -> list[str]:
    return [body.input] if isinstance(body.input, str) else body.input


def _vectors(outputs: NDArray[np.float32], encoding: str) -> list[NDArray[np.float32]] | list[str]:
    rows = np.ascontiguousarray(outputs, dtype=np.float32)  # (texts, dimensions)
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return [base64.b64encode(row.astype("<f4").tobytes()).decode() for row in rows]
    return list(rows)  # each row becomes a JSON list of floats in NumpyJSON


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    openapi_extra=openapi_body(EmbeddingRequest),
)
async def embeddings(request: Request) -> Response:
    body = await read_body(request, EmbeddingRequest)
    result = await predict(
        state_of(request), request, body.model, _texts(body), "embedding", truncate=body.truncate
    )
    dims = result.outputs.shape[1]
    if body.dimensions is not None and body.dimensions != dims:
        raise InvalidInput(
            f"model {result.model.name!r} returns {dims}-dimensional vectors; 'dimensions' "
            f"{body.dimensions} is not supported (omit it)"
        )
    data = [
        {"object": "embedding", "index": i, "embedding": v}
        for i, v in enumerate(_vectors(result.outputs, body.encoding_format))
    ]
    usage = {"prompt_tokens": result.tokens, "total_tokens": result.tokens}
    return NumpyJSON(
        {"object": "list", "data": data, "model": result.model.name, "usage": usage},
        headers={REQUEST_ID_HEADER: new_request_id()},  # embeddings are not logged: an id, for tracing
    )
