"""A channel's next TUF metadata, signed with the online key (python-tuf's Metadata API).

Each publish writes targets, snapshot and timestamp one version above what the channel holds, and
carries the root versions the channel lacks (after ``fmstack edge keys rotate``). Consistent snapshots
are on: metadata is fetched as ``N.targets.json`` and files as ``<sha256>.<name>``, so a device never
reads a half-published channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from fmstack.edge.bundle import Target
from fmstack.edge.keys import KeyFolder
from fmstack.errors import IntegrityError

DEFAULT_EXPIRES_DAYS = 30


@dataclass(frozen=True)
class ChannelVersions:
    """The newest version of each role a channel holds (0: none yet)."""

    root: int = 0
    targets: int = 0
    snapshot: int = 0
    timestamp: int = 0


@dataclass(frozen=True)
class SignedUpdate:
    roots: list[bytes]  # root versions the channel lacks, oldest first
    targets: bytes
    snapshot: bytes
    timestamp: bytes


def sign_update(
    keys: KeyFolder, current: ChannelVersions, targets: list[Target], expires_days: int = DEFAULT_EXPIRES_DAYS
) -> SignedUpdate:
    """Targets naming exactly ``targets``, and the snapshot and timestamp over it, all signed."""
    signer = keys.online_signer()
    expires = (datetime.now(UTC) + timedelta(days=expires_days)).replace(microsecond=0)
    files = {t.path: TargetFile(t.size, {"sha256": t.sha256}, t.path) for t in targets}
    targets_md = Metadata(Targets(version=current.targets + 1, expires=expires, targets=files))
    snapshot_md = Metadata(
        Snapshot(
            version=current.snapshot + 1,
            expires=expires,
            meta={"targets.json": MetaFile(version=targets_md.signed.version)},
        )
    )
    timestamp_md = Metadata(
        Timestamp(
            version=current.timestamp + 1,
            expires=expires,
            snapshot_meta=MetaFile(version=snapshot_md.signed.version),
        )
    )
    serializer = JSONSerializer(compact=True)
    signed = []
    for md in (targets_md, snapshot_md, timestamp_md):
        md.sign(signer)
        signed.append(md.to_bytes(serializer))
    return SignedUpdate(keys.root_versions()[current.root :], *signed)


def signed_targets(keys: KeyFolder, data: bytes) -> list[Target]:
    """The targets of a channel's current targets metadata, once it is verified as ours: signed by
    the online key of one of our root versions (a refresh re-signs only what we signed before, never
    what a compromised server might hand back)."""
    targets = Metadata[Targets].from_bytes(data)
    for root_bytes in reversed(keys.root_versions()):
        try:
            Metadata[Root].from_bytes(root_bytes).verify_delegate("targets", targets)
        except UnsignedMetadataError:
            continue
        return [
            Target(path, t.hashes["sha256"], t.length, None) for path, t in targets.signed.targets.items()
        ]
    raise IntegrityError(
        "the channel's current targets metadata is not signed by any of this key folder's keys: refresh "
        "with the keys that published it (--keys DIR), or publish a new bundle"
    )
