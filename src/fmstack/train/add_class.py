"""A trained classifier gains a class from a few examples, without retraining (``fmstack train add-class``).

The new class's head row is *imprinted* (Qi et al., 2018, "Low-Shot Learning with Imprinted Weights"):
the mean of the examples' pooled vectors, the very input the head reads, becomes the class's
prototype. A cosine head compares the pooled vector with each row by cosine, so the prototype is
exactly a nearest-class-mean class beside the trained ones. A linear head gets the unit prototype
scaled to the mean norm of the trained rows and the mean of their biases, so its logits sit on their
scale (an approximation: a cosine head, ``--head cosine`` at training, takes new classes better).

Nothing else changes, so the output is the same kind of folder with one more label (``config.json``'s
``id2label``, the head's shape, fmstack's descriptor): it loads in transformers exactly as the old
version did and answers the same for the old classes' inputs, up to the new class's competition. It
is pushed as a new version with lineage to the old one, through a recorded ``add-class`` run.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmstack.errors import InvalidInput, Unsupported, clip
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.scratch import scratch_dir
from fmstack.servable import read_descriptor, write_descriptor
from fmstack.train.inference import Loaded, load
from fmstack.train.versions import check_output, resolve_as

MAX_EXAMPLES = 10_000  # a prototype needs a handful; more is a mistake (a dataset: retrain instead)


@dataclass(frozen=True)
class AddClassResult:
    run_id: int
    output: VersionInfo
    label: str
    examples: int
    labels: int  # classes of the new version


def imprint(classifier: nn.Module, features: torch.Tensor) -> nn.Module:
    """A copy of ``classifier`` (nn.Linear or the cosine head) with one more output row imprinted from
    ``features`` (examples, hidden): the pooled vectors of the new class's examples."""
    weight: Any = getattr(classifier, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[1] != features.shape[1]:
        raise Unsupported(f"add-class imprints a linear or cosine head over pooled vectors, not {classifier}")
    unit = features / features.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    prototype = unit.mean(dim=0)
    prototype = prototype / prototype.norm().clamp(min=1e-12)  # (hidden,)
    grown = _with_rows(classifier, weight.shape[0] + 1)
    with torch.no_grad():
        grown.weight[:-1] = weight
        bias: Any = getattr(classifier, "bias", None)
        if isinstance(classifier, nn.Linear):
            grown.weight[-1] = prototype * weight.norm(dim=1).mean()
            if bias is not None:
                grown.bias[:-1] = bias
                grown.bias[-1] = bias.mean()
        else:  # cosine: rows are compared by direction only
            grown.weight[-1] = prototype
    result: nn.Module = grown
    return result


def _with_rows(classifier: nn.Module, rows: int) -> Any:
    grown: Any = copy.deepcopy(classifier)
    hidden = int(grown.weight.shape[1])
    grown.weight = nn.Parameter(torch.empty(rows, hidden))
    if isinstance(classifier, nn.Linear):
        grown.out_features = rows
        if classifier.bias is not None:
            grown.bias = nn.Parameter(torch.empty(rows))
    return grown


@torch.no_grad()
def pooled_features(loaded: Loaded, texts: list[str]) -> torch.Tensor:
    """(texts, hidden): what the classifier head reads for each text (captured by the probe's hook)."""
    from fmstack.train.methods.cached_features import featurize
    from fmstack.train.tasks import classification
    from fmstack.train.tasks.encode import tokenize

    ctx = loaded.context()
    rows = [{**row, "label": 0} for row in tokenize(loaded.tokenizer, texts, None, loaded.max_length)]
    device = next(loaded.model.parameters()).device
    if not hasattr(loaded.model, "classifier"):
        raise Unsupported(
            f"{loaded.ref} has no 'classifier' head over a pooled vector ({type(loaded.model).__name__}); "
            "add-class works on encoder classifiers (fmstack train finetune --task classification)"
        )
    featured = featurize(loaded.model, rows, lambda r: classification.collate(r, ctx), device)
    return torch.stack([r["features"] for r in featured])


def check_examples(label: str, texts: list[str], labels: list[str]) -> list[str]:
    """The distinct non-empty examples, or every problem with the request at once."""
    examples = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    problems = []
    if not label.strip():
        problems.append("--label: give the new class's name")
    elif label in labels:
        problems.append(f"--label: the model already has the class {clip(label)!r}; pick a new name")
    if not examples:
        problems.append("--examples: no examples (one per line; blank lines are skipped)")
    if len(examples) > MAX_EXAMPLES:
        problems.append(
            f"--examples: {len(examples):,} examples; add-class takes up to {MAX_EXAMPLES:,} (with a "
            "dataset that size, retrain: fmstack train finetune)"
        )
    if problems:
        raise InvalidInput("cannot add the class:\n  - " + "\n  - ".join(problems))
    return examples


def add_class(
    hub: HubApi, ref: str, label: str, texts: list[str], output: str | None = None, alias: str | None = None
) -> AddClassResult:
    """Push ``ref`` with the class ``label`` imprinted from ``texts`` as a new version of ``output``
    (default: the same repo), moving ``alias`` to it when given (a server following it hot-swaps)."""
    version = resolve_as(hub, ref, ("model", "adapter"), "add-class")
    if version.kind == "adapter":
        raise Unsupported(
            f"{version.ref} is an adapter version; add-class grows the head of a model version (one "
            "trained with --method full, probe or setfit)"
        )
    descriptor = read_descriptor(hub.checkout(version.ref))
    if descriptor is not None and descriptor.format == "onnx":
        raise Unsupported(
            f"{version.ref} is an ONNX export; add the class to the PyTorch version it was compressed "
            "from, then compress the result again"
        )
    loaded = load(hub, version.ref)
    if loaded.task != "classification" or loaded.multi_label:
        kind = "a multi-label classifier" if loaded.multi_label else f"a {loaded.task} model"
        raise Unsupported(f"{version.ref} is {kind}; add-class adds a class to a single-label classifier")
    examples = check_examples(label, texts, loaded.labels)
    repo = output or version.repo
    check_output(hub, repo, "model")
    spec = {"model": version.ref, "label": label, "examples": len(examples), "output": repo, "alias": alias}
    with (
        hub.runs.recorded("add-class", spec, inputs=[version.ref]) as run_id,
        scratch_dir(hub.settings.home, "add-class") as tmp,
    ):
        folder = _grown_folder(hub.checkout(version.ref), loaded, label, examples, tmp / "output")
        pushed = hub.push(
            repo,
            folder,
            "model",
            message=f"add-class run {run_id}: {label} from {len(examples)} examples",
            alias=alias,
            run_id=run_id,
        )
        hub.runs.finish(run_id, "succeeded", spec_update={"result": {"output": pushed.ref}})
    return AddClassResult(run_id, pushed, label, len(examples), len(loaded.labels) + 1)


def _grown_folder(source: Path, loaded: Loaded, label: str, examples: list[str], folder: Path) -> Path:
    """The source folder's files (tokenizer, card, code) with the grown model and descriptor over them."""
    model: Any = loaded.model
    model.classifier = imprint(model.classifier, pooled_features(loaded, examples))
    labels = [*loaded.labels, label]
    model.config.num_labels = len(labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    folder.mkdir()
    for path in sorted(source.rglob("*")):  # a checkout is read-only: copy the bytes, not the modes
        target = folder / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix != ".safetensors":  # sharded or not, save_pretrained writes them anew
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    model.save_pretrained(str(folder))
    descriptor = read_descriptor(folder)
    if descriptor is not None:
        write_descriptor(folder, descriptor.model_copy(update={"labels": labels}))
    return folder
