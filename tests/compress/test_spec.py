from __future__ import annotations

import pytest

from fmstack.compress.spec import DEFAULT_MAX_DROP, CompressSpec, parse_spec
from fmstack.errors import InvalidInput


def test_defaults_are_valid_and_ungated_without_eval_data() -> None:
    spec = parse_spec({})
    assert spec.export == "onnx" and spec.per_channel and spec.gate is None


def test_eval_data_turns_the_gate_on_with_the_default_limit() -> None:
    assert CompressSpec(eval_data="a/b").gate == DEFAULT_MAX_DROP
    assert CompressSpec(eval_data="a/b", max_accuracy_drop=0.2).gate == 0.2


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_spec({"calibration": "static", "structured": "heads", "max_accuracy_drop": 1})
    message = str(err.value)
    for part in (
        "needs --quantize int8",
        "calibration texts",
        "--structured heads needs",
        "needs --eval-data",
    ):
        assert part in message


@pytest.mark.parametrize(
    "data", [{"prune": 1.5}, {"quantize": "int4"}, {"structured": "layers", "prune": 0.2}, {"unknown": 1}]
)
def test_bad_values_are_invalid_input(data: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="invalid compression spec"):
        parse_spec(data)


def test_a_misspelt_field_is_told_the_field_it_probably_meant() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_spec({"quantise": "int8", "eval_limt": 10, "colour": "red"})
    message = str(err.value)
    assert "quantise: not a compression spec field; did you mean 'quantize'?" in message
    assert "eval_limt: not a compression spec field; did you mean 'eval_limit'?" in message
    assert "colour: not a compression spec field (docs/compress.md lists the fields)" in message
