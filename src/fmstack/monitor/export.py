"""``fmstack monitor export REF --to NS/NAME``: feedback (and, when asked, confident predictions as
pseudo-labels) as a dataset version, produced by an ``export`` run whose inputs are the model versions
that answered, and whose spec names the log rows it read.

Feedback is ground truth whichever version it was given on, so every version of REF's repo counts.
A share (``holdout``) of the feedback, chosen by a hash of its request id (stable across exports),
goes to a ``test`` split that training never sees: the loop's gate scores candidates on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fmstack.data import format as dataformat
from fmstack.data.publish import publish
from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.scratch import scratch_dir
from fmstack.monitor import logs


@dataclass(frozen=True)
class Exported:
    version: VersionInfo
    reused: bool  # the same rows were the latest version already
    run_id: int | None
    splits: dict[str, int]
    feedback: int
    pseudo: int


def in_holdout(request_id: str, share: float) -> bool:
    """Whether a request's feedback belongs to the held-out split: the same answer for an id every time."""
    digest = hashlib.sha256(request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def rows(
    root: Path,
    repo: str,
    since: datetime | None,
    pseudo_labels: bool,
    min_confidence: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(feedback rows with a known label, pseudo-labelled rows) as text/label/request_id/version/source."""
    predicted = logs.predictions(root, repo, None, since)
    answered = logs.join(predicted, logs.feedback(root, repo, None, since))
    truth = [
        {
            "text": a.text,
            "label": a.label,
            "request_id": a.request_id,
            "version": a.version,
            "source": "feedback",
        }
        for a in answered
        if a.label is not None
    ]
    pseudo: list[dict[str, Any]] = []
    if pseudo_labels and predicted.num_rows:
        seen = {(a.request_id, a.index) for a in answered}
        confident = predicted.filter(pc.greater_equal(predicted["confidence"], min_confidence))
        pseudo = [
            {
                "text": r["text"],
                "label": r["label"],
                "request_id": r["request_id"],
                "version": r["version"],
                "source": "pseudo",
            }
            for r in confident.select(["request_id", "index", "text", "label", "version"]).to_pylist()
            if (r["request_id"], r["index"]) not in seen
        ]
    return truth, pseudo


def export(
    hub: HubApi,
    ref: str,
    to: str,
    root: Path,
    *,
    since: datetime | None = None,
    pseudo_labels: bool = False,
    min_confidence: float = 0.9,
    holdout: float = 0.2,
) -> Exported:
    """Write the dataset version (see the module docstring); refused when there is nothing to export."""
    model = hub.resolve(ref)
    hub.check_writable("export feedback")
    hub.check_repo_kind(to, "dataset")
    truth, pseudo = rows(root, model.repo, since, pseudo_labels, min_confidence)
    if not truth and not pseudo:
        window = f" since {since.isoformat()}" if since else ""
        raise InvalidInput(
            f"no feedback with a label for {model.repo}{window} in the log at {root}: send POST /v1/feedback "
            "to a server started with --log-predictions, or add --pseudo-labels"
        )
    held = [r for r in truth if in_holdout(r["request_id"], holdout)]
    train = [r for r in truth if not in_holdout(r["request_id"], holdout)] + pseudo
    splits = {name: part for name, part in (("train", train), ("test", held)) if part}
    versions = sorted({r["version"] for r in truth + pseudo})
    spec = {
        "model": model.ref,
        "log": str(root),
        "since": since.isoformat() if since else None,
        "pseudo_labels": pseudo_labels,
        "min_confidence": min_confidence,
        "holdout": holdout,
        "versions": versions,
        "rows": {"feedback": len(truth), "pseudo": len(pseudo)},
    }
    inputs = [v for v in versions if _exists(hub, v)]
    with (
        hub.runs.recorded("export", spec, inputs=inputs) as run_id,
        scratch_dir(hub.settings.home, "export") as tmp,
    ):
        folder = tmp / "dataset"
        folder.mkdir()
        write_dataset(folder, splits)
        card = (
            f"# Feedback on {model.repo}\n\n{len(truth)} feedback rows and {len(pseudo)} pseudo-labels "
            f"from the prediction log, exported by run {run_id}.\n"
        )
        published = publish(hub, to, folder, card=card, run_id=run_id, message=f"feedback on {model.repo}")
    counts = {name: len(part) for name, part in splits.items()}
    return Exported(published.version, published.reused, published.run_id, counts, len(truth), len(pseudo))


def write_dataset(folder: Path, splits: dict[str, list[dict[str, Any]]]) -> None:
    """A dataset version folder of ``splits`` (rows with text and label, other columns kept)."""
    infos = {
        name: dataformat.write_split(folder, name, [pa.Table.from_pylist(part)])
        for name, part in splits.items()
    }
    columns = list(next(iter(splits.values()))[0])
    labels = sorted({r["label"] for part in splits.values() for r in part})
    dataformat.write_manifest(
        folder, dataformat.DatasetManifest(splits=infos, columns=columns, labels=labels)
    )


def _exists(hub: HubApi, ref: str) -> bool:
    try:
        hub.resolve(ref)
    except NotFound:
        return False
    return True
