"""SetFit-style few-shot fine-tuning (Tunstall et al., 2022), in two phases:

1. the encoder is tuned contrastively on the labelled rows (rows of a class pull together, others push
   apart; ``--setfit-epochs`` passes at ``--setfit-lr``, class-balanced batches of ``--batch-size``);
2. the classifier head starts from the class prototypes (the mean pooled vector of each class) and
   trains on the tuned encoder's cached features, like the probe (``--epochs`` at ``--lr``).

With ``--label-names-as-examples`` each class's name is one more labelled row (``prepare.py``); with
``--unlabeled REF`` unlabelled in-domain texts join in one round of self-training: a teacher labels
them (each guess also heeds the text's nearest neighbours), the encoder takes one pass of
cross-entropy over labelled rows and guesses (the "noisy student" step), and the head then trains on
both (bench/README.md, "Few-shot", has what each step adds on BANKING77).

The output is a model version: the tuned encoder and its head, an ordinary (mean-pooled) transformers
classifier that serve, eval and compress take like any other. ``contrastive_encoder.py`` holds the
torch side and says why this is built on fmstack's engine rather than on the ``setfit`` package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.errors import Unsupported
from fmstack.train.methods import shared

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("fmstack.train")

name = "setfit"
is_adapter = False
adapter_format = None
tasks = ("classification",)  # the contrastive phase needs labels
default_lr = 3e-3  # the head's, from prototypes; the encoder's is --setfit-lr
default_head_lr = None  # the head is all the loop trains: --lr is its rate
options: tuple[str, ...] = ("setfit_epochs", "setfit_lr", "label_names_as_examples", "unlabeled")


def rules(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values.get("pooling") == "cls":
        problems.append("pooling: setfit tunes mean-pooled sentence vectors; leave pooling at 'mean'")
    if values.get("rdrop"):
        problems.append("rdrop: setfit trains its head on cached features, with no dropout to differ")
    for option in ("head_lr", "layer_decay"):
        if values.get(option) is not None:
            problems.append(
                f"{option}: setfit's loop trains only the head (use --lr); the encoder's rate is --setfit-lr"
            )
    return problems


flops_per_token = shared.frozen_base_flops  # the head phase; the contrastive phase is not counted


def training_view(
    model: nn.Module,
    rows: list[Any],
    eval_rows: list[Any],
    collate: Callable[..., Any],
    device: Any,
    spec: Any,
) -> tuple[nn.Module, list[Any], list[Any]]:
    """Phase 1 here (the encoder, in place), then the probe's view for phase 2: the head alone on the
    tuned encoder's cached features, started from the class prototypes. Rows without a ``label``
    are ``--unlabeled`` texts (``prepare.unlabeled_rows``): phase 1 skips them; after it a teacher
    labels them, the encoder learns from labelled rows and guesses (``train_student``), and a second
    teacher, on the student's features, labels the head's rows (``self_training_rows``)."""
    from fmstack.train.methods.cached_features import HeadOnly, featurize
    from fmstack.train.methods.contrastive_encoder import (
        LABELLED_REPEATS,
        encoder_of,
        fit_teacher,
        guesses,
        self_training_rows,
        start_from_prototypes,
        train_student,
        tune_encoder,
    )

    labelled = [r for r in rows if "label" in r]
    unlabelled = [r for r in rows if "label" not in r]
    classes = int(model.config.num_labels)  # type: ignore[union-attr, arg-type]
    model.to(device)
    encoder = encoder_of(model)
    log.info("setfit: contrastive phase, %d labelled rows, %d pass(es)", len(labelled), spec.setfit_epochs)
    tune_encoder(
        encoder,
        labelled,
        collate,
        device,
        epochs=spec.setfit_epochs,
        lr=spec.setfit_lr,
        batch_size=spec.batch_size,
        seed=spec.seed,
    )
    rows = featurize(model, labelled, collate, device)
    if unlabelled:
        teacher = fit_teacher(rows, classes)
        student = self_training_rows(
            labelled, unlabelled, guesses(teacher, featurize(model, unlabelled, collate, device))
        )
        log.info(
            "setfit: self-training the encoder on %d rows (labelled x%d + guesses)",
            len(student),
            LABELLED_REPEATS,
        )
        train_student(encoder, student, teacher, collate, device, batch_size=spec.batch_size, seed=spec.seed)
        rows = featurize(model, labelled, collate, device)
    eval_rows = featurize(model, eval_rows, collate, device) if eval_rows else []
    start_from_prototypes(model.classifier, rows, classes)  # type: ignore[arg-type]
    if unlabelled:  # a second teacher, on the student's features, labels the head's rows
        features = featurize(model, unlabelled, collate, device)
        rows = self_training_rows(rows, features, guesses(fit_teacher(rows, classes), features))
    return HeadOnly(model), rows, eval_rows


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    """Everything trains but the token embeddings: a few rows cannot teach a 30k-row vocabulary table
    anything, and leaving it out of AdamW halves the optimizer's work on MiniLM."""
    model.requires_grad_(True)
    embeddings: Any = getattr(model, "get_input_embeddings", lambda: None)()
    if embeddings is not None:
        embeddings.requires_grad_(False)
    return model


def save(model: nn.Module, folder: Path) -> None:
    raise Unsupported("setfit writes a model version (tuned encoder + head), not adapter files")


def load(model: nn.Module, folder: Path) -> nn.Module:
    return model


def merge(model: nn.Module) -> nn.Module:
    return model
