"""A sequence classifier over the mean of an encoder's token states.

Hugging Face's ``*ForSequenceClassification`` heads read one position (BERT: a pooler over [CLS];
GPT-2: the last token). Sentence encoders such as all-MiniLM-L6-v2 were trained so that the *mean* of the
token states carries the meaning, and their [CLS] state is weak: every method scores higher on banking77
over the mean (bench/README.md, "Every method, full data", has the numbers). This model is any
``AutoModel`` encoder, dropout,
and a linear head over the attention-masked mean of the last hidden states.

It saves as an ordinary transformers folder whose ``config.json`` has ``model_type:
fmstack-pooled-classifier``, the encoder's own config fields and ``encoder_model_type``. Importing this
module registers it with ``AutoConfig`` and ``AutoModelForSequenceClassification``, so every loader in
fmstack (train, compress, serve) loads it like any classifier.

``save_pretrained`` also copies this file into the folder (as ``pooled.py``) and writes an ``auto_map``
naming its two classes: with fmstack absent, ``AutoModelForSequenceClassification.from_pretrained(folder,
trust_remote_code=True)`` runs this code and answers exactly as fmstack does; without
``trust_remote_code`` transformers refuses the folder (unknown model type) instead of loading it with a
[CLS] head and answering wrongly. So this module imports only torch and transformers: it must run alone.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PretrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel

MODEL_TYPE = "fmstack-pooled-classifier"
# Fields of our config that are not the encoder's.
_OWN_FIELDS = {
    "model_type",
    "encoder_model_type",
    "classifier_head",
    "cosine_scale",
    "architectures",
    "transformers_version",
    "auto_map",
}
# Logits of the cosine head are this times a cosine, in [-20, 20]: wide enough for a confident softmax
# over ~100 classes, bounded so that the head cannot lower the loss by growing its weights.
COSINE_SCALE = 20.0


class CosineClassifier(nn.Module):
    """Logits = scale x cosine between the pooled vector and each class's weight vector (a normalised
    softmax, as in NormFace/CosFace without the margin). Sentence encoders are trained to compare
    vectors by cosine; this head reads them the same way. It has no bias."""

    def __init__(self, hidden: int, labels: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(labels, hidden))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.linear(_unit(pooled), _unit(self.weight))


def _unit(x: torch.Tensor) -> torch.Tensor:
    # Not F.normalize: its clamp exports a CastLike that ONNX Runtime warns it cannot fold.
    unit: torch.Tensor = x / (x.norm(dim=-1, keepdim=True) + 1e-12)
    return unit


class PooledClassifierConfig(PretrainedConfig):  # type: ignore[no-untyped-call]
    model_type = MODEL_TYPE

    def __init__(
        self,
        encoder_model_type: str = "bert",
        classifier_head: str = "linear",
        cosine_scale: float = COSINE_SCALE,
        **kwargs: Any,
    ) -> None:
        self.encoder_model_type = encoder_model_type
        self.classifier_head = classifier_head  # linear | cosine
        self.cosine_scale = cosine_scale
        super().__init__(**kwargs)

    @classmethod
    def wrapping(cls, encoder: PretrainedConfig, **options: Any) -> PooledClassifierConfig:
        """The config of a classifier over an encoder with config ``encoder``; ``options`` are
        classifier fields such as ``num_labels`` and ``id2label``."""
        fields = {k: v for k, v in encoder.to_dict().items() if k not in _OWN_FIELDS}
        return cls(encoder_model_type=encoder.model_type, **{**fields, **_standard_names(encoder), **options})

    def encoder_config(self) -> PretrainedConfig:
        fields = {k: v for k, v in self.to_dict().items() if k not in _OWN_FIELDS}
        return AutoConfig.for_model(self.encoder_model_type, **fields)


class PooledEncoderForSequenceClassification(PreTrainedModel):  # type: ignore[no-untyped-call]
    config_class = PooledClassifierConfig
    base_model_prefix = "encoder"

    def __init__(self, config: PooledClassifierConfig, encoder: nn.Module | None = None) -> None:
        """``encoder``: a pretrained encoder to use; by default one is built from the config."""
        super().__init__(config)
        if encoder is None:
            encoder = AutoModel.from_config(config.encoder_config())  # type: ignore[no-untyped-call]
        self.encoder = _without_pooler(encoder)
        dropout: Any = getattr(config, "classifier_dropout", None)
        if dropout is None:
            dropout = getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(float(dropout))
        hidden, labels = int(config.hidden_size), int(config.num_labels or 2)
        self.classifier: nn.Module = (
            CosineClassifier(hidden, labels, float(config.cosine_scale))
            if config.classifier_head == "cosine"
            else nn.Linear(hidden, labels)
        )
        self.post_init()  # type: ignore[no-untyped-call]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,  # what PEFT's wrapper passes along (output_attentions, return_dict, ...)
    ) -> SequenceClassifierOutput:
        if input_ids is None:
            raise ValueError("input_ids are required")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        logits = self.classify(self.encoder(**inputs).last_hidden_state, attention_mask)
        return SequenceClassifierOutput(loss=self._loss(logits, labels), logits=logits)

    def classify(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits (batch, labels) from the encoder's states (batch, seq, hidden) and the (batch, seq)
        mask; separate so that an exporter can call the encoder with a mask of its own form."""
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (batch, hidden)
        logits: torch.Tensor = self.classifier(self.dropout(pooled))
        return logits

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        if self.config.problem_type == "multi_label_classification":
            return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return nn.functional.cross_entropy(logits.float(), labels)

    @classmethod
    def from_encoder(cls, folder: Path, **options: Any) -> PooledEncoderForSequenceClassification:
        """A new classifier on the pretrained encoder in ``folder`` (its weights kept, the head fresh);
        ``options`` are config fields such as ``num_labels`` and ``id2label``."""
        encoder = AutoModel.from_pretrained(str(folder), dtype=torch.float32)
        return cls(PooledClassifierConfig.wrapping(encoder.config, **options), encoder)


def _standard_names(encoder: PretrainedConfig) -> dict[str, Any]:
    """The encoder's fields under their standard names (``hidden_size`` for GPT-2's ``n_embd``...).
    Its ``attribute_map`` translates them on the encoder's config but not on this wrapper, whose
    readers (this head, the adapter method) ask for ``hidden_size``."""
    names: dict[str, str] = getattr(encoder, "attribute_map", {})
    return {name: getattr(encoder, name) for name in names if hasattr(encoder, name)}


def save_config_with_code(config: PooledClassifierConfig, folder: Path) -> None:
    """Write ``config.json`` with an ``auto_map`` for both classes, and this file next to it: what an
    adapter folder carries so that the classifier it adapts can be built without fmstack."""
    config = copy.deepcopy(config)
    module = Path(__file__).stem
    config.auto_map = {
        "AutoConfig": f"{module}.{PooledClassifierConfig.__name__}",
        "AutoModelForSequenceClassification": f"{module}.{PooledEncoderForSequenceClassification.__name__}",
    }
    config.save_pretrained(str(folder))  # copies this file too (register_for_auto_class below)


def is_pooled(config: Any) -> bool:
    return getattr(config, "model_type", None) == MODEL_TYPE


def encoder_type(config: Any) -> str:
    """The architecture family (``bert``, ``gpt2``...) of a model's config, seen through this wrapper."""
    return str(getattr(config, "encoder_model_type", None) or getattr(config, "model_type", ""))


def _without_pooler(encoder: nn.Module) -> nn.Module:
    # BERT-likes build a [CLS] pooler this head never reads; unused parameters would also break DDP.
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # type: ignore[assignment]
    return encoder


# save_pretrained ships this file and an auto_map with every folder (see the module docstring).
PooledClassifierConfig.register_for_auto_class()  # type: ignore[no-untyped-call]
PooledEncoderForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")  # type: ignore[no-untyped-call]
# fmstack's own copy registers itself; a copy that transformers loads from a folder through auto_map
# (under another module name) must not replace it in the Auto mappings.
if __name__ == "fmstack.train.pooled":
    AutoConfig.register(MODEL_TYPE, PooledClassifierConfig)
    AutoModelForSequenceClassification.register(
        PooledClassifierConfig, PooledEncoderForSequenceClassification
    )
