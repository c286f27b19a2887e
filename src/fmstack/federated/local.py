"""One client's local training for one round, with the training engine: the federation's task model
and adapter (``prepare``'s pieces, but the labels are the federation's, not the client's dataset's:
a client may hold only some classes), the round's global weights loaded into it, ``train.loop.Loop``
(with FedProx's term when the strategy asks), and the adapter written by ``train.publish``.

Also builds the initial global adapter the coordinator starts round 1 from: the same construction
with the same seed, so every client's fresh adapter would be identical anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from fmstack.data import format as dataformat
from fmstack.errors import InvalidInput
from fmstack.federated.proximal import Proximal
from fmstack.federated.spec import FederationSpec
from fmstack.hub import HubApi
from fmstack.train import registry
from fmstack.train.loop import Loop, Progress, scalar_metrics
from fmstack.train.precision import pick_device
from fmstack.train.prepare import Prepared, load_tokenizer, task_context
from fmstack.train.spec import TrainSpec
from fmstack.transformers_logs import quiet_transformers

WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class LocalResult:
    weights: bytes  # the trained adapter_model.safetensors
    examples: int
    metrics: dict[str, float]


def train_spec(fed: FederationSpec, data: str) -> TrainSpec:
    local = fed.local
    return TrainSpec(
        task=fed.task,
        method=fed.method,
        base=fed.base,
        data=data,
        epochs=local.epochs,
        max_steps=local.max_steps,
        lr=local.lr,
        batch_size=local.batch_size,
        max_length=local.max_length,
        warmup_ratio=local.warmup_ratio,
        lora_r=local.lora_r,
        lora_alpha=local.lora_alpha,
        adapter_size=local.adapter_size,
        seed=local.seed,
    )


def prepare_local(hub: HubApi, fed: FederationSpec, data_dir: Path | None, data: str) -> Prepared:
    """The federation's model with a fresh adapter, and the client's train rows (none without data)."""
    spec = train_spec(fed, data)
    task, method = registry.task(spec.task), registry.method(spec.method)
    with quiet_transformers():
        base_dir = hub.checkout(fed.base)
        tokenizer = load_tokenizer(base_dir)
        ctx = task_context(spec, dataformat.DatasetManifest(labels=fed.labels), tokenizer)
        torch.manual_seed(spec.seed)  # the same fresh adapter and head on every client and the server
        model = method.apply(task.load_model(base_dir, ctx), spec, task)
    rows = []
    if data_dir is not None:
        table = dataformat.read_split(data_dir, spec.train_split)
        rows = task.encode(table, tokenizer, ctx)  # a label outside the federation's is refused here
        if not rows:
            raise InvalidInput(f"{data}: the train split has no rows to train on")
    return Prepared(spec, task, method, model, tokenizer, ctx, rows, [], None, base_dir)


def load_weights(prep: Prepared, weights_file: Path) -> None:
    """Set the adapter (and head) to the saved weights of an adapter folder of this federation."""
    state = load_file(str(weights_file))
    model: nn.Module = prep.model
    if prep.method.adapter_format == "peft":
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, state)
        unexpected = list(getattr(result, "unexpected_keys", []))
    else:
        unexpected = list(model.load_state_dict(state, strict=False).unexpected_keys)
    if unexpected:
        raise InvalidInput(
            f"{weights_file}: weights that fit no parameter of this model, e.g. {unexpected[0]}"
        )


class LocalModel:
    """The federation's model, built once and reused: each round loads the global weights into it and
    trains on fresh rows (a client process or a benchmark trains many rounds on one copy)."""

    def __init__(self, hub: HubApi, fed: FederationSpec) -> None:
        self.hub, self.fed = hub, fed
        self.prep = prepare_local(hub, fed, None, fed.name)

    def encode(self, data_dir: Path, split: str) -> list[dict[str, Any]]:
        table = dataformat.read_split(data_dir, split)
        rows: list[dict[str, Any]] = self.prep.task.encode(table, self.prep.tokenizer, self.prep.ctx)
        return rows  # a label outside the federation's is refused by encode

    def train(
        self,
        data_dir: Path,
        data: str,
        global_file: Path,
        work: Path,
        report: Callable[[Progress], None] | None = None,
    ) -> LocalResult:
        """Train the round's global adapter on the client's rows; the trained weights and what they cost."""
        from accelerate import Accelerator  # type: ignore[import-untyped]

        from fmstack.train.publish import write_output

        rows = self.encode(data_dir, "train")
        if not rows:
            raise InvalidInput(f"{data}: the train split has no rows to train on")
        prep = dataclasses.replace(self.prep, spec=train_spec(self.fed, data), train_rows=rows)
        load_weights(prep, global_file)
        penalty = Proximal(prep.model, self.fed.prox_mu) if self.fed.prox_mu > 0 else None
        accelerator = Accelerator(cpu=pick_device(prep.spec.device) == "cpu")
        result = Loop(prep, accelerator, work / "checkpoints", report, penalty=penalty).fit()
        out = work / "adapter"
        out.mkdir()
        with quiet_transformers():
            write_output(prep, result.model, out, self.fed.base, data)
        losses = [float(h["loss"]) for h in result.history]
        tail = losses[-max(1, len(losses) // 4) :]
        metrics = {
            "train_loss": sum(tail) / len(tail),
            "steps": float(result.steps),
            "train_seconds": result.train_seconds,
        }
        return LocalResult((out / WEIGHTS).read_bytes(), len(rows), metrics)

    @torch.no_grad()
    def evaluate(
        self, weights_file: Path, data_dir: Path, split: str, batch_size: int = 64
    ) -> dict[str, float]:
        """The task's metrics of the adapter in ``weights_file`` on ``split`` of a dataset."""
        prep = self.prep
        load_weights(prep, weights_file)
        rows = self.encode(data_dir, split)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].get("input_ids", ())))
        batches = [
            prep.task.collate([rows[i] for i in order[s : s + batch_size]], prep.ctx)
            for s in range(0, len(order), batch_size)
        ]
        prep.model.eval()
        return scalar_metrics(prep.task.evaluate(prep.model, batches, prep.ctx))


def train_round(
    hub: HubApi,
    fed: FederationSpec,
    data_dir: Path,
    data: str,
    global_file: Path,
    work: Path,
    report: Callable[[Progress], None] | None = None,
) -> LocalResult:
    """One round on a model built for it (``LocalModel`` keeps the model between rounds)."""
    return LocalModel(hub, fed).train(data_dir, data, global_file, work, report)


def initial_adapter(hub: HubApi, fed: FederationSpec, folder: Path) -> None:
    """Write round 1's global adapter (fresh, seeded) into ``folder`` as a loadable adapter version."""
    from fmstack.train.publish import write_output

    prep = prepare_local(hub, fed, None, fed.name)
    with quiet_transformers():
        write_output(prep, prep.model, folder, fed.base, fed.name)
