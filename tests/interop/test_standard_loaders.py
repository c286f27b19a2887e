"""The interop table (docs/interop.md): each kind of artifact fmstack saves, loaded by the standard tool a
user would reach for, answers exactly as fmstack's own loading does, or is refused loudly.

Every row trains (or compresses) a tiny version through fmstack, pulls it like a user, loads it with
the standard tool only, and compares logits on the same texts (argmax equal, fp32 logits within 1e-4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from fmstack.hub import Hub
from fmstack.train.inference import load
from tests.interop.conftest import Trained, pulled
from tests.train.conftest import texts

ATOL = 1e-4
TEXTS = texts(12, seed=7)[0]


def _fmstack_logits(hub: Hub, ref: str) -> torch.Tensor:
    loaded = load(hub, ref)
    return _logits(loaded.model, loaded.tokenizer)


@torch.no_grad()
def _logits(model: Any, tokenizer: Any) -> torch.Tensor:
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    return model.eval()(**batch).logits.float()  # type: ignore[no-any-return]


def _same(standard: torch.Tensor, ours: torch.Tensor) -> None:
    assert torch.equal(standard.argmax(-1), ours.argmax(-1))
    torch.testing.assert_close(standard, ours, atol=ATOL, rtol=0)


def _pooled_base(adapter: Path, base: Path) -> Any:
    """The documented way to build, without fmstack, the classifier an adapter of a mean-pooled
    classifier applies to: its config and code ship in the adapter folder, the weights are the base's."""
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    config = AutoConfig.from_pretrained(adapter, trust_remote_code=True)
    classifier = get_class_from_dynamic_module("pooled.PooledEncoderForSequenceClassification", str(adapter))
    return classifier.from_pretrained(base, config=config)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_peft_adapter_loads_in_peft_with_fmstacks_predictions(
    trained: Trained, hub: Hub, tiny_bert: str, tmp_path: Path, method: str
) -> None:
    from peft import PeftModel
    from transformers import AutoTokenizer

    ref = trained.train(method=method)
    adapter, base = pulled(hub, ref, tmp_path), pulled(hub, tiny_bert, tmp_path)
    model = PeftModel.from_pretrained(_pooled_base(adapter, base), adapter)
    _same(_logits(model, AutoTokenizer.from_pretrained(base)), _fmstack_logits(hub, ref))
    # the card's "Without fmstack" snippet does the same
    from_card = _run_card_snippet(hub, ref, folder=str(adapter), base_folder=str(base))
    _same(_logits(from_card, AutoTokenizer.from_pretrained(base)), _fmstack_logits(hub, ref))


def _run_card_snippet(hub: Hub, ref: str, **names: Any) -> Any:
    """Run the code block of the version card's "Without fmstack" section; returns its ``model``."""
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    section = hub.card(ref).split("## Without fmstack", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {
        "PeftModel": PeftModel,
        "AutoConfig": AutoConfig,
        "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
        "get_class_from_dynamic_module": get_class_from_dynamic_module,
        **names,
    }
    exec(code, scope)  # the card's own text, written by this test's training run
    return scope["model"]


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_peft_adapter_on_a_cls_head_is_refused_not_half_loaded(
    trained: Trained, hub: Hub, tiny_bert: str, tmp_path: Path, method: str
) -> None:
    """The issue's report: loaded on BertForSequenceClassification, PEFT skipped every LoRA weight
    with a warning and the model scored at chance. Now PEFT raises."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    adapter = pulled(hub, trained.train(method=method), tmp_path)
    wrong = AutoModelForSequenceClassification.from_pretrained(pulled(hub, tiny_bert, tmp_path), num_labels=3)
    with pytest.raises(ValueError, match="[Tt]arget"):
        PeftModel.from_pretrained(wrong, adapter)


def test_cls_pooled_lora_loads_on_the_standard_head(
    trained: Trained, hub: Hub, tiny_bert: str, tmp_path: Path
) -> None:
    """``pooling: cls`` trains the architecture's own head: plain PEFT on plain transformers loads it."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ref = trained.train(method="lora", pooling="cls")
    adapter, base = pulled(hub, ref, tmp_path), pulled(hub, tiny_bert, tmp_path)
    labels = load(hub, ref).labels
    plain = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    model = PeftModel.from_pretrained(plain, adapter)
    _same(_logits(model, AutoTokenizer.from_pretrained(base)), _fmstack_logits(hub, ref))
    from_card = _run_card_snippet(hub, ref, folder=str(adapter), base_folder=str(base), N=len(labels))
    _same(_logits(from_card, AutoTokenizer.from_pretrained(base)), _fmstack_logits(hub, ref))
    assert not (adapter / "config.json").exists()  # nothing of fmstack's classifier to ship


@pytest.mark.parametrize(("method", "head"), [("full", "linear"), ("probe", "linear"), ("full", "cosine")])
def test_classifier_folder_loads_with_auto_classes(
    trained: Trained, hub: Hub, tmp_path: Path, method: str, head: str
) -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    ref = trained.train(method=method, head=head)
    folder = pulled(hub, ref, tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    _same(_logits(model, AutoTokenizer.from_pretrained(folder)), _fmstack_logits(hub, ref))
    assert model.config.id2label == dict(enumerate(load(hub, ref).labels))
    from_card = _run_card_snippet(hub, ref, folder=str(folder))
    _same(_logits(from_card, AutoTokenizer.from_pretrained(folder)), _fmstack_logits(hub, ref))
    assert (
        AutoConfig.from_pretrained(folder, trust_remote_code=True).model_type == "fmstack-pooled-classifier"
    )


def test_cls_pooled_classifier_is_a_plain_transformers_folder(
    trained: Trained, hub: Hub, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

    ref = trained.train(method="full", pooling="cls")
    folder = pulled(hub, ref, tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert type(model) is BertForSequenceClassification and not (folder / "pooled.py").exists()
    _same(_logits(model, AutoTokenizer.from_pretrained(folder)), _fmstack_logits(hub, ref))


STANDALONE = """
import json, sys
sys.modules["fmstack"] = None  # any import of fmstack fails: the folders must carry what they need
import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.dynamic_module_utils import get_class_from_dynamic_module

classifier, adapter, base, texts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
def logits(model, folder):
    batch = AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**batch).logits.tolist()
full = AutoModelForSequenceClassification.from_pretrained(classifier, trust_remote_code=True)
config = AutoConfig.from_pretrained(adapter, trust_remote_code=True)
pooled = get_class_from_dynamic_module("pooled.PooledEncoderForSequenceClassification", adapter)
lora = PeftModel.from_pretrained(pooled.from_pretrained(base, config=config), adapter)
print("LOGITS", json.dumps({"full": logits(full, classifier), "lora": logits(lora, base)}))
"""


@pytest.mark.slow
def test_folders_load_where_fmstack_is_not_installed(
    trained: Trained, hub: Hub, tiny_bert: str, tmp_path: Path
) -> None:
    """In this process fmstack's own registered classes would answer; a fresh interpreter that cannot
    import fmstack runs the code shipped in the folders."""
    import subprocess
    import sys

    full = trained.train(method="full", head="cosine")  # the shipped code has both heads
    lora = trained.train(method="lora")
    folders = [str(pulled(hub, ref, tmp_path)) for ref in (full, lora, tiny_bert)]
    done = subprocess.run(
        [sys.executable, "-c", STANDALONE, *folders, json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = json.loads(done.stdout.rpartition("LOGITS ")[2])
    _same(torch.tensor(out["full"]), _fmstack_logits(hub, full))
    _same(torch.tensor(out["lora"]), _fmstack_logits(hub, lora))


def test_adapters_saved_before_the_interop_change_still_load_in_fmstack(
    trained: Trained, hub: Hub, tiny_bert: str, tmp_path: Path
) -> None:
    """Hub versions are immutable: an adapter saved with PEFT's short target names, the hub ref as its
    base and no classifier config still loads in fmstack, with the same answers."""
    ref = trained.train(method="lora")
    old = pulled(hub, ref, tmp_path)
    config = json.loads((old / "adapter_config.json").read_text())
    config.update(target_modules=["query", "value"], base_model_name_or_path=tiny_bert)
    (old / "adapter_config.json").write_text(json.dumps(config))
    for name in ("config.json", "pooled.py"):
        (old / name).unlink()
    before = hub.push("acme/lora-old", old, "adapter").ref
    _same(_fmstack_logits(hub, before), _fmstack_logits(hub, ref))


@pytest.mark.parametrize("method", ["adapter", "prefix"])
def test_fmstack_only_adapters_are_refused_by_peft_and_transformers(
    trained: Trained, hub: Hub, tiny_bert: str, tmp_path: Path, method: str
) -> None:
    """Bottleneck adapters and prefixes are fmstack's own layers: no standard tool can run them, so
    their folder has no adapter_config.json for PEFT or transformers to half-load."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    folder = pulled(hub, trained.train(method=method), tmp_path)
    assert (folder / "fmstack_method.json").is_file() and not (folder / "adapter_config.json").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(pulled(hub, tiny_bert, tmp_path), num_labels=3)
    with pytest.raises(ValueError, match="adapter_config.json"):
        PeftModel.from_pretrained(plain, folder)
    with pytest.raises((OSError, ValueError)):  # no config.json: not a model folder either
        AutoModelForSequenceClassification.from_pretrained(folder)


@pytest.mark.parametrize("method", ["adapter", "prefix"])
def test_fmstack_only_adapters_saved_before_still_load(
    trained: Trained, hub: Hub, tmp_path: Path, method: str
) -> None:
    ref = trained.train(method=method)
    old = pulled(hub, ref, tmp_path)
    (old / "fmstack_method.json").rename(old / "adapter_config.json")  # the name it had before
    before = hub.push(f"acme/{method}-old", old, "adapter").ref
    _same(_fmstack_logits(hub, before), _fmstack_logits(hub, ref))


@pytest.mark.slow  # compress measures latency before and after (~30 s on a loaded 2-core machine)
def test_onnx_version_runs_in_plain_onnxruntime(trained: Trained, hub: Hub, tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime
    from transformers import AutoConfig, AutoTokenizer

    from fmstack.compress.pipeline import compress
    from fmstack.compress.spec import CompressSpec

    parent = trained.train(method="full", head="linear")  # the classifier row's version
    version = compress(hub, parent, CompressSpec(optimize=False)).version
    assert version is not None
    folder = pulled(hub, version.ref, tmp_path)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="np")
    feed = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}
    (logits,) = session.run(["logits"], feed)
    _same(torch.from_numpy(logits), _fmstack_logits(hub, parent))
    config = AutoConfig.from_pretrained(
        folder, trust_remote_code=True
    )  # the code its auto_map names is there
    assert config.id2label == dict(enumerate(load(hub, parent).labels))


def test_base_model_loads_with_auto_model(hub: Hub, tiny_bert: str, tmp_path: Path) -> None:
    """An imported base is the folder it was imported from: AutoModel gives fmstack's token states."""
    from transformers import AutoModel, AutoTokenizer

    folder = pulled(hub, tiny_bert, tmp_path)
    batch = AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt")
    loaded = load(hub, tiny_bert)
    with torch.no_grad():
        standard = AutoModel.from_pretrained(folder).eval()(**batch).last_hidden_state
        ours = loaded.model(**batch).last_hidden_state
    torch.testing.assert_close(standard, ours, atol=ATOL, rtol=0)


def test_dataset_shards_load_in_datasets_with_class_labels(hub: Hub, topics: str, tmp_path: Path) -> None:
    import datasets

    from fmstack.data import format as dataformat

    folder = pulled(hub, topics, tmp_path)
    manifest = dataformat.read_manifest(folder)
    files = {split: [str(folder / s) for s in info.shards] for split, info in manifest.splits.items()}
    loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    train = loaded["train"]
    assert train.features["label"] == datasets.ClassLabel(names=manifest.labels)
    ours = dataformat.read_split(folder, "train")
    assert [train.features["label"].int2str(i) for i in train["label"]] == ours.column("label").to_pylist()
    assert train["text"] == ours.column("text").to_pylist()


def test_a_parquet_file_written_by_datasets_ingests_with_its_label_names(hub: Hub, tmp_path: Path) -> None:
    """The other direction: `datasets` stores a ClassLabel as ids; ingest reads the names it saved."""
    import datasets

    from fmstack.data import format as dataformat
    from fmstack.data.ingest import IngestSpec, ingest

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["sport", "food"])}
    )
    rows = {"text": ["the ball and the goal", "bread and soup", "a match score"], "label": [0, 1, 0]}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "train.parquet"))
    result = ingest(
        hub, IngestSpec.model_validate({"name": "acme/from-hf", "paths": [str(tmp_path / "train.parquet")]})
    )
    folder = hub.checkout(result.published.version.ref)
    assert sorted(dataformat.read_manifest(folder).labels) == ["food", "sport"]
    assert dataformat.read_split(folder, "train").column("label").to_pylist() == ["sport", "food", "sport"]
