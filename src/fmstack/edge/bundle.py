"""An ONNX version -> the files of an edge bundle (the format ``fmstack-edge`` reads).

A channel's TUF targets are::

    bundle.json                   the manifest: channel, bundle version, the hub ref, rollout percent,
                                  {file name: target path}, the health check's tolerance and latency bound
    bundles/N/model.onnx          the version's own files (graph, fmstack.json, tokenizer.json,
    bundles/N/fmstack.json        tokenizer_config.json): on the server they are the hub's blobs
    bundles/N/tokenizer.json
    bundles/N/golden.json         golden inputs and the outputs ``fmstack serve`` gives them

All are targets of one signed targets metadata version, so a device can neither be given files of
two bundles mixed nor a file that does not match its signed hash and size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fmstack.errors import InvalidInput
from fmstack.servable import read_descriptor

MANIFEST = "bundle.json"
# A channel's name; at most 59 characters, so that its pin alias (``pin_alias``) is a valid alias.
CHANNEL_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,58}$"
GOLDEN = "golden.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# The health check's bounds when the publisher gives none (fmstack_edge's Health has the same defaults
# for bundles without them).
DEFAULT_TOLERANCE = 0.01  # largest difference from a golden output
DEFAULT_MAX_LATENCY_MS = 1000.0  # slowest single-text prediction
# Texts of the health check when the publisher gives none: varied lengths, punctuation and digits, so
# that tokenisation, padding and pooling are all exercised.
DEFAULT_GOLDEN = [
    "hello",
    "I lost my card yesterday, what should I do?",
    "How long does a transfer to another bank take?",
    "cancel my order #4521 please",
    "The weather is lovely today.",
    "Can I change the PIN of my card at an ATM?",
    "refund",
    "Why was I charged twice for the same purchase on 3 March?",
]

# What the outputs of golden inputs are computed with: a folder and texts -> (texts, k) float32.
# ``fmstack edge publish`` passes ``fmstack serve``'s ONNX runtime, so devices are checked against
# exactly what the server answers.
Predictor = Callable[[Path, list[str]], NDArray[np.float32]]


@dataclass(frozen=True)
class Target:
    path: str  # the TUF target path
    sha256: str
    size: int
    data: bytes | None  # generated files (manifest, golden outputs); None: a file of the hub version


@dataclass(frozen=True)
class Bundle:
    version: int
    targets: list[Target]

    def generated(self) -> dict[str, bytes]:
        return {t.sha256: t.data for t in self.targets if t.data is not None}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_target(path: str, file: Path) -> Target:
    with open(file, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return Target(path, sha, file.stat().st_size, None)


def _data_target(path: str, data: bytes) -> Target:
    return Target(path, _digest(data), len(data), data)


def bundle_files(folder: Path, ref: str) -> dict[str, Path]:
    """The files of the ONNX version in ``folder`` a device needs, by name."""
    descriptor = read_descriptor(folder)
    if descriptor is None or descriptor.format != "onnx":
        raise InvalidInput(
            f"{ref} is not an ONNX version (its fmstack.json must say format 'onnx'): a device runs ONNX "
            f"only; export one with `fmstack compress {ref} --quantize int8 --output NAMESPACE/NAME`"
        )
    files = {"fmstack.json": folder / "fmstack.json", descriptor.file: folder / descriptor.file}
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            files[name] = folder / name
    if "tokenizer.json" not in files:
        raise InvalidInput(
            f"{ref} has no tokenizer.json, which the device runtime needs (no transformers there)"
        )
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise InvalidInput(f"{ref}: fmstack.json names {missing}, which the version does not hold")
    return files


def build_bundle(
    folder: Path,
    ref: str,
    channel: str,
    version: int,
    rollout: int,
    predictor: Predictor,
    golden: list[str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
) -> Bundle:
    """The targets of bundle ``version`` of ``channel`` from the ONNX version ``ref`` in ``folder``."""
    if not 0 <= rollout <= 100:
        raise InvalidInput(f"rollout {rollout}%: give a percentage from 0 to 100")
    texts = golden or DEFAULT_GOLDEN
    if any(not t.strip() for t in texts):
        raise InvalidInput("golden inputs must not be blank")
    files = bundle_files(folder, ref)
    prefix = f"bundles/{version}"
    targets = [_file_target(f"{prefix}/{name}", path) for name, path in files.items()]
    outputs = predictor(folder, texts)  # (texts, labels) or (texts, dimensions)
    golden_bytes = json.dumps({"inputs": texts, "outputs": outputs.tolist()}).encode()
    targets.append(_data_target(f"{prefix}/{GOLDEN}", golden_bytes))
    manifest = {
        "schema_version": 1,
        "channel": channel,
        "version": version,
        "ref": ref,
        "rollout": rollout,
        "files": {t.path.rsplit("/", 1)[1]: t.path for t in targets},
        "health": {"tolerance": tolerance, "max_latency_ms": max_latency_ms},
    }
    targets.append(_data_target(MANIFEST, json.dumps(manifest, indent=2).encode()))
    return Bundle(version, targets)


def pin_alias(channel: str) -> str:
    """The alias the hub server sets on the version a channel serves (``edge-stable``): while it points
    there, ``fmstack hub rm`` refuses to remove the version, so ``gc`` cannot delete the blobs devices
    download."""
    return f"edge-{channel}"
