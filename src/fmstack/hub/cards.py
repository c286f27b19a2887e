"""Cards: Markdown with YAML front matter (task, license, base_model, datasets, metrics, tags).

``parse_card`` and ``render_card`` are the format; ``CardStore`` reads and replaces a version's card
(``Hub.card``, ``Hub.set_card``).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm import Session

from fmstack.errors import InvalidInput
from fmstack.hub.entities import VersionInfo
from fmstack.hub.refs import parse_ref
from fmstack.hub.resolve import version_info, version_row
from fmstack.hub.transactions import Transactions


class CardMeta(BaseModel):
    """The front matter fields fmstack reads. Other keys (as on Hugging Face cards) are kept as they are."""

    model_config = ConfigDict(extra="allow")
    task: str | None = None
    license: str | None = None
    base_model: str | None = None
    datasets: list[str] = []
    metrics: dict[str, Any] = {}
    tags: list[str] = []


def parse_card(text: str) -> tuple[CardMeta, str]:
    """Split a card into its validated front matter and its Markdown body."""
    if not text.startswith("---"):
        return CardMeta(), text
    head, sep, body = text[3:].partition("\n---")
    if not sep:
        raise InvalidInput("card front matter starts with '---' but has no closing '---' line")
    try:
        raw = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"card front matter is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput("card front matter must be a YAML mapping (key: value lines)")
    try:
        meta = CardMeta.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"card front matter is invalid: {problems}") from None
    return meta, body.lstrip("\n")


def render_card(meta: CardMeta, body: str) -> str:
    fields = meta.model_dump(exclude_defaults=True)
    if not fields:
        return body
    front = yaml.safe_dump(fields, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{front}\n---\n\n{body.strip()}\n"


class CardStore:
    """A version's card: metadata beside its content, so replacing it keeps the version's digest."""

    def __init__(self, db: Transactions) -> None:
        self._db = db

    def get(self, ref: str) -> str:
        return self._db.read(lambda s: version_row(s, parse_ref(ref)).card)

    def set(self, ref: str, text: str) -> VersionInfo:
        """Replace a version's card (metadata, not content: the version's digest does not change)."""
        parse_card(text)

        def write(session: Session) -> VersionInfo:
            row = version_row(session, parse_ref(ref))
            row.card = text
            return version_info(row)

        return self._db.write(write)
