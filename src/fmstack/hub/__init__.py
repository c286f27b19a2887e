"""The hub: versioned models, datasets and adapters with aliases, cards and lineage.

from fmstack.hub import Hub
with Hub.open() as hub:
    v = hub.push("acme/intent", "out/model", "model", alias="staging")
    hub.pull("acme/intent@staging", "/tmp/intent")
"""

from fmstack.hub.entities import (
    KINDS,
    FileInfo,
    Kind,
    Lineage,
    LineageNode,
    RepoInfo,
    RunInfo,
    VersionDetail,
    VersionInfo,
)
from fmstack.hub.refs import Ref, parse_ref
from fmstack.hub.store import Hub

__all__ = [
    "KINDS",
    "FileInfo",
    "Hub",
    "Kind",
    "Lineage",
    "LineageNode",
    "Ref",
    "RepoInfo",
    "RunInfo",
    "VersionDetail",
    "VersionInfo",
    "parse_ref",
]
