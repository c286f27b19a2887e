"""``GET /v1/models``: what this server serves, OpenAI-style, with the hub version behind each name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from fmstack.serve.schemas import ModelCard, ModelList
from fmstack.serve.state import ServerState, server_state

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList)
async def list_models(state: Annotated[ServerState, Depends(server_state)]) -> ModelList:
    cards = []
    for model in state.models.models.values():
        if model.current is None:
            continue
        version = model.current.version
        info = model.current.runtime.info
        cards.append(
            ModelCard(
                id=model.name,
                created=int(version.created_at.timestamp()),
                owned_by=model.repo.split("/")[0],
                version=version.ref,
                task=info.task,
                platform=info.platform,
                base=info.base,
            )
        )
    return ModelList(data=cards)
