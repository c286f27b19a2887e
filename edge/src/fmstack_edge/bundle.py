"""What a bundle is, as ``fmstack edge publish`` writes it and the agent reads it.

A channel's signed TUF targets name one ``bundle.json`` and the files it lists::

    bundle.json                 {"schema_version": 1, "channel", "version", "ref", "rollout",
                                 "files": {"model.onnx": "bundles/7/model.onnx", ...}, "health": {...}}
    bundles/7/model.onnx        the ONNX graph (and fmstack.json, tokenizer.json, tokenizer_config.json)
    bundles/7/golden.json       {"inputs": [texts], "outputs": [[floats]]}: what ``fmstack serve`` answered

Every file is a TUF target of the same signed targets metadata, so files of two bundles cannot be
mixed: each is checked against the hash and size this version of the metadata names for its path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmstack_edge.errors import UpdateRejected

MANIFEST = "bundle.json"
GOLDEN = "golden.json"
REQUIRED = ("fmstack.json", "tokenizer.json", GOLDEN)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Health:
    tolerance: float = 0.01  # largest |difference| from a golden output (scores or vector components)
    max_latency_ms: float = 1000.0  # slowest single-text prediction accepted


@dataclass(frozen=True)
class Manifest:
    channel: str
    version: int
    ref: str
    rollout: int  # percent of devices (by a hash of the device id) that take this bundle
    files: dict[str, str]  # file name in the slot -> TUF target path
    health: Health

    @property
    def repo(self) -> str:
        """The served name: the version's repo (``acme/intent:3`` -> ``acme/intent``)."""
        return self.ref.split(":")[0].split("@")[0]


def parse_manifest(data: bytes) -> Manifest:
    """A verified ``bundle.json``'s content, checked for shape (the signature was checked by TUF)."""
    try:
        raw: dict[str, Any] = json.loads(data)
        files = {str(k): str(v) for k, v in raw["files"].items()}
        health = raw.get("health", {})
        manifest = Manifest(
            channel=str(raw["channel"]),
            version=int(raw["version"]),
            ref=str(raw["ref"]),
            rollout=int(raw["rollout"]),
            files=files,
            health=Health(float(health.get("tolerance", 0.01)), float(health.get("max_latency_ms", 1000.0))),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UpdateRejected(f"bundle.json is malformed ({type(exc).__name__}: {exc})") from None
    if raw.get("schema_version") != 1:
        raise UpdateRejected(
            f"bundle.json schema_version {raw.get('schema_version')!r}; upgrade fmstack-edge"
        )
    bad = [name for name in files if not _NAME.match(name)]
    missing = [name for name in REQUIRED if name not in files]
    if bad or missing or not 0 <= manifest.rollout <= 100 or manifest.version < 1:
        raise UpdateRejected(
            f"bundle.json is not a valid bundle: bad file names {bad}, missing files {missing}, "
            f"rollout {manifest.rollout}, version {manifest.version}"
        )
    return manifest


def read_golden(folder: Path) -> tuple[list[str], list[list[float]]]:
    try:
        raw = json.loads((folder / GOLDEN).read_text())
        inputs = [str(t) for t in raw["inputs"]]
        outputs = [[float(x) for x in row] for row in raw["outputs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UpdateRejected(f"{folder / GOLDEN}: unreadable golden outputs ({exc})") from None
    if not inputs or len(inputs) != len(outputs):
        raise UpdateRejected(f"{folder / GOLDEN}: {len(inputs)} inputs but {len(outputs)} outputs")
    return inputs, outputs
