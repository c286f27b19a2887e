"""Checkpoints for exact resume: trainable weights, the best and the averaged ones (safetensors),
optimizer, scheduler and grad-scaler state, every process's RNG state, and the loop position (step,
best metric, evaluations without gain).

A checkpoint is written into ``.tmp-step-N`` and renamed to ``step-N`` only when complete, so a run
killed mid-write leaves the previous checkpoint intact; the newest ``step-N`` is the one resumed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fmstack.errors import InvalidInput, Unavailable, clip

KEEP = 2  # newest checkpoints kept on disk


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def latest(root: Path) -> Path | None:
    done = sorted(p for p in root.glob("step-*") if (p / "state.json").is_file())
    return done[-1] if done else None


def clear(root: Path) -> None:
    for path in root.glob("*step-*"):
        shutil.rmtree(path, ignore_errors=True)


def check_writable(root: Path) -> None:
    """Refuse a checkpoint folder that cannot be written before any training (or run record) starts."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"--checkpoint-dir {clip(root)!r}: cannot write there ({exc.strerror or exc}); "
            "pick a folder you can write to"
        ) from None


@contextmanager
def _writing(root: Path) -> Iterator[None]:
    # A full disk or a folder removed mid-run: the user's to fix, with the place named.
    try:
        yield
    except OSError as exc:
        raise Unavailable(
            f"cannot write a checkpoint to {clip(root)!r} ({exc.strerror or exc}); free space there or "
            "pick another --checkpoint-dir, then rerun with --resume"
        ) from None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    root: Path,
    step: int,
    *,
    rank: int,
    barrier: Callable[[], None],
    weights: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    average: dict[str, torch.Tensor] | None,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    state: dict[str, Any],
) -> None:
    with _writing(root):
        tmp = root / f".tmp-step-{step:08d}"
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        torch.save(rng_state(), tmp / f"rng-{rank}.pt")
        barrier()
        if rank == 0:
            save_file(weights, str(tmp / "weights.safetensors"))
            if best is not None:
                save_file(best, str(tmp / "best.safetensors"))
            if average is not None:
                save_file(average, str(tmp / "average.safetensors"))
            torch.save(
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler else None,
                },
                tmp / "optimizer.pt",
            )
            (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
            tmp.rename(step_dir(root, step))
            for old in sorted(root.glob("step-*"))[:-KEEP]:
                shutil.rmtree(old, ignore_errors=True)
        barrier()


def load(path: Path, rank: int) -> dict[str, Any]:
    """Everything ``save`` wrote, for this process; a damaged checkpoint is the user's to remove."""
    try:
        return _load(path, rank)
    except (OSError, EOFError, SafetensorError, RuntimeError, ValueError, KeyError, UnpicklingError) as exc:
        raise InvalidInput(
            f"{clip(path)} is an incomplete or damaged checkpoint ({clip(exc)}); delete that folder to "
            "resume from the one before it, or start again without --resume"
        ) from None


def _load(path: Path, rank: int) -> dict[str, Any]:
    # Our own files from a run on this machine; weights_only keeps the unpickler to tensors and plain data.
    opt = torch.load(path / "optimizer.pt", weights_only=True)
    rng_file = path / f"rng-{rank}.pt"
    optional = {name: path / f"{name}.safetensors" for name in ("best", "average")}
    return {
        "weights": load_file(str(path / "weights.safetensors")),
        **{name: load_file(str(file)) if file.is_file() else None for name, file in optional.items()},
        "optimizer": opt["optimizer"],
        "scheduler": opt["scheduler"],
        "scaler": opt["scaler"],
        "rng": torch.load(rng_file, weights_only=True) if rng_file.is_file() else None,
        "state": json.loads((path / "state.json").read_text()),
    }
