from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from fmstack.data.format import read_manifest, read_split
from fmstack.data.ingest import IngestSpec, ingest
from fmstack.data.sources import sha256_file
from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import Hub
from fmstack.hub.cards import parse_card

from .conftest import write_csv

MESSY_CSV = 'text,label\nhello world,greet\n"a,b",bye\nbad row\n,greet\n"multi\nline",bye\nok,greet,extra\n'


def _ingest(hub: Hub, **kw: object) -> tuple[str, Path]:
    result = ingest(hub, IngestSpec.model_validate({"name": "acme/raw", **kw}))
    ref = result.published.version.ref
    return ref, hub.checkout(ref)


def test_rejected_rows_keep_reason_source_and_line(hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text(MESSY_CSV)
    lines = [
        '{"text": "t1", "label": "greet"}',
        "not json",
        '{"text": 5, "label": "x"}',
        '{"label": "y"}',
        "[1]",
    ]
    with gzip.open(tmp_path / "test.jsonl.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    _ref, folder = _ingest(hub, paths=[str(tmp_path / "train.csv"), str(tmp_path / "test.jsonl.gz")])
    manifest = read_manifest(folder)
    assert {s: i.rows for s, i in manifest.splits.items()} == {"train": 3, "test": 1, "rejected": 7}
    assert read_split(folder, "train").column("text").to_pylist() == ["hello world", "a,b", "multi\nline"]
    rejected = read_split(folder, "rejected").select(["reason", "source", "line"]).to_pylist()
    assert rejected == [
        {"reason": "unparseable", "source": "train.csv", "line": 4},
        {"reason": "empty_text", "source": "train.csv", "line": 5},
        {"reason": "unparseable", "source": "train.csv", "line": 8},  # after a 2-line quoted value
        {"reason": "invalid_json", "source": "test.jsonl.gz", "line": 2},
        {"reason": "wrong_type", "source": "test.jsonl.gz", "line": 3},
        {"reason": "missing_column", "source": "test.jsonl.gz", "line": 4},
        {"reason": "invalid_json", "source": "test.jsonl.gz", "line": 5},
    ]
    assert manifest.labels == ["bye", "greet"]


def test_card_and_run_record_sources_stats_and_rejections(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(MESSY_CSV)
    ref, _ = _ingest(hub, paths=[str(path)])
    meta, body = parse_card(hub.card(ref))
    assert meta.model_extra is not None
    assert meta.model_extra["rows"] == {"train": 3, "rejected": 3}
    assert meta.model_extra["sources"] == [{"name": "train.csv", "sha256": sha256_file(path)}]
    assert meta.model_extra["rejected"] == {"empty_text": 1, "unparseable": 2}
    for heading in ("## Schema", "## Rows", "## Labels", "## Text length", "## Sources", "## Rejected rows"):
        assert heading in body
    run = hub.runs.get(hub.resolve(ref).run_id or 0)
    assert run.kind == "data.ingest" and run.status == "succeeded"
    assert run.spec["sources"][0]["sha256"] == sha256_file(path)
    assert run.outputs == [ref]


def test_reingest_returns_the_same_version(hub: Hub, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [("x", "1"), ("y", "2")])
    first = ingest(hub, IngestSpec(name="acme/raw", paths=[str(path)])).published
    again = ingest(hub, IngestSpec(name="acme/raw", paths=[str(path)])).published
    assert again.reused and (again.version.ref, again.version.digest) == (
        first.version.ref,
        first.version.digest,
    )
    assert len(hub.runs.recent(kind="data.ingest")) == 1


def test_a_failed_ingest_is_a_failed_run_with_its_reason_and_leaves_no_work(hub: Hub, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [("", "1"), ("  ", "2")])
    with pytest.raises(InvalidInput, match="no usable rows"):
        ingest(hub, IngestSpec(name="acme/raw", paths=[str(path)]))
    (run,) = hub.runs.recent(kind="data.ingest")
    assert run.status == "failed" and run.spec["error"].startswith("InvalidInput: no usable rows")
    assert run.spec["paths"] == [str(path)] and hub.ls() == []
    assert list((hub.settings.home / "tmp").iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv.zst", "tsv", "jsonl", "parquet", "txt"])
def test_every_format_gives_the_same_rows(hub: Hub, tmp_path: Path, fmt: str) -> None:
    rows = [("first example", "a"), ("second, with comma", "b")]
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv.zst":
        plain = write_csv(tmp_path / "plain.csv", rows).read_bytes()
        path.write_bytes(zstandard.ZstdCompressor().compress(plain))
    elif fmt == "tsv":
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows))
    elif fmt == "parquet":
        pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [1, 2]}), path)
    else:
        path.write_text("\n".join(t for t, _ in rows) + "\n\n")
    _, folder = _ingest(hub, paths=[str(path)])
    table = read_split(folder, "train")
    assert table.column("text").to_pylist() == [t for t, _ in rows]
    if fmt == "parquet":
        assert table.column("label").to_pylist() == ["1", "2"]  # integer labels become strings


def test_text_documents_one_row_per_file(hub: Hub, tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"doc{i}.txt").write_text(f"document {i}\nsecond line\n")
    _, folder = _ingest(hub, paths=[str(tmp_path / "*.txt")], text_mode="document")
    assert read_split(folder, "train").column("text").to_pylist()[0] == "document 0\nsecond line\n"


def test_splits_by_file_name_and_explicit_mapping(hub: Hub, tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", [("a", "x"), ("b", "y")])
    write_csv(tmp_path / "dev.csv", [("c", "x")])
    write_csv(tmp_path / "other.csv", [("d", "y")])
    _, folder = _ingest(hub, paths=[str(tmp_path / "train.csv"), str(tmp_path / "dev.csv")])
    assert list(read_manifest(folder).splits) == ["train", "validation"]
    with pytest.raises(InvalidInput, match="--split NAME=PATH"):
        _ingest(hub, paths=[str(tmp_path / "train.csv"), str(tmp_path / "other.csv")])
    _, folder = _ingest(
        hub, paths=[str(tmp_path / "train.csv")], splits={"test": [str(tmp_path / "other.csv")]}
    )
    assert {s: i.rows for s, i in read_manifest(folder).splits.items()} == {"train": 2, "test": 1}


def test_labels_whitelist_and_max_rejected_fraction(hub: Hub, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [("a", "x"), ("b", "y"), ("c", "zzz"), ("d", "x")])
    _, folder = _ingest(hub, paths=[str(path)], labels=["x", "y"])
    assert read_split(folder, "rejected").column("reason").to_pylist() == ["unknown_label"]
    assert read_manifest(folder).labels == ["x", "y"]
    with pytest.raises(InvalidInput, match=r"1 of 4 rows rejected .*nothing was registered"):
        ingest(
            hub,
            IngestSpec(name="acme/other", paths=[str(path)], labels=["x", "y"], max_rejected_fraction=0.2),
        )
    with pytest.raises(NotFound):
        hub.resolve("acme/other")


def test_clear_errors_for_undecodable_and_ambiguous_input(hub: Hub, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text\nfine\nbroken \xff byte\n")
    with pytest.raises(InvalidInput, match=r"bad.csv: not valid UTF-8 at byte offset 17"):
        _ingest(hub, paths=[str(bad)])
    amb = write_csv(tmp_path / "amb.csv", [("a", "b")], header=("body", "content"))
    with pytest.raises(InvalidInput, match=r"columns: 'body', 'content'"):
        _ingest(hub, paths=[str(amb)])
    gz = tmp_path / "x.csv.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(InvalidInput, match="x.csv.gz: cannot read the gzip stream"):
        _ingest(hub, paths=[str(gz)])


def test_same_input_gives_the_same_bytes_in_another_hub(hub: Hub, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [(f"row {i}", str(i % 3)) for i in range(1000)])
    first = ingest(hub, IngestSpec(name="acme/a", paths=[str(path)], shard_rows=300)).published.version
    second = ingest(hub, IngestSpec(name="acme/b", paths=[str(path)], shard_rows=300)).published.version
    assert first.digest == second.digest and first.file_count == 5  # 4 shards + dataset.json
