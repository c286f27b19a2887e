"""End to end through the real CLI: train, eval and generate, with runs and lineage in the hub."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from fmstack.cli.main import main
from fmstack.hub import Hub
from fmstack.hub.cards import parse_card
from tests.train.conftest import push_dataset, push_tiny_bert, texts


def _json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_finetune_pushes_a_model_with_lineage_card_and_metrics(
    hub: Hub, tiny_bert: str, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "finetune",
            "--base",
            tiny_bert,
            "--data",
            topics,
            "-b",
            "8",
            "--epochs",
            "2",
            "--lr",
            "1e-2",
            "--eval-every",
            "4",
            "--output",
            "acme/topics",
            "--json",
        ]
    )
    assert code == 0
    out = _json(capsys)
    assert out["output"]["repo"] == "acme/topics" and out["output"]["kind"] == "model"
    assert set(out["metrics"]) >= {"accuracy", "macro_f1"} and out["samples_per_s"] > 0

    run = hub.runs.get(out["run_id"])
    assert run.status == "succeeded" and run.kind == "train"
    assert set(run.inputs) == {"test/tiny-bert:1", "test/topics:1"}
    assert run.outputs == ["acme/topics:1"]
    assert run.spec["result"]["metrics"]["accuracy"] == out["metrics"]["accuracy"]
    assert run.spec["lr"] == 1e-2 and run.spec["head_lr"] == 3e-3  # the rates used, defaults resolved
    assert [m.step for m in hub.runs.metrics(out["run_id"], "eval_accuracy")] == [4, 8, 12, 16]
    meta, _ = parse_card(hub.card("acme/topics"))
    assert meta.base_model == "test/tiny-bert:1" and meta.datasets == ["test/topics:1"]
    files = {f.path for f in hub.info("acme/topics").files}
    assert {"config.json", "model.safetensors", "fmstack.json", "tokenizer.json"} <= files
    descriptor = json.loads(hub.read_file("acme/topics", "fmstack.json"))
    assert descriptor["format"] == "pytorch" and descriptor["labels"] == ["food", "money", "sport"]
    config = json.loads(hub.read_file("acme/topics", "config.json"))
    assert config["id2label"] == {"0": "food", "1": "money", "2": "sport"}

    # fmstack eval: the same metrics, recorded as an eval run
    assert main(["eval", "acme/topics", "--data", topics, "--split", "validation", "--json"]) == 0
    evaluated = _json(capsys)
    assert evaluated["metrics"]["accuracy"] == pytest.approx(out["metrics"]["accuracy"])
    assert "per_class" in evaluated["metrics"]
    assert hub.runs.get(evaluated["run_id"]).kind == "eval"


def test_adapter_version_records_its_base(
    hub: Hub, tiny_bert: str, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "train",
                "finetune",
                "--base",
                tiny_bert,
                "--data",
                topics,
                "--method",
                "adapter",
                "--adapter-type",
                "pfeiffer",
                "--max-steps",
                "2",
                "-b",
                "8",
                "--json",
            ]
        )
        == 0
    )
    out = _json(capsys)
    assert out["output"]["kind"] == "adapter"
    meta = json.loads(hub.read_file(out["output"]["repo"], "fmstack_adapter.json"))
    assert meta["method"] == "adapter" and meta["base"] == "test/tiny-bert:1" and meta["labels"]
    config = json.loads(hub.read_file(out["output"]["repo"], "fmstack_method.json"))
    assert config["adapter_type"] == "pfeiffer"


def test_spec_file_and_refusals_leave_nothing_behind(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"task: classification\nmethod: lora\nbase: {tiny_bert}\ndata: {topics}\nmax_steps: 2\nbatch_size: 8\noutput: acme/from-yaml\n"
    )
    assert main(["train", "run", str(spec), "--json"]) == 0
    assert _json(capsys)["output"]["repo"] == "acme/from-yaml"

    runs_before = len(hub.runs.recent())
    assert (
        main(
            [
                "train",
                "finetune",
                "--base",
                tiny_bert,
                "--data",
                topics,
                "--precision",
                "fp16",
                "--device",
                "cpu",
                "--output",
                "acme/fp16",
            ]
        )
        == 1
    )
    assert "fp16 is not supported on CPU" in capsys.readouterr().err
    assert (
        main(
            ["train", "finetune", "--base", tiny_bert, "--data", topics, "--method", "nope", "--epochs", "0"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "method" in err and "epochs" in err
    assert len(hub.runs.recent()) == runs_before
    assert "acme/fp16" not in {r.repo for r in hub.ls()}


def test_head_lr_and_label_smoothing_flags_reach_the_spec(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "finetune", "--base", tiny_bert, "--data", topics, "--head-lr", "1e-2"]
    assert main([*args, "--label-smoothing", "0.1", "--task", "embedding"]) == 1
    err = capsys.readouterr().err
    assert "label_smoothing" in err and "head_lr" in err
    saved = tmp_path / "spec.yaml"
    options = [
        "--label-smoothing",
        "0.1",
        "--layer-decay",
        "0.9",
        "--rdrop",
        "1",
        "--max-steps",
        "1",
        "--json",
    ]
    assert main([*args, *options, "--save-spec", str(saved)]) == 0
    text = saved.read_text()
    assert "head_lr: 0.01\n" in text and "label_smoothing: 0.1\n" in text and "layer_decay: 0.9\n" in text
    assert "rdrop: 1.0\n" in text


def test_pretrain_gpt2_tiny_on_packed_blocks_then_generate(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokenizer_ref = push_tiny_bert(hub, tmp_path, repo="test/tokenizer")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hub.checkout(tokenizer_ref)))

    def blocks(n: int, seed: int) -> pa.Table:
        ids = [i for t in texts(n, seed)[0] for i in tok(t)["input_ids"]]
        rows = [ids[i : i + 16] for i in range(0, len(ids) - 16, 16)]
        return pa.table({"input_ids": pa.array(rows, pa.list_(pa.int32()))})

    data = push_dataset(
        hub,
        tmp_path,
        "test/packed",
        {"train": blocks(300, 1), "validation": blocks(40, 2)},
        block_size=16,
        tokenizer=tokenizer_ref,
    )
    assert (
        main(
            [
                "train",
                "pretrain",
                "--arch",
                "gpt2-tiny",
                "--objective",
                "clm",
                "--data",
                data,
                "--epochs",
                "3",
                "-b",
                "16",
                "--lr",
                "3e-3",
                "--eval-every",
                "10",
                "--output",
                "acme/gpt2-tiny",
                "--json",
            ]
        )
        == 0
    )
    out = _json(capsys)
    curve = [m.value for m in hub.runs.metrics(out["run_id"], "eval_perplexity")]
    assert len(curve) >= 3 and all(b < a for a, b in itertools.pairwise(curve)), curve
    assert curve[-1] < 0.8 * curve[0], curve

    assert (
        main(["generate", "acme/gpt2-tiny", "--prompt", "the bank", "--max-new-tokens", "5", "--json"]) == 0
    )
    sample = _json(capsys)
    assert sample["prompt"] == "the bank" and len(sample["completion"].split()) >= 1
    assert main(["generate", tokenizer_ref, "--prompt", "x"]) == 1  # not a causal LM


def test_generate_refuses_bad_sampling_options_by_flag(
    hub: Hub, tiny_bert: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = ["--max-new-tokens", "0", "--temperature", "-1", "--top-k", "-2"]
    assert main(["generate", tiny_bert, "--prompt", "hi", *bad]) == 1
    err = capsys.readouterr().err
    assert "--max-new-tokens must be at least 1" in err and "--temperature" in err and "--top-k" in err


def test_continuation_keeps_the_space_after_the_prompt(tmp_path: Path) -> None:
    import torch

    from fmstack.train.generate import continuation
    from tests.tiny import make_tokenizer

    tok = make_tokenizer(tmp_path)
    ids = torch.tensor(tok("the bank card loan", add_special_tokens=False)["input_ids"])
    assert "the bank" + continuation(tok, ids, 2) == "the bank card loan"


def _finetune(base: str, data: str, *extra: str) -> list[str]:
    return ["train", "finetune", "--base", base, "--data", data, "--max-steps", "1", "-b", "8", *extra]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("bad_name", "--output: bad "),  # the rest of the message is the hub's (fmstack.hub.refs)
        ("acme/x:3", "--output: bad "),
        ("test/topics", "--output: test/topics is a dataset repo, so it cannot take a model version"),
    ],
)
def test_a_bad_output_is_refused_before_training(
    hub: Hub,
    tiny_bert: str,
    topics: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    output: str,
    expected: str,
) -> None:
    assert main(_finetune(tiny_bert, topics, "--output", output)) == 1
    assert expected in capsys.readouterr().err
    assert hub.runs.recent() == []  # refused before a run record or a training step


def test_an_adapter_run_refuses_a_model_repo_as_output(
    hub: Hub, tiny_bert: str, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_finetune(tiny_bert, topics, "--method", "lora", "--output", "test/tiny-bert")) == 1
    err = capsys.readouterr().err
    assert "--output: test/tiny-bert is a model repo, so it cannot take an adapter version" in err


def test_refs_of_the_wrong_kind_are_refused_by_ref_and_flag(
    hub: Hub, tiny_bert: str, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_finetune(topics, topics)) == 1
    assert "test/topics:1 is a dataset, not a model; --base takes a model version" in capsys.readouterr().err
    assert main(_finetune(tiny_bert, tiny_bert)) == 1
    assert "test/tiny-bert:1 is a model, not a dataset; --data takes a dataset version" in (
        capsys.readouterr().err
    )
    assert main(["eval", tiny_bert, "--data", tiny_bert]) == 1
    assert "test/tiny-bert:1 is a model, not a dataset" in capsys.readouterr().err
    assert main(["eval", topics, "--data", topics]) == 1
    assert "test/topics:1 is a dataset, not a model or adapter" in capsys.readouterr().err
    assert hub.runs.recent() == []


def test_pretrain_names_objective_and_takes_early_stopping(
    hub: Hub, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "pretrain", "--arch", "bert-tiny", "--data", topics]
    assert main([*args, "--objective", "foo"]) == 1
    err = capsys.readouterr().err
    assert "--objective: unknown objective 'foo' (use mlm (masked) or clm (causal))" in err
    assert main([*args, "--early-stopping", "2"]) == 1  # the flag reaches the spec's rules
    assert "early_stopping: needs eval_every" in capsys.readouterr().err


def test_save_spec_leaves_resume_out(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "spec.yaml"
    assert main(_finetune(tiny_bert, topics, "--resume", "--save-spec", str(saved), "--json")) == 0
    assert _json(capsys)["resumed_from"] is None
    assert "resume" not in saved.read_text() and "max_steps: 1\n" in saved.read_text()
    assert main(["train", "run", str(saved), "--resume"]) == 0  # the same training: the same weights
    out = " ".join(capsys.readouterr().out.split())
    assert "unchanged, already" in out and "--resume found no checkpoint of this run" in out


def test_a_diverging_run_stops_at_the_first_nan_loss_and_is_recorded_failed(
    hub: Hub, tiny_bert: str, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Adam moves every weight by about lr per step: at 1e30 the second forward pass overflows.
    args = ["train", "finetune", "--base", tiny_bert, "--data", topics, "--max-steps", "4", "-b", "8"]
    assert main([*args, "--lr", "1e30", "--output", "acme/diverged"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "training diverged: the loss became nan at step" in err
    assert (
        "(peak learning rate 1e+30)" in err
        and "nothing was pushed. Try a lower learning rate, e.g. --lr 1e+29" in err
    )
    (run,) = hub.runs.recent()
    assert run.status == "failed" and run.spec["error"].startswith("TrainingDiverged: training diverged")
    assert all(math.isfinite(m.value) for m in hub.runs.metrics(run.id))  # no NaN point was written
    assert "acme/diverged" not in {r.repo for r in hub.ls()}


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_non_finite_learning_rate_is_refused_before_a_run(
    hub: Hub, tiny_bert: str, topics: str, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    assert main(_finetune(tiny_bert, topics, "--lr", value)) == 1
    assert "lr: Input should be a finite number" in capsys.readouterr().err
    assert hub.runs.recent() == []


def test_an_unwritable_checkpoint_dir_or_a_missing_eval_split_leave_no_run(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    assert (
        main(_finetune(tiny_bert, topics, "--checkpoint-dir", str(a_file / "ckpt"), "--save-every", "1")) == 1
    )
    err = " ".join(capsys.readouterr().err.split())
    assert f"--checkpoint-dir '{a_file / 'ckpt'}': cannot write there" in err
    assert "pick a folder you can write to" in err
    assert main(_finetune(tiny_bert, topics, "--eval-split", "nosuch")) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "--eval-split: the dataset test/topics:1 has no split 'nosuch' (splits: train, validation)" in err
    assert hub.runs.recent() == []  # docs/train.md: a refused run creates no record


def test_a_spec_file_that_is_not_utf8_is_refused(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes("task: classification\nbase: caf\xe9/x\n".encode("latin-1"))
    assert main(["train", "run", str(spec)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{spec}: not UTF-8 text (byte 0xe9 on line 2)" in err and "save the training spec as UTF-8" in err


def test_an_unwritable_save_spec_is_refused_before_a_run(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-folder" / "spec.yaml"
    assert main(_finetune(tiny_bert, topics, "--save-spec", str(target))) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"--save-spec '{target}': cannot write there (No such file or directory)" in err
    assert hub.runs.recent() == []


def test_a_damaged_or_foreign_checkpoint_is_refused_with_the_way_out(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ckpt"
    args = _finetune(tiny_bert, topics, "--checkpoint-dir", str(ckpt), "--save-every", "1", "-o", "acme/ck")
    assert main(args) == 0
    capsys.readouterr()
    # another training's checkpoint in the folder: a full fine-tune's weights into a LoRA run
    lora = _finetune(tiny_bert, topics, "--method", "lora", "--checkpoint-dir", str(ckpt), "--resume")
    assert main(lora) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "was written by another training" in err and "pick another --checkpoint-dir" in err
    (step,) = ckpt.glob("step-*")
    (step / "weights.safetensors").write_bytes(b"not safetensors")
    assert main([*args, "--resume"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{step} is an incomplete or damaged checkpoint" in err and "delete that folder" in err


def test_a_classifier_on_a_dataset_without_labels_is_refused_before_a_run(
    hub: Hub, tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unlabelled = push_dataset(hub, tmp_path, "test/unlabelled", {"train": pa.table({"text": texts(16)[0]})})
    assert main(_finetune(tiny_bert, unlabelled)) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "--data: classification needs labels, and the dataset test/unlabelled:1 has none" in err
    assert hub.runs.recent() == []


@pytest.mark.parametrize("command", ["finetune", "pretrain"])
def test_every_flag_is_a_spec_field_explained_in_help(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fmstack.cli.train import FINETUNE_FLAGS, FINETUNE_HIDDEN, PRETRAIN_FLAGS, PRETRAIN_HIDDEN
    from fmstack.train.spec import TrainSpec

    monkeypatch.setenv("COLUMNS", "400")  # one line per option, so descriptions are not wrapped
    assert main(["train", command, "--help"]) == 0
    out = capsys.readouterr().out
    hidden, flags = (
        (FINETUNE_HIDDEN, FINETUNE_FLAGS) if command == "finetune" else (PRETRAIN_HIDDEN, PRETRAIN_FLAGS)
    )
    for name, field in TrainSpec.model_fields.items():
        if name in hidden:
            continue
        flag = flags.get(name)
        assert ((flag.names[0] if flag and flag.names else None) or f"--{name.replace('_', '-')}") in out
        assert str((flag.help if flag else None) or field.description) in out, name


def test_flags_without_a_hand_written_option_reach_the_spec(
    fmstack_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "finetune", "--base", "a/b", "--data", "a/c", "--warmup-ratio", "2", "--no-bucket"]
    assert main([*args, "--weight-decay", "-1", "--temperature", "0"]) == 1  # refused by the spec
    err = capsys.readouterr().err
    assert "4 problem(s)" not in err and "3 problem(s)" in err
    assert "warmup_ratio" in err and "weight_decay" in err and "temperature" in err
