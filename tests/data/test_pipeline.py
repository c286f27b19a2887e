from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from fmstack.data.format import read_manifest, read_split
from fmstack.data.ingest import IngestSpec, ingest
from fmstack.data.pipeline import process
from fmstack.data.spec import ProcessSpec, parse_spec
from fmstack.errors import Conflict, InvalidInput
from fmstack.hub import Hub
from fmstack.hub.cards import parse_card
from fmstack.hub.importers import import_builtin

from .conftest import write_csv

CLEAN = [
    {"op": "normalize", "lowercase": True},
    {"op": "redact_pii"},
    {"op": "dedup_exact"},
    {"op": "dedup_near", "threshold": 0.7},
    {"op": "split", "train": 0.8, "validation": 0.1, "test": 0.1},
]


def spec(
    input_ref: str, ops: list[dict[str, object]], output: str = "acme/clean", seed: int = 7
) -> ProcessSpec:
    return parse_spec({"input": input_ref, "output": output, "seed": seed, "ops": ops})


def test_process_records_lineage_card_and_is_reproducible(hub: Hub, raw_ref: str) -> None:
    result = process(hub, spec(raw_ref, CLEAN), workers=1)
    version = result.published.version
    folder = hub.checkout(version.ref)
    manifest = read_manifest(folder)
    assert set(manifest.splits) == {"train", "validation", "test"}
    texts = [
        t for s in ("train", "validation", "test") for t in read_split(folder, s).column("text").to_pylist()
    ]
    assert (
        len(texts) == len(set(texts)) == 500
    )  # 100 upper-cased and 46 "+ thanks" copies removed, across shards
    assert not any("@example.com" in t for t in texts) and sum("[EMAIL]" in t for t in texts) == 50
    stats = {op["op"]: op for op in result.op_stats}
    assert (
        stats["dedup_exact"]["duplicates_removed"] == 100 and stats["dedup_near"]["duplicates_removed"] == 46
    )
    assert stats["redact_pii"]["pii_email"] == 105  # 50 originals, 50 upper-cased and 5 "thanks" copies
    run = hub.runs.get(version.run_id or 0)
    assert run.kind == "data.process" and run.inputs == [raw_ref] and run.outputs == [version.ref]
    assert (
        run.spec["input_digest"] == hub.resolve(raw_ref).digest and run.spec["ops"][3]["op"] == "dedup_near"
    )
    assert [n.ref for n in hub.lineage(version.ref).upstream.parents] == [raw_ref]
    meta, body = parse_card(hub.card(version.ref))
    assert "## Processing" in body and "duplicates_removed=100" in body
    assert meta.model_extra is not None and meta.model_extra["source"] == raw_ref
    again = process(hub, spec(raw_ref, CLEAN, output="acme/clean2"), workers=1).published.version
    assert again.digest == version.digest
    other_seed = process(hub, spec(raw_ref, CLEAN, output="acme/clean3", seed=8), workers=1).published.version
    assert other_seed.digest != version.digest


def test_tokenize_filter_and_pack_with_the_builtin_tokenizer(hub: Hub, raw_ref: str) -> None:
    import_builtin(hub)
    ops = [
        {"op": "tokenize", "model": "fmstack/minilm-l6", "max_length": 16},
        {"op": "filter", "min_tokens": 16},
        {"op": "pack", "block_size": 64},
    ]
    result = process(hub, spec(raw_ref, ops), workers=1)
    folder = hub.checkout(result.published.version.ref)
    manifest = read_manifest(folder)
    assert manifest.tokenizer == "fmstack/minilm-l6:1" and manifest.block_size == 64
    assert manifest.columns == ["input_ids", "attention_mask"]
    blocks = read_split(folder, "train").column("input_ids")
    assert set(pc.list_value_length(blocks).to_pylist()) == {64}
    tokens = next(op for op in result.op_stats if op["op"] == "tokenize")["tokens"]
    kept = next(op for op in result.op_stats if op["op"] == "filter")["rows_out"]
    assert kept * 16 == len(blocks) * 64 + result.op_stats[2]["tokens_dropped"] and tokens >= kept * 16


def test_hub_problems_are_listed_together(hub: Hub, raw_ref: str, tmp_path: Path) -> None:
    bad = spec("acme/nope", [{"op": "tokenize", "model": "acme/no-model"}])
    with pytest.raises(InvalidInput) as err:
        process(hub, bad, workers=1)
    assert "input:" in str(err.value) and "ops[0] (tokenize):" in str(err.value)
    # an output repo of another kind, and a dataset as tokenizer: refused before any work is done
    (tmp_path / "config.json").write_text("{}")
    hub.push("acme/a-model", tmp_path, "model")
    runs_before = len(hub.runs.recent())
    wrong = spec(raw_ref, [{"op": "tokenize", "model": raw_ref}], output="acme/a-model")
    with pytest.raises(InvalidInput) as err:
        process(hub, wrong, workers=1)
    assert "output: acme/a-model is a model repo, so it cannot take a dataset version" in str(err.value)
    assert f"ops[0] (tokenize): {raw_ref} is a dataset; name a model version" in str(err.value)
    assert len(hub.runs.recent()) == runs_before
    with pytest.raises(Conflict, match="acme/a-model is a model repo"):
        ingest(hub, IngestSpec(name="acme/a-model", paths=[str(tmp_path / "config.json")]))


def test_augment_needs_a_train_split_and_map_labels_updates_the_manifest(
    hub: Hub, raw_ref: str, tmp_path: Path
) -> None:
    ops = [
        {"op": "map_labels", "mapping": {"a": "alpha"}, "unmapped": "keep"},
        {"op": "augment", "multiplier": 2},
    ]
    result = process(hub, spec(raw_ref, ops), workers=1)
    manifest = read_manifest(hub.checkout(result.published.version.ref))
    assert manifest.labels == ["alpha", "b", "c"] and manifest.splits["train"].rows == 2 * 646
    path = write_csv(tmp_path / "test.csv", [("a", "x"), ("", "y")])
    test_only = ingest(hub, IngestSpec(name="acme/test-only", paths=[str(path)])).published.version.ref
    with pytest.raises(InvalidInput, match="augment only touches the train split"):
        process(hub, spec(test_only, ops), workers=1)
    kept = process(hub, spec(test_only, [{"op": "normalize"}]), workers=1).published.version
    assert read_manifest(hub.checkout(kept.ref)).splits["rejected"].rows == 1  # carried through unchanged
