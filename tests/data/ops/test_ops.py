"""What each op does, on small tables (the shared contract is in test_registry.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmstack.data.ops.base import SPLIT_COLUMN, Context
from fmstack.data.ops.dedup_near import band_hashes
from fmstack.data.ops.registry import OPS
from fmstack.data.ops.split import assign

from .test_registry import TEXTS, run, table, tiny_tokenizer

CTX = Context(unit=0, seed=3, labels=("a", "b", "c"))


def apply(name: str, data: pa.Table, ctx: Context = CTX, **config: Any) -> tuple[pa.Table, dict[str, int]]:
    return run(OPS[name].model_validate({"op": name, **config}), [data.slice(0, 4), data.slice(4)], ctx)


def test_normalize_nfkc_control_whitespace_lowercase() -> None:
    out, stats = apply(
        "normalize", table(["  \uff26\uff55\uff4c\uff4c\u0007width\t\ttext\u00a0 "]), lowercase=True
    )
    assert out.column("text").to_pylist() == ["fullwidth text"]
    assert stats["texts_changed"] == 1


def test_dedup_exact_keeps_first_occurrence_across_shards() -> None:
    out, stats = apply("dedup_exact", table([*TEXTS, "PLEASE help me with   my card"]))
    assert stats["duplicates_removed"] == 2
    assert out.column("text").to_pylist()[0] == "Please help me with my card"
    out, stats = apply("dedup_exact", table([*TEXTS, "PLEASE help me with   my card"]), normalize=False)
    assert stats["duplicates_removed"] == 0


def test_dedup_near_removes_close_variants_only() -> None:
    out, stats = apply("dedup_near", table(TEXTS), threshold=0.5, ngram=2)
    kept = out.column("text").to_pylist()
    assert "please help me with my card today" not in kept and "Please help me with my card" in kept
    assert "refund" in kept and "how do I change my PIN" in kept
    assert stats["duplicates_removed"] == 2


def test_split_is_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [500, 300, 200])
    codes = assign(labels, (0.8, 0.1, 0.1), seed=1)
    for label, n in ((0, 500), (1, 300), (2, 200)):
        counts = Counter(codes[labels == label].tolist())
        assert counts[0] == round(0.8 * n) and counts[1] + counts[2] == n - round(0.8 * n)
    assert np.array_equal(codes, assign(labels, (0.8, 0.1, 0.1), seed=1))
    assert not np.array_equal(codes, assign(labels, (0.8, 0.1, 0.1), seed=2))
    out, stats = apply("split", table(TEXTS * 10), train=0.5, validation=0.25, test=0.25)
    assert abs(stats["rows_train"] - 40) <= 3  # rounding happens per label (3 strata)
    assert Counter(out.column(SPLIT_COLUMN).to_pylist())["train"] == stats["rows_train"]


def test_augment_touches_train_rows_only() -> None:
    data = table(TEXTS)
    out, stats = apply("augment", data, multiplier=3)
    trains = pc.sum(pc.equal(data.column(SPLIT_COLUMN), "train")).as_py()
    assert stats["rows_added"] == 2 * trains and out.num_rows == data.num_rows + 2 * trains
    tests = out.filter(pc.equal(out.column(SPLIT_COLUMN), "test")).column("text").to_pylist()
    assert tests == [t for i, t in enumerate(TEXTS) if i % 4 == 0]
    variants = out.column("text").to_pylist()[1:3]  # row 1 is train: original, then its 2 variants
    assert variants[0] == TEXTS[1] and variants[1] != TEXTS[1]


def test_sample_n_per_split_and_map_labels() -> None:
    out, stats = apply("sample", table(TEXTS * 5), n=3)
    assert Counter(out.column(SPLIT_COLUMN).to_pylist()) == {"train": 3, "test": 3}
    assert stats["rows_dropped"] == 40 - 6
    out, stats = apply("map_labels", table(TEXTS), mapping={"a": "x", "b": "x"}, unmapped="drop")
    assert set(out.column("label").to_pylist()) == {"x"} and stats["rows_out"] == 6
    config = OPS["map_labels"].model_validate({"op": "map_labels", "mapping": {"a": "x", "b": "x"}})
    assert config.labels_after(("a", "b", "c")) == ("x", "c")


def test_filter_counts_each_rule() -> None:
    out, stats = apply("filter", table(TEXTS), min_words=2, exclude="(?i)card", labels=["a", "b"])
    assert stats["removed_words"] == 1 and stats["removed_exclude"] == 4
    assert all("card" not in t.lower() for t in out.column("text").to_pylist())


def test_redact_pii_counts_by_type() -> None:
    out, stats = apply("redact_pii", table(["mail a@b.io or 4111 1111 1111 1111", "nothing here"]))
    assert out.column("text").to_pylist()[0] == "mail [EMAIL] or [CARD]"
    assert stats["pii_email"] == 1 and stats["pii_card"] == 1 and stats["texts_changed"] == 1


def test_tokenize_then_pack_into_fixed_blocks(tmp_path: Path) -> None:
    ctx = Context(unit=0, seed=0, folders={"tiny/tok": tiny_tokenizer(tmp_path)})
    out, stats = apply(
        "tokenize", table(["please help me", "my card", "help"]), ctx, model="tiny/tok", max_length=4
    )
    assert out.column("input_ids").to_pylist() == [[1, 3, 4, 2], [1, 7, 8, 2], [1, 4, 2]]
    assert stats["rows_truncated"] == 1 and stats["tokens"] == 11
    packed, stats = apply("pack", out, ctx, block_size=5)
    assert packed.column("input_ids").to_pylist() == [[1, 3, 4, 2, 1], [7, 8, 2, 1, 4]]
    assert stats["tokens_dropped"] == 1 and stats["rows_out"] == 2


def _near_keys(signatures: list[list[int]], config: Any) -> dict[str, np.ndarray]:
    sig = np.array(signatures, dtype=np.uint32)
    bands, rows = config.band_layout()
    return {"bands": band_hashes(sig, bands, rows), "signatures": sig}


def test_dedup_near_checks_every_pair_of_a_bucket_not_only_neighbours() -> None:
    # Rows 0 and 2 are near duplicates (7 of 8 signature values agree); row 1 only collides with them
    # in band 0 (columns 0-3) and is below the threshold with both. Sorted by band hash the
    # bucket reads 0, 1, 2: checking neighbours only (0~1, 1~2) would keep row 2.
    config = OPS["dedup_near"].model_validate(
        {"op": "dedup_near", "num_perm": 8, "bands": 2, "threshold": 0.6}
    )
    near = config.build()
    a = [1, 2, 3, 4, 5, 6, 7, 8]
    b = [1, 2, 3, 4, 90, 91, 92, 93]
    c = [1, 2, 3, 4, 50, 6, 7, 8]
    masks, stats = near.decide([_near_keys([a, b], config), _near_keys([c], config)], CTX)
    assert [m.tolist() for m in masks] == [[True, True], [False]]
    assert stats == {"duplicates_removed": 1, "candidate_pairs_verified": 3, "near_duplicate_pairs": 1}


def test_dedup_near_folds_identical_copies_before_pairing() -> None:
    config = OPS["dedup_near"].model_validate(
        {"op": "dedup_near", "num_perm": 8, "bands": 2, "threshold": 0.6}
    )
    a, other = [1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16]
    masks, stats = config.build().decide([_near_keys([a, other, a, a, a], config)], CTX)
    assert masks[0].tolist() == [True, True, False, False, False]
    # 3 copies folded onto row 0 (one check each), not the 6 pairs of a 4-row bucket.
    assert stats == {"duplicates_removed": 3, "candidate_pairs_verified": 3, "near_duplicate_pairs": 3}
