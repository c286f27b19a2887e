"""Sampling text from a causal language model version (``fmstack generate``)."""

from __future__ import annotations

from typing import Any

import torch

from fmstack.errors import InvalidInput
from fmstack.train.inference import Loaded


def check_options(max_new_tokens: int, temperature: float, top_k: int) -> None:
    """Refuse sampling options ``generate`` cannot use, naming every bad one at once."""
    problems = []
    if max_new_tokens < 1:
        problems.append(f"--max-new-tokens must be at least 1 (got {max_new_tokens})")
    if temperature < 0:
        problems.append(f"--temperature must be 0 (greedy) or more (got {temperature})")
    if top_k < 0:
        problems.append(f"--top-k must be 0 (no limit) or more (got {top_k})")
    if problems:
        raise InvalidInput("; ".join(problems))


@torch.no_grad()
def generate(
    loaded: Loaded,
    prompt: str,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_k: int = 50,
    seed: int = 0,
) -> str:
    """The prompt's continuation (sampled; greedy when temperature is 0; top_k 0: no top-k limit),
    with the space that separates it from the prompt, so that ``prompt + continuation`` reads right."""
    check_options(max_new_tokens, temperature, top_k)
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
    return continuation(tok, out[0], enc["input_ids"].shape[1])


def continuation(tok: Any, ids: torch.Tensor, prompt_len: int) -> str:
    """The text of ``ids[prompt_len:]`` as it follows the prompt. Decoding the new tokens alone loses
    the space before them with word-level and WordPiece tokenizers (GPT-2's BPE keeps it in the
    token), so decode prompt and prompt+continuation and take the difference."""
    whole = str(tok.decode(ids, skip_special_tokens=True))
    head = str(tok.decode(ids[:prompt_len], skip_special_tokens=True))
    if whole.startswith(head):
        return whole[len(head) :]
    return str(tok.decode(ids[prompt_len:], skip_special_tokens=True))
