"""N LoRA adapters of one base share one base in memory, and each still answers exactly like the
adapter loaded on its own (``fmstack.train.inference.load``), also when requests interleave."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.serve import RunningServer
from fmstack.serve.loader import HubLoader
from fmstack.serve.runtimes.adapters import AdapterRuntime
from fmstack.train.adapter_descriptor import ADAPTER_DESCRIPTOR, AdapterDescriptor, write
from tests.serve.conftest import LABELS

TEXTS = ["hello there", "I want a refund for my order", "where is my card"]


def build_lora(
    base: Path,
    dest: Path,
    seed: int,
    base_ref: str,
    hf_head: bool = False,
    head: str = "linear",
    method: str = "lora",
) -> Path:
    """A LoRA (or with ``method="ia3"`` an IA3) classification adapter in fmstack train's format
    (mean-pooled head, the default), with weights made different per seed. ``hf_head`` builds it on the
    architecture's own head instead, which its descriptor does not say: an adapter that does not fit
    the model it loads on."""
    from peft import IA3Config, LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from fmstack.train.pooled import PooledEncoderForSequenceClassification

    torch.manual_seed(0)  # train seeds the task model's new head with the descriptor's init_seed
    labels = {
        "num_labels": 3,
        "id2label": dict(enumerate(LABELS)),
        "label2id": {k: i for i, k in enumerate(LABELS)},
    }
    if hf_head:
        model = AutoModelForSequenceClassification.from_pretrained(base, **labels)
    else:
        model = PooledEncoderForSequenceClassification.from_encoder(base, classifier_head=head, **labels)
    config = (
        LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"])
        if method == "lora"
        else IA3Config(task_type="SEQ_CLS", target_modules=["key", "value"], feedforward_modules=[])
    )
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # stand in for training: LoRA B starts at zero, the head at the seeded init
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "ia3_l" in name or "modules_to_save" in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    peft_model.save_pretrained(dest)
    descriptor = AdapterDescriptor(
        method=method,  # type: ignore[arg-type]
        format="peft",
        base=base_ref,
        task="classification",
        labels=LABELS,
        head=head,  # type: ignore[arg-type]
        max_length=64,
    )
    write(dest, ADAPTER_DESCRIPTOR, descriptor)
    return dest


@pytest.fixture
def adapters(served_hub: Hub, model_dirs: dict[str, Path], tmp_path: Path) -> list[str]:
    refs = []
    for i in range(3):
        folder = build_lora(model_dirs["encoder"], tmp_path / f"lora{i}", seed=i + 1, base_ref="acme/embed:1")
        refs.append(served_hub.push(f"acme/intent-lora-{i}", folder, "adapter").ref)
    return refs


def _reference(hub: Hub, ref: str) -> np.ndarray:
    from fmstack.train.inference import load

    loaded = load(hub, ref)
    batch = loaded.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return torch.softmax(logits, dim=-1).numpy()


def test_adapters_share_one_base_and_answer_like_alone(served_hub: Hub, adapters: list[str]) -> None:
    loader = HubLoader(served_hub, threads=1)
    runtimes = [loader(ref)[1] for ref in adapters]
    assert all(isinstance(r, AdapterRuntime) for r in runtimes)
    shared = {id(r.shared) for r in runtimes}  # type: ignore[attr-defined]
    assert loader.adapters.bases == 1 and len(shared) == 1
    assert runtimes[0].info.base == "acme/embed:1" and runtimes[0].info.labels == tuple(LABELS)
    outputs = []
    for ref, runtime in zip(adapters, runtimes, strict=True):
        out = runtime.forward(runtime.encode(TEXTS))
        np.testing.assert_allclose(out, _reference(served_hub, ref), atol=1e-5)
        outputs.append(out)
    assert not np.allclose(outputs[0], outputs[1], atol=1e-3)  # really different adapters
    for runtime in runtimes:
        runtime.close()
    assert loader.adapters.bases == 0


def test_adapters_with_different_heads_get_bases_of_their_own(
    served_hub: Hub, model_dirs: dict[str, Path], adapters: list[str], tmp_path: Path
) -> None:
    folder = build_lora(
        model_dirs["encoder"], tmp_path / "cos", seed=9, base_ref="acme/embed:1", head="cosine"
    )
    cosine = served_hub.push("acme/intent-lora-cosine", folder, "adapter").ref
    loader = HubLoader(served_hub, threads=1)
    linear_runtime, cosine_runtime = loader(adapters[0])[1], loader(cosine)[1]
    assert loader.adapters.bases == 2  # a cosine head cannot live in the linear head's model
    for ref, runtime in ((adapters[0], linear_runtime), (cosine, cosine_runtime)):
        np.testing.assert_allclose(
            runtime.forward(runtime.encode(TEXTS)), _reference(served_hub, ref), atol=1e-5
        )
        runtime.close()


def test_interleaved_requests_to_adapters_get_their_own_answers(
    served_hub: Hub, adapters: list[str], serve: Callable[..., RunningServer]
) -> None:
    server = serve(adapters[:2])
    listed = httpx.get(f"{server.url}/v1/models").json()["data"]
    assert [(m["platform"], m["base"]) for m in listed] == [("pytorch+peft", "acme/embed:1")] * 2
    expected = {ref: _reference(served_hub, ref) for ref in adapters[:2]}

    async def scenario() -> list[tuple[str, int, dict[str, float]]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def one(ref: str, i: int) -> tuple[str, int, dict[str, float]]:
                r = await client.post("/v1/classify", json={"model": ref, "input": TEXTS[i]})
                assert r.status_code == 200, r.text
                return ref, i, r.json()["data"][0]["scores"]

            jobs = [one(adapters[k % 2], k % 3) for k in range(24)]
            return await asyncio.gather(*jobs)

    for ref, i, scores in asyncio.run(scenario()):
        np.testing.assert_allclose([scores[label] for label in LABELS], expected[ref][i], atol=1e-4)


def test_an_adapter_alias_hot_swaps_onto_the_same_base(
    served_hub: Hub, model_dirs: dict[str, Path], tmp_path: Path, serve: Callable[..., RunningServer]
) -> None:
    for seed in (1, 2):
        folder = build_lora(model_dirs["encoder"], tmp_path / f"v{seed}", seed=seed, base_ref="acme/embed:1")
        served_hub.push("acme/lora", folder, "adapter", alias="prod" if seed == 1 else None)
    server = serve(["acme/lora@prod", "acme/intent-onnx"], poll_aliases_s=0.1)
    body = {"model": "acme/lora@prod", "input": TEXTS}
    assert httpx.post(f"{server.url}/v1/classify", json=body).json()["version"] == "acme/lora:1"
    served_hub.tag("acme/lora:2", "prod")
    for _ in range(200):
        answer = httpx.post(f"{server.url}/v1/classify", json=body).json()
        if answer["version"] == "acme/lora:2":
            break
        threading.Event().wait(0.05)
    assert answer["version"] == "acme/lora:2"
    scores = np.array([[d["scores"][label] for label in LABELS] for d in answer["data"]])
    np.testing.assert_allclose(scores, _reference(served_hub, "acme/lora:2"), atol=1e-4)
    runtime = server.state.models.get("acme/lora@prod").loaded().runtime
    assert isinstance(runtime, AdapterRuntime) and runtime.shared.adapters == {"acme_lora_2"}


def test_an_adapter_that_does_not_fit_its_model_is_refused(
    served_hub: Hub, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """PEFT only warns about missing adapter weights and runs without them; fmstack refuses."""
    folder = build_lora(
        model_dirs["encoder"], tmp_path / "misfit", seed=1, base_ref="acme/embed:1", hf_head=True
    )
    ref = served_hub.push("acme/intent-misfit", folder, "adapter").ref
    with pytest.raises(InvalidInput, match="does not fit its base model: 8 of its weights are missing"):
        HubLoader(served_hub, threads=1)(ref)  # as the first adapter of a base
    good = build_lora(model_dirs["encoder"], tmp_path / "good", seed=2, base_ref="acme/embed:1")
    loader = HubLoader(served_hub, threads=1)
    runtime = loader(served_hub.push("acme/intent-good", good, "adapter").ref)[1]
    before = runtime.forward(runtime.encode(TEXTS))
    with pytest.raises(InvalidInput, match="does not fit its base model"):
        loader(ref)  # joining a base that serves another adapter: refused, the other unharmed
    np.testing.assert_allclose(runtime.forward(runtime.encode(TEXTS)), before, atol=1e-6)


def _passes(model: torch.nn.Module) -> list[list[str] | None]:
    """Records each forward pass of ``model``: the adapter of each row it was given, or None when it
    ran the active adapter alone."""
    calls: list[list[str] | None] = []

    def record(module: torch.nn.Module, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        names = kwargs.get("adapter_names")
        calls.append(list(names) if isinstance(names, list) else None)

    model.register_forward_pre_hook(record, with_kwargs=True)
    return calls


def _forward_together(runtimes: list[AdapterRuntime], batches: list[list[str]]) -> list[np.ndarray]:
    """Each runtime's forward over its batch, from threads of their own that all queue behind a pass
    in progress (the base held), as the batch workers of adapters under load do."""
    shared = runtimes[0].shared
    outs: list[np.ndarray | None] = [None] * len(runtimes)

    def one(i: int) -> None:
        outs[i] = runtimes[i].forward(runtimes[i].encode(batches[i]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(runtimes))]
    with shared.exclusive():
        for thread in threads:
            thread.start()
        for _ in range(500):
            if shared.waiting == len(runtimes):
                break
            threading.Event().wait(0.01)
        assert shared.waiting == len(runtimes)
    for thread in threads:
        thread.join(30)
    return [out for out in outs if out is not None]


def test_batches_of_several_adapters_share_one_forward_pass(served_hub: Hub, adapters: list[str]) -> None:
    """Three adapters' batches that wait for the base together go through it in one pass, each row
    through its own adapter, and answer exactly what each adapter's batch alone answers (rows of
    different lengths, so the mixed pass pads them to another width)."""
    loader = HubLoader(served_hub, threads=1)
    runtimes = [loader(ref)[1] for ref in adapters]
    assert all(isinstance(r, AdapterRuntime) for r in runtimes)
    typed = [r for r in runtimes if isinstance(r, AdapterRuntime)]
    batches = [TEXTS, TEXTS[1:], ["hi", "a much longer text about a refund for the order I placed last week"]]
    alone = [r.forward(r.encode(b)) for r, b in zip(typed, batches, strict=True)]
    passes = _passes(typed[0].shared.model)
    mixed = _forward_together(typed, batches)
    assert len(passes) == 1, passes  # one pass for the three batches
    assert passes[0] is not None and sorted(set(passes[0])) == sorted(r.adapter for r in typed)
    assert len(mixed) == 3
    for got, want in zip(mixed, alone, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(mixed[0], _reference(served_hub, adapters[0]), atol=1e-5)


def test_a_mixed_pass_keeps_to_the_batch_limits(served_hub: Hub, adapters: list[str]) -> None:
    """With room for 4 texts per batch, two waiting batches of 3 texts go through the base one after
    the other, each with its own adapter active."""
    from fmstack.serve.batching import Limits

    loader = HubLoader(served_hub, threads=1, limits=Limits(max_tokens=8192, max_size=4, max_wait_s=0))
    runtimes = [r for ref in adapters[:2] if isinstance(r := loader(ref)[1], AdapterRuntime)]
    passes = _passes(runtimes[0].shared.model)
    outs = _forward_together(runtimes, [TEXTS, TEXTS])
    assert passes == [None, None]
    for ref, out in zip(adapters[:2], outs, strict=True):
        np.testing.assert_allclose(out, _reference(served_hub, ref), atol=1e-5)


def test_ia3_adapters_of_one_base_take_it_one_batch_at_a_time(
    served_hub: Hub, model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """PEFT's IA3 ignores ``adapter_names``: its batches never share a pass, and each still answers
    with its own adapter."""
    refs = []
    for i in range(2):
        folder = build_lora(model_dirs["encoder"], tmp_path / f"ia3-{i}", i + 1, "acme/embed:1", method="ia3")
        refs.append(served_hub.push(f"acme/intent-ia3-{i}", folder, "adapter").ref)
    loader = HubLoader(served_hub, threads=1)
    runtimes = [r for ref in refs if isinstance(r := loader(ref)[1], AdapterRuntime)]
    assert loader.adapters.bases == 1 and not runtimes[0].shared.mixable
    passes = _passes(runtimes[0].shared.model)
    outs = _forward_together(runtimes, [TEXTS, TEXTS])
    assert passes == [None, None]
    for ref, out in zip(refs, outs, strict=True):
        np.testing.assert_allclose(out, _reference(served_hub, ref), atol=1e-5)
    assert not np.allclose(outs[0], outs[1], atol=1e-3)
