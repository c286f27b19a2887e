"""The feedback loop on BANKING77 with a shift: does retraining on feedback recover what production lost?

    .venv/bin/python bench/loop.py                      # ~10 min on a loaded 2-core machine
    .venv/bin/python bench/loop.py --per-intent 40 --shifted 20 --out /tmp/loop.json

The shift: production is trained on BANKING77's train split with a group of ``--shifted`` intents cut to
``--seen`` examples each (it knows those labels, hardly their phrasings: the "newer phrasing" it never
saw). Traffic is BANKING77's test split with those intents over-represented (``--shift-share`` of the
requests). A stream half of it goes through ``fmstack serve --log-predictions 1`` and a share
(``--feedback``) of it gets corrections through ``POST /v1/feedback``; then ``fmstack loop run --once``
exports the feedback, retrains on the old data plus the feedback, gates the candidate against production
(a fixed held-out sample of the test split outside the traffic, and held-out feedback) and moves the
alias, which the running server follows. The other half of the traffic is never fed back: accuracy on
it is measured before (production), after (the promoted version) and for a model trained on all the
training data (the reference). Goal: the loop recovers >= 80% of the gap, (after - before) /
(all-data - before). Every model is the same linear probe on the built-in MiniLM (``--method probe``),
so the comparison is about the data. Also reported: the time from trigger to promotion.

Scaled down by ``--per-intent`` (training rows per intent, default 40 of ~130) to fit ~10 minutes on a
loaded shared machine; the figures say which size ran. Skips with a message without BANKING77.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from banking77 import add_data_flag, missing  # noqa: E402

MODEL = "bench/intent@production"


def read(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def by_label(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for text, label in rows:
        grouped[label].append(text)
    return grouped


def push(hub: Any, repo: str, splits: dict[str, list[tuple[str, str]]], root: Path) -> str:
    """The dataset version of ``splits`` (the same version when this content was pushed before)."""
    from fmstack.monitor.export import write_dataset

    with tempfile.TemporaryDirectory(dir=root) as tmp:
        folder = Path(tmp) / "dataset"
        folder.mkdir()
        write_dataset(folder, {k: [{"text": t, "label": y} for t, y in v] for k, v in splits.items()})
        return str(hub.push(repo, folder, "dataset").ref)


def trained(hub: Any, spec: dict[str, Any], pinned: str | None) -> Any:
    """The model ``spec`` trains, reusing the version a previous run with the same ``--home`` made from
    the same data version; ``pinned``: the version to look at (the loop pushes later ones)."""
    from fmstack.errors import NotFound
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    try:
        found = hub.resolve(pinned or spec["output"])
        if found.run_id is not None and hub.runs.get(found.run_id).spec.get("data") == spec["data"]:
            return found
    except NotFound:
        pass
    return train(hub, parse_spec(spec)).output


def accuracy(hub: Any, ref: str, rows: list[tuple[str, str]]) -> float:
    from fmstack.monitor.loop import _predict

    predicted = _predict(hub, ref, [t for t, _ in rows])
    return sum(p == y for p, (_, y) in zip(predicted, rows, strict=True)) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_flag(parser)
    parser.add_argument("--per-intent", type=int, default=40, help="Training rows per intent (scale).")
    parser.add_argument(
        "--shifted", type=int, default=20, help="Intents whose phrasing production hardly saw."
    )
    parser.add_argument("--seen", type=int, default=2, help="Training rows production has of each of them.")
    parser.add_argument("--shift-share", type=float, default=0.6, help="Share of traffic on shifted intents.")
    parser.add_argument(
        "--traffic", type=int, default=1200, help="Requests of shifted traffic (both halves)."
    )
    parser.add_argument("--feedback", type=float, default=0.5, help="Share of the stream half corrected.")
    parser.add_argument("--feedback-weight", type=int, default=2, help="The loop's feedback_weight.")
    parser.add_argument("--epochs", type=int, default=20, help="Probe epochs of every model.")
    parser.add_argument("--seed", type=int, default=0)
    # The gate set holds ~6 rows per intent, so one row is ~0.17 of a class's recall: a bound under
    # that refuses any candidate that misses one more row of any of 77 classes.
    parser.add_argument("--max-class-drop", type=float, default=0.34, help="The gate's per-class bound.")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="FMSTACK_HOME to use and keep (default: a temporary one); a second run with the same --home "
        "and flags reuses the trained production and all-data models and starts at the traffic.",
    )
    args = parser.parse_args()
    why = missing(args.data)
    if why is not None:
        print(f"skipped: {why}")
        return
    rng = random.Random(args.seed)
    train_rows = by_label(read(args.data / "train.csv"))
    test_rows = read(args.data / "test.csv")
    labels = sorted(train_rows)
    shifted = set(rng.sample(labels, args.shifted))
    for texts in train_rows.values():
        rng.shuffle(texts)
    full_train = [(t, y) for y in labels for t in train_rows[y][: args.per_intent]]
    prod_train = [
        (t, y) for y in labels for t in train_rows[y][: args.seen if y in shifted else args.per_intent]
    ]
    validation = [(t, y) for y in labels for t in train_rows[y][args.per_intent : args.per_intent + 2]]
    # Traffic: test rows, shifted intents over-represented; the gate's fixed held-out set: other test rows.
    rng.shuffle(test_rows)
    on_shift = [r for r in test_rows if r[1] in shifted]
    others = [r for r in test_rows if r[1] not in shifted]
    n_shift = min(int(args.traffic * args.shift_share), len(on_shift))
    n_other = min(args.traffic - n_shift, len(others) - 400)
    traffic = on_shift[:n_shift] + others[:n_other]
    rng.shuffle(traffic)
    stream, evaluation = traffic[: len(traffic) // 2], traffic[len(traffic) // 2 :]
    gate_rows = others[n_other : n_other + 400] + on_shift[n_shift:]

    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.monitor.gate import GateFailed
    from fmstack.monitor.loop import Outcome, check_trigger, run_once
    from fmstack.monitor.loop_spec import parse_loop
    from fmstack.serve import ServeSettings, start_server
    from fmstack.settings import Settings

    print(
        f"machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}; BANKING77 "
        f"{args.per_intent} train rows/intent ({len(full_train)}), {len(shifted)} shifted intents at "
        f"{args.seen} rows in production's data; traffic {len(stream)} stream + {len(evaluation)} eval "
        f"({n_shift} on shifted intents); feedback on {args.feedback:.0%} of the stream",
        flush=True,
    )
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="fmstack-bench-loop-") as tmp:
        root = args.home or Path(tmp)
        with Hub(Settings.at(root)) as hub:
            base = import_builtin(hub).ref
            prod_data = push(hub, "bench/prod-data", {"train": prod_train, "validation": validation}, root)
            full_data = push(hub, "bench/full-data", {"train": full_train, "validation": validation}, root)
            gate_data = push(hub, "bench/gate", {"test": gate_rows}, root)
            probe = {
                "task": "classification",
                "method": "probe",
                "base": base,
                "epochs": args.epochs,
                "max_length": 64,
            }
            started = time.monotonic()
            production = trained(
                hub, {**probe, "data": prod_data, "output": "bench/intent"}, "bench/intent:1"
            )
            hub.tag(production.ref, "production")
            reference = trained(hub, {**probe, "data": full_data, "output": "bench/intent-all-data"}, None)
            results["train_seconds_each"] = round((time.monotonic() - started) / 2, 1)
            print(
                f"trained production {production.ref} and the all-data reference {reference.ref}", flush=True
            )

            stamp = time.strftime("%Y%m%d%H%M%S")  # a run's own log and feedback repos: --home reuse
            logs = root / f"predictions-{stamp}"
            settings = ServeSettings(
                models=[MODEL], port=0, poll_aliases_s=0.5, log_predictions=1.0, log_dir=logs
            )
            with start_server(settings, hub.settings) as server:
                feedback_rows = send(server.url, stream, args.feedback, rng)
                time.sleep(1.5)  # past --log-flush
                spec = parse_loop(
                    {
                        "model": MODEL,
                        "data": prod_data,
                        "feedback": f"bench/feedback-{stamp}",
                        "feedback_weight": args.feedback_weight,
                        "trigger": {"min_feedback": max(1, feedback_rows // 2)},
                        "train": {**probe, "output": "bench/intent"},
                        "gate": {
                            "holdout": gate_data,
                            "min_gain": 0.0,
                            "min_feedback_gain": 0.0,
                            "max_class_drop": args.max_class_drop,
                        },
                        "log_dir": str(logs),
                    }
                )
                try:
                    outcome = run_once(hub, spec, logs, say=lambda m: print(f"  loop: {m}", flush=True))
                except GateFailed as exc:  # reported with the candidate's accuracy all the same
                    print(f"  loop: {exc}", flush=True)
                    outcome = Outcome("rejected", check_trigger(hub, spec, logs), production.ref)
                    outcome.candidate = hub.resolve("bench/intent").ref
                    results["rejected"] = str(exc)
                swapped = wait_swap(server.url, outcome.promoted)
            before = accuracy(hub, production.ref, evaluation)
            after = accuracy(hub, outcome.candidate, evaluation) if outcome.candidate else before
            ceiling = accuracy(hub, reference.ref, evaluation)
    gap = ceiling - before
    results.update(
        {
            "status": outcome.status,
            "promoted": outcome.promoted,
            "server_swapped_s": swapped,
            "feedback_rows": feedback_rows,
            "gate": outcome.verdict.figures if outcome.verdict else None,
            "seconds": {k: round(v, 1) for k, v in outcome.seconds.items()},
            "accuracy_eval": {"production": before, "after_loop": after, "all_data": ceiling},
            "gap_recovered": (after - before) / gap if gap > 0 else None,
            "load_average_end": os.getloadavg()[0],
        }
    )
    print(json.dumps(results, indent=2))
    recovered = results["gap_recovered"]
    if recovered is not None:
        print(
            f"shifted eval traffic: production {before:.4f}, after the loop {after:.4f}, all data {ceiling:.4f}: "
            f"{recovered:.0%} of the gap recovered (goal >= 80%); trigger to promotion "
            f"{outcome.seconds.get('trigger_to_promotion', float('nan')):.1f} s"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def send(url: str, rows: list[tuple[str, str]], share: float, rng: random.Random) -> int:
    """Classify every row over HTTP (8 clients); correct ``share`` of them. Feedback rows sent."""
    import httpx

    chosen = {i for i in range(len(rows)) if rng.random() < share}

    def one(item: tuple[int, tuple[str, str]]) -> int:
        i, (text, label) = item
        with httpx.Client(base_url=url, timeout=120) as client:
            for attempt in range(20):  # a loaded machine answers 429/503/504 now and then: retry
                r = client.post("/v1/classify", json={"model": MODEL, "input": text, "truncate": True})
                if r.status_code not in (429, 503, 504):
                    break
                time.sleep(0.5 * (attempt + 1))
            if r.status_code != 200:
                raise SystemExit(f"/v1/classify failed: {r.status_code} {r.text[:300]}")
            if i not in chosen:
                return 0
            r = client.post("/v1/feedback", json={"request_id": r.json()["request_id"], "label": label})
            return int(r.status_code == 200)

    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(one, enumerate(rows)))


def wait_swap(url: str, promoted: str | None, timeout_s: float = 120) -> float | None:
    """Seconds until the server answers with the promoted version (None: nothing promoted)."""
    import httpx

    if promoted is None:
        return None
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        version = httpx.post(
            f"{url}/v1/classify", json={"model": MODEL, "input": "hello"}, timeout=30
        ).json()["version"]
        if version == promoted:
            return round(time.monotonic() - start, 2)
        time.sleep(0.2)
    return None


if __name__ == "__main__":
    main()
