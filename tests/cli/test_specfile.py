"""The one loader of YAML spec files (fmstack/specfile.py), as train, data and compress use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fmstack.compress.spec import CompressSpec
from fmstack.compress.spec import parse_spec as parse_compress
from fmstack.data.spec import ProcessSpec
from fmstack.data.spec import parse_spec as parse_process
from fmstack.errors import InvalidInput
from fmstack.specfile import load_spec_file, read_spec_file


def test_each_spec_parses_its_file_through_the_same_loader(tmp_path: Path) -> None:
    compress = tmp_path / "compress.yaml"
    compress.write_text("quantize: int8\neval_data: acme/intents\nmax_accuracy_drop: 0.5\n")
    assert load_spec_file(compress, parse_compress, "compression spec") == CompressSpec(
        quantize="int8", eval_data="acme/intents", max_accuracy_drop=0.5
    )
    process = tmp_path / "process.yaml"
    process.write_text("input: acme/raw\noutput: acme/clean\nops:\n  - op: dedup_exact\n")
    assert isinstance(load_spec_file(process, parse_process, "processing spec"), ProcessSpec)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a compression spec is a YAML mapping of field: value, not an empty file"),
        ("- int8\n", "a compression spec is a YAML mapping of field: value, not a YAML list"),
        ("quantize: [int8\n", "not valid YAML"),
    ],
)
def test_what_is_not_a_mapping_of_fields_is_refused_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as err:
        read_spec_file(path, "compression spec")
    assert str(err.value).startswith(str(path))


def test_the_fields_come_back_unvalidated_for_flags_to_lay_over(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("quantize: int8\nprune: 0.2\n")
    fields: dict[str, Any] = read_spec_file(path, "compression spec")
    assert fields == {"quantize": "int8", "prune": 0.2}
    assert parse_compress({**fields, "prune": 0.0}).prune == 0.0  # a flag given wins over the file
