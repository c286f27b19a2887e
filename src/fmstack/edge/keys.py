"""Signing keys of edge channels: an offline-capable root key and an online key, both Ed25519.

``FMSTACK_HOME/edge/keys`` (or a folder the user names) holds::

    root.pem            the root key (mode 0600): signs root metadata only; keep it offline
    online.pem          the online key (mode 0600): signs targets, snapshot and timestamp at each publish
    roots/N.root.json   every root metadata version; 1.root.json is the trust anchor devices ship with

The root key is needed by ``init`` and ``rotate`` only, so it can live on a removable disk
(``--root-key PATH``) between rotations. Private keys are written with O_EXCL and mode 0600, never
logged, never sent anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Key
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization.json import JSONSerializer

from fmstack.errors import Conflict, InvalidInput, NotFound

ONLINE_ROLES = ("targets", "snapshot", "timestamp")
ROOT_DAYS = 365


@dataclass(frozen=True)
class KeyFolder:
    folder: Path
    root_key: Path  # may be elsewhere (offline)

    @classmethod
    def at(cls, folder: Path, root_key: Path | None = None) -> KeyFolder:
        return cls(folder, root_key or folder / "root.pem")

    @property
    def online_key(self) -> Path:
        return self.folder / "online.pem"

    @property
    def roots(self) -> Path:
        return self.folder / "roots"

    def root_versions(self) -> list[bytes]:
        """Every root metadata version, oldest first (what a channel must carry)."""
        found = sorted(self.roots.glob("*.root.json"), key=lambda p: int(p.name.split(".")[0]))
        if not found:
            raise NotFound(f"no edge keys in {self.folder}: create them with `fmstack edge keys init`")
        return [p.read_bytes() for p in found]

    def latest_root(self) -> Metadata[Root]:
        return Metadata[Root].from_bytes(self.root_versions()[-1])

    def online_signer(self) -> CryptoSigner:
        root = self.latest_root().signed
        keyid = root.roles["targets"].keyids[0]
        return _load_signer(self.online_key, root.keys[keyid])

    def root_signer(self) -> CryptoSigner:
        root = self.latest_root().signed
        keyid = root.roles["root"].keyids[0]
        return _load_signer(self.root_key, root.keys[keyid])


def _load_signer(path: Path, public: Key) -> CryptoSigner:
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise NotFound(
            f"no private key at {path}: the key folder is incomplete (for the root key, pass --root-key "
            "PATH where you keep it offline)"
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidInput(f"{path}: expected an Ed25519 key")
    try:
        return CryptoSigner(private, public)  # type: ignore[arg-type]
    except ValueError:  # the private key does not belong to the public key the root names
        raise InvalidInput(
            f"{path}: this key is not the one the latest root metadata names for its role (rotated? use the "
            "key folder the rotation wrote)"
        ) from None


def _write_private(path: Path, signer: CryptoSigner) -> None:
    """The PEM of a private key, created with mode 0600 (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(signer.private_bytes)


def _write_root(keys: KeyFolder, root: Metadata[Root]) -> Path:
    keys.roots.mkdir(parents=True, exist_ok=True)
    path = keys.roots / f"{root.signed.version}.root.json"
    path.write_bytes(root.to_bytes(JSONSerializer(compact=False)))
    return path


def _expiry(days: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def init_keys(keys: KeyFolder, root_days: int = ROOT_DAYS) -> Path:
    """New root and online keys and root metadata version 1; the path of 1.root.json."""
    if keys.roots.exists() or keys.online_key.exists() or keys.root_key.exists():
        raise Conflict(
            f"edge keys already exist in {keys.folder}: use them, `fmstack edge keys rotate` to replace the "
            "online key, or --dir for another folder"
        )
    root_signer, online = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    _write_private(keys.root_key, root_signer)
    _write_private(keys.online_key, online)
    root = Metadata(Root(expires=_expiry(root_days), consistent_snapshot=True))
    root.signed.add_key(root_signer.public_key, "root")
    for role in ONLINE_ROLES:
        root.signed.add_key(online.public_key, role)
    root.sign(root_signer)
    return _write_root(keys, root)


def rotate_online_key(keys: KeyFolder, root_days: int = ROOT_DAYS) -> Path:
    """A new online key, named in root metadata version N+1 signed with the root key; the new root's path.

    Devices follow the chain of roots (ngclient checks each is signed by its predecessor's keys), so
    after the next publish on a channel its devices trust only the new online key.
    """
    root_signer = keys.root_signer()
    root = keys.latest_root()
    online = CryptoSigner.generate_ed25519()
    for role in ONLINE_ROLES:
        for keyid in list(root.signed.roles[role].keyids):
            root.signed.revoke_key(keyid, role)
        root.signed.add_key(online.public_key, role)
    root.signed.version += 1
    root.signed.expires = _expiry(root_days)
    root.signatures.clear()
    root.sign(root_signer)
    staged = keys.online_key.with_suffix(".pem.new")
    staged.unlink(missing_ok=True)
    _write_private(staged, online)
    path = _write_root(keys, root)
    os.replace(staged, keys.online_key)
    return path
