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


def push_banking77(hub: Any, root: Path, source: Path, every: int) -> tuple[str, list[str]]:
    from fmstack.data import format as dataformat

    labels = sorted(json.loads((source / "categories.json").read_text()))
    folder = root / "banking77"
    folder.mkdir()
    splits = {}
    for split, name in (("train", "train.csv"), ("test", "test.csv")):
        texts, cats = read_csv(source / name, every)
        splits[split] = dataformat.write_split(folder, split, [pa.table({"text": texts, "label": cats})])
    manifest = dataformat.DatasetManifest(splits=splits, columns=["text", "label"], labels=labels)
    dataformat.write_manifest(folder, manifest)
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
    return _row("scl", result, time.perf_counter() - started, {})


def _row(method: str, result: Any, wall: float, metrics: dict[str, Any]) -> dict[str, Any]:
    """One result line; test metrics are NaN for a stage that is not a classifier."""
    return {
        "method": method,
        "ref": result.output.ref,
        "accuracy": metrics.get("accuracy", float("nan")),
        "macro_f1": metrics.get("macro_f1", float("nan")),
        "trainable_params": result.trainable_params,
        "wall_s": wall,
        "train_s": result.train_seconds,
        "samples_per_s": result.samples_per_s,
    }


def run_fmstack(
    hub: Any, data: str, method: str, args: argparse.Namespace, base: str = BASE, label: str | None = None
) -> dict[str, Any]:
    from fmstack.train.evaluate import evaluate
    from fmstack.train.inference import load
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
        }
    )
    started = time.perf_counter()
    result = train(hub, spec)
    wall = time.perf_counter() - started
    metrics = evaluate(load(hub, result.output.ref), hub.checkout(data), "test")
    return _row(label or method, result, wall, metrics)


def run_hf_trainer(
    base_dir: Path, data_dir: Path, labels: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """The baseline: transformers Trainer + PEFT LoRA with default data handling (random batches,
    padding to the longest in each batch), same model (the same classification head), data, batch,
    epochs, learning rate."""
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
    tok = AutoTokenizer.from_pretrained(str(base_dir))

    def dataset(split: str) -> Dataset:
        table = dataformat.read_split(data_dir, split)
        enc = tok(table.column("text").to_pylist(), truncation=True, max_length=args.max_length)
        return Dataset.from_dict({**enc, "labels": [index[x] for x in table.column("label").to_pylist()]})

    torch.manual_seed(0)
    head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": index}
    if args.pooling == "mean":  # fmstack's default head, a transformers PreTrainedModel like any other
        model = PooledEncoderForSequenceClassification.from_encoder(base_dir, **head)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(base_dir), **head)
    model.accepts_loss_kwargs = False  # transformers 5 mis-scales the loss otherwise (see STYLE traps)
    lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"])
    model = get_peft_model(model, lora)
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            num_train_epochs=args.epochs,
            learning_rate=args.lr["lora"],
            warmup_steps=0.06,  # transformers 5: a float below 1 is a ratio of the total steps
            weight_decay=0.01,
            lr_scheduler_type="linear",
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            logging_strategy="no",
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=targs,
            train_dataset=dataset("train"),
            data_collator=DataCollatorWithPadding(tok),
        )
        started = time.perf_counter()
        out_metrics = trainer.train().metrics
        wall = time.perf_counter() - started
        preds = trainer.predict(dataset("test"))
    accuracy = float((preds.predictions.argmax(-1) == preds.label_ids).mean())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "method": "hf-trainer+peft-lora",
        "accuracy": accuracy,
        "macro_f1": float("nan"),
        "trainable_params": trainable,
        "wall_s": wall,
        "train_s": out_metrics["train_runtime"],
        "samples_per_s": out_metrics["train_samples_per_second"],
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
    add_data_flag(parser)
    parser.add_argument("--no-baseline", action="store_true", help="skip the HF Trainer + PEFT run")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "fmstack-bench-train.json")
    args = parser.parse_args()
    if problem := missing(args.data):
        print(f"skipped: {problem}")
        return 0
    torch.set_num_threads(args.threads)
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="fmstack-bench-") as tmp,
        Hub(Settings.at(Path(tmp) / "home")) as hub,
    ):
        import_builtin(hub)
        data, labels = push_banking77(hub, Path(tmp), args.data, args.subsample)
        start, prefix = BASE, ""
        if args.scl_epochs:
            results.append(run_contrastive(hub, data, args))
            print(json.dumps(results[-1]), flush=True)
            start, prefix = results[-1]["ref"], "scl+"
        for method in args.methods.split(","):
            if method.startswith("lp-"):  # linear probe, then METHOD from the probe's model (LP-FT)
                second = "full" if method == "lp-ft" else method.removeprefix("lp-")
                results.append(run_fmstack(hub, data, "probe", args, start, f"{prefix}{method}-probe"))
                print(json.dumps(results[-1]), flush=True)
                base = results[-1]["ref"]
                results.append(run_fmstack(hub, data, second, args, base=base, label=f"{prefix}{method}"))
            else:
                results.append(run_fmstack(hub, data, method, args, start, f"{prefix}{method}"))
            print(json.dumps(results[-1]), flush=True)
        if not args.no_baseline:
            results.append(run_hf_trainer(hub.checkout(BASE), hub.checkout(data), labels, args))
            print(json.dumps(results[-1]), flush=True)
    args.out.write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2)
    )
    print(
        "\n| method | test accuracy | trainable params | wall s | samples/s |\n| --- | --- | --- | --- | --- |"
    )
    for r in results:
        print(
            f"| {r['method']} | {100 * r['accuracy']:.2f}% | {r['trainable_params']:,} | {r['wall_s']:.0f} | {r['samples_per_s']:.1f} |"
        )
    ours = next((r for r in results if r["method"] == "lora"), None)
    base = next((r for r in results if r["method"].startswith("hf-trainer")), None)
    if ours and base:
        print(
            f"\nfmstack lora vs HF Trainer + PEFT LoRA: {ours['samples_per_s'] / base['samples_per_s']:.2f}x samples/s, "
            f"accuracy {100 * ours['accuracy']:.2f}% vs {100 * base['accuracy']:.2f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
