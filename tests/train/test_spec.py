from __future__ import annotations

from pathlib import Path

import pytest

from fmstack.errors import InvalidInput
from fmstack.specfile import load_spec_file
from fmstack.train.spec import TrainSpec, parse_spec


def test_a_bad_spec_lists_every_problem_at_once() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_spec(
            {
                "task": "embedding",
                "method": "probe",  # cross-field: probe needs labels
                "base": "a/b",
                "arch": "bert-tiny",  # cross-field: both base and arch
                "data": "a/data",
                "epochs": 0,  # field: >= 1
                "lr": -1,  # field: > 0
                "precision": "fp8",  # field: not a choice
                "early_stopping": 2,  # cross-field: needs eval_every
                "colour": "blue",  # field: unknown
            }
        )
    message = str(info.value)
    assert "9 problem(s)" in message  # the 4 field errors, 5 cross-field rules (arch + probe breaks two)
    for fragment in (
        "epochs",
        "lr",
        "precision",
        "colour",
        "probe",
        "not both",
        "early_stopping",
        "pretraining from scratch",
    ):
        assert fragment in message, fragment


def test_head_lr_and_label_smoothing_are_classification_options() -> None:
    common = {"base": "a/b", "data": "a/d"}
    with pytest.raises(InvalidInput) as info:
        parse_spec({**common, "task": "embedding", "label_smoothing": 0.1, "head_lr": 1e-3, "rdrop": 1.0})
    assert "3 problem(s)" in str(info.value)
    with pytest.raises(InvalidInput, match="rdrop: probe trains a linear head"):
        parse_spec({**common, "task": "classification", "method": "probe", "rdrop": 1.0})
    with pytest.raises(InvalidInput, match="probe trains only the head"):
        parse_spec({**common, "task": "classification", "method": "probe", "head_lr": 1e-3})
    spec = parse_spec({**common, "task": "classification", "head_lr": 3e-3, "label_smoothing": 0.1})
    assert (spec.head_lr, spec.label_smoothing) == (3e-3, 0.1)


def test_an_option_of_another_task_is_refused_unless_left_at_its_default() -> None:
    common = {"base": "a/b", "data": "a/d"}
    with pytest.raises(InvalidInput) as info:
        parse_spec({**common, "task": "mlm", "pooling": "cls", "temperature": 0.1, "normalize": False})
    message = str(info.value)
    assert "3 problem(s)" in message and "task 'mlm' has no temperature" in message
    assert "pooling: applies to classification and embedding only" in message
    with pytest.raises(InvalidInput, match="mlm_probability: applies to mlm only; task 'classification'"):
        parse_spec({**common, "task": "classification", "mlm_probability": 0.3})
    # a saved spec writes every field: the defaults of other tasks' options pass
    spec = parse_spec({**common, "task": "clm", "pooling": "mean", "head": "linear", "mlm_probability": 0.15})
    assert spec.task == "clm"


def test_layer_decay_is_a_rate_per_block_and_needs_an_encoder_that_trains() -> None:
    common = {"base": "a/b", "data": "a/d", "task": "classification"}
    assert parse_spec({**common, "layer_decay": 0.9}).layer_decay == 0.9
    with pytest.raises(InvalidInput, match="layer_decay: probe trains only the head"):
        parse_spec({**common, "method": "probe", "layer_decay": 0.9})
    with pytest.raises(InvalidInput, match="layer_decay"):
        parse_spec({**common, "layer_decay": 1.5})


def test_full_fine_tuning_gives_a_classifier_head_its_own_rate_by_default() -> None:
    common = {"base": "a/b", "data": "a/d"}
    full = parse_spec({**common, "task": "classification", "method": "full"})
    assert (full.learning_rate, full.head_learning_rate) == (5e-5, 3e-3)
    assert (
        parse_spec({**common, "task": "classification", "method": "full", "head_lr": 1e-3}).head_learning_rate
        == 1e-3
    )
    assert parse_spec({**common, "task": "classification", "method": "lora"}).head_learning_rate is None
    assert parse_spec({**common, "task": "embedding", "method": "full"}).head_learning_rate is None


def test_missing_fields_are_reported_with_cross_field_rules() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_spec({"method": "lora"})
    message = str(info.value)
    assert "task" in message and "data" in message and "--base" in message


def test_a_good_spec_and_its_identity() -> None:
    spec = parse_spec({"task": "classification", "method": "lora", "base": "a/b", "data": "a/d"})
    assert spec.learning_rate == 2e-3  # the method's default
    same = spec.model_copy(update={"resume": True, "output": "x/y"})
    assert same.identity() == spec.identity()  # resuming finds the same checkpoints
    assert spec.model_copy(update={"seed": 1}).identity() != spec.identity()


def test_yaml_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("task: mlm\narch: bert-tiny\ndata: a/text\ntokenizer: a/tok\nepochs: 2\n")
    assert load_spec_file(path, parse_spec, "training spec") == TrainSpec(
        task="mlm", arch="bert-tiny", data="a/text", tokenizer="a/tok", epochs=2
    )
    path.write_text("- not a mapping\n")
    with pytest.raises(InvalidInput, match="mapping"):
        load_spec_file(path, parse_spec, "training spec")


def test_an_unknown_field_is_told_the_field_it_probably_meant() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_spec({"task": "mlm", "arch": "bert-tiny", "data": "a/b", "learning_rate": 1e-3, "epochz": 2})
    message = str(err.value)
    assert "learning_rate: not a training spec field; did you mean 'lr'?" in message
    assert "epochz: not a training spec field; did you mean 'epochs'?" in message


def test_problems_quote_huge_values_clipped() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_spec({"task": "x" * 10_000, "data": "a/b", "base": "c/d", "y" * 10_000: 1})
    message = str(caught.value)
    assert "more characters)" in message and len(message) < 1500
