"""``fmstack fed simulate``: a whole federation on one machine, for research and tests.

The dataset's train split is spread over N clients with Dirichlet(alpha) label skew, each share pushed
as a dataset version of its own (``NS/NAME-client-I``); the coordinator runs in this process (the hub
server's application, under uvicorn, on a free local port), and each client is a separate
``fmstack fed join`` process with its own federation token, exactly as a real client would be.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fmstack.data import format as dataformat
from fmstack.errors import InvalidInput
from fmstack.federated.partition import dirichlet
from fmstack.federated.spec import FederationSpec
from fmstack.hub import Hub
from fmstack.hub.scratch import scratch_dir
from fmstack.server.app import create_app, open_hub
from fmstack.server.federation.coordinator import Coordinator
from fmstack.server.federation.entities import FederationStatus
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings

Say = Callable[[str], None]


@dataclass(frozen=True)
class ClientShare:
    name: str
    data: str
    rows: int
    classes: int


def split_clients(
    hub: Hub, data: str, federation: str, clients: int, alpha: float, seed: int
) -> list[ClientShare]:
    """Push each client's share of ``data``'s train split as a dataset version of its own."""
    source = hub.checkout(data)
    manifest = dataformat.read_manifest(source)
    if "train" not in manifest.splits or not manifest.labels:
        raise InvalidInput(f"--data {data}: a simulation needs a labelled dataset with a train split")
    table = dataformat.read_split(source, "train")
    labels = [str(v) for v in table.column("label").to_pylist()]
    shares = []
    for i, rows in enumerate(dirichlet(labels, clients, alpha, seed)):
        part = table.take(rows)
        with scratch_dir(hub.settings.home, "fed-split") as folder:
            info = dataformat.write_split(folder, "train", [part])
            dataformat.write_manifest(
                folder,
                dataformat.DatasetManifest(
                    splits={"train": info}, columns=list(part.column_names), labels=list(manifest.labels)
                ),
            )
            version = hub.push(
                f"{federation}-client-{i}",
                folder,
                "dataset",
                message=f"Dirichlet({alpha}) share {i} of {data}",
            )
        shares.append(ClientShare(f"client-{i}", version.ref, len(rows), len({labels[r] for r in rows})))
    return shares


def labels_of(hub: Hub, data: str) -> list[str]:
    return list(dataformat.read_manifest(hub.checkout(data)).labels)


def simulate(
    settings: Settings,
    spec: FederationSpec,
    data: str,
    clients: int,
    alpha: float,
    *,
    seed: int = 0,
    threads: int = 1,
    say: Say = lambda _m: None,
) -> FederationStatus:
    hub, _accounts = open_hub(ServerSettings(hub=settings))
    try:
        shares = split_clients(hub, data, spec.name, clients, alpha, seed)
        for share in shares:
            say(f"{share.name}: {share.rows} rows, {share.classes} classes ({share.data})")
        coordinator = Coordinator(hub)
        coordinator.start(spec, settings.user)
        tokens = {share.name: coordinator.add_client(spec.name, share.name) for share in shares}
        with serving(settings) as url:
            say(f"coordinator on {url}; {clients} client processes join {spec.name}")
            _run_clients(url, spec, shares, tokens, threads, settings.home, coordinator, say)
        return coordinator.status(spec.name)
    finally:
        hub.close()


def _run_clients(
    url: str,
    spec: FederationSpec,
    shares: list[ClientShare],
    tokens: dict[str, str],
    threads: int,
    home: Path,
    coordinator: Coordinator,
    say: Say,
) -> None:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with scratch_dir(home, "fed-sim") as logs:
        try:
            for share in shares:
                log = open(logs / f"{share.name}.log", "wb")  # noqa: SIM115 (the child writes it)
                processes[share.name] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "fmstack",
                        "fed",
                        "join",
                        "--server",
                        url,
                        "--federation",
                        spec.name,
                        "--data",
                        share.data,
                        "--token",
                        tokens[share.name],
                        "--threads",
                        str(threads),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                log.close()
            _wait(processes, coordinator, spec.name, logs, say)
        finally:
            for p in processes.values():
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=30)


def _wait(
    processes: dict[str, subprocess.Popen[bytes]], coordinator: Coordinator, name: str, logs: Path, say: Say
) -> None:
    seen = 0
    while any(p.poll() is None for p in processes.values()):
        time.sleep(1.0)
        seen = _report_rounds(coordinator, name, seen, say)
    _report_rounds(coordinator, name, seen, say)
    failed = {client: p.returncode for client, p in processes.items() if p.returncode != 0}
    if failed:
        tails = "\n".join(
            f"--- {client} (exit {code}) ---\n{(logs / f'{client}.log').read_text(errors='replace')[-1500:]}"
            for client, code in failed.items()
        )
        raise InvalidInput(f"{len(failed)} client process(es) failed:\n{tails}")


def _report_rounds(coordinator: Coordinator, name: str, seen: int, say: Say) -> int:
    status = coordinator.status(name)
    closed = [r for r in status.rounds if r.status == "closed"]
    for r in closed[seen:]:
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in sorted(r.metrics.items()) if k.startswith(("eval_", "client_train"))
        )
        say(
            f"round {r.number}: {len([u for u in r.updates if u['status'] == 'accepted'])} updates -> {r.output_ref} {shown}"
        )
    return len(closed)


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The hub server's application on a free local port, in a thread of this process."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(ServerSettings(hub=settings, port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise InvalidInput(f"the coordinator could not listen on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
