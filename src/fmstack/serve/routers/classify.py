"""``POST /v1/classify``: texts -> label and per-label scores, with the hub version that answered."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response

from fmstack.serve.inference import predict
from fmstack.serve.schemas import Classification, ClassifyRequest, ClassifyResponse, Usage
from fmstack.serve.state import ServerState, server_state

router = APIRouter(tags=["classify"])


@router.post("/v1/classify", response_model=ClassifyResponse)
async def classify(
    body: ClassifyRequest, request: Request, state: Annotated[ServerState, Depends(server_state)]
) -> Response:
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = await predict(state, request, body.model, texts, "classification")
    labels = result.info.labels
    data = [
        Classification(
            index=i,
            label=labels[int(np.argmax(row))],
            scores={label: float(s) for label, s in zip(labels, row, strict=True)},
        )
        for i, row in enumerate(result.outputs)
    ]
    response = ClassifyResponse(
        model=result.model.name,
        version=result.version.ref,
        data=data,
        usage=Usage(prompt_tokens=result.tokens, total_tokens=result.tokens),
    )
    return Response(response.model_dump_json(), media_type="application/json")
