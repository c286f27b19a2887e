"""A version's card as safe HTML: Markdown (CommonMark + tables) rendered by markdown-it-py, then
sanitised by nh3 (the Rust ``ammonia`` sanitiser).

Two layers, because cards are written by anyone with write access and read by everyone: markdown-it
runs with raw HTML off (``<script>`` in a card comes out as text) and refuses ``javascript:`` links;
nh3 then removes any element or attribute outside its allow-list (``onerror=``, ``style``, ``<iframe>``)
and adds ``rel="noopener noreferrer"`` to links, whatever the renderer let through.
"""

from __future__ import annotations

from typing import Any

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from fmstack.errors import InvalidInput
from fmstack.hub.cards import parse_card

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> Markup:
    return Markup(nh3.clean(_MARKDOWN.render(text)))


def render_card(text: str) -> tuple[dict[str, Any], Markup]:
    """The card's front matter (as a mapping, for a table) and its body as sanitised HTML. A card
    whose front matter does not parse is shown whole, as Markdown."""
    try:
        meta, body = parse_card(text)
    except InvalidInput:
        return {}, render_markdown(text)
    return meta.model_dump(exclude_defaults=True), render_markdown(body)
