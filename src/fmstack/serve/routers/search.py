"""``POST /v1/search``: query texts -> the top-k items of a search version's vector index, with scores
and metadata, optionally filtered by metadata. The version's own model embeds the queries (batched
with every other request to it), then its index (``serve.vector_index``) answers."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from fmstack.errors import Unsupported
from fmstack.serve.inference import predict
from fmstack.serve.payloads import NumpyJSON, openapi_body, read_body
from fmstack.serve.schemas import INFERENCE_ERRORS, SearchRequest, SearchResponse, error_responses
from fmstack.serve.state import state_of
from fmstack.serve.vector_index import IndexedRuntime

router = APIRouter(tags=["search"])


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    responses=error_responses(*INFERENCE_ERRORS),
    openapi_extra=openapi_body(SearchRequest),
)
async def search(request: Request) -> Response:
    body = await read_body(request, SearchRequest)
    state = state_of(request)
    served = state.models.get(body.model)
    if not isinstance(served.loaded().runtime, IndexedRuntime):  # before any compute
        raise Unsupported(
            f"model {served.name!r} has no search index; serve a version built by `fmstack recipe search` "
            "(an embedding model with a search/ folder), or use /v1/embeddings"
        )
    texts = [body.query] if isinstance(body.query, str) else body.query
    result = await predict(state, request, body.model, texts, "embedding", truncate=body.truncate)
    runtime = result.runtime
    if not isinstance(runtime, IndexedRuntime):  # swapped meanwhile to a version without an index
        raise Unsupported(f"model {served.name!r} now serves {result.version.ref}, which has no search index")
    hits = await asyncio.to_thread(runtime.index.search, result.outputs, body.top_k, body.filter)
    data = [{"index": i, "hits": [h.__dict__ for h in row]} for i, row in enumerate(hits)]
    usage = {"prompt_tokens": result.tokens, "total_tokens": result.tokens}
    return NumpyJSON(
        {"model": result.model.name, "version": result.version.ref, "data": data, "usage": usage}
    )
