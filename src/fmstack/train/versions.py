"""The hub versions a training or eval run reads and writes, checked before any work starts: each
input ref resolved and of the kind its flag takes, the output a valid repo name of the right kind.
A run that would fail at its push fails here instead, before a run record exists or a step is trained."""

from __future__ import annotations

from fmstack.errors import Conflict, InvalidInput
from fmstack.hub import HubApi, Kind, VersionInfo
from fmstack.hub.entities import a_kind


def resolve_as(hub: HubApi, ref: str, kinds: tuple[Kind, ...], flag: str) -> VersionInfo:
    """The version ``ref`` names, refused with a message naming ``flag`` unless it is one of ``kinds``."""
    version = hub.resolve(ref)
    if version.kind not in kinds:
        wanted = a_kind(" or ".join(kinds))
        raise InvalidInput(
            f"{version.ref} is {a_kind(version.kind)}, not {wanted}; {flag} takes {wanted} version"
        )
    return version


def check_output(hub: HubApi, repo: str, kind: Kind) -> None:
    """Refuse an output (``--output``) that is not a plain NS/NAME or names a repo of another kind."""
    try:
        hub.check_repo_kind(repo, kind)
    except (InvalidInput, Conflict) as exc:
        raise type(exc)(f"--output: {exc}") from None
