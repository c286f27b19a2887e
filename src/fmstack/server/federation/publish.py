"""Writing a round's versions: a writable copy of a version's files, the clients' mean metrics and the
card of a global adapter."""

from __future__ import annotations

import shutil
from pathlib import Path

from fmstack.federated.spec import FederationSpec
from fmstack.server.federation.schema import FedUpdateRow


def copy_version(source: Path, dest: Path) -> None:
    """A version's files into a writable folder (checkouts are read-only; copyfile drops the mode)."""
    for path in source.rglob("*"):
        target = dest / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def client_means(accepted: list[FedUpdateRow]) -> dict[str, float]:
    """The example-weighted mean of each metric the clients reported (their local train loss...)."""
    total = sum(u.examples for u in accepted) or 1
    names = {k for u in accepted for k, v in u.metrics.items() if isinstance(v, int | float)}
    return {
        f"client_{k}": sum(float(u.metrics.get(k, 0.0)) * u.examples for u in accepted) / total for k in names
    }


def card(spec: FederationSpec, number: int, metrics: dict[str, float], accepted: list[FedUpdateRow]) -> str:
    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items()))
    who = ", ".join(f"{u.client} ({u.examples} examples)" for u in accepted)
    return (
        f"# {spec.name}: federated round {number} of {spec.rounds}\n\n"
        f"{spec.method} adapter on `{spec.base}`, aggregated with {spec.strategy} from {who}.\n"
        f"The clients' data never left them; their updates are versions of `{spec.name}-updates`.\n\n"
        f"| metric | value |\n| --- | --- |\n{rows}\n"
    )
