"""Which input columns become the canonical ``text`` / ``text_pair`` / ``label`` columns.

Explicit choices win; otherwise a column is inferred only when exactly one well-known name fits.
Anything ambiguous is an error that lists the columns and the flag to pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fmstack.errors import InvalidInput, clip

TEXT_NAMES = ("text", "sentence", "content", "document", "body", "utterance", "review", "query", "prompt")
LABEL_NAMES = ("label", "labels", "intent", "category", "class", "target")
PAIR_NAMES = (
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("question", "answer"),
    ("text", "text_pair"),
)


@dataclass(frozen=True)
class ColumnMap:
    text: str
    text_pair: str | None = None
    label: str | None = None

    def required(self) -> list[str]:
        return [c for c in (self.text, self.text_pair, self.label) if c is not None]


def _pick(columns: Sequence[str], names: Sequence[str]) -> list[str]:
    lower = {c.lower(): c for c in columns}
    return [lower[n] for n in names if n in lower]


def infer(
    columns: Sequence[str],
    text_column: str | None = None,
    label_column: str | None = None,
    pair_columns: tuple[str, str] | None = None,
) -> ColumnMap:
    have = clip(", ".join(repr(c) for c in columns) or "none")  # a 50 MB one-line CSV is one "column"
    for given in [text_column, label_column, *(pair_columns or ())]:
        if given is not None and given not in columns:
            raise InvalidInput(f"column {clip(given)!r} is not in the input (columns: {have})")
    if pair_columns is not None:
        text, pair = pair_columns
    elif text_column is not None:
        text, pair = text_column, None
    else:
        pairs = [p for p in PAIR_NAMES if all(n in columns for n in p)]
        if len(pairs) == 1 and pairs[0] != ("question", "answer"):
            text, pair = pairs[0]
        else:
            found = _pick(columns, TEXT_NAMES)
            if len(found) != 1:
                why = "none of them is" if not found else f"{len(found)} of them ({', '.join(found)}) are"
                raise InvalidInput(
                    f"cannot tell the text column: {why} a usual text column name (columns: {have}); "
                    "pass --text-column NAME (or --pair-columns A,B for sentence pairs)"
                )
            text, pair = found[0], None
    if label_column is None:
        labels = [c for c in _pick(columns, LABEL_NAMES) if c not in (text, pair)]
        if len(labels) > 1:
            raise InvalidInput(
                f"cannot tell the label column: {clip(', '.join(labels))} all look like labels (columns: {have}); "
                "pass --label-column NAME"
            )
        label_column = labels[0] if labels else None
    if label_column is not None and label_column in (text, pair):
        raise InvalidInput(f"column {clip(label_column)!r} cannot be both text and label")
    return ColumnMap(text=text, text_pair=pair, label=label_column)
