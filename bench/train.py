"""Training benchmark on banking77 (77 intents): every method's test accuracy, trainable parameters,
wall time and samples/s with base ``fmstack/minilm-l6``, and Hugging Face Trainer + PEFT LoRA side by
side on the same model, data, batch, epochs and learning rate, in the same run.

    .venv/bin/python bench/train.py --epochs 3 --max-length 64 --methods probe,full,lora,ia3,adapter,prefix
    .venv/bin/python bench/train.py --subsample 8 --epochs 2 --max-length 32   # bounded, shared CPUs
    # the best configuration so far: full fine-tuning, 5 epochs, a cosine head with a learning rate of its own
    .venv/bin/python bench/train.py --methods full --epochs 5 --lr full=1e-4 --head-lr 3e-3 --head cosine --no-baseline
    # supervised-contrastive stage on the labels first, then each method from that encoder
    .venv/bin/python bench/train.py --methods probe,ia3 --scl-epochs 1 --no-baseline

BANKING77 comes from --data DIR (default ``<repo>/../shared/datasets/banking77``); the script skips
with a message when it is absent. Results go to stdout as a
Markdown table and to --out as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from banking77 import add_data_flag, missing

BASE = "fmstack/minilm-l6"
LR = {"probe": 1e-2, "full": 1e-4, "lora": 1e-3, "ia3": 1e-2, "adapter": 1e-3, "prefix": 1e-2}


def learning_rates(text: str) -> dict[str, float]:
    rates = dict(LR)
    for item in filter(None, text.split(",")):
        method, _, value = item.partition("=")
        if method not in LR:
            raise argparse.ArgumentTypeError(f"unknown method {method!r}; methods: {', '.join(LR)}")
        rates[method] = float(value)
    return rates


def read_csv(path: Path, every: int) -> tuple[list[str], list[str]]:
    """Every ``every``-th row: the CSVs are sorted by category, so this keeps all 77 classes."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))[::every]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def carve_validation(
    texts: list[str], labels: list[str], fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """(train ids, validation ids): a seeded ``fraction`` of each label's rows (at least one row of a
    label with two or more), so that both parts keep every class in the same proportions."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for ids in by_label.values():
        take = round(len(ids) * fraction) if len(ids) > 1 else 0
        held.update(rng.sample(ids, max(take, 1 if fraction and len(ids) > 1 else 0)))
    return [i for i in range(len(texts)) if i not in held], sorted(held)


def push_banking77(hub: Any, root: Path, args: argparse.Namespace) -> tuple[str, list[str]]:
    """banking77 as a dataset version with splits ``train`` (train.csv less the validation rows),
    ``dev`` (the validation rows: every choice of settings is made on it) and ``test`` (test.csv, to be
    reported once per chosen setting). The validation split is not named ``validation`` on purpose:
    fmstack would evaluate on it inside its training call (the Trainer baseline does not), and the
    timed calls must do the same work."""
    from fmstack.data import format as dataformat

    labels = sorted(json.loads((args.data / "categories.json").read_text()))
    folder = root / "banking77"
    folder.mkdir()
    texts, cats = read_csv(args.data / "train.csv", args.subsample)
    train_ids, dev_ids = carve_validation(texts, cats, args.validation_fraction)
    parts = {
        "train": ([texts[i] for i in train_ids], [cats[i] for i in train_ids]),
        "dev": ([texts[i] for i in dev_ids], [cats[i] for i in dev_ids]),
        "test": read_csv(args.data / "test.csv", args.subsample),
    }
    splits = {
        split: dataformat.write_split(folder, split, [pa.table({"text": t, "label": c})])
        for split, (t, c) in parts.items()
        if t
    }
    manifest = dataformat.DatasetManifest(splits=splits, columns=["text", "label"], labels=labels)
    dataformat.write_manifest(folder, manifest)
    print(
        f"banking77: {len(train_ids)} train, {len(dev_ids)} validation (dev), {len(parts['test'][0])} test rows",
        flush=True,
    )
    return hub.push("bench/banking77", folder, "dataset").ref, labels


def run_contrastive(hub: Any, data: str, args: argparse.Namespace) -> dict[str, Any]:
    """Supervised-contrastive fine-tuning of the whole encoder on the train labels (texts with the same
    label are positives, the rest of the batch negatives), the first stage of the ``scl+METHOD`` runs."""
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    spec = parse_spec(
        {
            "task": "embedding",
            "method": "full",
            "base": BASE,
            "data": data,
            "epochs": args.scl_epochs,
            "batch_size": args.scl_batch_size,
            "max_length": args.max_length,
            "lr": args.scl_lr,
            "output": "bench/scl",
            "seed": 0,
        }
    )
    started = time.perf_counter()
    result = train(hub, spec)
    return _row("scl", result, time.perf_counter() - started, {}, result.steps * args.scl_batch_size)


def _row(
    method: str, result: Any, wall: float, scores: dict[str, dict[str, Any]], examples: int
) -> dict[str, Any]:
    """One result line. ``scores``: split -> metrics (NaN where a split was not scored: a stage that is
    not a classifier, or test without --score-test). samples/s divides the examples trained by the
    wall time of the whole training call (data in, trained version out), the same on both sides."""
    return {
        "method": method,
        "ref": result.output.ref,
        "dev_accuracy": scores.get("dev", {}).get("accuracy", float("nan")),
        "accuracy": scores.get("test", {}).get("accuracy", float("nan")),
        "macro_f1": scores.get("test", {}).get("macro_f1", float("nan")),
        "trainable_params": result.trainable_params,
        "wall_s": wall,
        "train_s": result.train_seconds,
        "samples_per_s": examples / wall,
        "step_samples_per_s": result.samples_per_s,  # fmstack's own count: time inside its steps only
        "torch_threads": torch.get_num_threads(),
    }


def score(hub: Any, ref: str, data: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Metrics on the validation split, and on test only with --score-test (the final run of a
    setting chosen on validation)."""
    from fmstack.train.evaluate import evaluate
    from fmstack.train.inference import load

    loaded, folder = load(hub, ref), hub.checkout(data)
    return {split: evaluate(loaded, folder, split) for split in scored_splits(args)}


def scored_splits(args: argparse.Namespace) -> list[str]:
    return (["dev"] if args.validation_fraction else []) + (["test"] if args.score_test else [])


def run_fmstack(
    hub: Any,
    data: str,
    method: str,
    args: argparse.Namespace,
    base: str = BASE,
    label: str | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    spec = parse_spec(
        {
            "task": "classification",
            "method": method,
            "base": base,
            "data": data,
            "epochs": args.epochs * (args.probe_epoch_factor if method == "probe" else 1),
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "lr": args.lr[method],
            "pooling": args.pooling,
            "label_smoothing": args.label_smoothing,
            **({"rdrop": args.rdrop} if args.rdrop and method != "probe" else {}),
            **({"ema": args.ema} if args.ema else {}),
            "head": args.head,
            **({"head_lr": args.head_lr} if args.head_lr and method != "probe" else {}),
            **({"layer_decay": args.layer_decay} if args.layer_decay and method != "probe" else {}),
            "output": f"bench/{(label or method).replace('+', '-')}",
            "seed": args.seed,
            **({"compile": True} if args.compile else {}),
            **({"max_steps": max_steps} if max_steps else {}),
        }
    )
    started = time.perf_counter()
    result = train(hub, spec)
    wall = time.perf_counter() - started
    examples = result.steps * args.batch_size
    return _row(label or method, result, wall, score(hub, result.output.ref, data, args), examples)


def run_hf_trainer(
    base_dir: Path,
    data_dir: Path,
    labels: list[str],
    args: argparse.Namespace,
    sampling: str,
    max_steps: int = -1,
) -> dict[str, Any]:
    """The baseline: transformers Trainer + PEFT LoRA on the same model (the same mean-pooled head),
    data, batch, epochs, learning rate, warmup and weight decay. ``sampling`` is the Trainer's
    ``train_sampling_strategy``: ``group_by_length`` (its own best setting: batches of similar lengths,
    each padded to its longest) or ``random`` (its default). The timed call is the whole training, as
    fmstack's is: model load, tokenisation, training and the adapter saved to disk. No gradient
    accumulation: transformers 5's Trainer mis-scales a BERT classifier's loss under it."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from fmstack.data import format as dataformat
    from fmstack.train.pooled import PooledEncoderForSequenceClassification

    index = {n: i for i, n in enumerate(labels)}

    def dataset(tok: Any, split: str) -> Dataset:
        table = dataformat.read_split(data_dir, split)
        enc = tok(table.column("text").to_pylist(), truncation=True, max_length=args.max_length)
        return Dataset.from_dict({**enc, "labels": [index[x] for x in table.column("label").to_pylist()]})

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(str(base_dir))
        torch.manual_seed(0)
        head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": index}
        if args.pooling == "mean":  # fmstack's default head, a transformers PreTrainedModel like any other
            model = PooledEncoderForSequenceClassification.from_encoder(base_dir, **head)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(str(base_dir), **head)
        model.accepts_loss_kwargs = False  # transformers 5 mis-scales the loss otherwise (see STYLE traps)
        lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"])
        model = get_peft_model(model, lora)
        train_set = dataset(tok, "train")
        targs = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            num_train_epochs=args.epochs,
            max_steps=max_steps,
            learning_rate=args.lr["lora"],
            warmup_steps=0.06,  # transformers 5: a float below 1 is a ratio of the total steps
            weight_decay=0.01,
            lr_scheduler_type="linear",
            train_sampling_strategy=sampling,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            logging_strategy="no",
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model, args=targs, train_dataset=train_set, data_collator=DataCollatorWithPadding(tok)
        )
        out_metrics = trainer.train().metrics
        trainer.save_model(str(Path(out) / "adapter"))
        wall = time.perf_counter() - started
        scores = {split: trainer.predict(dataset(tok, split)) for split in scored_splits(args)}
    accuracy = {s: float((p.predictions.argmax(-1) == p.label_ids).mean()) for s, p in scores.items()}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "method": f"hf-trainer+peft-lora ({sampling})",
        "dev_accuracy": accuracy.get("dev", float("nan")),
        "accuracy": accuracy.get("test", float("nan")),
        "macro_f1": float("nan"),
        "trainable_params": trainable,
        "wall_s": wall,
        "train_s": out_metrics["train_runtime"],
        "samples_per_s": len(train_set) * args.epochs / wall,
        "step_samples_per_s": out_metrics["train_samples_per_second"],
        "torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methods",
        default="probe,full,lora,ia3,adapter,prefix",
        help="comma-separated; lp-ft = probe, then full fine-tuning from the probe's model; "
        "lp-METHOD (e.g. lp-ia3) = probe, then METHOD from the probe's model (its head kept)",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--probe-epoch-factor",
        type=int,
        default=10,
        help="probe epochs = this x --epochs (cheap: cached features)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument(
        "--subsample", type=int, default=1, help="keep every N-th row of each split (1 = all)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--pooling", choices=["mean", "cls"], default="mean", help="classification head (fmstack --pooling)"
    )
    parser.add_argument(
        "--lr",
        type=learning_rates,
        default=dict(LR),
        help="per-method learning rates to change, e.g. full=5e-5,lora=2e-3 (defaults: %(default)s)",
    )
    parser.add_argument(
        "--head-lr", type=float, default=None, help="learning rate of the classifier head (not the probe's)"
    )
    parser.add_argument(
        "--layer-decay", type=float, default=None, help="layer-wise learning-rate decay (not the probe's)"
    )
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--rdrop", type=float, default=0.0, help="R-Drop weight (not the probe's)")
    parser.add_argument("--ema", type=float, default=None, help="decay of the weights' moving average")
    parser.add_argument("--head", choices=["linear", "cosine"], default="linear", help="classification head")
    parser.add_argument("--seed", type=int, default=0, help="seed of the classification runs")
    parser.add_argument(
        "--scl-epochs",
        type=int,
        default=0,
        help="> 0: first fine-tune the encoder supervised-contrastively on the labels for this many "
        "epochs (embedding task, full), then train every method from it (reported as scl+METHOD)",
    )
    parser.add_argument("--scl-lr", type=float, default=5e-5, help="learning rate of the contrastive stage")
    parser.add_argument(
        "--scl-batch-size",
        type=int,
        default=128,
        help="batch of the contrastive stage: positives are same-label texts in the batch, so a "
        "larger batch gives more anchors a positive (banking77, length-bucketed: about 16%% of anchors have "
        "none at 128, 59%% at 32)",
    )
    parser.add_argument("--compile", action="store_true", help="fmstack runs with torch.compile")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of each label's train rows held out as the validation split ('dev'; seeded, "
        "stratified); choose settings on it",
    )
    parser.add_argument(
        "--score-test",
        action="store_true",
        help="also score the test split: once, for a setting already chosen on validation",
    )
    parser.add_argument(
        "--baseline-sampling",
        default="group_by_length",
        help="comma-separated Trainer train_sampling_strategy values to run: group_by_length (its best "
        "setting, the comparison) and/or random (its default, a second labelled line)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every fmstack method and baseline this many times, interleaved (the order flips "
        "each repeat), and report the median ratio with its range",
    )
    add_data_flag(parser)
    parser.add_argument("--no-baseline", action="store_true", help="skip the HF Trainer + PEFT run")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "fmstack-bench-train.json")
    args = parser.parse_args()
    if problem := missing(args.data):
        print(f"skipped: {problem}")
        return 0
    torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    results = run_all(args)
    args.out.write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2)
    )
    print(report(results))
    print(f"load average at end: {os.getloadavg()}", flush=True)
    return 0


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="fmstack-bench-") as tmp,
        Hub(Settings.at(Path(tmp) / "home")) as hub,
    ):
        import_builtin(hub)
        data, labels = push_banking77(hub, Path(tmp), args)
        start, prefix = BASE, ""
        if args.scl_epochs:
            results.append(run_contrastive(hub, data, args))
            print(json.dumps(results[-1]), flush=True)
            start, prefix = results[-1]["ref"], "scl+"
        # Untimed: the first training in a process pays one-off costs (lazy imports, first forward at
        # each shape, allocator growth) that would otherwise fall on whichever side runs first.
        run_fmstack(hub, data, "lora", args, label="warm-up", max_steps=3)
        run_hf_trainer(hub.checkout(BASE), hub.checkout(data), labels, args, "group_by_length", max_steps=3)
        for repeat in range(args.repeats):
            sides = [
                lambda: run_methods(hub, data, start, prefix, args),
                lambda: run_baselines(hub.checkout(BASE), hub.checkout(data), labels, args),
            ]
            for side in sides if repeat % 2 == 0 else sides[::-1]:
                for row in side():
                    results.append({**row, "repeat": repeat, "load_avg_1m": os.getloadavg()[0]})
                    print(json.dumps(results[-1]), flush=True)
    return results


def run_methods(
    hub: Any, data: str, start: str, prefix: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for method in args.methods.split(","):
        if method.startswith("lp-"):  # linear probe, then METHOD from the probe's model (LP-FT)
            second = "full" if method == "lp-ft" else method.removeprefix("lp-")
            rows.append(run_fmstack(hub, data, "probe", args, start, f"{prefix}{method}-probe"))
            rows.append(run_fmstack(hub, data, second, args, base=rows[-1]["ref"], label=f"{prefix}{method}"))
        else:
            rows.append(run_fmstack(hub, data, method, args, start, f"{prefix}{method}"))
    return rows


def run_baselines(
    base_dir: Path, data_dir: Path, labels: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    if args.no_baseline:
        return []
    return [run_hf_trainer(base_dir, data_dir, labels, args, s) for s in args.baseline_sampling.split(",")]


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}%"


def report(results: list[dict[str, Any]]) -> str:
    """The Markdown table, then fmstack LoRA against each baseline: the median of the per-repeat
    wall-time ratios with their range."""
    lines = [
        "| method | repeat | validation accuracy | test accuracy | trainable params | wall s | samples/s (wall) "
        "| samples/s (inside steps) | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['method']} | {r.get('repeat', 0)} | {_pct(r['dev_accuracy'])} | {_pct(r['accuracy'])} "
            f"| {r['trainable_params']:,} | {r['wall_s']:.1f} | {r['samples_per_s']:.1f} "
            f"| {r['step_samples_per_s']:.1f} | {r.get('load_avg_1m', float('nan')):.1f} |"
        )
    ours = {r["repeat"]: r for r in results if r["method"] == "lora"}
    for name in dict.fromkeys(r["method"] for r in results if r["method"].startswith("hf-trainer")):
        pairs = [(ours[r["repeat"]], r) for r in results if r["method"] == name and r["repeat"] in ours]
        if not pairs:
            continue
        ratios = sorted(b["wall_s"] / a["wall_s"] for a, b in pairs)
        accuracy = ", ".join(f"{_pct(a['dev_accuracy'])} vs {_pct(b['dev_accuracy'])}" for a, b in pairs)
        lines.append(
            f"\nfmstack lora vs {name}, wall time of the whole training call: median "
            f"{statistics.median(ratios):.2f}x over {len(ratios)} interleaved repeat(s) (range "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}); validation accuracy {accuracy}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
