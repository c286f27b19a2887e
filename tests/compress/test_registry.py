"""The contract every registry entry must keep, checked over every entry."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from fmstack.compress.registry import PRUNERS, QUANTIZERS
from fmstack.compress.source import load_folder
from fmstack.compress.spec import CompressSpec


@pytest.mark.parametrize("name", list(PRUNERS))
def test_pruner_edits_in_place_and_reports_its_method(name: str, encoder_dir: Path) -> None:
    parent = load_folder(encoder_dir, "t/enc")
    facts = PRUNERS[name](parent.model, 0.5)
    assert facts["method"] == name
    # every pruner is reachable from the spec: magnitude by default, the others by --structured
    spec = CompressSpec(prune=0.5, structured=None if name == "magnitude" else name)  # type: ignore[arg-type]
    assert (spec.structured or "magnitude") == name


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_quantizer_signature_and_spec_reachability(name: str) -> None:
    params = list(inspect.signature(QUANTIZERS[name]).parameters)
    assert params == ["src", "dest", "per_channel", "calibration"]
    kind, calibration = name.split("-")
    CompressSpec(quantize=kind, calibration=calibration, eval_data="a/b")  # type: ignore[arg-type]
