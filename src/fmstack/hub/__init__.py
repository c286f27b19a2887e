"""The hub: versioned models, datasets and adapters with aliases, cards and lineage.

from fmstack.hub import Hub
with Hub.open() as hub:
    v = hub.push("acme/intent", "out/model", "model", alias="staging")
    hub.pull("acme/intent@staging", "/tmp/intent")

Type code that uses a hub with ``HubApi`` (``fmstack.hub.api``): the local ``Hub`` and a remote one
both implement it.
"""

from fmstack.hub.api import HubApi, RunsApi
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
    "HubApi",
    "Kind",
    "Lineage",
    "LineageNode",
    "Ref",
    "RepoInfo",
    "RunInfo",
    "RunsApi",
    "VersionDetail",
    "VersionInfo",
    "parse_ref",
]
