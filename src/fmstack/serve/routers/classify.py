"""``POST /v1/classify``: texts -> label and per-label scores, with the hub version that answered."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response

from fmstack.serve.inference import predict
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.schemas import INFERENCE_ERRORS, ClassifyRequest, ClassifyResponse, error_responses
from fmstack.serve.state import state_of

router = APIRouter(tags=["classify"])


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    openapi_extra=openapi_body(ClassifyRequest),
)
async def classify(request: Request) -> Response:
    body = await read_body(request, ClassifyRequest)
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = await predict(
        state_of(request), request, body.model, texts, "classification", truncate=body.truncate
    )
    labels = result.info.labels
    best = np.argmax(result.outputs, axis=1)  # (texts,)
    threshold = state_of(request).settings.fallback_threshold
    threshold = result.info.fallback_threshold if threshold is None else threshold
    top = result.outputs.max(axis=1)  # (texts,)
    data = [
        {
            "index": i,
            "label": labels[int(best[i])],
            "scores": dict(zip(labels, row, strict=True)),
            "fallback": threshold is not None and bool(top[i] < threshold),
        }
        for i, row in enumerate(result.outputs.tolist())  # plain floats: numpy scalars are slower to encode
    ]
    usage = {"prompt_tokens": result.tokens, "total_tokens": result.tokens}
    return NumpyJSON(
        {"model": result.model.name, "version": result.version.ref, "data": data, "usage": usage}
    )
