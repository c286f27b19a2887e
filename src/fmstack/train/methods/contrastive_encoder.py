"""The torch side of ``--method setfit`` (the plugin is ``setfit.py``): supervised contrastive tuning of a
classifier's encoder on few labelled rows, then the head's start from the class prototypes.

Why not the ``setfit`` package (1.2.0 runs on our pins): it trains on sentence *pairs* with a cosine
loss, 20 pairs per example by default, so every example is encoded ~40 times per epoch; here each
batch is class-balanced and every row in it is an anchor against all the others (the supervised
contrastive loss of ``tasks/embedding.py``), so each example is encoded once per epoch, which is what
fits a CPU. Its head is a pickled scikit-learn model beside a sentence-transformers folder; ours is the
classifier's own head, so the output is an ordinary transformers classifier (safetensors only).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np
import torch
from torch import nn

from fmstack.errors import InvalidInput, TrainingDiverged, Unsupported
from fmstack.train.context import TaskContext
from fmstack.train.tasks import embedding

PER_CLASS = 4  # rows of one class in a batch: each anchor has up to 3 positives
# Of the contrastive softmax. 0.1 rather than the embedding task's 0.05: on a BANKING77 10-shot validation
# split (3 seeds) it raised the teacher's accuracy by half a point (bench/README.md, "Few-shot").
TEMPERATURE = 0.1
# Self-training (--unlabeled). The teacher's regularisation: C=100 beat C=10 by about half a point on
# that validation split. Each labelled row counts this many times against one pseudo-labelled row (a guess
# weighs about a third of a real label: 0.3 beat 1.0 by a few tenths in an exploratory run).
TEACHER_C = 100.0
LABELLED_REPEATS = 3
# The student's pass (the encoder tuned on labelled rows and the teacher's guesses, dropout on): one
# pass at this rate, through the teacher's own function as a temporary head. Not swept; 2e-5 is the
# usual fine-tuning rate for a BERT-size encoder.
STUDENT_LR = 2e-5
# Each guess averages the teacher's class probabilities for a text (weight 1 - NEIGHBOUR_WEIGHT) with the
# mean of its NEIGHBOURS nearest unlabelled texts' (cosine, on the same features): nearby texts mostly share
# a class, so the neighbours outvote the teacher where it is unsure. On that validation split it raised the
# accuracy of the guesses from 85.3% to 87.1% (a scratch copy of phase 1; 3 to 7 neighbours and weights 0.5
# to 0.7 all gave 86.7-87.1%) and setfit's own from 87.2% to 87.9%, every seed up.
NEIGHBOURS = 5
NEIGHBOUR_WEIGHT = 0.7


def encoder_of(model: nn.Module) -> nn.Module:
    """The encoder under a mean-pooled classifier (``pooled.py``), which is what the loss tunes."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module) or not hasattr(model, "classify"):
        raise Unsupported(
            f"setfit tunes the encoder of a mean-pooled classifier; {type(model).__name__} is not one "
            "(use pooling 'mean', the default)"
        )
    return encoder


def balanced_batches(labels: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Row ids in batches of whole groups of ``PER_CLASS`` rows of one class (a class with fewer rows
    is one smaller group), ``batch_size // PER_CLASS`` groups per batch, so that most anchors meet
    positives. Every row appears once per epoch."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    groups = []
    for ids in by_class.values():
        rng.shuffle(ids)
        groups += [ids[s : s + PER_CLASS] for s in range(0, len(ids), PER_CLASS)]
    rng.shuffle(groups)
    per_batch = max(1, batch_size // PER_CLASS)
    return [list(chain.from_iterable(groups[s : s + per_batch])) for s in range(0, len(groups), per_batch)]


def tune_encoder(
    encoder: nn.Module,
    rows: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    device: torch.device | str,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> list[float]:
    """Tune ``encoder`` in place so that rows of a class pool close together (cosine); returns each
    epoch's mean loss. The trainable parameters are the encoder's that require grad."""
    labels = [int(r["label"]) for r in rows]
    if len(set(labels)) < 2:
        raise InvalidInput("setfit needs rows of at least two classes to contrast; the train split has one")
    if len(labels) == len(set(labels)):
        raise InvalidInput("setfit needs at least two rows of some class (positives); each class has one")
    ctx = TaskContext(pooling="mean", temperature=TEMPERATURE)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    rng = random.Random(seed)
    encoder.to(device).train()
    history = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for ids in balanced_batches(labels, batch_size, rng):
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in ids]).items()}
            loss_sum, n = embedding.loss(encoder, batch, ctx)  # supervised contrastive over the batch
            loss = loss_sum / n
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"setfit's contrastive phase diverged (loss {float(loss)} in epoch {epoch + 1}); "
                    f"nothing was pushed. Try a lower --setfit-lr, e.g. {lr / 10:g}"
                )
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total, count = total + float(loss_sum.detach()), count + n
        history.append(total / max(count, 1))
    encoder.eval()
    return history


@torch.no_grad()
def start_from_prototypes(classifier: nn.Module, rows: list[dict[str, Any]], classes: int) -> None:
    """Set the head to the nearest-class-mean classifier of the cached ``features`` (the pooled vectors
    the head reads): a cosine head's class weights become the class means; a linear head's the unit
    means scaled so its logits match a cosine head's (20 x cosine at a typical feature norm). The loop
    then trains it from there, not from noise. Classes without rows keep their initial weights."""
    features = torch.stack([r["features"] for r in rows])  # (rows, hidden)
    labels = torch.tensor([int(r["label"]) for r in rows])
    weight: Any = getattr(classifier, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.shape != (classes, features.shape[1]):
        raise Unsupported(f"setfit needs a linear or cosine head over the pooled vector, not {classifier}")
    unit = features / features.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    for c in sorted(set(labels.tolist())):
        mean = unit[labels == c].mean(dim=0)
        weight[c] = mean / mean.norm().clamp(min=1e-12)
    if isinstance(classifier, nn.Linear):
        weight.mul_(20.0 / features.norm(dim=-1).mean().clamp(min=1e-12))
        if classifier.bias is not None:
            classifier.bias.zero_()


def fit_teacher(rows: list[dict[str, Any]], classes: int) -> nn.Linear:
    """The teacher of self-training: scikit-learn's logistic regression on the unit ``features`` of the
    labelled rows, returned as the same function in torch, a linear layer over unit features (its
    argmax is the regression's prediction), so that it can also be the student's starting head.
    Logistic regression rather than the head itself: it fits in seconds with no learning rate or
    epochs to choose, and it is what was validated."""
    from sklearn.linear_model import LogisticRegression

    features = _unit(rows).numpy()
    fit = LogisticRegression(C=TEACHER_C, max_iter=3000).fit(features, [int(r["label"]) for r in rows])
    weight = torch.zeros(classes, features.shape[1], dtype=torch.float64)
    bias = torch.full((classes,), -1e4, dtype=torch.float64)  # classes without rows are never guessed
    known = torch.as_tensor(fit.classes_)
    coef, intercept = torch.as_tensor(fit.coef_), torch.as_tensor(fit.intercept_)
    if len(known) == 2:  # binary: one row of coefficients, the logit of the second class over the first
        coef, intercept = (
            torch.cat([torch.zeros_like(coef), coef]),
            torch.cat([torch.zeros(1, dtype=intercept.dtype), intercept]),
        )
    weight[known], bias[known] = coef.double(), intercept.double()
    teacher = nn.Linear(features.shape[1], classes)
    with torch.no_grad():
        teacher.weight.copy_(weight)
        teacher.bias.copy_(bias)
    return teacher


@torch.no_grad()
def guesses(teacher: nn.Linear, rows: list[dict[str, Any]], neighbours: int = NEIGHBOURS) -> list[int]:
    """A label for each row of cached ``features``: the teacher's, its probabilities first averaged
    with those of the row's ``neighbours`` nearest rows (``over_neighbours``; 0: the teacher alone)."""
    unit = _unit(rows).float()
    probabilities = teacher(unit).softmax(dim=-1)
    if neighbours:
        probabilities = over_neighbours(probabilities, unit, neighbours)
    return probabilities.argmax(dim=-1).tolist()  # type: ignore[no-any-return]


def over_neighbours(
    probabilities: torch.Tensor, unit: torch.Tensor, neighbours: int, weight: float = NEIGHBOUR_WEIGHT
) -> torch.Tensor:
    """Each row's class ``probabilities`` (rows, classes) averaged with the mean of its ``neighbours``
    nearest other rows' by cosine over ``unit`` vectors (rows, dimensions): one step of label
    propagation over the k-nearest-neighbour graph of the unlabelled texts (Zhou et al. 2004, with the
    teacher's guesses as the seeds). faiss finds the neighbours: exact inner-product search."""
    import faiss

    k = min(neighbours, len(unit) - 1)
    if k < 1:
        return probabilities
    vectors = np.ascontiguousarray(unit.numpy(), dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, found = index.search(vectors, k + 1)  # (rows, k + 1): each row itself, usually first
    # Drop the row itself (a stable sort moves it last; a row tied with a duplicate may miss it: drop the last)
    itself = found == np.arange(len(found))[:, None]
    found = np.take_along_axis(found, np.argsort(itself, axis=1, kind="stable"), axis=1)[:, :k]
    return (1 - weight) * probabilities + weight * probabilities[torch.from_numpy(found)].mean(dim=1)


def self_training_rows(
    labelled: list[dict[str, Any]], unlabelled: list[dict[str, Any]], labels: list[int]
) -> list[dict[str, Any]]:
    """The rows of a self-training step (Scudder 1965; the "noisy student" line of work), token rows
    for the student or cached features for the head: every unlabelled row with its guessed label
    (``guesses``), beside the labelled rows, which count ``LABELLED_REPEATS`` times each."""
    return labelled * LABELLED_REPEATS + [r | {"label": g} for r, g in zip(unlabelled, labels, strict=True)]


def train_student(
    encoder: nn.Module,
    rows: list[dict[str, Any]],
    head: nn.Linear,
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    device: torch.device | str,
    *,
    batch_size: int,
    seed: int,
    lr: float = STUDENT_LR,
) -> float:
    """One pass of cross-entropy over ``rows`` (token rows with a ``label``: the labelled ones and the
    teacher's guesses) through ``head`` over the encoder's unit mean-pooled vectors, with dropout on:
    the "noisy student" step that lets the encoder, not only a head, learn from the unlabelled texts.
    ``head`` starts as the teacher and is thrown away after. Length-bucketed batches (most texts are
    short); returns the mean loss. On BANKING77 10-shot it raised validation accuracy by half a point
    to a point over self-training the head alone (bench/README.md, "Few-shot")."""
    from fmstack.train.batches import epoch_batches

    ctx = TaskContext(pooling="mean")
    head = head.to(device)
    params = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    encoder.to(device).train()
    total, count = 0.0, 0
    for ids in epoch_batches([len(r["input_ids"]) for r in rows], batch_size, seed, 0, bucket=True):
        batch = {k: v.to(device) for k, v in collate([rows[i] for i in ids]).items()}
        logits = head(embedding.embed(encoder, batch, ctx))  # (batch, classes)
        loss = nn.functional.cross_entropy(logits, batch["labels"])
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"setfit's self-training pass diverged (loss {float(loss)}); nothing was pushed. "
                "Check that the --unlabeled texts are in the labelled data's language and domain"
            )
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        total, count = total + float(loss.detach()) * len(ids), count + len(ids)
    encoder.eval()
    return total / max(count, 1)


def _unit(rows: list[dict[str, Any]]) -> torch.Tensor:
    return nn.functional.normalize(torch.stack([r["features"] for r in rows]).double(), dim=-1)
