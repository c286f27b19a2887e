"""Tree listings, pages and dates of the Hugging Face-compatible API, as pure functions (hf_tree)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fmstack.errors import InvalidInput
from fmstack.hub.entities import FileInfo
from fmstack.server.hf_tree import Commit, find_file, hub_date, page, tree_entries

FILES = [
    FileInfo("config.json", "a" * 64, 10),
    FileInfo("data/train-00000.parquet", "b" * 64, 20),
    FileInfo("data/deep/x.bin", "c" * 64, 30),
    FileInfo("dataset.json", "d" * 64, 40),
]


def _paths(entries: list[dict[str, object]] | None) -> list[tuple[object, object]]:
    assert entries is not None
    return [(e["type"], e["path"]) for e in entries]


def test_the_root_lists_its_files_and_immediate_folders() -> None:
    assert _paths(tree_entries(FILES, "", recursive=False, commit=None)) == [
        ("file", "config.json"),
        ("directory", "data"),
        ("file", "dataset.json"),
    ]


def test_recursive_lists_every_file_and_every_folder() -> None:
    assert _paths(tree_entries(FILES, "", recursive=True, commit=None)) == [
        ("file", "config.json"),
        ("directory", "data"),
        ("directory", "data/deep"),
        ("file", "data/deep/x.bin"),
        ("file", "data/train-00000.parquet"),
        ("file", "dataset.json"),
    ]


def test_a_folder_lists_its_own_children_and_a_file_or_missing_name_is_no_folder() -> None:
    assert _paths(tree_entries(FILES, "data", recursive=False, commit=None)) == [
        ("directory", "data/deep"),
        ("file", "data/train-00000.parquet"),
    ]
    assert tree_entries(FILES, "config.json", recursive=False, commit=None) is None
    assert tree_entries(FILES, "dat", recursive=False, commit=None) is None  # a prefix, not a folder


def test_a_file_entry_is_an_lfs_file_addressed_by_its_sha256() -> None:
    entries = tree_entries(
        FILES[:1], "", recursive=False, commit=Commit("f" * 40, "v1", "2024-01-01T00:00:00.000Z")
    )
    assert entries is not None
    (entry,) = entries
    assert entry["lfs"]["oid"] == "a" * 64 and entry["lfs"]["size"] == 10 and entry["size"] == 10
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{'a' * 64}\nsize 10\n"
    assert entry["lfs"]["pointerSize"] == len(pointer)
    assert entry["lastCommit"] == {"id": "f" * 40, "title": "v1", "date": "2024-01-01T00:00:00.000Z"}


def test_pages_follow_each_other_to_the_end() -> None:
    entries = [{"path": str(i)} for i in range(5)]
    first, cursor = page(entries, None, 2)
    second, cursor2 = page(entries, str(cursor), 2)
    last, end = page(entries, str(cursor2), 2)
    assert [e["path"] for e in first + second + last] == ["0", "1", "2", "3", "4"] and end is None
    with pytest.raises(InvalidInput, match="cursor"):
        page(entries, "-1", 2)


def test_find_file_matches_whole_paths_only() -> None:
    assert find_file(FILES, "data/deep/x.bin") == FILES[2]
    assert find_file(FILES, "data") is None and find_file(FILES, "x.bin") is None


def test_dates_are_utc_with_a_z_whatever_the_input_zone() -> None:
    at = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert hub_date(at) == "2024-05-01T12:00:00.123Z"
    assert hub_date(datetime(2024, 5, 1, 12, 0)) == "2024-05-01T12:00:00.000Z"  # SQLite's naive UTC
    assert hub_date(datetime(2024, 5, 1, 12, 0, tzinfo=UTC)).endswith("Z")
