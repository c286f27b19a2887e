"""``GET /v1/models`` and ``GET /v1/models/{id}``: what this server serves, OpenAI-style, with the hub
version behind each name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from fmstack.serve.models import ServedModel
from fmstack.serve.schemas import ModelCard, ModelList, error_responses
from fmstack.serve.state import ServerState, server_state

router = APIRouter(tags=["models"])
State = Annotated[ServerState, Depends(server_state)]


@router.get("/v1/models", response_model=ModelList, responses=error_responses(421))
async def list_models(state: State) -> ModelList:
    return ModelList(data=[_card(m) for m in state.models.models.values() if m.current is not None])


@router.get(
    "/v1/models/{model:path}", response_model=ModelCard, responses=error_responses(404, 421, 422, 503)
)
async def retrieve_model(model: str, state: State) -> ModelCard:
    """One served model (the openai client's ``models.retrieve``): 404 when not served, 503 while it
    loads."""
    return _card(state.models.get(model))


def _card(model: ServedModel) -> ModelCard:
    loaded = model.loaded()
    version = loaded.version
    info = loaded.runtime.info
    return ModelCard(
        id=model.name,
        created=int(version.created_at.timestamp()),
        owned_by=model.repo.split("/")[0],
        version=version.ref,
        task=info.task,
        platform=info.platform,
        base=info.base,
    )
