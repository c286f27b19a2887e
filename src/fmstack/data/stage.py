"""One input shard through one stage of a pipeline: the task every executor runs.

A pipeline's ops are cut at each global op. Stage ``k`` reads its shard (the input shard for
stage 0, else stage ``k-1``'s output), applies the decision of global op ``k-1`` (a keep-mask or
split assignment), runs the row ops up to the next global op, and writes the shard plus that op's
keys. Every file is written to a temporary name and renamed; the stats file is written last and
marks the task done, so a killed run resumes at shard granularity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, NamedTuple, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmstack.data.format import decode_labels
from fmstack.data.ops.base import SPLIT_COLUMN, Context, FinalOp, GlobalOp, OpConfig, RowOp, Stats
from fmstack.data.spec import ProcessSpec

OpStats = dict[str, Stats]  # op index (as text) -> counters


@dataclass(frozen=True)
class Stage:
    apply: int | None  # the global op whose decision this stage applies first
    rows: tuple[int, ...]  # the row ops it runs
    keys: int | None  # the global op whose keys it computes last


@dataclass(frozen=True)
class Layout:
    stages: tuple[Stage, ...]
    final: int | None  # index of the final (streaming) op, if any


def layout(ops: list[OpConfig]) -> Layout:
    globals_ = [i for i, op in enumerate(ops) if op.kind == "global"]
    final = next((i for i, op in enumerate(ops) if op.kind == "final"), None)
    bounds = [-1, *globals_, final if final is not None else len(ops)]
    stages = []
    for k in range(len(globals_) + 1):
        lo, hi = bounds[k], bounds[k + 1]
        rows = tuple(i for i in range(lo + 1, hi) if ops[i].kind == "row")
        stages.append(Stage(globals_[k - 1] if k else None, rows, globals_[k] if k < len(globals_) else None))
    return Layout(tuple(stages), final)


@dataclass(frozen=True)
class StageTask:
    workdir: str
    stage: int
    unit: int
    split: str  # the input split of this shard
    source: str  # Parquet file to read
    spec_json: str
    labels: tuple[tuple[str, ...], ...]  # labels in force before each op
    splits: tuple[str, ...]
    folders: tuple[tuple[str, str], ...]  # hub ref -> local folder

    def context(self, op: int, spec: ProcessSpec) -> Context:
        return Context(self.unit, spec.seed, self.labels[op], self.splits, dict(self.folders))


def unit_path(workdir: str | Path, stage: int, unit: int, suffix: str) -> Path:
    return Path(workdir) / f"stage-{stage}" / f"{unit:05d}{suffix}"


def decision_path(workdir: str | Path, stage: int, unit: int) -> Path:
    return Path(workdir) / f"decision-{stage}" / f"{unit:05d}.npy"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write via ``write(file)`` to a temporary name, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        write(f)
    os.replace(tmp, path)


def save_array(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def save_json(path: Path, data: object) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, sort_keys=True).encode()))


class CompiledSpec(NamedTuple):
    """A spec ready to run: the parsed spec, each op's runnable form and the stages they are cut into."""

    spec: ProcessSpec
    ops: list[RowOp | GlobalOp | FinalOp]
    layout: Layout


@lru_cache(maxsize=4)
def compile_spec(spec_json: str) -> CompiledSpec:
    """Parse and build once per process: every task of a run (thousands of shards) carries the same JSON."""
    spec = ProcessSpec.model_validate_json(spec_json)
    return CompiledSpec(spec, [op.build() for op in spec.ops], layout(list(spec.ops)))


def _add(stats: OpStats, op: int, new: Stats) -> None:
    mine = stats.setdefault(str(op), {})
    for key, value in new.items():
        mine[key] = mine.get(key, 0) + int(value)


def run_stage(task: StageTask) -> OpStats:
    spec, ops, plan = compile_spec(task.spec_json)
    stage = plan.stages[task.stage]
    table = decode_labels(pq.read_table(task.source))  # the input version's shards hold label ids
    if task.stage == 0:
        table = table.append_column(SPLIT_COLUMN, pa.array([task.split] * table.num_rows, pa.string()))
    stats: OpStats = {}
    if stage.apply is not None:
        decision = np.load(decision_path(task.workdir, task.stage - 1, task.unit))
        op = cast(GlobalOp, ops[stage.apply])
        table, new = op.apply(table, decision, task.context(stage.apply, spec))
        _add(stats, stage.apply, new)
    for i in stage.rows:
        table, new = cast(RowOp, ops[i]).apply(table, task.context(i, spec))
        _add(stats, i, new)
    if stage.keys is not None:
        keys = cast(GlobalOp, ops[stage.keys]).keys(table, task.context(stage.keys, spec))
        for name, array in keys.items():
            save_array(unit_path(task.workdir, task.stage, task.unit, f".keys.{name}.npy"), array)
    table = table.combine_chunks()
    atomic_write(
        unit_path(task.workdir, task.stage, task.unit, ".parquet"), lambda f: pq.write_table(table, f)
    )
    save_json(unit_path(task.workdir, task.stage, task.unit, ".done.json"), stats)
    return stats
