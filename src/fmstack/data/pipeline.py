"""``fmstack data process``: run a spec's ops over a dataset version and store the result.

Driver side of the pipeline. It checks the spec against the hub (input and tokenizer models),
cuts the ops into stages (see ``stage.py``), runs each stage's shard tasks on an executor, takes
each global op's decision over the keys of all shards, then streams the last stage's shards into
the output folder (running the final op, ``pack``, on the way), writes the card with every op's
counters and pushes the version inside a recorded run whose input is the source version.

Work lives in ``$FMSTACK_HOME/work/process-<key>``, keyed by the input digest and the spec, so
``resume=True`` after a crash reuses every finished shard (a run of the same spec still going holds
it; ``fmstack hub gc`` removes it once its process is gone). Memory stays bounded by one shard per
worker plus the global ops' per-row keys (8 bytes a row for exact dedup).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fmstack.data import card as card_mod
from fmstack.data.executors.base import Executor
from fmstack.data.executors.registry import make_executor
from fmstack.data.format import DatasetManifest, SplitInfo, read_manifest, write_manifest
from fmstack.data.ops.base import SPLIT_COLUMN, Context, FinalOp, GlobalOp, OpConfig
from fmstack.data.ops.pack import PackConfig
from fmstack.data.ops.tokenize import TokenizeConfig
from fmstack.data.publish import Published, publish
from fmstack.data.shards import ShardWriter
from fmstack.data.spec import ProcessSpec
from fmstack.data.stage import (
    OpStats,
    StageTask,
    compile_spec,
    decision_path,
    run_stage,
    save_array,
    save_json,
    unit_path,
)
from fmstack.data.stats import measure
from fmstack.errors import FmstackError, InvalidInput
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.scratch import remove_tree, resumable_dir, scratch_dir

CANONICAL_ORDER = ("text", "text_pair", "label", "input_ids", "attention_mask")


@dataclass(frozen=True)
class ProcessResult:
    published: Published
    rows: dict[str, int]
    op_stats: list[dict[str, Any]]  # per op: {"op": name, ...counters}
    units: int
    resumed_units: int


@dataclass(frozen=True)
class _Run:
    spec: ProcessSpec
    input: VersionInfo
    folder: Path
    manifest: DatasetManifest
    units: list[tuple[str, str]]  # (split, shard path) per unit, in order
    labels: tuple[tuple[str, ...], ...]
    splits: tuple[str, ...]
    folders: tuple[tuple[str, str], ...]
    models: dict[str, str]  # model ref as written -> resolved ref
    workdir: Path


def _resolve(hub: HubApi, spec: ProcessSpec) -> tuple[VersionInfo, dict[str, str]]:
    """Check every hub reference of the spec, reporting all that fail at once."""
    problems, models = [], {}
    version = None
    try:
        version = hub.resolve(spec.input)
        if version.kind != "dataset":
            problems.append(f"input: {version.ref} is a {version.kind}, not a dataset")
    except FmstackError as exc:
        problems.append(f"input: {exc}")
    try:
        hub.check_repo_kind(spec.output, "dataset")
    except FmstackError as exc:
        problems.append(f"output: {exc}")
    for i, op in enumerate(spec.ops):
        for ref in op.models():
            try:
                model = hub.resolve(ref)
            except FmstackError as exc:
                problems.append(f"ops[{i}] ({op.op}): {exc}")
                continue
            if model.kind == "dataset":
                problems.append(f"ops[{i}] ({op.op}): {model.ref} is a dataset; name a model version")
            models[ref] = model.ref
    if problems or version is None:
        raise InvalidInput(
            "the spec names things the hub cannot provide:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return version, models


def _labels_by_op(ops: list[OpConfig], labels: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    out = []
    for op in ops:
        out.append(labels)
        labels = op.labels_after(labels)
    out.append(labels)
    return tuple(out)


def _prepare(
    hub: HubApi, spec: ProcessSpec, resume: bool, version: VersionInfo, models: dict[str, str]
) -> _Run:
    folder = hub.checkout(version.ref)
    manifest = read_manifest(folder)
    names = [op.op for op in spec.ops]
    if (
        "augment" in names
        and "train" not in manifest.splits
        and "split" not in names[: names.index("augment")]
    ):
        raise InvalidInput(
            f"augment only touches the train split and {version.ref} has none; add a split op before it"
        )
    folders = tuple(sorted((ref, str(hub.checkout(resolved))) for ref, resolved in models.items()))
    units = [
        (s, str(folder / shard))
        for s, info in manifest.splits.items()
        if s != "rejected"
        for shard in info.shards
    ]
    splits = tuple(
        dict.fromkeys(["train", "validation", "test", *(s for s in manifest.splits if s != "rejected")])
    )
    # The resolved model versions are part of the key: "fmstack/minilm-l6" may move between runs.
    identity = f"{version.digest}\n{spec.canonical()}\n{json.dumps(models, sort_keys=True)}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:24]
    workdir = resumable_dir(hub.settings.home, "process", key, fresh=not resume)
    labels = _labels_by_op(list(spec.ops), tuple(manifest.labels))
    return _Run(spec, version, folder, manifest, units, labels, splits, folders, models, workdir)


def _add(total: OpStats, new: OpStats) -> None:
    for op, counters in new.items():
        mine = total.setdefault(op, {})
        for k, v in counters.items():
            mine[k] = mine.get(k, 0) + v


def _run_stages(run: _Run, executor: Executor, progress: Callable[[int], None] | None) -> tuple[OpStats, int]:
    _, ops, plan = compile_spec(run.spec.model_dump_json())
    totals: OpStats = {}
    resumed = 0
    for k, stage in enumerate(plan.stages):
        tasks, done = [], []
        for unit, (split, path) in enumerate(run.units):
            marker = unit_path(run.workdir, k, unit, ".done.json")
            if marker.is_file():
                done.append(json.loads(marker.read_text()))
                continue
            source = path if k == 0 else str(unit_path(run.workdir, k - 1, unit, ".parquet"))
            tasks.append(
                StageTask(
                    str(run.workdir),
                    k,
                    unit,
                    split,
                    source,
                    run.spec.model_dump_json(),
                    run.labels,
                    run.splits,
                    run.folders,
                )
            )
        resumed += len(done)
        for stats in done:
            _add(totals, stats)
        for stats in executor.map(run_stage, tasks):
            _add(totals, stats)
            if progress is not None:
                progress(1)
        if stage.keys is not None:
            _add(totals, _decide(run, k, cast(GlobalOp, ops[stage.keys]), stage.keys))
    return totals, resumed


def _decide(run: _Run, stage: int, op: GlobalOp, index: int) -> OpStats:
    marker = run.workdir / f"decision-{stage}" / "done.json"
    if marker.is_file():
        return cast(OpStats, json.loads(marker.read_text()))
    names = sorted(
        {p.name.split(".keys.")[1][:-4] for p in (run.workdir / f"stage-{stage}").glob("*.keys.*.npy")}
    )
    keys = [
        {n: np.load(unit_path(run.workdir, stage, u, f".keys.{n}.npy"), mmap_mode="r") for n in names}
        for u in range(len(run.units))
    ]
    ctx = Context(-1, run.spec.seed, run.labels[index], run.splits, dict(run.folders))
    decisions, stats = op.decide(keys, ctx)
    for unit, decision in enumerate(decisions):
        save_array(decision_path(run.workdir, stage, unit), decision)
    result = {str(index): stats}
    save_json(marker, result)
    return result


def _ordered(table: pa.Table) -> pa.Table:
    names = [c for c in CANONICAL_ORDER if c in table.column_names]
    names += [c for c in table.column_names if c not in names and c != SPLIT_COLUMN]
    return table.select(names)


def _assemble(run: _Run, out: Path, totals: OpStats) -> tuple[dict[str, SplitInfo], list[str]]:
    spec, _, plan = compile_spec(run.spec.model_dump_json())
    last = len(plan.stages) - 1
    writers: dict[str, ShardWriter] = {}
    finals: dict[str, FinalOp] = {}
    columns: list[str] = []
    for unit in range(len(run.units)):
        table = pq.read_table(unit_path(run.workdir, last, unit, ".parquet"))
        for split in run.splits:
            part = _ordered(table.filter(pc.equal(table.column(SPLIT_COLUMN), split)))
            if plan.final is not None:
                final = finals.setdefault(split, cast(FinalOp, run.spec.ops[plan.final].build()))
                part = final.feed(part)
            columns = columns or part.column_names
            if part.num_rows:
                writers.setdefault(split, ShardWriter(out, split, spec.shard_rows)).add(part)
    for split, final in finals.items():
        rest, stats = final.finish()
        if rest.num_rows:
            writers.setdefault(split, ShardWriter(out, split, spec.shard_rows)).add(rest)
        _add(totals, {str(plan.final): stats})
    return {s: w.close() for s, w in writers.items()}, columns


def _op_rows(ops: list[OpConfig], totals: OpStats) -> list[dict[str, Any]]:
    return [{"op": op.op, **totals.get(str(i), {})} for i, op in enumerate(ops)]


def _card(run: _Run, out: Path, op_rows: list[dict[str, Any]]) -> str:
    rows = []
    for i, entry in enumerate(op_rows):
        details = ", ".join(f"{k}={v:,}" for k, v in entry.items() if k not in ("op", "rows_in", "rows_out"))
        rows.append([i, entry["op"], f"{entry.get('rows_in', '')}", f"{entry.get('rows_out', '')}", details])
    table = card_mod.table(["#", "op", "rows in", "rows out", "details"], rows)
    spec_json = json.dumps(run.spec.model_dump(mode="json"), indent=2)
    sections = [
        f"## Processing\n\nFrom `{run.input.ref}` (digest {run.input.digest[:12]}), seed {run.spec.seed}.\n\n{table}",
        f"## Spec\n\n```json\n{spec_json}\n```",
    ]
    meta = {"source": run.input.ref, "datasets": [run.input.ref], "ops": op_rows}
    return card_mod.render(run.spec.output, measure(out), sections, meta)


def process(
    hub: HubApi,
    spec: ProcessSpec,
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ProcessResult:
    """Run the spec inside a run recorded from the start (the hub references are checked first: a
    spec naming what the hub lacks is refused before any record), so a failed process is a failed
    run with its reason."""
    version, models = _resolve(hub, spec)
    run_spec = {
        **spec.model_dump(mode="json"),
        "input_digest": version.digest,
        "input_ref": version.ref,
        "models": models,
        "executor": executor,
    }
    # The executor first: on a Ray cluster entering it checks that every node reaches the hub, so a
    # node that cannot fails the command before a run is recorded or any work starts.
    with (
        make_executor(executor, workers, ray_address, hub.settings) as pool,
        hub.runs.recorded("data.process", run_spec, inputs=[version.ref, *models.values()]) as run_id,
    ):
        run = _prepare(hub, spec, resume, version, models)
        totals, resumed = _run_stages(run, pool, progress)
        published, rows, op_rows = _store(hub, run, totals, run_id)
    remove_tree(run.workdir)
    return ProcessResult(published, rows, op_rows, len(run.units), resumed)


def _store(
    hub: HubApi, run: _Run, totals: OpStats, run_id: int
) -> tuple[Published, dict[str, int], list[dict[str, Any]]]:
    """Assemble the last stage's shards in a scratch folder under ``FMSTACK_HOME`` and push them."""
    spec = run.spec
    with scratch_dir(hub.settings.home, "process") as out:
        splits, columns = _assemble(run, out, totals)
        if not splits:
            raise InvalidInput(
                f"the ops removed every row of {run.input.ref}; nothing to store (check filter and sample)"
            )
        rows = {s: info.rows for s, info in splits.items()}
        if "rejected" in run.manifest.splits:
            info = run.manifest.splits["rejected"]
            for shard in info.shards:
                (out / shard).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run.folder / shard, out / shard)
            splits["rejected"] = info
        tokenizer = next(
            (run.models[op.model] for op in spec.ops if isinstance(op, TokenizeConfig)),
            run.manifest.tokenizer,
        )
        block = next((op.block_size for op in spec.ops if isinstance(op, PackConfig)), None)
        manifest = DatasetManifest(
            splits=splits,
            columns=columns,
            labels=list(run.labels[-1]) if "label" in columns else [],
            multi_label=run.manifest.multi_label,
            tokenizer=tokenizer if "input_ids" in columns else None,
            block_size=block,
        )
        write_manifest(out, manifest)
        op_rows = _op_rows(list(spec.ops), totals)
        published = publish(
            hub,
            spec.output,
            out,
            card=_card(run, out, op_rows),
            run_id=run_id,
            message=f"process {run.input.ref}: {', '.join(op['op'] for op in op_rows)}",
        )
    return published, rows, op_rows
