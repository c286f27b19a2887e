"""The training loop, on Accelerate: device placement, mixed precision, DDP gradient sync, clipping.

Gradient accumulation is done here rather than by Accelerate: every micro-batch's summed loss is
divided by the count (examples or tokens) of the whole global batch, so an optimizer step sees the same
gradient whether the global batch ran as 1x32, 2x16 or 4x8, or over several processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator  # type: ignore[import-untyped]
from torch import nn

from fmstack.errors import InvalidInput, TrainingDiverged, clip
from fmstack.train import checkpoint
from fmstack.train.average import WeightAverage
from fmstack.train.batches import epoch_batches, micro_batches
from fmstack.train.optim import make_optimizer
from fmstack.train.prepare import Prepared
from fmstack.train.result import TrainStats
from fmstack.train.throughput import flops_per_token, peak_flops, utilisation


@dataclass
class Progress:
    """What the loop reports after each optimizer step (and after each evaluation)."""

    step: int
    total: int
    epoch: int
    loss: float
    lr: float
    samples_per_s: float
    tokens_per_s: float
    eval: dict[str, Any] | None = None


@dataclass
class FitResult(TrainStats):
    """The measurements, plus what only this process holds: the trained model and the full report."""

    model: nn.Module  # unwrapped, best (when evaluated) or final weights
    final: dict[str, Any]  # all metrics of the returned weights (per-class reports too; {} without eval)
    best_step: int | None
    history: list[dict[str, Any]] = field(default_factory=list)


Reporter = Callable[[Progress], None]


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}


class Loop:
    """One training run over prepared data; ``fit`` drives it to the end (or early stop)."""

    def __init__(
        self,
        prep: Prepared,
        accelerator: Accelerator,
        checkpoint_dir: Path,
        report: Reporter | None = None,
        penalty: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        # penalty: a term added to every optimizer step's loss, e.g. FedProx's proximal term
        # (fmstack.federated.proximal); it reads the trained parameters itself.
        self.penalty = penalty
        self.prep, self.spec, self.acc = prep, prep.spec, accelerator
        self.task, self.ctx = prep.task, prep.ctx
        self.dir, self.report = checkpoint_dir, report or (lambda _p: None)
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.model = prep.model
        self.rows, self.eval_rows = prep.train_rows, prep.eval_rows
        # What trains and on what: the model on the rows, unless the method says otherwise (the probe:
        # its head alone, on features the frozen encoder computed once).
        self.train_module: nn.Module
        self.train_module, self.rows, self.eval_rows = prep.method.training_view(
            self.model,
            self.rows,
            self.eval_rows,
            lambda rows: self.task.collate(rows, self.ctx),
            accelerator.device,
            self.spec,
        )
        self.global_batch = self.spec.batch_size * self.spec.grad_accum * self.world
        self.lengths = [len(r.get("input_ids", ())) or 1 for r in self.rows]
        self.per_epoch = len(
            epoch_batches(self.lengths, self.global_batch, self.spec.seed, 0, self.spec.bucket)
        )
        total = self.per_epoch * self.spec.epochs
        self.total = min(total, self.spec.max_steps) if self.spec.max_steps else total
        self.step, self.bad_evals = 0, 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.average: WeightAverage | None = None  # with spec.ema: what is evaluated and kept
        self.history: list[dict[str, Any]] = []
        self.evals: dict[int, dict[str, Any]] = {}  # step -> full metrics of that evaluation

    # -- set-up -------------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        return make_optimizer(
            self.train_module.named_parameters(),
            self.spec.learning_rate,
            self.spec.weight_decay,
            self.spec.head_learning_rate,
            self.spec.layer_decay,
        )

    def _trainable(self) -> dict[str, torch.Tensor]:
        module = self.acc.unwrap_model(self.train_module)
        return {
            n: p.detach().contiguous().clone().cpu() for n, p in module.named_parameters() if p.requires_grad
        }

    def _load_trainable(self, weights: dict[str, torch.Tensor]) -> None:
        module = self.acc.unwrap_model(self.train_module)
        params = dict(module.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value.to(params[name].device))

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        module = self.acc.unwrap_model(self.train_module)
        module.eval()
        rows = [self.task.finalize(r, (-1, i), self.ctx) for i, r in enumerate(self.eval_rows)]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].get("input_ids", ())))
        size = max(self.spec.batch_size, 32)
        batches = [
            {
                k: v.to(self.acc.device)
                for k, v in self.task.collate([rows[i] for i in order[s : s + size]], self.ctx).items()
            }
            for s in range(0, len(order), size)
        ]
        with self.acc.autocast():
            metrics: dict[str, Any] = self.task.evaluate(module, batches, self.ctx)
        return metrics

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.task.higher_is_better else value < self.best

    def _after_eval(self, metrics: dict[str, Any]) -> bool:
        """Track the best weights; True when early stopping says stop."""
        self.evals[self.step] = metrics
        value = float(metrics[self.task.metric])
        if self._improved(value):
            self.best, self.best_step, self.bad_evals = value, self.step, 0
            self.best_weights = self._trainable()
        else:
            self.bad_evals += 1
        return bool(self.spec.early_stopping and self.bad_evals >= self.spec.early_stopping)

    # -- checkpoints --------------------------------------------------------------------------------
    def _save(self, optimizer: Any, scheduler: Any) -> None:
        checkpoint.save(
            self.dir,
            self.step,
            rank=self.rank,
            barrier=self.acc.wait_for_everyone,
            weights=self._trainable(),
            best=self.best_weights,
            average=self.average.state() if self.average else None,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=self.acc.scaler,
            state={
                "best": self.best,
                "best_step": self.best_step,
                "bad_evals": self.bad_evals,
                "history": self.history,
                "average_updates": self.average.updates if self.average else None,
            },
        )

    def _resume(self, optimizer: Any, scheduler: Any) -> int | None:
        path = checkpoint.latest(self.dir)
        if path is None:
            return None
        saved = checkpoint.load(path, self.rank)
        try:
            self._load_trainable(saved["weights"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:  # other parameter names, shapes or groups
            raise InvalidInput(
                f"{path} was written by another training (its weights do not fit this one: "
                f"{clip(exc)}); resume with that run's options, or pick another --checkpoint-dir, "
                "or start again without --resume"
            ) from None
        if saved["scaler"] and self.acc.scaler is not None:
            self.acc.scaler.load_state_dict(saved["scaler"])
        if saved["rng"] is not None:
            checkpoint.set_rng_state(saved["rng"])
        state = saved["state"]
        self.step, self.best, self.best_step = state["step"], state["best"], state["best_step"]
        self.bad_evals, self.history, self.best_weights = state["bad_evals"], state["history"], saved["best"]
        if self.average is not None:
            if saved["average"] is None:
                raise InvalidInput(
                    f"{path} holds no weight average: it was written by a run without --ema. Resume "
                    "with that run's options, or start again without --resume"
                )
            self.average.load(saved["average"], state["average_updates"])
        return self.step

    # -- the loop -----------------------------------------------------------------------------------
    def _train_step(
        self, ids: list[int], epoch: int, optimizer: Any, scheduler: Any
    ) -> tuple[float, int, int]:
        """One optimizer step over a global batch; returns (mean loss, examples, tokens) of the whole batch."""
        rows = {i: self.task.finalize(self.rows[i], (epoch, i), self.ctx) for i in ids}
        count = max(self.task.count(list(rows.values())), 1)
        micro = micro_batches(ids, self.spec.grad_accum, self.world, self.rank)
        self.train_module.train()
        local = torch.zeros(3, device=self.acc.device)  # loss sum, examples, tokens
        for m, chunk in enumerate(micro):
            batch = {
                k: v.to(self.acc.device)
                for k, v in self.task.collate([rows[i] for i in chunk], self.ctx).items()
            }
            sync = self.acc.no_sync(self.train_module) if m < len(micro) - 1 else nullcontext()
            with sync, self.acc.autocast():
                loss_sum, _ = self.task.loss(self.train_module, batch, self.ctx)
                # DDP averages gradients over processes, hence x world: the step sees sum / count.
                loss = loss_sum * self.world / count
                if self.penalty is not None:  # once per optimizer step, spread over its micro-batches
                    loss = loss + self.penalty() / len(micro)
            self.acc.backward(loss)
            tokens = int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0
            local += torch.tensor([float(loss_sum.detach()), len(chunk), tokens], device=self.acc.device)
        if self.spec.max_grad_norm:
            self.acc.clip_grad_norm_(self.train_module.parameters(), self.spec.max_grad_norm)
        optimizer.step()
        if self.average is not None:
            self.average.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total = self.acc.reduce(local, reduction="sum") if self.world > 1 else local
        return float(total[0]) / count, int(total[1]), int(total[2])

    def _check_finite(self, loss: float, step: int) -> None:
        """Stop at the first NaN or infinite loss: every later step would only train on garbage. The loss
        is already a Python float (reduced over processes), so the check costs nothing and every rank
        stops at the same step."""
        if math.isfinite(loss):
            return
        lr, head = self.spec.learning_rate, self.spec.head_lr
        lowered = f"--lr {lr / 10:g}" + (f" --head-lr {head / 10:g}" if head is not None else "")
        raise TrainingDiverged(
            f"training diverged: the loss became {loss} at step {step} of {self.total} "
            f"(peak learning rate {lr:g}); nothing was pushed. Try a lower learning rate, e.g. {lowered}"
        )

    def fit(self) -> FitResult:
        from fmstack.train.schedule import make_scheduler

        optimizer = self._optimizer()
        warmup = int(self.spec.warmup_ratio * self.total)
        scheduler = make_scheduler(optimizer, self.total, warmup, self.spec.schedule)
        if self.spec.compile:
            self.train_module = torch.compile(self.train_module)  # type: ignore[assignment]
        self.train_module, optimizer = self.acc.prepare(self.train_module, optimizer)
        if self.spec.ema:
            self.average = WeightAverage(self.acc.unwrap_model(self.train_module), self.spec.ema)
        resumed = self._resume(optimizer, scheduler) if self.spec.resume else None
        if not self.spec.resume and self.rank == 0:
            checkpoint.clear(self.dir)
        examples = tokens = 0
        seconds = 0.0
        stop = False
        while self.step < self.total and not stop:
            epoch, within = divmod(self.step, self.per_epoch)
            for ids in epoch_batches(
                self.lengths, self.global_batch, self.spec.seed, epoch, self.spec.bucket
            )[within:]:
                started = time.perf_counter()
                loss, n, t = self._train_step(ids, epoch, optimizer, scheduler)
                seconds += time.perf_counter() - started
                self._check_finite(loss, self.step + 1)
                examples, tokens, self.step = examples + n, tokens + t, self.step + 1
                lr = float(scheduler.get_last_lr()[0])
                progress = Progress(
                    self.step, self.total, epoch, loss, lr, examples / seconds, tokens / seconds
                )
                self.history.append({"step": self.step, "loss": loss, "lr": lr})
                last = self.step >= self.total
                if self.eval_rows and (
                    (self.spec.eval_every and self.step % self.spec.eval_every == 0) or last
                ):
                    with self.average.swapped_in() if self.average else nullcontext():
                        progress.eval = self.evaluate()
                        self.history[-1]["eval"] = scalar_metrics(progress.eval)
                        stop = self._after_eval(progress.eval)  # keeps the weights evaluated
                self.report(progress)
                if self.spec.save_every and (self.step % self.spec.save_every == 0 or last or stop):
                    self._save(optimizer, scheduler)
                if last or stop:
                    break
        if self.average is not None:
            self.average.copy_to_model()
        return self._result(examples, tokens, seconds, resumed)

    def _result(self, examples: int, tokens: int, seconds: float, resumed: int | None) -> FitResult:
        if self.best_weights is not None and self.best_step != self.step:
            self._load_trainable(self.best_weights)  # keep the best evaluated weights
        if not self.eval_rows:
            final: dict[str, Any] = {}
        elif self.best_step is not None and self.best_step in self.evals:
            final = self.evals[self.best_step]
        else:  # resumed after the best evaluation: its full report was not kept
            final = self.evaluate()
        trainable = sum(
            p.numel() for p in self.acc.unwrap_model(self.train_module).parameters() if p.requires_grad
        )
        total_params = sum(p.numel() for p in self.model.parameters())
        tokens_per_s = tokens / seconds if seconds else 0.0
        peak = self.spec.peak_flops or peak_flops(self.acc.device)
        seq_len = tokens / examples if examples else 0.0  # mean non-padding tokens per example
        per_token = flops_per_token(self.model, trainable, self.prep.method, seq_len)
        return FitResult(
            model=self.model,
            steps=self.step,
            final=final,
            metrics=scalar_metrics(final),
            best_step=self.best_step,
            samples_per_s=examples / seconds if seconds else 0.0,
            tokens_per_s=tokens_per_s,
            mfu=utilisation(per_token, tokens_per_s, peak),
            train_seconds=seconds,
            trainable_params=trainable,
            total_params=total_params,
            resumed_from=resumed,
            history=self.history,
        )
