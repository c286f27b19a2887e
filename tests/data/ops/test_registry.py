"""The contract every op in ``OPS`` must keep, run over every entry: it validates, builds, reports
rows in/out, is deterministic, and gives the same rows however the input is sharded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from fmstack.data.ops.base import SPLIT_COLUMN, Context, FinalOp, GlobalOp, OpConfig, RowOp
from fmstack.data.ops.registry import OPS

EXAMPLES: dict[str, dict[str, Any]] = {
    "normalize": {"lowercase": True},
    "filter": {"min_words": 3},
    "dedup_exact": {},
    "dedup_near": {"threshold": 0.5, "ngram": 2},
    "redact_pii": {},
    "map_labels": {"mapping": {"a": "x"}},
    "split": {},
    "augment": {"multiplier": 3},
    "sample": {"fraction": 0.5},
    "tokenize": {"model": "tiny/tok", "max_length": 16},
    "pack": {"block_size": 8},
}
TEXTS = [
    "Please help me with my card",
    "please help me with my card",
    "please help me with my card today",
    "My transfer to bob@example.com failed",
    "why is my balance not updated",
    "refund",
    "The  ATM   kept my card",
    "how do I change my PIN",
]


def tiny_tokenizer(folder: Path) -> str:
    vocab = {
        "[UNK]": 0,
        "[CLS]": 1,
        "[SEP]": 2,
        **{w: i + 3 for i, w in enumerate(["please", "help", "me", "with", "my", "card"])},
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return str(folder)


def table(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            "text": texts,
            "label": [("a", "b", "c")[i % 3] for i in range(n)],
            SPLIT_COLUMN: ["train" if i % 4 else "test" for i in range(n)],
        }
    )


def run(config: OpConfig, shards: list[pa.Table], ctx: Context) -> tuple[pa.Table, dict[str, int]]:
    """The op over shards as the pipeline runs it (see fmstack.data.stage), in one process."""
    op, stats = config.build(), {}

    def add(new: dict[str, int]) -> None:
        for k, v in new.items():
            stats[k] = stats.get(k, 0) + v

    if config.kind == "row":
        outs = []
        for shard in shards:
            out, new = cast(RowOp, op).apply(shard, ctx)
            outs.append(out)
            add(new)
    elif config.kind == "global":
        g = cast(GlobalOp, op)
        decisions, new = g.decide([g.keys(s, ctx) for s in shards], ctx)
        add(new)
        outs = []
        for shard, decision in zip(shards, decisions, strict=True):
            out, new = g.apply(shard, decision, ctx)
            outs.append(out)
            add(new)
    else:
        f = cast(FinalOp, op)
        outs = [f.feed(s.drop_columns([SPLIT_COLUMN])) for s in shards]
        rest, new = f.finish()
        outs.append(rest)
        add(new)
    return pa.concat_tables(outs), stats


def test_every_op_has_an_example() -> None:
    assert set(EXAMPLES) == set(OPS)


@pytest.mark.parametrize("name", list(OPS))
def test_op_contract(name: str, tmp_path: Path) -> None:
    config = OPS[name].model_validate({"op": name, **EXAMPLES[name]})
    assert config.op == name
    ctx = Context(
        unit=0, seed=3, labels=("a", "b", "c"), folders={"tiny/tok": tiny_tokenizer(tmp_path / "tok")}
    )
    whole = table(TEXTS)
    if config.needs_tokens():
        whole, _ = cast(RowOp, OPS["tokenize"].model_validate(EXAMPLES["tokenize"]).build()).apply(whole, ctx)
    one, stats = run(config, [whole], ctx)
    again, _ = run(config, [whole], ctx)
    assert one.equals(again), "same input and seed must give the same rows"
    assert stats["rows_in"] == whole.num_rows and stats["rows_out"] == one.num_rows
    if config.kind != "final":
        assert SPLIT_COLUMN in one.column_names
    sharded, _ = run(config, [whole.slice(0, 3), whole.slice(3)], ctx)
    assert sharded.equals(one), "sharding must not change the result"
    assert np.all(np.array([isinstance(k, str) for k in stats]))
