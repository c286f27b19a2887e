from __future__ import annotations

import pytest

from fmstack.data.columns import ColumnMap, infer
from fmstack.errors import InvalidInput


def test_infers_unambiguous_columns() -> None:
    assert infer(["id", "text", "label"]) == ColumnMap("text", None, "label")
    assert infer(["Sentence", "intent"]) == ColumnMap("Sentence", None, "intent")
    assert infer(["premise", "hypothesis", "label"]) == ColumnMap("premise", "hypothesis", "label")
    assert infer(["text"]) == ColumnMap("text")


def test_ambiguous_text_lists_the_columns() -> None:
    with pytest.raises(InvalidInput) as err:
        infer(["text", "body", "label"])
    assert "'text', 'body', 'label'" in str(err.value) and "--text-column" in str(err.value)
    with pytest.raises(InvalidInput, match="none of them"):
        infer(["a", "b"])


def test_ambiguous_label_and_explicit_choices() -> None:
    with pytest.raises(InvalidInput, match="--label-column"):
        infer(["text", "label", "category"])
    assert infer(["text", "label", "category"], label_column="category").label == "category"
    assert infer(["a", "b", "c"], text_column="b") == ColumnMap("b")
    assert infer(["q", "a"], pair_columns=("q", "a")) == ColumnMap("q", "a")
    with pytest.raises(InvalidInput, match="not in the input"):
        infer(["a"], text_column="zz")
