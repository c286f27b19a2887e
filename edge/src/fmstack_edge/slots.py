"""A/B slots on disk and the one file that says which serves: ``DIR/state.json``.

``DIR/slots/a`` and ``DIR/slots/b`` hold two bundles; ``state.json`` names the active one, the one to
roll back to, the highest bundle version ever accepted, and the versions refused. It is only ever
replaced whole (write a temporary file, fsync, rename, fsync the folder), so a SIGKILL at any moment
leaves either the old state or the new one: the switch to a new slot is that one rename.

A slot that is about to be overwritten is first dropped from the state (it stops being a rollback
target), so a download killed half-way leaves a slot nothing points at.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Slot = Literal["a", "b"]
STATE = "state.json"
# In each slot: the graph as ONNX Runtime optimised it on this device (see ``Model``), for fast restarts.
OPTIMIZED = ".optimized.onnx"


@dataclass
class Probation:
    """A slot just switched to: rolled back if the agent crashes ``max_crashes`` times before it is
    confirmed (served ``probation_s`` seconds without a crash)."""

    slot: Slot
    since: float
    crashes: int = 0


@dataclass
class State:
    active: Slot | None = None
    previous: Slot | None = None
    versions: dict[str, int] = field(default_factory=dict)  # slot -> bundle version it holds
    refs: dict[str, str] = field(default_factory=dict)  # slot -> the hub version it holds
    highest: int = 0  # the highest bundle version ever accepted: nothing lower is installed
    rejected: list[int] = field(default_factory=list)  # bundle versions refused (never retried)
    probation: Probation | None = None
    running: bool = False  # true while an agent runs on this folder; left true by a crash
    last_error: str | None = None

    @property
    def version(self) -> int | None:
        return self.versions.get(self.active) if self.active else None

    def inactive(self) -> Slot:
        return "b" if self.active == "a" else "a"


class Slots:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "slots").mkdir(parents=True, exist_ok=True)

    def path(self, slot: Slot) -> Path:
        return self.root / "slots" / slot

    def load(self) -> State:
        path = self.root / STATE
        for stale in self.root.glob(f".{STATE}.*"):  # a write killed before its rename
            stale.unlink(missing_ok=True)
        if not path.is_file():
            return State()
        raw = json.loads(path.read_text())
        probation = raw.pop("probation", None)
        return State(**raw, probation=Probation(**probation) if probation else None)

    def save(self, state: State) -> None:
        path = self.root / STATE
        tmp = self.root / f".{STATE}.{os.getpid()}"
        with open(tmp, "w") as out:
            json.dump(asdict(state), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.root)

    def prepare(self, state: State) -> Path:
        """Empty the inactive slot for a download; it stops being anyone's rollback target first."""
        slot = state.inactive()
        if state.previous == slot or slot in state.versions:
            state.previous = None if state.previous == slot else state.previous
            state.versions.pop(slot, None)
            state.refs.pop(slot, None)
            self.save(state)
        folder = self.path(slot)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def switch(self, state: State, version: int, ref: str) -> None:
        """Make the inactive slot (already downloaded and checked) active: one atomic state write."""
        _fsync_tree(self.path(state.inactive()))
        slot = state.inactive()
        state.previous, state.active = state.active, slot
        state.versions[slot] = version
        state.refs[slot] = ref
        state.highest = max(state.highest, version)
        state.probation = Probation(slot, time.time())
        state.last_error = None
        self.save(state)

    def roll_back(self, state: State, reason: str) -> bool:
        """Back to the previous slot (the failed version is never retried); False when there is none."""
        failed = state.version
        if failed is not None and failed not in state.rejected:
            state.rejected.append(failed)
        if state.previous is None or state.previous not in state.versions:
            state.probation = None
            state.last_error = reason
            self.save(state)
            return False
        state.active, state.previous = state.previous, None
        state.probation = None
        state.last_error = reason
        self.save(state)
        return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """The slot's files reach the disk before the state names the slot (a power cut must not leave an
    active slot with empty files)."""
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(folder)
