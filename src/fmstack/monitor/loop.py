"""``fmstack loop run LOOP.yaml``: check the trigger; when it fires, export feedback, merge it with the
old data, train a candidate, compress it, gate it against production and move the alias.

Each step is a recorded run (``export``, ``merge``, ``train``, ``compress``, ``gate``) inside one
``loop`` run; servers that follow the alias swap to the promoted version on their own. A failed gate
(or compression gate) fails its run with the reasons and leaves the alias where it was.

"New" feedback for the trigger is feedback logged after the start of this model's last ``loop`` run,
so a candidate that failed its gate is not retrained on the same feedback again and again.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from fmstack.compress.pipeline import compress
from fmstack.data import format as dataformat
from fmstack.data.publish import publish
from fmstack.errors import FmstackError, InvalidInput
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.scratch import scratch_dir
from fmstack.monitor import drift, logs
from fmstack.monitor.export import export, write_dataset
from fmstack.monitor.gate import GateFailed, Scores, Verdict, decide, score
from fmstack.monitor.loop_spec import LoopSpec
from fmstack.monitor.reference import forward_texts, reference
from fmstack.serve.loader import load_runtime
from fmstack.train.run import train

log = logging.getLogger("fmstack.monitor")
Say = Callable[[str], None]


@dataclass(frozen=True)
class TriggerCheck:
    fired: bool
    reasons: list[str]  # the conditions that hold (fired) or how far each is (not fired)
    since: datetime | None  # feedback after this is new
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Outcome:
    status: str  # "waiting" (not triggered), "planned" (dry run), "promoted", "rejected"
    trigger: TriggerCheck
    production: str
    candidate: str | None = None
    promoted: str | None = None
    verdict: Verdict | None = None
    runs: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per step, and trigger_to_promotion


def last_attempt(hub: HubApi, spec: LoopSpec) -> datetime | None:
    """When this model's latest loop run started (feedback after it is new)."""
    runs = [r for r in hub.runs.recent("loop", limit=200) if r.spec.get("model") == spec.model]
    latest = max((r.started_at for r in runs), default=None)
    return latest if latest is None or latest.tzinfo else latest.replace(tzinfo=UTC)


def check_trigger(hub: HubApi, spec: LoopSpec, root: Path) -> TriggerCheck:
    production = hub.resolve(spec.model)
    since = last_attempt(hub, spec)
    t = spec.trigger
    fired: list[str] = []
    waiting: list[str] = []
    new = logs.feedback(root, spec.repo, None, since).num_rows
    figures: dict[str, float] = {"new_feedback": float(new)}
    if t.min_feedback is not None:
        (fired if new >= t.min_feedback else waiting).append(
            f"{new} new feedback rows (trigger at {t.min_feedback})"
        )
    if t.min_feedback_accuracy is not None:
        answers = logs.feedback(root, spec.repo, {production.ref})
        if answers.num_rows >= t.min_rows:
            accuracy = sum(answers.column("correct").to_pylist()) / answers.num_rows
            figures["feedback_accuracy"] = accuracy
            holds = accuracy < t.min_feedback_accuracy
            (fired if holds else waiting).append(
                f"feedback accuracy {accuracy:.3f} on {answers.num_rows} rows (trigger below {t.min_feedback_accuracy})"
            )
        else:
            waiting.append(
                f"{answers.num_rows} feedback rows on {production.ref}; accuracy judged from {t.min_rows}"
            )
    if t.max_label_psi is not None:
        rows = logs.predictions(root, spec.repo, {production.ref}, since)
        ref_data = reference(hub, production, root)
        if rows.num_rows >= t.min_rows and ref_data.labels:
            counts: dict[str, float] = {}
            for label in rows.column("label").to_pylist():
                counts[label] = counts.get(label, 0) + 1
            score_ = drift.psi(ref_data.labels, counts)
            figures["label_psi"] = score_
            (fired if score_ > t.max_label_psi else waiting).append(
                f"label PSI {score_:.3f} on {rows.num_rows} predictions (trigger above {t.max_label_psi})"
            )
        else:
            waiting.append(
                f"{rows.num_rows} predictions with a training reference; PSI judged from {t.min_rows}"
            )
    return TriggerCheck(bool(fired), fired if fired else waiting, since, figures)


def run_once(
    hub: HubApi, spec: LoopSpec, root: Path, *, dry_run: bool = False, say: Say = log.info
) -> Outcome:
    """One check and, when it fires (and not ``dry_run``), one retrain-gate-promote attempt."""
    production = hub.resolve(spec.model)
    trigger = check_trigger(hub, spec, root)
    outcome = Outcome("waiting", trigger, production.ref)
    if not trigger.fired:
        return outcome
    if dry_run:
        outcome.status = "planned"
        return outcome
    hub.check_writable("run the retraining loop")
    started = time.monotonic()
    recorded = {**spec.model_dump(mode="json"), "trigger": trigger.reasons, "production": production.ref}
    with hub.runs.recorded("loop", recorded, inputs=[production.ref]) as loop_run:
        outcome.runs["loop"] = loop_run
        try:
            _attempt(hub, spec, root, production, outcome, say)
        except GateFailed:
            outcome.status = "rejected"
            hub.runs.append_log(loop_run, json.dumps(_result(outcome)))
            raise  # the loop run fails with the gate's reasons
        outcome.seconds["trigger_to_promotion"] = time.monotonic() - started
        hub.runs.finish(loop_run, "succeeded", spec_update={"result": _result(outcome)})
    return outcome


def _result(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "candidate": outcome.candidate,
        "promoted": outcome.promoted,
        "runs": outcome.runs,
        "seconds": {k: round(v, 2) for k, v in outcome.seconds.items()},
        "gate": outcome.verdict.figures if outcome.verdict else None,
    }


def _step(outcome: Outcome, name: str, say: Say) -> Callable[[], None]:
    say(f"{name}...")
    start = time.monotonic()
    return lambda: outcome.seconds.__setitem__(name, time.monotonic() - start)


def _attempt(
    hub: HubApi, spec: LoopSpec, root: Path, production: VersionInfo, outcome: Outcome, say: Say
) -> None:
    done = _step(outcome, "export", say)
    exported = export(
        hub,
        production.ref,
        spec.feedback,
        root,
        pseudo_labels=spec.pseudo_labels,
        min_confidence=spec.min_confidence,
        holdout=spec.holdout,
    )
    if exported.run_id is not None:
        outcome.runs["export"] = exported.run_id
    done()
    done = _step(outcome, "merge", say)
    merged = merge(hub, spec, exported.version)
    done()
    done = _step(outcome, "train", say)
    trained = train(hub, spec.train_spec(merged.ref))
    outcome.runs["train"] = trained.run_id
    candidate = trained.output
    done()
    compress_spec = spec.compress_spec()
    if compress_spec is not None:
        done = _step(outcome, "compress", say)
        result = compress(hub, candidate.ref, compress_spec, progress=say)
        outcome.runs["compress"] = result.run_id
        if result.version is None:
            raise GateFailed(
                f"the compression gate refused the candidate {candidate.ref} (see compress run "
                f"{result.run_id}); {production.ref} stays {spec.model}"
            )
        candidate = result.version
        done()
    outcome.candidate = candidate.ref
    done = _step(outcome, "gate", say)
    outcome.verdict = gate(hub, spec, production, candidate, exported.version, outcome)
    done()
    hub.tag(candidate.ref, spec.alias)
    outcome.promoted = candidate.ref
    outcome.status = "promoted"
    say(f"promoted {candidate.ref} to {spec.model} (was {production.ref})")


def merge(hub: HubApi, spec: LoopSpec, feedback: VersionInfo) -> VersionInfo:
    """The old data's train split plus the feedback's train split (repeated ``feedback_weight`` times),
    with the old data's validation split, as a version of ``spec.merged_repo`` made by a merge run."""
    old = hub.checkout(spec.data)
    new = hub.checkout(feedback.ref)
    old_manifest, new_manifest = dataformat.read_manifest(old), dataformat.read_manifest(new)
    if "train" not in old_manifest.splits:
        raise InvalidInput(f"data: {spec.data} has no train split to retrain on")
    data_ref = hub.resolve(spec.data).ref
    inputs = [data_ref, feedback.ref]
    with (
        hub.runs.recorded(
            "merge",
            {"data": data_ref, "feedback": feedback.ref, "weight": spec.feedback_weight},
            inputs=inputs,
        ) as run_id,
        scratch_dir(hub.settings.home, "merge") as tmp,
    ):
        splits: dict[str, list[dict[str, Any]]] = {"train": _text_label(old, "train")}
        if "train" in new_manifest.splits:
            splits["train"] += _text_label(new, "train") * spec.feedback_weight
        if "validation" in old_manifest.splits:
            splits["validation"] = _text_label(old, "validation")
        folder = tmp / "dataset"
        folder.mkdir()
        write_dataset(folder, splits)
        card = f"# {spec.data} + feedback\n\n{data_ref} train split plus {feedback.ref} (x{spec.feedback_weight}).\n"
        published = publish(
            hub, spec.merged_repo, folder, card=card, run_id=run_id, message="old data + feedback"
        )
    return published.version


def _text_label(folder: Path, split: str) -> list[dict[str, Any]]:
    table: pa.Table = dataformat.read_split(folder, split).select(["text", "label"])
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _predict(hub: HubApi, ref: str, texts: list[str]) -> list[str]:
    _, runtime = load_runtime(hub, ref, threads=None)
    try:
        labels = runtime.info.labels
        return [labels[int(i)] for i in forward_texts(runtime, texts).argmax(axis=1)] if texts else []
    finally:
        runtime.close()


def gate(
    hub: HubApi,
    spec: LoopSpec,
    production: VersionInfo,
    candidate: VersionInfo,
    feedback: VersionInfo,
    outcome: Outcome,
) -> Verdict:
    """Score production and the candidate on the held-out set and on held-out feedback, as a gate
    run; ``GateFailed`` (the run failed, with the reasons) when the candidate does not pass."""
    g = spec.gate
    holdout_ref = hub.resolve(g.holdout).ref
    inputs = [production.ref, candidate.ref, holdout_ref, feedback.ref]
    with hub.runs.recorded(
        "gate", {**g.model_dump(), "production": production.ref, "candidate": candidate.ref}, inputs=inputs
    ) as run_id:
        outcome.runs["gate"] = run_id
        held = dataformat.read_split(hub.checkout(holdout_ref), g.holdout_split).select(["text", "label"])
        if g.limit is not None and held.num_rows > g.limit:
            held = held.take(sorted(random.Random(0).sample(range(held.num_rows), g.limit)))
        fb_folder = hub.checkout(feedback.ref)
        fb = (
            dataformat.read_split(fb_folder, "test").select(["text", "label"])
            if "test" in dataformat.read_manifest(fb_folder).splits
            else pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.string())})
        )
        texts, truth = held.column("text").to_pylist(), held.column("label").to_pylist()
        fb_texts, fb_truth = fb.column("text").to_pylist(), fb.column("label").to_pylist()
        scores: dict[str, Scores] = {}
        for name, ref in (("production", production.ref), ("candidate", candidate.ref)):
            predicted = _predict(hub, ref, texts + fb_texts)
            scores[name] = score(predicted[: len(texts)], truth)
            scores[f"{name}_fb"] = score(predicted[len(texts) :], fb_truth)
        verdict = decide(
            g, scores["production"], scores["candidate"], scores["production_fb"], scores["candidate_fb"]
        )
        hub.runs.log_metrics(run_id, 0, verdict.figures)
        if not verdict.passed:
            outcome.verdict = verdict
            raise GateFailed(
                f"the candidate {candidate.ref} did not pass the gate (run {run_id}); {spec.model} stays at "
                f"{production.ref}:\n  - " + "\n  - ".join(verdict.reasons)
            )
        hub.runs.finish(run_id, "succeeded", spec_update={"result": verdict.figures})
    return verdict


def run_daemon(hub: HubApi, spec: LoopSpec, root: Path, stop: threading.Event, say: Say = log.info) -> None:
    """Check every ``poll_s`` seconds until ``stop`` is set; a failed attempt is reported, not fatal."""
    while not stop.is_set():
        try:
            outcome = run_once(hub, spec, root, say=say)
            if outcome.status == "waiting":
                say("waiting: " + "; ".join(outcome.trigger.reasons))
        except FmstackError as exc:
            say(f"attempt failed, production unchanged: {exc}")
        stop.wait(spec.poll_s)
