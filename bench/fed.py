"""Federated fine-tuning on BANKING77: FedAvg LoRA over 10 clients with Dirichlet(alpha) label skew
against centralised LoRA with the same total epochs, FedProx against FedAvg on the same split, bytes
per client per round against the full model, and client-level DP at a target epsilon.

    .venv/bin/python bench/fed.py --train-rows 2000 --rounds 5 --methods central,fedavg,fedprox,dp
    # the configuration measured on a heavily loaded 2-core machine (bench/README.md)
    .venv/bin/python bench/fed.py --classes 20 --train-rows 400 --val-rows 100 --test-rows 200 --rounds 2 --lr 5e-3

The rounds run in this process with the code the coordinator and the clients run
(``federated.local.LocalModel.train`` on each client's share, ``federated.rounds.server_step`` on the
server), without HTTP: the protocol's cost is the bytes per update, reported; the HTTP path itself is
covered by ``tests/federated``. Validation (carved from train.csv) picks nothing here: settings are
the defaults; test accuracy is reported once per method at the end. BANKING77 comes from --data DIR;
the script skips with a message when it is absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from safetensors.torch import load, load_file, save_file

from banking77 import add_data_flag, missing

BASE = "fmstack/minilm-l6"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_flag(parser)
    parser.add_argument("--classes", type=int, default=0, help="keep the first K intents, sorted (0: all 77)")
    parser.add_argument(
        "--train-rows", type=int, default=2000, help="stratified sample of train.csv (0: all)"
    )
    parser.add_argument("--val-rows", type=int, default=500)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--mu", type=float, default=0.01)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument(
        "--clip", type=float, default=None, help="DP clip (default: median FedAvg round-1 norm)"
    )
    parser.add_argument("--methods", default="central,fedavg,fedprox,dp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    why = missing(args.data)
    if why:
        print(f"skipped: {why}")
        return 0
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="fed-bench-") as tmp:
        results = run(args, Path(tmp))
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _rows(path: Path) -> list[tuple[str, str]]:
    with path.open() as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def _stratified(rows: list[tuple[str, str]], n: int, rng: random.Random) -> tuple[list[Any], list[Any]]:
    """``n`` rows with every class in proportion, and the rest."""
    if n <= 0 or n >= len(rows):
        return rows, []
    by: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by.setdefault(row[1], []).append(row)
    take, rest = [], []
    for group in by.values():
        rng.shuffle(group)
        k = max(1, round(n * len(group) / len(rows)))
        take += group[:k]
        rest += group[k:]
    return take, rest


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    from fmstack.data import format as dataformat
    from fmstack.federated.partition import dirichlet
    from fmstack.federated.spec import parse_spec
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    rng = random.Random(args.seed)
    train_all = _rows(args.data / "train.csv")
    kept = set(sorted({c for _, c in train_all})[: args.classes or None])
    train_all = [r for r in train_all if r[1] in kept]
    train, rest = _stratified(train_all, args.train_rows, rng)
    val, _ = _stratified(rest or train_all, args.val_rows, rng)
    test, _ = _stratified([r for r in _rows(args.data / "test.csv") if r[1] in kept], args.test_rows, rng)
    labels = sorted({c for _, c in train_all})
    hub = Hub(Settings.at(home))
    import_builtin(hub)

    def push(name: str, splits: dict[str, list[tuple[str, str]]]) -> str:
        folder = home / "src" / name.replace("/", "_")
        folder.mkdir(parents=True)
        infos = {
            s: dataformat.write_split(
                folder, s, [pa.table({"text": [t for t, _ in r], "label": [c for _, c in r]})]
            )
            for s, r in splits.items()
        }
        dataformat.write_manifest(
            folder, dataformat.DatasetManifest(splits=infos, columns=["text", "label"], labels=labels)
        )
        return hub.push(name, folder, "dataset").ref

    data = push("bench/banking77", {"train": train, "validation": val, "test": test})
    parts = dirichlet([c for _, c in train], args.clients, args.alpha, args.seed)
    shares = [push(f"bench/client-{i}", {"train": [train[j] for j in p]}) for i, p in enumerate(parts)]
    spec_raw = {
        "name": "bench/fed",
        "base": BASE,
        "labels": labels,
        "rounds": args.rounds,
        "clients_per_round": args.clients,
        "min_clients": args.clients,
        "eval_data": data,
        "local": {
            "epochs": args.local_epochs,
            "max_length": args.max_length,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
        },
    }
    base_bytes = sum(p.stat().st_size for p in hub.checkout(BASE).rglob("*.safetensors"))
    out: dict[str, Any] = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "clients": [{"rows": len(p), "classes": len({train[j][1] for j in p})} for p in parts],
        "base_safetensors_bytes": base_bytes,
    }
    methods = args.methods.split(",")

    def done(name: str) -> None:  # each result as soon as it is in: a long run leaves what it finished
        print(f"{name}: {json.dumps(out[name])}", file=sys.stderr, flush=True)
        if args.out:
            args.out.write_text(json.dumps(out, indent=2) + "\n")

    if "central" in methods:
        spec = parse_spec(
            {**spec_raw, "local": {**spec_raw["local"], "epochs": args.rounds * args.local_epochs}}
        )
        out["central"] = central(hub, spec, data, home / "central")
        done("central")
    norms: list[float] = []
    if "fedavg" in methods:
        out["fedavg"] = federated(hub, parse_spec(spec_raw), shares, home / "fedavg", norms)
        done("fedavg")
    if "fedprox" in methods:
        out["fedprox"] = federated(
            hub, parse_spec({**spec_raw, "strategy": "fedprox", "mu": args.mu}), shares, home / "fedprox", []
        )
        done("fedprox")
    if "dp" in methods:
        clip = args.clip or (sorted(norms)[len(norms) // 2] if norms else 1.0)
        dp = {"clip": clip, "target_epsilon": args.epsilon, "population": args.clients}
        out["dp"] = federated(hub, parse_spec({**spec_raw, "dp": dp}), shares, home / "dp", [])
        out["dp"]["clip"] = clip
        done("dp")
    _summarise(out)
    hub.close()
    return out


def _eval(model: Any, folder: Path, split: str) -> float:
    from fmstack.federated.local import WEIGHTS

    data = model.hub.checkout(str(model.fed.eval_data))
    return float(model.evaluate(folder / WEIGHTS, data, split)["accuracy"])


def central(hub: Any, spec: Any, data: str, work: Path) -> dict[str, Any]:
    from fmstack.federated.local import WEIGHTS, LocalModel, initial_adapter

    model = LocalModel(hub, spec)
    start = work / "init"
    start.mkdir(parents=True)
    initial_adapter(hub, spec, start)
    began = time.perf_counter()
    (work / "run").mkdir()
    result = model.train(hub.checkout(data), data, start / WEIGHTS, work / "run")
    seconds = time.perf_counter() - began
    (start / WEIGHTS).write_bytes(result.weights)
    return {
        "seconds": seconds,
        "val_accuracy": _eval(model, start, "validation"),
        "test_accuracy": _eval(model, start, "test"),
        "epochs": spec.local.epochs,
    }


def federated(hub: Any, spec: Any, shares: list[str], work: Path, norms: list[float]) -> dict[str, Any]:
    from fmstack.federated import rounds, validate
    from fmstack.federated.aggregate import delta
    from fmstack.federated.local import WEIGHTS, LocalModel, initial_adapter

    model = LocalModel(hub, spec)
    current = work / "round-0"
    current.mkdir(parents=True)
    initial_adapter(hub, spec, current)
    state: bytes | None = None
    history, sent = [], []
    began = time.perf_counter()
    for number in range(1, spec.rounds + 1):
        global_ = load_file(str(current / WEIGHTS))
        clients = []
        for i, share in enumerate(shares):
            scratch = work / f"r{number}-c{i}"
            scratch.mkdir()
            res = model.train(hub.checkout(share), share, current / WEIGHTS, scratch)
            weights = load(res.weights)
            sent.append(len(res.weights))
            if number == 1:
                norms.append(validate.l2_norm(delta(weights, global_)))
            clients.append((weights, res.examples))
            shutil.rmtree(scratch)
        step = rounds.server_step(spec, number, global_, clients, state)
        state = step.server_state
        nxt = work / f"round-{number}"
        shutil.copytree(current, nxt)
        (nxt / WEIGHTS).unlink()
        save_file({k: v.contiguous() for k, v in step.weights.items()}, str(nxt / WEIGHTS), {"format": "pt"})
        current = nxt
        val = _eval(model, current, "validation")
        history.append({"round": number, "val_accuracy": val, **step.metrics})
        print(
            f"{spec.strategy}{' dp' if spec.dp else ''} round {number}: val {val:.4f} {step.metrics}",
            file=sys.stderr,
        )
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "rounds": history,
        "bytes_per_update": max(sent),
        "test_accuracy": _eval(model, current, "test"),
        "val_accuracy": history[-1]["val_accuracy"],
    }


def _summarise(out: dict[str, Any]) -> None:
    central_acc = out.get("central", {}).get("test_accuracy")
    for name in ("fedavg", "fedprox", "dp"):
        if name in out and central_acc:
            out[name]["vs_central"] = out[name]["test_accuracy"] / central_acc
        if name in out:
            out[name]["bytes_vs_full_model"] = out[name]["bytes_per_update"] / out["base_safetensors_bytes"]


if __name__ == "__main__":
    sys.exit(main())
