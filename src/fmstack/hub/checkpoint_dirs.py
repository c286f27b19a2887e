"""Training checkpoint folders under ``$FMSTACK_HOME/checkpoints``: which run last used each one, so
that ``fsck`` can list them and ``gc`` can remove those that no run needs any more.

A training run that writes or resumes checkpoints there claims its folder first: a ``.run`` file holds
its run id. The run's record then decides: a succeeded run's checkpoints are finished with (``gc``
removes them); a failed or abandoned run's are what ``--resume`` continues from (listed, kept); a
running run's are in use (not listed). Knows nothing of what a checkpoint holds, except that its
complete checkpoints are the entries whose names do not start with a dot (partial ones, ``.run``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fmstack.hub.scratch import Leftover, tree_size

RUN_FILE = ".run"
RESUMABLE = (
    "`fmstack train ... --resume` with the same spec continues from them; "
    "delete the folder if that run will not be resumed"
)

# A run id -> its status ("running", "succeeded", "failed", "abandoned"), or None for no such run.
StatusOf = Callable[[int], str | None]


def checkpoints_root(home: Path) -> Path:
    return home / "checkpoints"


def claim(folder: Path, run_id: int) -> None:
    """Record that run ``run_id`` writes or resumes the checkpoints in ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_FILE).write_text(f"{run_id}\n")


def run_of(folder: Path) -> int | None:
    """The id of the run that last claimed ``folder``, or None (a folder no run claimed)."""
    try:
        text = (folder / RUN_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def checkpoint_folders(home: Path, status_of: StatusOf) -> list[Leftover]:
    """The checkpoint folders no running run uses: each with its size, and ``keep`` set on those that
    ``--resume`` may still need (gc keeps them)."""
    root = checkpoints_root(home)
    if not root.is_dir():
        return []
    found = [describe(folder, status_of) for folder in sorted(p for p in root.iterdir() if p.is_dir())]
    return [left for left in found if left is not None]


def describe(folder: Path, status_of: StatusOf) -> Leftover | None:
    """``folder`` as fsck lists it, or None while its run is running."""
    run_id = run_of(folder)
    status = status_of(run_id) if run_id is not None else None
    if status == "running":
        return None
    size = tree_size(folder)
    run = f"{status} run {run_id}" if status is not None else "no recorded run"
    if status == "succeeded":
        return Leftover(str(folder), f"checkpoints of {run}", size, live=False)
    if not _has_complete(folder):
        # Stopped before its first complete checkpoint: nothing to resume from.
        return Leftover(str(folder), f"checkpoints of {run}, none complete", size, live=False)
    return Leftover(str(folder), f"checkpoints of {run}", size, live=False, keep=RESUMABLE)


def _has_complete(folder: Path) -> bool:
    try:
        return any(not p.name.startswith(".") for p in folder.iterdir())
    except FileNotFoundError:  # removed while we looked
        return False


def removable(folder: Path, status_of: StatusOf) -> bool:
    """Checked again just before gc removes ``folder``: a run of the same spec may have claimed it
    since it was listed."""
    left = describe(folder, status_of)
    return left is not None and not left.keep
