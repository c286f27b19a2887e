"""Hugging Face revisions -> hub versions (hf_revisions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fmstack.errors import InvalidInput
from fmstack.hub.entities import VersionInfo
from fmstack.server.hf_revisions import by_sha, check_revision, commit_sha, hub_refs, is_sha


def _version(number: int, digest: str) -> VersionInfo:
    return VersionInfo("acme/m", "model", number, digest, "", "me", datetime.now(UTC), 1, 1, None)


VERSIONS = [_version(1, "1" * 64), _version(2, "2" * 64), _version(3, "1" * 64)]


def test_the_sha_is_the_manifest_digest_cut_to_a_git_sha() -> None:
    assert commit_sha(VERSIONS[1]) == "2" * 40


def test_a_sha_names_the_version_with_those_files() -> None:
    assert by_sha(VERSIONS, "2" * 40) == VERSIONS[1]
    assert by_sha(VERSIONS, "1" * 40) == VERSIONS[2]  # the latest of two with the same files
    assert by_sha(VERSIONS, "f" * 40) is None
    assert is_sha("a" * 40) and not is_sha("A" * 40) and not is_sha("a" * 39)


def test_other_revisions_are_a_number_or_an_alias_and_main_falls_back_to_the_latest() -> None:
    assert hub_refs("acme/m", "3") == ["acme/m:3"]
    assert hub_refs("acme/m", "production") == ["acme/m@production"]
    assert hub_refs("acme/m", "main") == ["acme/m@main", "acme/m"]  # an alias named main wins


@pytest.mark.parametrize("revision", ["..", ".", "a/b", "a\\b", "main\x00"])
def test_path_like_revisions_are_refused(revision: str) -> None:
    with pytest.raises(InvalidInput, match="bad revision"):
        check_revision(revision)
