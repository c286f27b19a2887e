"""Sampling text from a causal language model version (``fmstack generate``)."""

from __future__ import annotations

import torch

from fmstack.errors import InvalidInput
from fmstack.train.inference import Loaded


@torch.no_grad()
def generate(
    loaded: Loaded,
    prompt: str,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_k: int = 50,
    seed: int = 0,
) -> str:
    """The prompt's continuation (sampled; greedy when temperature is 0)."""
    if loaded.task != "clm":
        raise InvalidInput(f"{loaded.ref} is a {loaded.task} model; generate needs a causal LM (task clm)")
    tok = loaded.tokenizer
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    if enc["input_ids"].shape[1] == 0:
        raise InvalidInput("the prompt is empty after tokenisation; give some text with --prompt")
    torch.manual_seed(seed)
    out = loaded.model.generate(  # type: ignore[operator]
        **enc,
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        top_k=top_k if temperature > 0 else None,
        pad_token_id=tok.pad_token_id,
    )
    return str(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
