"""The training spec: one typed model shared by the CLI flags and ``fmstack train run SPEC.yaml``.

``parse_spec`` collects every problem (field errors and cross-field rules) before raising, so the user
fixes a bad spec in one pass. A YAML file is read by ``fmstack.specfile``, the loader every spec shares.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmstack.errors import InvalidInput, clip
from fmstack.train import registry

TaskName = Literal["classification", "embedding", "mlm", "clm"]
MethodName = Literal["probe", "full", "lora", "ia3", "adapter", "prefix", "setfit"]
Precision = Literal["no", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda", "mps"]
ARCHS = ("bert-tiny", "bert-small", "gpt2-tiny", "gpt2-small")


class TrainSpec(BaseModel):
    """Everything that decides a training run. Field docs are the CLI's --help."""

    # allow_inf_nan=False: "--lr inf" or "nan" is refused here, not after a run of NaN losses.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: Literal[1] = 1
    # what
    task: TaskName = Field(description="What to train the model for.")
    method: MethodName = Field("full", description="Which weights train and what the output is.")
    base: str | None = Field(
        None, description="Base model version ref (NS/NAME[:N|@ALIAS]), e.g. fmstack/minilm-l6."
    )
    arch: str | None = Field(
        None, description="Built-in architecture to pretrain from scratch: " + ", ".join(ARCHS)
    )
    tokenizer: str | None = Field(None, description="Model version whose tokenizer --arch uses.")
    data: str = Field(description="Dataset version ref (NS/NAME[:N|@ALIAS]).")
    train_split: str = Field("train", description="Split to train on.")
    eval_split: str | None = Field(None, description="Split to evaluate on (default: validation if present).")
    output: str | None = Field(None, description="NS/NAME to push the result to.")
    # method options
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha (the update is scaled by alpha / rank).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA path's input.")
    adapter_type: Literal["houlsby", "pfeiffer"] = Field(
        "houlsby",
        description="Bottleneck adapters after attention and feed-forward (houlsby) or after "
        "feed-forward only (pfeiffer).",
    )
    adapter_size: int = Field(64, ge=1, description="Bottleneck adapter width.")
    prefix_length: int = Field(16, ge=1, description="Prefix tuning: prefix vectors per layer.")
    setfit_epochs: int = Field(
        1,
        ge=1,
        description="SetFit: passes of contrastive tuning of the encoder over the labelled rows, before "
        "the head trains for --epochs.",
    )
    setfit_lr: float = Field(
        5e-5,  # chosen on a BANKING77 10-shot validation split: bench/README.md, "Few-shot"
        gt=0,
        description="SetFit: learning rate of the encoder's contrastive tuning (--lr is the head's).",
    )
    label_names_as_examples: bool = Field(
        False,
        description="SetFit: each label's name ('card_arrival' reads 'card arrival') joins its class as "
        "one more labelled row, in both phases. Helps when the names describe the classes; leave it off "
        "for codes such as '0' or 'A12'.",
    )
    unlabeled: str | None = Field(
        None,
        description="SetFit: a dataset version of unlabelled texts from the same domain (its train "
        "split's text column; labels there are ignored), e.g. from 'fmstack monitor export'. Self-"
        "training: a teacher on the tuned encoder, helped by each text's nearest neighbours, labels them; "
        "the encoder takes one pass over them, then the head trains on them too.",
    )
    # task options
    pooling: Literal["mean", "cls"] = Field(
        "mean",
        description="How token states become one vector (embeddings) or the classifier's input: the "
        "mean of the tokens, or cls: the architecture's own head.",
    )
    head: Literal["linear", "cosine"] = Field(
        "linear",
        description="Classification, a new head over the mean of the token states: linear, or cosine "
        "(20 x the cosine between the pooled vector and each class's weights; no bias).",
    )
    normalize: bool = Field(True, description="Embeddings: L2-normalise the pooled vectors.")
    temperature: float = Field(
        0.05, gt=0, description="Embeddings: softmax temperature of the contrastive loss."
    )
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="MLM: fraction of tokens masked.")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Single-label classification: cross-entropy label smoothing (0 = off)."
    )
    rdrop: float = Field(
        0.0,
        ge=0,
        description="Single-label classification: R-Drop, the weight of the symmetric KL between two "
        "dropout passes of every batch (e.g. 1.0; 0 = off). Each step then computes the batch twice.",
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none",
        description="Single-label classification: balanced weighs each class's loss by n / (classes x "
        "its count in the train split), so rare classes weigh as much in total as frequent ones "
        "(imbalanced data); none: every example alike.",
    )
    # optimisation
    epochs: int = Field(3, ge=1, description="Passes over the train split.")
    max_steps: int | None = Field(
        None,
        ge=1,
        description="Stop after this many optimizer steps, or at the end of --epochs if that comes first.",
    )
    lr: float | None = Field(None, gt=0, description="Peak learning rate (default depends on the method).")
    head_lr: float | None = Field(
        None,
        gt=0,
        description="Classification: peak learning rate of the task head (default: 3e-3 for full, else --lr).",
    )
    layer_decay: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Layer-wise learning-rate decay: each transformer block trains at this times the "
        "rate of the block above it, the embeddings at this times the lowest block's (e.g. 0.9; "
        "default: one rate for the whole encoder).",
    )
    ema: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Keep an exponential moving average of the trained weights with this decay (e.g. "
        "0.998: about the last 500 steps) and evaluate and save it instead of the last step's weights.",
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and norms).")
    batch_size: int = Field(32, ge=1, description="Examples per micro-batch per process.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Fraction of the steps that warm up.")
    schedule: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Learning rate after warmup."
    )
    max_length: int = Field(128, ge=8, description="Truncate sequences to this many tokens.")
    bucket: bool = Field(True, description="Length-bucketed batches (less padding).")
    precision: Precision = Field("no", description="Mixed precision (fp16 needs a GPU).")
    device: Device = Field("auto", description="auto picks cuda, then mps, then cpu.")
    compile: bool = Field(False, description="torch.compile the model.")
    seed: int = Field(0, description="Seed for initialisation, data order and masking.")
    # evaluation, checkpoints
    eval_every: int | None = Field(None, ge=1, description="Evaluate every N steps (and always at the end).")
    early_stopping: int | None = Field(None, ge=1, description="Stop after N evaluations without gain.")
    save_every: int | None = Field(None, ge=1, description="Checkpoint every N optimizer steps.")
    checkpoint_dir: str | None = Field(
        None, description="Where checkpoints go (default: a folder per spec under FMSTACK_HOME)."
    )
    resume: bool = Field(False, description="Continue from the latest checkpoint of this same spec.")
    # scale-out
    nproc: int = Field(1, ge=1, description="Processes (torchrun) or, with executor ray, Ray Train workers.")
    executor: Literal["local", "ray"] = Field(
        "local",
        description="local (this machine; torchrun with --nproc) or ray (Ray Train, needs the ray extra).",
    )
    peak_flops: float | None = Field(None, gt=0, description="Peak FLOP/s for the MFU estimate.")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else registry.method(self.method).default_lr

    @property
    def head_learning_rate(self) -> float | None:
        """The classification head's own peak learning rate; None: the same as everything else."""
        if self.head_lr is not None or "head_lr" not in registry.task(self.task).options:
            return self.head_lr
        return registry.method(self.method).default_head_lr

    def identity(self) -> str:
        """A digest of the fields that decide the weights: equal specs share checkpoints."""
        skip = {"resume", "checkpoint_dir", "output", "executor", "peak_flops"}
        fields = {k: v for k, v in self.model_dump().items() if k not in skip}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _rules(values: dict[str, Any]) -> list[str]:
    """Cross-field problems, on whatever fields parsed (so they add to field errors): the method's
    own (its plugin's ``tasks`` and ``rules``), those of pretraining, then the task's (its module's
    ``options`` and ``rules``)."""
    problems: list[str] = []
    task, method = values.get("task"), values.get("method", "full")
    if method in registry.METHODS:
        plugin = registry.METHODS[method]
        if task in registry.TASKS and task not in plugin.tasks:
            ok = ", ".join(registry.methods_for(task))
            problems.append(f"method: {method!r} does not apply to task {task!r} (use one of: {ok})")
        problems += plugin.rules(values)
    problems += _source_rules(values)
    if method in registry.METHODS:
        problems += _options_of_others("method", method, registry.methods_reading, values)
    if task in registry.TASKS:
        problems += _options_of_others("task", task, registry.tasks_reading, values)
        problems += registry.TASKS[task].rules(values)
    return problems


def _options_of_others(
    kind: str, chosen: str, readers: Callable[[str], tuple[str, ...]], values: dict[str, Any]
) -> list[str]:
    """An option that only other tasks (or methods) read, their modules' ``options``, set away from
    its default, is a mistake the run would silently ignore."""
    problems: list[str] = []
    for option, field in TrainSpec.model_fields.items():
        owners = readers(option)
        if owners and chosen not in owners and values.get(option, field.default) != field.default:
            problems.append(
                f"{option}: applies to {' and '.join(owners)} only; {kind} {chosen!r} has no {option}"
            )
    return problems


def _source_rules(values: dict[str, Any]) -> list[str]:
    """A run starts from a base model or from a built-in architecture (pretraining from scratch)."""
    problems: list[str] = []
    task, method = values.get("task"), values.get("method", "full")
    base, arch = values.get("base"), values.get("arch")
    if base and arch:
        problems.append("base/arch: give either a base model (--base) or an architecture (--arch), not both")
    if not base and not arch:
        problems.append("base/arch: give a base model ref (--base) or an architecture to pretrain (--arch)")
    if arch is not None and arch not in ARCHS:
        problems.append(f"arch: unknown architecture {arch!r} (use one of: {', '.join(ARCHS)})")
    if arch is not None and task not in (None, "mlm", "clm"):
        problems.append(f"arch: pretraining from scratch is for mlm/clm, not {task!r}; fine-tune a --base")
    if arch and method not in ("full", None):
        problems.append(f"method: a model trained from scratch must use method 'full', not {method!r}")
    if arch and str(arch).startswith("gpt2") and task == "mlm":
        problems.append("arch: gpt2 architectures are causal; use --objective clm")
    if arch and str(arch).startswith("bert") and task == "clm":
        problems.append("arch: bert architectures are masked LMs; use --objective mlm")
    if values.get("early_stopping") and not values.get("eval_every"):
        problems.append("early_stopping: needs eval_every (how often to evaluate)")
    return problems


def parse_spec(raw: dict[str, Any]) -> TrainSpec:
    """Validate a spec dict, reporting every field and cross-field problem at once."""
    problems: list[str] = []
    bad: set[str] = set()
    try:
        spec: TrainSpec | None = TrainSpec.model_validate(raw)
    except ValidationError as exc:
        spec = None
        for err in exc.errors():
            loc = clip(".".join(str(p) for p in err["loc"]) or "spec")
            bad.add(str(err["loc"][0]) if err["loc"] else "")
            if err["type"] == "extra_forbidden":
                problems.append(f"{loc}: not a training spec field{_did_you_mean(loc)}")
                continue
            shown = f" (got {clip(repr(err['input']))})" if err["type"] != "missing" else ""
            problems.append(f"{loc}: {err['msg']}{shown}")
    good = {k: v for k, v in raw.items() if k not in bad}
    problems += _rules(spec.model_dump() if spec else good)
    if problems:
        listed = "\n  - ".join(problems)
        raise InvalidInput(f"the training spec has {len(problems)} problem(s):\n  - {listed}")
    if spec is None:  # unreachable: a pydantic failure always adds a problem above
        raise InvalidInput("the training spec is invalid")
    return spec


# Hugging Face TrainingArguments names people bring with them.
_KNOWN_AS = {
    "learning_rate": "lr",
    "num_train_epochs": "epochs",
    "num_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "lr_scheduler_type": "schedule",
    "eval_steps": "eval_every",
    "save_steps": "save_every",
    "bf16": "precision",
    "fp16": "precision",
}


def _did_you_mean(name: str) -> str:
    close = [_KNOWN_AS[name]] if name in _KNOWN_AS else []
    close = close or difflib.get_close_matches(name, TrainSpec.model_fields, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else " (docs/train.md lists the fields)"
