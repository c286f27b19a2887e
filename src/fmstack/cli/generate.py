"""``fmstack generate REF --prompt TEXT``: thin over ``fmstack.train.generate``."""

from __future__ import annotations

from typing import Annotated

import typer

from fmstack.cli.output import JsonFlag, console, emit
from fmstack.cli.remote import open_hub


def generate(
    ref: Annotated[str, typer.Argument(help="Causal LM version ref (task clm).")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue.")],
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Tokens to sample (at least 1).")
    ] = 32,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Sampling temperature; 0 = greedy.")
    ] = 1.0,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Sample among the k likeliest tokens; 0 = no limit.")
    ] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """Sample a continuation of --prompt from a causal language model."""
    from fmstack.train.generate import check_options
    from fmstack.train.generate import generate as sample
    from fmstack.train.inference import load

    check_options(max_new_tokens, temperature, top_k)  # before the model loads
    with open_hub() as hub:
        text = sample(load(hub, ref), prompt, max_new_tokens, temperature, top_k, seed)
    emit(
        {"prompt": prompt, "completion": text},
        json_output,
        lambda: console.print(prompt + text, highlight=False),
    )
