"""``fmstack compress`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli.main import main
from fmstack.hub import Hub


def test_json_output_and_exit_codes(
    hub: Hub,
    classifier: str,
    encoder: str,
    eval_data: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = tmp_path / "compress.yaml"  # a spec file and options parse into one spec; options win
    spec.write_text(f"quantize: int8\neval_data: {eval_data}\nlatency_runs: 50\noutput: acme/from-file\n")
    args = ["compress", classifier, "--spec", str(spec), "--latency-runs", "2"]
    assert main([*args, "--json", "--output", "acme/cli-out"]) == 0
    out = json.loads(capsys.readouterr().out)  # stdout holds JSON only: no progress lines
    assert out["registered"] and out["version"] == "acme/cli-out:1"
    assert hub.runs.get(out["run_id"]).spec["latency_runs"] == 2
    assert out["report"]["steps"] == ["onnx export", "graph optimisation", "int8 dynamic per-channel"]
    assert main(["eval", "acme/cli-out:1", "--data", eval_data, "--json"]) == 0  # ONNX Runtime scores it
    assert json.loads(capsys.readouterr().out)["metrics"]["accuracy"] > 0.9
    # embeddings move under heavy head pruning, so a zero limit refuses them
    refused = ["compress", encoder, "--prune", "0.75", "--structured", "heads", "--eval-data", eval_data]
    assert (
        main([*refused, "--max-accuracy-drop", "0", "--latency-runs", "1", "--output", "acme/refused"]) == 1
    )
    captured = capsys.readouterr()
    assert "nothing was registered" in captured.err
    assert "acme/refused" not in [r.repo for r in hub.ls()]


def test_usage_errors_exit_1(hub: Hub, classifier: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", classifier, "--quantize", "int4"]) == 1
    assert "quantize" in capsys.readouterr().err
    assert main(["compress", "acme/nope"]) == 1
    assert main(["compress", classifier, "--static-calibration"]) == 1
    assert "needs --quantize int8" in capsys.readouterr().err


def test_compressing_again_says_the_result_already_exists(
    hub: Hub, classifier: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compress", classifier, "--latency-runs", "1", "--output", "acme/twice"]
    assert main(args) == 0
    assert "registered acme/twice:1" in capsys.readouterr().out
    assert main(args) == 0  # the export is deterministic: the same bytes
    out = " ".join(capsys.readouterr().out.split())  # as read, whatever the terminal's width
    assert "acme/twice:1 already holds exactly this result (from run 1); nothing new was stored" in out


def test_transformers_load_reports_stay_out_of_the_output(
    hub: Hub, classifier: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()  # as in a fresh process: another test may have quietened them
    hf_logging.set_verbosity_warning()
    assert main(["compress", classifier, "--latency-runs", "1", "--output", "acme/quiet"]) == 0
    err = capsys.readouterr().err
    assert "Loading weights" not in err and "it/s" not in err


def test_a_spec_file_is_checked_with_the_options_before_anything_loads(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "compress.yaml"
    spec.write_text("quantize: int4\nprune: 0.5\nstructured: layers\n")
    assert main(["compress", "acme/nope", "--spec", str(spec)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "quantize: Input should be 'none' or 'int8'" in err and "structured: Input should be" in err
    # The options given override the file's bad values: the spec is then valid, and only the model is missing.
    fixed = ["--quantize", "int8", "--structured", "heads"]
    assert main(["compress", "acme/nope", "--spec", str(spec), *fixed]) == 1
    assert "acme/nope" in capsys.readouterr().err
    spec.write_text("- int8\n")
    assert main(["compress", "acme/nope", "--spec", str(spec)]) == 1
    assert "a compression spec is a YAML mapping of field: value" in capsys.readouterr().err


def test_every_spec_field_is_an_option(capsys: pytest.CaptureFixture[str]) -> None:
    from fmstack.compress.spec import CompressSpec

    assert main(["compress", "--help"]) == 0
    shown = capsys.readouterr().out
    switches = {"per_channel": "--per-tensor", "calibration": "--static-calibration"}
    for name in set(CompressSpec.model_fields) - {"schema_version"}:
        assert switches.get(name, "--" + name.replace("_", "-")) in shown, name
