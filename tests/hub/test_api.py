"""``HubApi``: the local ``Hub`` offers every member of the Protocol with the same signature, so code
written against the Protocol runs on it unchanged (mypy checks the same in ``hub/store.py``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from fmstack.hub import Hub
from fmstack.hub.api import HubApi, RunsApi
from fmstack.hub.runs import RunLog
from fmstack.settings import Settings
from tests.hub.folders import make_folder


def _members(protocol: type) -> list[str]:
    own = {name for klass in protocol.__mro__[:-1] if klass is not object for name in vars(klass)}
    return sorted(n for n in own if not n.startswith("_") or n in ("__enter__", "__exit__"))


def _parameters(fn: object) -> str:
    """Names, kinds, defaults and annotations of the parameters (return types may narrow: ``Hub``
    for ``HubApi``, a generator context manager for a context manager; mypy checks those)."""
    signature = inspect.signature(inspect.unwrap(fn))  # type: ignore[arg-type]
    return str(signature.replace(return_annotation=inspect.Signature.empty))


@pytest.mark.parametrize(("protocol", "impl"), [(HubApi, Hub), (RunsApi, RunLog)])
def test_local_implementation_matches_the_protocol(protocol: type, impl: type) -> None:
    members = _members(protocol)
    assert {"push", "pull", "checkout", "resolve", "runs"} <= set(members) or protocol is RunsApi
    for name in members:
        declared = inspect.getattr_static(protocol, name)
        if isinstance(declared, property):  # an attribute or property of the implementation
            continue
        assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
        assert _parameters(getattr(impl, name)) == _parameters(declared), name


def test_code_written_against_the_protocol_runs_on_the_local_hub(tmp_path: Path) -> None:
    def publish(hub: HubApi, folder: Path) -> str:
        with hub.runs.recorded("train", {"lr": 1.0}) as run:
            version = hub.push("acme/m", folder, "model", alias="staging", run_id=run)
        hub.set_card(version.ref, "# m\n")
        return hub.read_file("acme/m@staging", "a").decode() + hub.card(version.ref)

    with Hub(Settings.at(tmp_path / "home")) as hub:
        assert publish(hub, make_folder(tmp_path / "m", {"a": "1"})) == "1# m\n"
        assert [e.alias for e in hub.alias_history("acme/m")] == ["staging"]
        assert hub.runs.recent()[0].outputs == ["acme/m:1"]
