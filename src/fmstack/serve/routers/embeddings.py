"""``POST /v1/embeddings``, compatible with OpenAI's API (and its official clients)."""

from __future__ import annotations

import base64
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response

from fmstack.errors import InvalidInput
from fmstack.serve.inference import predict
from fmstack.serve.schemas import Embedding, EmbeddingRequest, EmbeddingResponse, Usage
from fmstack.serve.state import ServerState, server_state

router = APIRouter(tags=["embeddings"])


def _texts(body: EmbeddingRequest) -> list[str]:
    raw = [body.input] if isinstance(body.input, str) else body.input
    if any(not isinstance(t, str) for t in raw):
        raise InvalidInput(
            "'input' holds token ids; this server takes text: send a string or a list of strings"
        )
    return [t for t in raw if isinstance(t, str)]


@router.post("/v1/embeddings", response_model=EmbeddingResponse)
async def embeddings(
    body: EmbeddingRequest, request: Request, state: Annotated[ServerState, Depends(server_state)]
) -> Response:
    result = await predict(state, request, body.model, _texts(body), "embedding")
    dims = result.outputs.shape[1]
    if body.dimensions is not None and body.dimensions != dims:
        raise InvalidInput(
            f"model {result.model.name!r} returns {dims}-dimensional vectors; 'dimensions' "
            f"{body.dimensions} is not supported (omit it)"
        )
    if body.encoding_format == "base64":  # little-endian float32, as OpenAI sends it
        vectors: list[list[float] | str] = [
            base64.b64encode(row.astype("<f4").tobytes()).decode() for row in result.outputs
        ]
    else:
        vectors = [row.tolist() for row in np.asarray(result.outputs, dtype=np.float32)]
    response = EmbeddingResponse(
        data=[Embedding(index=i, embedding=v) for i, v in enumerate(vectors)],
        model=result.model.name,
        usage=Usage(prompt_tokens=result.tokens, total_tokens=result.tokens),
    )
    # Serialise once with pydantic's Rust encoder; FastAPI would validate the model a second time.
    return Response(response.model_dump_json(), media_type="application/json")
