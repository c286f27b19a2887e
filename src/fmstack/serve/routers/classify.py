"""``POST /v1/classify``: texts -> label and per-label scores, with the hub version that answered."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Request, Response

from fmstack.serve.inference import Prediction, predict
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.prediction_log import REQUEST_ID_HEADER, new_request_id
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
    start = time.perf_counter()
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
    request_id = _record(request, result, texts, time.perf_counter() - start)
    return NumpyJSON(
        {
            "model": result.model.name,
            "version": result.version.ref,
            "data": data,
            "usage": usage,
            "request_id": request_id,
        },
        headers={REQUEST_ID_HEADER: request_id},
    )


def _record(request: Request, result: Prediction, texts: list[str], latency_s: float) -> str:
    """The answer's request id, remembered (and logged when sampled) for feedback with a log."""
    log = state_of(request).predictions
    if log is None:
        return new_request_id()
    labels = result.info.labels
    return log.record(result.model.name, result.version.ref, labels, texts, result.outputs, latency_s)
