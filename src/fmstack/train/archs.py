"""Built-in architectures to pretrain from scratch (``--arch``); the vocabulary comes from the tokenizer."""

from __future__ import annotations

from typing import Any

from transformers import BertConfig, GPT2Config, PretrainedConfig

from fmstack.errors import InvalidInput

# name -> (family, layers, hidden, heads)
ARCHS: dict[str, tuple[str, int, int, int]] = {
    "bert-tiny": ("bert", 2, 128, 2),
    "bert-small": ("bert", 4, 256, 4),
    "gpt2-tiny": ("gpt2", 2, 128, 2),
    "gpt2-small": ("gpt2", 12, 768, 12),
}


def arch_config(arch: str, tokenizer: Any, max_length: int) -> PretrainedConfig:
    if arch not in ARCHS:
        raise InvalidInput(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    family, layers, hidden, heads = ARCHS[arch]
    vocab = len(tokenizer)
    positions = max(512, max_length)
    if family == "bert":
        return BertConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
            max_position_embeddings=positions,
            pad_token_id=tokenizer.pad_token_id or 0,
        )
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    return GPT2Config(
        vocab_size=vocab,
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        n_positions=positions,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
    )
