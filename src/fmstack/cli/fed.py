"""``fmstack fed ...``: federated fine-tuning. ``start``, ``token``, ``status`` and ``stop`` manage a
federation on the hub server (FMSTACK_HUB_URL / ``--hub URL``, with your account token) or, with no
server selected, directly on the local hub's database (a ``fmstack server start`` on the same
FMSTACK_HOME serves it). ``join`` is the client side; ``simulate`` runs a whole federation here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from fmstack.cli.output import JsonFlag, console, emit, err_console
from fmstack.errors import InvalidInput
from fmstack.federated.spec import FederationSpec, parse_spec
from fmstack.hub.entities import to_jsonable
from fmstack.settings import Settings
from fmstack.specfile import load_spec_file

app = typer.Typer(no_args_is_help=True)
FedArg = Annotated[str, typer.Argument(help="The federation, NS/NAME.")]


def _remote(settings: Settings) -> tuple[str, str] | None:
    from fmstack.server import credentials

    found = credentials.remote(settings)
    return (found.url, found.token) if found is not None else None


def _call(url: str, token: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    from fmstack.server.client import error_of

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(
            method, f"{url}/api/v1/federations{path}", headers=headers, timeout=600, **kwargs
        )
    except httpx.TransportError as exc:
        raise InvalidInput(f"cannot reach the hub server at {url}: {exc}") from None
    if response.status_code >= 400:
        raise error_of(response)
    body: dict[str, Any] = response.json()
    return body


def _local(settings: Settings) -> Any:
    from fmstack.server.app import open_hub
    from fmstack.server.settings import ServerSettings

    hub, _ = open_hub(ServerSettings(hub=settings))
    return hub


@app.command()
def start(
    spec_file: Annotated[
        Path, typer.Argument(help="The federation spec (YAML; docs/federated.md lists the fields).")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Start a federation: push round 1's global adapter and open round 1."""
    spec = load_spec_file(spec_file, parse_spec, "federation spec")
    settings = Settings.from_env()
    remote = _remote(settings)
    if remote is not None:
        status = _call(*remote, "POST", "", json=spec.model_dump(mode="json"))
    else:
        from fmstack.server.federation.coordinator import Coordinator

        hub = _local(settings)
        try:
            status = to_jsonable(Coordinator(hub).start(spec, settings.user))
        finally:
            hub.close()
    emit(status, json_output, lambda: _show(status))


@app.command()
def token(
    federation: FedArg,
    client: Annotated[str, typer.Argument(help="The client's name (a new token replaces its old one).")],
    json_output: JsonFlag = False,
) -> None:
    """Create a client token valid for this federation only (shown once)."""
    settings = Settings.from_env()
    remote = _remote(settings)
    if remote is not None:
        made = _call(*remote, "POST", f"/{federation}/clients", json={"client": client})
    else:
        from fmstack.server.federation.coordinator import Coordinator

        hub = _local(settings)
        try:
            made = {
                "federation": federation,
                "client": client,
                "token": Coordinator(hub).add_client(federation, client),
            }
        finally:
            hub.close()
    emit(made, json_output, lambda: typer.echo(made["token"]))


@app.command()
def status(
    federation: FedArg,
    server: Annotated[
        str | None, typer.Option("--server", help="A client's view: the coordinator's URL.")
    ] = None,
    token_: Annotated[str | None, typer.Option("--token", help="With --server: a federation token.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Rounds, participants, accepted/rejected/late updates and metrics (and epsilon with DP)."""
    settings = Settings.from_env()
    remote = (server.rstrip("/"), token_ or "") if server else _remote(settings)
    if remote is not None:
        found = _call(*remote, "GET", f"/{federation}")
    else:
        from fmstack.server.federation.coordinator import Coordinator

        hub = _local(settings)
        try:
            coordinator = Coordinator(hub)
            coordinator.advance(federation)
            found = to_jsonable(coordinator.status(federation))
        finally:
            hub.close()
    emit(found, json_output, lambda: _show(found))


@app.command()
def stop(federation: FedArg, json_output: JsonFlag = False) -> None:
    """Stop a federation: clients are told it is done; finished rounds stay."""
    settings = Settings.from_env()
    remote = _remote(settings)
    if remote is not None:
        found = _call(*remote, "POST", f"/{federation}/stop")
    else:
        from fmstack.server.federation.coordinator import Coordinator

        hub = _local(settings)
        try:
            found = to_jsonable(Coordinator(hub).stop(federation))
        finally:
            hub.close()
    emit(found, json_output, lambda: _show(found))


@app.command()
def join(
    server: Annotated[
        str, typer.Option("--server", help="The hub server that coordinates, e.g. http://hub:8765.")
    ],
    federation: Annotated[str, typer.Option("--federation", help="The federation, NS/NAME.")],
    data: Annotated[
        str, typer.Option("--data", help="Your data: a dataset ref in your local hub, or a CSV/JSONL file.")
    ],
    token_: Annotated[str | None, typer.Option("--token", help="Your federation token (fmf_...).")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="A file holding the token.")] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="With a file: the text column.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="With a file: the label column.")
    ] = None,
    max_rounds: Annotated[
        int | None, typer.Option("--max-rounds", min=1, help="Leave after this many updates.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="Torch CPU threads for local training.")
    ] = None,
    give_up_s: Annotated[
        float, typer.Option("--give-up-s", help="Wait this long for an unreachable coordinator.")
    ] = 600.0,
    json_output: JsonFlag = False,
) -> None:
    """Take part: train each round on local data (it never leaves) and upload only the adapter weights; rerun after a crash to rejoin."""
    from fmstack.federated.client import FederationClient
    from fmstack.federated.client import join as run_join
    from fmstack.hub import Hub

    secret = _token(token_, token_file)
    if threads:
        import torch

        torch.set_num_threads(threads)
    settings = Settings.from_env()
    if settings.hub_url is not None:
        raise InvalidInput(
            "fed join trains on your local hub: drop --hub / FMSTACK_HUB_URL and pass --server"
        )
    with Hub(settings) as hub:
        ref = _local_data(hub, data, federation, text_column, label_column)
        client = FederationClient(server, federation, secret, give_up_s=give_up_s)
        try:
            say = (lambda _m: None) if json_output else (lambda m: err_console.print(escape(m)))
            summary = run_join(hub, client, ref, hub.checkout(ref), max_rounds=max_rounds, say=say)
        finally:
            client.close()
    emit(summary, json_output, lambda: console.print(f"took part in {len(summary.rounds)} round(s)"))


def _token(token_: str | None, token_file: Path | None) -> str:
    if token_file is not None:
        try:
            return token_file.read_text().strip()
        except OSError as exc:
            raise InvalidInput(f"--token-file: {exc}") from None
    if not token_:
        raise InvalidInput(
            "give your federation token: --token fmf_... or --token-file PATH (`fmstack fed token`)"
        )
    return token_


def _local_data(hub: Any, data: str, federation: str, text: str | None, label: str | None) -> str:
    """A dataset ref as given, or a file ingested into the local hub (it stays on this machine)."""
    path = Path(data)
    if not path.is_file():
        return str(hub.resolve(data).ref)
    from fmstack.data.ingest import IngestSpec, ingest

    name = f"{hub.settings.user}/{federation.replace('/', '-')}-local"
    spec = IngestSpec(name=name, splits={"train": [str(path)]}, text_column=text, label_column=label)
    return str(ingest(hub, spec).published.version.ref)


@app.command()
def simulate(
    data: Annotated[str, typer.Option("--data", help="A labelled dataset ref with a train split.")],
    clients: Annotated[int, typer.Option("--clients", min=1, help="Client processes.")] = 10,
    dirichlet: Annotated[
        float, typer.Option("--dirichlet", help="Label skew: Dirichlet(alpha); small = skewed.")
    ] = 0.5,
    base: Annotated[str, typer.Option("--base", help="Base model ref.")] = "fmstack/minilm-l6",
    name: Annotated[
        str | None, typer.Option("--name", help="NS/NAME of the federation (default USER/fed-sim-TIME).")
    ] = None,
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="A federation spec YAML for everything else.")
    ] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", min=1, help="Rounds.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="fedavg, fedprox or fedadam.")] = None,
    method: Annotated[str | None, typer.Option("--method", help="lora, ia3 or adapter.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch threads per client process.")] = 1,
    json_output: JsonFlag = False,
) -> None:
    """Run a whole federation here: --data split over --clients with label skew, one `fed join` process per client."""
    from fmstack.hub import Hub
    from fmstack.server.federation.simulate import labels_of
    from fmstack.server.federation.simulate import simulate as run_simulation

    settings = Settings.from_env()
    if settings.hub_url is not None:
        raise InvalidInput("fed simulate runs on the local hub: drop --hub / FMSTACK_HUB_URL")
    raw: dict[str, Any] = {}
    if spec_file is not None:
        from fmstack.specfile import read_spec_file

        raw = read_spec_file(spec_file, "federation spec")
    with Hub(settings) as hub:
        labels = labels_of(hub, hub.resolve(data).ref)
    given = {"rounds": rounds, "strategy": strategy, "method": method}
    raw = {
        "name": name or raw.get("name") or f"{settings.user}/fed-sim-{time.strftime('%Y%m%d-%H%M%S')}",
        "base": raw.get("base", base),
        "labels": raw.get("labels", labels),
        "clients_per_round": raw.get("clients_per_round", clients),
        "min_clients": raw.get("min_clients", clients),
        **raw,
        **{k: v for k, v in given.items() if v is not None},
    }
    raw.setdefault("eval_data", data)
    spec: FederationSpec = parse_spec(raw)
    say = (lambda _m: None) if json_output else (lambda m: err_console.print(escape(m)))
    found = to_jsonable(
        run_simulation(settings, spec, data, clients, dirichlet, seed=seed, threads=threads, say=say)
    )
    emit(found, json_output, lambda: _show(found))


def _show(status: dict[str, Any]) -> None:
    spec = status["spec"]
    eps = f", epsilon {status['epsilon']:.3g}" if status.get("epsilon") is not None else ""
    console.print(
        f"[bold]{escape(status['name'])}[/] {status['status']}, round {status['round']} of {spec['rounds']} "
        f"({spec['strategy']}, {spec['method']} on {escape(spec['base'])}{eps}); global {status['global_ref']}"
    )
    console.print(f"clients: {escape(', '.join(status['clients'])) or 'none yet'}")
    table = Table("round", "status", "accepted", "refused", "global", "metrics", box=None)
    for r in status["rounds"]:
        ok = [u["client"] for u in r["updates"] if u["status"] == "accepted"]
        refused = [
            f"{u['client']} ({u['status']}: {u['reason']})" for u in r["updates"] if u["status"] != "accepted"
        ]
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in sorted(r["metrics"].items()) if isinstance(v, int | float)
        )
        table.add_row(
            str(r["number"]),
            r["status"],
            escape(", ".join(ok)),
            escape("; ".join(refused)),
            r["output_ref"] or "",
            escape(shown or r["note"]),
        )
    console.print(table)
