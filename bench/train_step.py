"""What each training-speed lever buys, step by step: LoRA on ``fmstack/minilm-l6`` (the mean-pooled
classifier, PEFT LoRA r 8 on query/value, AdamW, clipping) over the same banking77 examples, each batch
laid out several ways, timed round-robin in one process so every layout sees the same machine load.

    .venv/bin/python bench/train_step.py                      # 4 rounds x 24 steps of 32 examples
    .venv/bin/python bench/train_step.py --compile            # also torch.compile (dynamic shapes)

Layouts (the same 32 examples per optimizer step in all of them, so the optimisation is the same):

- ``random, pad longest``: random batches padded to their longest (the Trainer's default);
- ``bucketed, pad x8``: fmstack's length buckets, padded to a multiple of 8 (``fmstack.train.batches``
  before this benchmark);
- ``bucketed, pad longest``: the same buckets padded to their longest only;
- ``bucketed, eager attention``: as above with transformers' eager attention instead of SDPA;
- ``packed``: no padding at all: the batch's sequences packed into rows of ``--pack-length`` tokens,
  block-diagonal attention (a sequence sees only itself), positions restarting per sequence, and the
  mean pooled per sequence. Its logits are checked against the padded layout's before timing.

Reports seconds per step (median over rounds, with the range), tokens computed per real token, and
each layout's speed relative to ``bucketed, pad x8``. Skips when BANKING77 is absent (--data).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from banking77 import add_data_flag, missing

Batch = dict[str, Any]


def load_model() -> Any:
    from peft import LoraConfig, get_peft_model

    from fmstack.hub.importers import builtin_model_dir
    from fmstack.train.pooled import PooledEncoderForSequenceClassification

    torch.manual_seed(0)
    labels = {i: str(i) for i in range(77)}  # banking77's intents, by index
    model = PooledEncoderForSequenceClassification.from_encoder(
        builtin_model_dir(), num_labels=77, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"])
    return get_peft_model(model, lora)


def padded(rows: list[list[int]], labels: list[int], multiple: int) -> Batch:
    from fmstack.train.batches import pad

    ids = pad(rows, 0, multiple)
    mask = pad([[1] * len(r) for r in rows], 0, multiple)
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor(labels)}


def packed(rows: list[list[int]], labels: list[int], length: int) -> Batch:
    """First-fit decreasing into rows of ``length`` tokens. ``segments`` (examples, rows x length) is
    each example's averaging weights over the flattened tokens: the mean pooling as one matmul."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    bins: list[list[int]] = []
    used: list[int] = []
    for i in order:
        fit = next((b for b, u in enumerate(used) if u + len(rows[i]) <= length), None)
        if fit is None:
            bins.append([]), used.append(0)
            fit = len(bins) - 1
        bins[fit].append(i)
        used[fit] += len(rows[i])
    width = max(used)
    ids = torch.zeros(len(bins), width, dtype=torch.long)
    positions = torch.zeros(len(bins), width, dtype=torch.long)
    mask = torch.zeros(len(bins), 1, width, width, dtype=torch.bool)  # (rows, 1, query, key)
    segments = torch.zeros(len(rows), len(bins) * width)
    for b, members in enumerate(bins):
        start = 0
        for i in members:
            n = len(rows[i])
            ids[b, start : start + n] = torch.tensor(rows[i])
            positions[b, start : start + n] = torch.arange(n)
            mask[b, 0, start : start + n, start : start + n] = True
            segments[i, b * width + start : b * width + start + n] = 1.0 / n
            start += n
        mask[b, 0, start:, start:] = torch.eye(width - start, dtype=torch.bool)  # padding sees itself only
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": positions,
        "segments": segments,
        "labels": torch.tensor(labels),
    }


def logits(model: Any, batch: Batch) -> torch.Tensor:
    if "segments" not in batch:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out: torch.Tensor = model(**inputs).logits
        return out
    inner = model.base_model.model  # the pooled classifier under PEFT's wrapper
    hidden = inner.encoder(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
    ).last_hidden_state  # (rows, width, hidden)
    pooled = batch["segments"] @ hidden.reshape(-1, hidden.shape[-1])  # (examples, hidden)
    result: torch.Tensor = inner.classifier(inner.dropout(pooled))
    return result


def step(model: Any, optimizer: torch.optim.Optimizer, batch: Batch) -> float:
    loss = nn.functional.cross_entropy(logits(model, batch).float(), batch["labels"])
    loss.backward()
    nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def check_packing(model: Any, rows: list[list[int]], labels: list[int], length: int) -> float:
    """Largest |logit difference| between the packed and the padded layout of one batch (eval mode)."""
    model.eval()
    with torch.no_grad():
        diff = (logits(model, padded(rows, labels, 1)) - logits(model, packed(rows, labels, length))).abs()
    model.train()
    return float(diff.max())


def layouts(args: argparse.Namespace) -> dict[str, Callable[[list[list[int]], list[int]], Batch]]:
    return {
        "random, pad longest": lambda r, y: padded(r, y, 1),
        "bucketed, pad x8": lambda r, y: padded(r, y, 8),
        "bucketed, pad longest": lambda r, y: padded(r, y, 1),
        "bucketed, eager attention": lambda r, y: padded(r, y, 1),
        "packed": lambda r, y: packed(r, y, args.pack_length),
    }


def read_rows(args: argparse.Namespace) -> tuple[list[list[int]], list[int]]:
    import csv

    from transformers import AutoTokenizer

    from fmstack.hub.importers import builtin_model_dir

    with (args.data / "train.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    names = sorted({r["category"] for r in table})
    tok = AutoTokenizer.from_pretrained(str(builtin_model_dir()))
    ids = tok([r["text"] for r in table], truncation=True, max_length=args.max_length)["input_ids"]
    return ids, [names.index(r["category"]) for r in table]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=24, help="optimizer steps per layout per round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--pack-length", type=int, default=128, help="tokens per packed row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(dynamic=True)")
    parser.add_argument(
        "--only", default="", help="';'-separated layouts to time (with 'bucketed, pad x8' always)"
    )
    add_data_flag(parser)
    args = parser.parse_args()
    if problem := missing(args.data):
        print(f"skipped: {problem}")
        return 0
    torch.set_num_threads(args.threads)
    from fmstack.train.batches import epoch_batches

    rows, labels = read_rows(args)
    lengths = [len(r) for r in rows]
    needed = args.rounds * args.steps
    bucketed = epoch_batches(lengths, args.batch_size, 0, 0, bucket=True)[:needed]
    shuffled = epoch_batches(lengths, args.batch_size, 0, 0, bucket=False)[:needed]
    model = load_model()
    first = bucketed[0]
    diff = check_packing(model, [rows[i] for i in first], [labels[i] for i in first], args.pack_length)
    print(f"packed vs padded logits, max |diff|: {diff:.2e}", flush=True)
    makers = layouts(args)
    if args.compile:
        makers["bucketed, pad longest, torch.compile"] = makers["bucketed, pad longest"]
    if args.only:  # the reference layout always runs: every speed is relative to it
        keep = {"bucketed, pad x8", *(n.strip() for n in args.only.split(";"))}
        makers = {name: make for name, make in makers.items() if name in keep}
    times: dict[str, list[float]] = {name: [] for name in makers}
    tokens: dict[str, list[int]] = {name: [0, 0] for name in makers}  # computed, real
    states = {name: build(name, args) for name in makers}
    warmup = epoch_batches(lengths, args.batch_size, 0, 1, bucket=True)[:3]  # other examples
    for name, (model_, optimizer) in states.items():  # first steps (and compilation) untimed
        for b in warmup:
            step(model_, optimizer, makers[name]([rows[i] for i in b], [labels[i] for i in b]))
    for r in range(args.rounds):
        names = list(makers)
        names = names[r % len(names) :] + names[: r % len(names)]  # rotate: no layout always first
        for name in names:
            model_, optimizer = states[name]
            source = shuffled if name.startswith("random") else bucketed
            chosen = source[r * args.steps : (r + 1) * args.steps]
            batches = [makers[name]([rows[i] for i in b], [labels[i] for i in b]) for b in chosen]
            started = time.perf_counter()
            for batch in batches:
                step(model_, optimizer, batch)
            times[name].append((time.perf_counter() - started) / len(batches))
            tokens[name][0] += sum(int(b["input_ids"].numel()) for b in batches)
            tokens[name][1] += sum(lengths[i] for b in chosen for i in b)
        print(f"round {r}: load average {os.getloadavg()[0]:.1f}", flush=True)
    print(report(times, tokens, args))
    return 0


def build(name: str, args: argparse.Namespace) -> tuple[Any, torch.optim.Optimizer]:
    """A fresh model per layout (the same initial weights), so no layout trains on another's updates."""
    model = load_model()
    if "eager" in name:
        model.base_model.model.encoder.set_attn_implementation("eager")
    if "compile" in name:
        inner = model.base_model.model
        inner.encoder = torch.compile(inner.encoder, dynamic=True)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    return model, torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)


def report(times: dict[str, list[float]], tokens: dict[str, list[int]], args: argparse.Namespace) -> str:
    reference = statistics.median(times["bucketed, pad x8"])
    lines = [
        f"\n{args.rounds} rounds x {args.steps} steps of {args.batch_size} examples, {args.threads} threads; "
        f"load average now {os.getloadavg()}",
        "| layout | s/step median (range) | tokens computed / real | speed vs bucketed, pad x8 |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        computed, real = tokens[name]
        lines.append(
            f"| {name} | {median:.3f} ({min(values):.3f}-{max(values):.3f}) | {computed / real:.2f} "
            f"| {reference / median:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
