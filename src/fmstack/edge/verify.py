"""The hub server's check of a publish before it stores anything: the metadata a device would accept.

Devices check everything themselves (ngclient); the server checks the same chain at publish time so
that a wrong key, a stale version or a broken chain is refused with a clear 4xx to the publisher
instead of leaving every device of the channel refusing updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from securesystemslib.exceptions import FormatError
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization import DeserializationError

from fmstack.edge.repository import ChannelVersions
from fmstack.errors import Conflict, InvalidInput

LARGEST_VERSION = 2**31 - 1  # what the server's version columns hold


@dataclass(frozen=True)
class CheckedUpdate:
    roots: list[Metadata[Root]]
    targets: Metadata[Targets]
    snapshot: Metadata[Snapshot]
    timestamp: Metadata[Timestamp]

    def files(self) -> dict[str, tuple[str, int]]:
        """Target path -> (sha256, size)."""
        return {path: (t.hashes["sha256"], t.length) for path, t in self.targets.signed.targets.items()}


def _parse(data: bytes, what: str) -> Metadata:  # type: ignore[type-arg]
    try:
        return Metadata.from_bytes(data)
    except (DeserializationError, ValueError, KeyError, TypeError, FormatError) as exc:
        raise InvalidInput(f"{what} is not TUF metadata ({type(exc).__name__}: {exc})") from None


def _verified(delegator: Metadata[Root], role: str, md: Metadata, what: str) -> None:  # type: ignore[type-arg]
    try:
        delegator.verify_delegate(role, md)
    except UnsignedMetadataError as exc:
        raise InvalidInput(
            f"{what} is not signed by the keys the channel's root names for {role} ({exc}): publish with the "
            "channel's keys (`fmstack edge publish --keys DIR`), or rotate them with `fmstack edge keys rotate`"
        ) from None


def check_update(
    trusted_root: bytes | None,
    current: ChannelVersions,
    roots: list[bytes],
    targets: bytes,
    snapshot: bytes,
    timestamp: bytes,
) -> CheckedUpdate:
    """The parsed update when devices trusting ``trusted_root`` would accept it; ``InvalidInput`` or
    ``Conflict`` (a concurrent publish got there first) naming the problem otherwise."""
    chain: list[Metadata[Root]] = []
    previous = None if trusted_root is None else _parse(trusted_root, "the channel's root")
    for index, data in enumerate(roots):
        root = _parse(data, f"root {index + 1} of the upload")
        if root.signed.type != "root":
            raise InvalidInput(f"root {index + 1} of the upload is {root.signed.type} metadata")
        expected = 1 if previous is None else previous.signed.version + 1
        if expected > LARGEST_VERSION:
            raise InvalidInput(f"root version {expected} is over {LARGEST_VERSION}")
        if root.signed.version != expected:
            raise InvalidInput(
                f"root version {root.signed.version} uploaded; the channel needs version {expected} next"
            )
        if previous is not None:
            _verified(previous, "root", root, f"root version {root.signed.version}")
        _verified(root, "root", root, f"root version {root.signed.version}")
        chain.append(root)
        previous = root
    if previous is None:
        raise InvalidInput("a new channel needs its root metadata (1.root.json) in the first publish")
    parsed = {}
    for role, data, last in (
        ("targets", targets, current.targets),
        ("snapshot", snapshot, current.snapshot),
        ("timestamp", timestamp, current.timestamp),
    ):
        md = _parse(data, f"the {role} metadata")
        if md.signed.type != role:
            raise InvalidInput(f"the {role} metadata is {md.signed.type} metadata")
        if md.signed.version > LARGEST_VERSION:
            raise InvalidInput(f"{role} version {md.signed.version} is over {LARGEST_VERSION}")
        if md.signed.version <= last:
            raise Conflict(
                f"{role} version {md.signed.version} uploaded, but the channel already holds version {last}: "
                "another publish got there first; publish again"
            )
        if md.signed.is_expired(datetime.now(UTC)):
            raise InvalidInput(
                f"the {role} metadata expired at {md.signed.expires}; sign it with a later expiry"
            )
        _verified(previous, role, md, f"the {role} metadata")
        parsed[role] = md
    if parsed["snapshot"].signed.meta.get("targets.json") is None or (
        parsed["snapshot"].signed.meta["targets.json"].version != parsed["targets"].signed.version
    ):
        raise InvalidInput("the snapshot does not name the uploaded targets version")
    if parsed["timestamp"].signed.snapshot_meta.version != parsed["snapshot"].signed.version:
        raise InvalidInput("the timestamp does not name the uploaded snapshot version")
    return CheckedUpdate(chain, parsed["targets"], parsed["snapshot"], parsed["timestamp"])
