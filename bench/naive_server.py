"""The naive baseline for ``bench/serve.py``: FastAPI + transformers, one forward pass per request.

What a first version of an embedding service usually looks like: a ``def`` endpoint (FastAPI runs it
in its thread pool), the Hugging Face tokenizer and model, mean pooling and L2 normalisation, no
batching across requests. It answers the same ``/v1/embeddings`` requests as ``fmstack serve``.
With ``--int8`` its Linear layers are quantised the usual PyTorch way (``quantize_dynamic``: int8
weights, activations quantised on the fly), the baseline of an int8 server at equal precision.

    python bench/naive_server.py MODEL_DIR --port 8001 [--int8]
"""

from __future__ import annotations

import argparse
import warnings

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModel, AutoTokenizer


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[str]


def int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with int8 Linear layers (PyTorch dynamic quantisation, deprecated for torchao but
    still what a PyTorch user reaches for on CPU)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def create_app(model_dir: str, quantize: bool = False) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    if quantize:
        model = int8(model)
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/embeddings")
    def embeddings(body: EmbeddingRequest) -> dict[str, object]:
        texts = [body.input] if isinstance(body.input, str) else body.input
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state  # (batch, seq, hidden)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        tokens = int(batch["attention_mask"].sum())
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)
            ],
            "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--int8", action="store_true", help="int8 Linear layers (quantize_dynamic).")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.model_dir, args.int8),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
