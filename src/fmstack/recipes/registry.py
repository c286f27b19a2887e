"""Every recipe, by the name ``fmstack recipe NAME`` takes: its spec (the CLI's options, the same
fields a YAML file holds) and the function that runs it. Adding a recipe = one module + one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from fmstack.errors import InvalidInput
from fmstack.hub import HubApi
from fmstack.recipes import intents, search, sentiment
from fmstack.recipes.result import RecipeResult, Say


@dataclass(frozen=True)
class Recipe:
    spec: type[BaseModel]
    run: Callable[[HubApi, Any, Say], RecipeResult]
    summary: str

    def parse(self, fields: dict[str, Any]) -> BaseModel:
        """``fields`` (flags or YAML) as this recipe's spec, with every problem in one message."""
        try:
            return self.spec.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise InvalidInput(f"invalid recipe options: {problems}") from None


RECIPES: dict[str, Recipe] = {
    "intents": Recipe(
        intents.Spec,
        intents.run,
        "Customer-service intents with a human fallback: a classifier, its coverage-vs-accuracy curve "
        "and the threshold for a target accuracy, served with /v1/classify's fallback: true.",
    ),
    "sentiment": Recipe(
        sentiment.Spec,
        sentiment.run,
        "Three-class (bearish / bullish / neutral) sentiment on any text + label file, class imbalance "
        "handled with balanced class weights; accuracy and macro-F1.",
    ),
    "search": Recipe(
        search.Spec,
        search.run,
        "Recommendation as embedding retrieval: fine-tune on (query, item) pairs, index the catalog "
        "with faiss, serve POST /v1/search; recall@10 and nDCG@10 against the un-tuned base.",
    ),
}
