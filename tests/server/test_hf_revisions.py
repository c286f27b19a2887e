"""Hugging Face revisions -> hub versions (hf_revisions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fmstack.errors import InvalidInput
from fmstack.hub.entities import VersionInfo
from fmstack.server.hf_revisions import by_sha_or_number, check_revision, commit_sha


def _version(number: int, digest: str) -> VersionInfo:
    return VersionInfo("acme/m", "model", number, digest, "", "me", datetime.now(UTC), 1, 1, None)


VERSIONS = [_version(1, "1" * 64), _version(2, "2" * 64), _version(3, "1" * 64)]


def test_the_sha_is_the_manifest_digest_cut_to_a_git_sha() -> None:
    assert commit_sha(VERSIONS[1]) == "2" * 40


def test_a_sha_or_a_number_names_a_version_and_anything_else_is_left_to_aliases() -> None:
    assert by_sha_or_number(VERSIONS, "2" * 40) == VERSIONS[1]
    assert by_sha_or_number(VERSIONS, "1" * 40) in (VERSIONS[0], VERSIONS[2])  # same files either way
    assert by_sha_or_number(VERSIONS, "2") == VERSIONS[1]
    assert by_sha_or_number(VERSIONS, "9") is None
    assert by_sha_or_number(VERSIONS, "production") is None
    assert by_sha_or_number(VERSIONS, "f" * 40) is None


@pytest.mark.parametrize("revision", ["..", ".", "a/b", "a\\b", "main\x00"])
def test_path_like_revisions_are_refused(revision: str) -> None:
    with pytest.raises(InvalidInput, match="bad revision"):
        check_revision(revision)
