"""The steps every recipe shares, each through the library function its command uses and each a
recorded run: find or import the base, ingest the user's file, process it (normalise, deduplicate,
split when the file has no splits), train, compress (int8, gated on validation), and publish a
version made from another one with a change (a threshold, an index). Knows nothing of the terminal:
``say`` is told when a step starts and how long it took."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fmstack.compress.pipeline import compress
from fmstack.compress.spec import CompressSpec
from fmstack.data import format as dataformat
from fmstack.data.ingest import IngestSpec, ingest
from fmstack.data.pipeline import process
from fmstack.data.spec import parse_spec
from fmstack.errors import Conflict, InvalidInput, NotFound
from fmstack.hub import Hub, HubApi, VersionInfo
from fmstack.hub.importers import BUILTIN_REPO, import_builtin
from fmstack.hub.scratch import scratch_dir
from fmstack.recipes.result import RecipeResult, Say
from fmstack.train.run import train
from fmstack.train.spec import TrainSpec

T = TypeVar("T")
SPLITS = ("train", "validation", "test")


def timed(result: RecipeResult, step: str, say: Say, work: Callable[[], T]) -> T:
    """Run ``work`` as the step ``step``: announced, timed, its own duration recorded."""
    say(step, None)
    start = time.perf_counter()
    value = work()
    result.seconds[step] = time.perf_counter() - start
    say(step, result.seconds[step])
    return value


def base_model(hub: HubApi, ref: str) -> VersionInfo:
    """The base version ``ref``; the built-in MiniLM is imported from its package when absent."""
    try:
        return hub.resolve(ref)
    except NotFound:
        if ref.split(":")[0].split("@")[0] != BUILTIN_REPO or not isinstance(hub, Hub):
            raise
    return import_builtin(hub)


def check_files(paths: list[str]) -> None:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise InvalidInput(
            f"no such file: {', '.join(missing)} (give your data as CSV, TSV, JSONL or Parquet)"
        )


def ingest_and_process(
    hub: HubApi, ingest_spec: IngestSpec, output: str, seed: int
) -> tuple[VersionInfo, VersionInfo]:
    """The raw and the processed dataset versions. Files named train/validation/test keep their
    splits; otherwise every row is split 70/10/20 here (stratified by label when there is one)."""
    check_files(ingest_spec.paths)
    raw = ingest(hub, ingest_spec)
    ops: list[dict[str, Any]] = [{"op": "normalize"}, {"op": "dedup_exact"}]
    if not set(SPLITS) <= set(raw.built.rows):
        ops.append({"op": "split", "train": 0.7, "validation": 0.1, "test": 0.2})
    spec = parse_spec({"input": raw.published.version.ref, "output": output, "seed": seed, "ops": ops})
    clean = process(hub, spec)
    version = clean.published.version
    splits = dataformat.read_manifest(hub.checkout(version.ref)).splits
    empty = [name for name in SPLITS if name not in splits or splits[name].rows == 0]
    if empty:  # refused before training: a recipe needs all three
        rows = {name: info.rows for name, info in splits.items()}
        raise InvalidInput(
            f"after deduplication and splitting, {version.ref} has no rows in {', '.join(empty)} "
            f"(rows per split: {rows}): give more rows, or files named train/validation/test"
        )
    return raw.published.version, version


def train_model(hub: HubApi, spec: TrainSpec) -> VersionInfo:
    return train(hub, spec).output


def compress_int8(hub: HubApi, ref: str, data_ref: str, max_drop: float, output: str) -> VersionInfo:
    """ONNX int8 of ``ref``, gated on the validation split (test stays for the one final report)."""
    spec = CompressSpec(
        quantize="int8",
        latency_runs=3,
        eval_data=data_ref,
        eval_split="validation",
        max_accuracy_drop=max_drop,
        output=output,
    )
    result = compress(hub, ref, spec)
    if result.version is None:
        report = result.report
        raise Conflict(
            f"the int8 model was refused by its accuracy gate: {report.metric} {report.before.quality}% -> "
            f"{report.after.quality}% on validation is a drop of {report.drop_points} points, more than "
            f"--max-accuracy-drop {max_drop}; nothing was registered (run {result.run_id}). Raise "
            "--max-accuracy-drop to accept it"
        )
    return result.version


def publish_derived(
    hub: HubApi,
    source: VersionInfo,
    repo: str,
    kind: str,
    spec: dict[str, Any],
    inputs: list[str],
    change: Callable[[Path], dict[str, float]],
) -> VersionInfo:
    """A new model version of ``repo``: ``source``'s files changed by ``change(folder)`` (which returns
    the metrics to record), pushed by a run of ``kind`` consuming ``inputs``. Unchanged files cost no
    space: blobs are stored once by content."""
    with hub.runs.recorded(kind, spec, inputs=inputs) as run_id, scratch_dir(hub.settings.home, kind) as tmp:
        folder = Path(tmp) / "version"
        shutil.copytree(hub.checkout(source.ref), folder)
        for path in [folder, *folder.rglob("*")]:  # checkouts are read-only
            path.chmod(0o755 if path.is_dir() else 0o644)
        metrics = change(folder)
        hub.runs.log_metrics(run_id, 0, metrics)
        version = hub.push(repo, folder, "model", message=f"{kind} of {source.ref}", run_id=run_id)
        hub.runs.finish(run_id, "succeeded", spec_update={"result": metrics})
    return version
