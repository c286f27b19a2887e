"""The loop spec is refused before any work, with every problem listed."""

from __future__ import annotations

import pytest

from fmstack.errors import InvalidInput
from fmstack.monitor.loop_spec import parse_loop

GOOD = {
    "model": "acme/intent@production",
    "data": "acme/intents:1",
    "feedback": "acme/intent-feedback",
    "train": {
        "task": "classification",
        "method": "probe",
        "base": "fmstack/minilm-l6",
        "output": "acme/intent",
    },
    "gate": {"holdout": "acme/intents:1"},
}


def test_a_good_spec_parses_with_defaults() -> None:
    spec = parse_loop(GOOD)
    assert spec.alias == "production" and spec.merged_repo == "acme/intent-feedback-train"
    assert spec.trigger.min_feedback == 100 and spec.train_spec("acme/x:1").data == "acme/x:1"


def test_every_problem_is_named() -> None:
    bad = {
        **GOOD,
        "train": {
            "task": "classification",
            "method": "lora",
            "base": "fmstack/minilm-l6",
            "output": "acme/intent",
        },
        "compress": {"quantize": "int8", "output": "acme/other"},
    }
    with pytest.raises(InvalidInput, match="compress.output: 'acme/other' is not acme/intent"):
        parse_loop(bad)
    with pytest.raises(InvalidInput, match="makes an adapter"):
        parse_loop({**GOOD, "train": {**GOOD["train"], "method": "lora"}})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput) as info:
        parse_loop({**GOOD, "model": "acme/intent", "trigger": {"min_feedback": 0}, "colour": 1})
    message = str(info.value)
    assert "names no alias" in message or "trigger.min_feedback" in message
    assert "colour" in message
    with pytest.raises(InvalidInput, match="train.data: leave it out"):
        parse_loop({**GOOD, "train": {**GOOD["train"], "data": "acme/x:1"}})  # type: ignore[dict-item]
