from __future__ import annotations

from pathlib import Path

import pytest

from fmstack.data.ops.dedup_near import DedupNearConfig
from fmstack.data.spec import parse_spec
from fmstack.errors import InvalidInput
from fmstack.specfile import load_spec_file


def test_a_valid_spec_parses_into_typed_ops(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("input: acme/raw\noutput: acme/clean\nops:\n  - op: dedup_near\n    threshold: 0.9\n")
    spec = load_spec_file(path, parse_spec, "processing spec")
    assert isinstance(spec.ops[0], DedupNearConfig) and spec.ops[0].threshold == 0.9


def test_a_bad_spec_lists_every_problem_at_once() -> None:
    data = {
        "input": "acme/raw",
        "outptu": "typo",
        "ops": [
            {"op": "pack", "block_size": 64},
            {"op": "dedup_near", "threshold": 1.5, "num_perm": 100, "bands": 3},
            {"op": "frobnicate"},
            {"op": "split", "train": 0.5, "validation": 0.1, "test": 0.1},
            {"op": "filter", "max_tokens": 10, "include": "(unclosed"},
            {"op": "sample"},
        ],
    }
    with pytest.raises(InvalidInput) as err:
        parse_spec(data, "spec.yaml")
    message = str(err.value)
    expected = [
        "output: Field required",
        "outptu: Extra inputs are not permitted",
        "ops[0] (pack): pack must be the last op",
        "ops[0] (pack): reads input_ids, so a tokenize op must come before it",
        "ops[1] (dedup_near).threshold: Input should be less than 1",
        "ops[2] (frobnicate)",
        "ops[3] (split): Value error, train + validation + test must be 1, got 0.7",
        "ops[4] (filter).include: Value error, not a valid regex",
        "ops[5] (sample): Value error, give exactly one of n or fraction",
    ]
    for line in expected:
        assert line in message, line
    assert "known ops: normalize, filter" in message


def test_num_perm_must_divide_into_bands() -> None:
    with pytest.raises(InvalidInput, match="not a multiple of bands"):
        parse_spec(
            {"input": "a/b", "output": "a/c", "ops": [{"op": "dedup_near", "num_perm": 100, "bands": 3}]}
        )
