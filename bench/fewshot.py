"""Few-shot intent detection on BANKING77 (77 intents): ``--method setfit`` against the frozen baseline
(the base encoder's mean-pooled, normalised embeddings + logistic regression), in the same run.

For each shot count k and seed, k rows per class are drawn from train.csv, and a validation split of
``--validation-per-class`` *other* train rows per class is carved beside them: every setting (the
baseline's C included) is chosen on it. test.csv is scored only with --score-test, once per chosen
setting. The base is the built-in all-MiniLM-L6-v2; setfit runs through ``fmstack.train.run.train``,
the path ``fmstack train finetune --method setfit`` takes, into a throwaway hub.

    # choose settings on validation (no test)
    .venv/bin/python bench/fewshot.py --shots 10 --seeds 0 --setfit-epochs 2,4
    # the report: chosen settings, 3 seeds, 10- and 5-shot, test scored once
    .venv/bin/python bench/fewshot.py --shots 10,5 --seeds 0,1,2 --score-test

BANKING77 comes from --data DIR (default ``<repo>/../shared/datasets/banking77``); the script skips
with a message when it is absent. Results go to stdout (JSON lines, then a Markdown table) and --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from banking77 import add_data_flag, missing

BASE = "fmstack/minilm-l6"


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def draw(
    rows: list[tuple[str, str]], shots: int, per_class_val: int, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """k rows per class for training and ``per_class_val`` other rows per class for validation; the
    rest of train.csv is the pool that ``--unlabeled`` gives setfit without its labels."""
    rng = random.Random(seed)
    by_class: dict[str, list[str]] = {}
    for text, label in rows:
        by_class.setdefault(label, []).append(text)
    train, val = [], []
    for label in sorted(by_class):
        picked = rng.sample(by_class[label], shots + per_class_val)
        train += [(t, label) for t in picked[:shots]]
        val += [(t, label) for t in picked[shots:]]
    return train, val


def push_split_set(
    hub: Any, root: Path, name: str, parts: dict[str, list[tuple[str, str]]], labels: list[str]
) -> str:
    """A dataset version with splits train, dev (validation, not named so: the loop would score it on
    its own) and test; texts alone when ``labels`` is empty (the unlabelled pool)."""
    from fmstack.data import format as dataformat

    folder = root / name
    folder.mkdir()
    columns = ["text", "label"] if labels else ["text"]

    def table(rows: list[tuple[str, str]]) -> pa.Table:
        return pa.table({"text": [t for t, _ in rows], "label": [c for _, c in rows]}).select(columns)

    splits = {
        split: dataformat.write_split(folder, split, [table(rows)]) for split, rows in parts.items() if rows
    }
    dataformat.write_manifest(
        folder, dataformat.DatasetManifest(splits=splits, columns=columns, labels=labels)
    )
    return hub.push(f"bench/{name}", folder, "dataset").ref


class FrozenEncoder:
    """The base encoder's mean-pooled, L2-normalised sentence vectors (what sentence-transformers gives
    for all-MiniLM-L6-v2), computed once per text and cached across seeds."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.max_length = max_length
        self.cache: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.cache}, key=len)
        for start in range(0, len(todo), 64):
            chunk = todo[start : start + 64]
            batch = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            hidden = self.model(**batch).last_hidden_state  # (batch, seq, hidden)
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            self.cache.update(zip(chunk, pooled.numpy(), strict=True))
        return np.stack([self.cache[t] for t in texts])


def baseline(
    encode: FrozenEncoder,
    train: list[tuple[str, str]],
    val: list[tuple[str, str]],
    test: list[tuple[str, str]] | None,
) -> dict[str, Any]:
    """Logistic regression on frozen embeddings; C chosen on validation."""
    from sklearn.linear_model import LogisticRegression

    x, y = encode([t for t, _ in train]), [c for _, c in train]
    xv, yv = encode([t for t, _ in val]), np.array([c for _, c in val])
    fits = {c: LogisticRegression(C=c, max_iter=3000).fit(x, y) for c in (1.0, 10.0, 100.0)}
    dev = {c: float((m.predict(xv) == yv).mean()) for c, m in fits.items()}
    best = max(dev, key=lambda c: dev[c])
    row: dict[str, Any] = {"method": "frozen+logreg", "setting": f"C={best:g}", "dev_accuracy": dev[best]}
    if test is not None:
        xt, yt = encode([t for t, _ in test]), np.array([c for _, c in test])
        row["accuracy"] = float((fits[best].predict(xt) == yt).mean())
    return row


def run_setfit(
    hub: Any, data: str, unlabeled: str | None, args: argparse.Namespace, epochs: int, seed: int
) -> dict[str, Any]:
    from fmstack.train.evaluate import evaluate
    from fmstack.train.inference import load
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    spec = parse_spec(
        {
            "task": "classification",
            "method": "setfit",
            "base": BASE,
            "data": data,
            "setfit_epochs": epochs,
            "setfit_lr": args.setfit_lr,
            "epochs": args.epochs,
            "lr": args.lr,
            "head": args.head,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "seed": seed,
            "label_names_as_examples": args.label_names,
            "unlabeled": unlabeled,
            "output": f"bench/setfit-{seed}-{epochs}",
        }
    )
    started = time.perf_counter()
    result = train(hub, spec)
    wall = time.perf_counter() - started
    loaded, folder = load(hub, result.output.ref), hub.checkout(data)
    row: dict[str, Any] = {
        "method": "setfit",
        "setting": f"setfit_epochs={epochs} setfit_lr={args.setfit_lr:g} head={args.head} epochs={args.epochs} "
        f"lr={args.lr:g}" + " label_names" * args.label_names + " unlabeled" * bool(unlabeled),
        "train_wall_s": wall,
        "dev_accuracy": evaluate(loaded, folder, "dev")["accuracy"],
    }
    if args.score_test:
        row["accuracy"] = evaluate(loaded, folder, "test")["accuracy"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_flag(parser)
    parser.add_argument("--shots", default="10,5", help="rows per class to train on, comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="draws of the k rows (and of the training)")
    parser.add_argument(
        "--validation-per-class",
        type=int,
        default=10,
        help="validation rows per class, from train (10: 770 rows, where one row is 0.13 points)",
    )
    parser.add_argument(
        "--setfit-epochs", default="1", help="contrastive passes; several: each is run (choose on dev)"
    )
    parser.add_argument("--setfit-lr", type=float, default=5e-5)
    parser.add_argument("--epochs", type=int, default=30, help="head epochs (cheap: cached features)")
    parser.add_argument("--lr", type=float, default=3e-3, help="head learning rate")
    parser.add_argument("--head", choices=("linear", "cosine"), default="cosine")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument(
        "--label-names",
        action="store_true",
        help="setfit --label-names-as-examples: each intent's name ('card_arrival') as one more row",
    )
    parser.add_argument(
        "--unlabeled",
        action="store_true",
        help="setfit --unlabeled: the train rows not drawn (neither shots nor validation), labels dropped",
    )
    parser.add_argument("--test-every", type=int, default=1, help="score every n-th test row (1: all 3,080)")
    parser.add_argument(
        "--score-test", action="store_true", help="score test.csv (once, with chosen settings)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    if (why := missing(args.data)) is not None:
        print(f"skipped: {why}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run_all(args)
    print(report(rows, args))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    train_rows = read_rows(args.data / "train.csv")
    test = read_rows(args.data / "test.csv")[:: args.test_every]
    labels = sorted({c for _, c in train_rows})
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="fmstack-fewshot-") as tmp,
        Hub(Settings.at(Path(tmp) / "home")) as hub,
    ):
        import_builtin(hub)
        encode = FrozenEncoder(hub.checkout(BASE), args.max_length)
        for shots in [int(s) for s in args.shots.split(",")]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                train, val = draw(train_rows, shots, args.validation_per_class, seed)
                data = push_split_set(
                    hub,
                    Path(tmp),
                    f"b77-{shots}shot-{seed}",
                    {"train": train, "dev": val, "test": test},
                    labels,
                )
                unlabeled = None
                if args.unlabeled:
                    drawn = {t for t, _ in train + val}
                    pool = [(t, "") for t, _ in train_rows if t not in drawn]  # labels dropped below
                    unlabeled = push_split_set(
                        hub, Path(tmp), f"b77-pool-{shots}shot-{seed}", {"train": pool}, []
                    )
                rows = [baseline(encode, train, val, test if args.score_test else None)]
                rows += [
                    run_setfit(hub, data, unlabeled, args, int(e), seed)
                    for e in args.setfit_epochs.split(",")
                ]
                for row in rows:
                    row |= {"shots": shots, "seed": seed, "load_avg_1m": os.getloadavg()[0]}
                    results.append(row)
                    print(json.dumps(row), flush=True)
    print(
        f"total wall {time.perf_counter() - started:.0f}s; load average at end {os.getloadavg()}", flush=True
    )
    return results


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """Mean (and spread) over seeds per shot count and setting; test only where it was scored."""
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(
            (row["shots"], row["method"], row["setting"] if row["method"] == "setfit" else ""), []
        ).append(row)
    lines = [
        "| shots | method | setting | seeds | validation mean | test mean (min-max) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (shots, method, setting), group in sorted(groups.items(), key=lambda g: (-g[0][0], g[0][1], g[0][2])):
        dev = statistics.mean(r["dev_accuracy"] for r in group)
        tests = [r["accuracy"] for r in group if "accuracy" in r]
        shown = (
            f"{100 * statistics.mean(tests):.2f}% ({100 * min(tests):.2f}-{100 * max(tests):.2f})"
            if tests
            else "-"
        )
        lines.append(
            f"| {shots} | {method} | {setting or 'C on validation'} | {len(group)} | {100 * dev:.2f}% | {shown} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
