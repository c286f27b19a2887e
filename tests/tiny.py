"""A tiny vocabulary and WordLevel tokenizer built on the spot, for tests' 2-layer, hidden-32 models.

Texts are topic words plus filler; a text's topic words reveal its label, so tiny classifiers can
learn them in a few steps. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

TOPICS = {
    "sport": "ball goal team match score player",
    "food": "bread soup cheese apple dinner taste",
    "money": "bank card loan cash account price",
}
FILLER = ["the", "a", "of", "and", "to", "is", "it", "this", "that", "very"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LABELS = list(TOPICS)


def make_tokenizer(folder: Path, model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """A BERT-style fast tokenizer over the topic and filler words, saved into ``folder``."""
    words = sorted({w for t in TOPICS.values() for w in t.split()} | set(FILLER))
    vocab = {w: i for i, w in enumerate(SPECIAL + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        **extra,
    )
    fast.save_pretrained(str(folder))
    return fast
