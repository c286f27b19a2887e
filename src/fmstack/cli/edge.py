"""``fmstack edge ...``: signing keys, publishing ONNX versions to device channels, the fleet, rollback.

Publishing works against a hub server (``--hub URL`` or FMSTACK_HUB_URL, with the token of
``fmstack login``): the version is read from that hub, its bundle signed here with the online key, and
the signed metadata uploaded to the server, which devices (``fmstack-edge agent``) poll.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from numpy.typing import NDArray
from rich.markup import escape
from rich.table import Table

from fmstack.cli.output import JsonFlag, console, emit
from fmstack.cli.remote import open_hub
from fmstack.edge.bundle import CHANNEL_PATTERN, DEFAULT_MAX_LATENCY_MS, DEFAULT_TOLERANCE, build_bundle
from fmstack.edge.keys import KeyFolder, init_keys, rotate_online_key
from fmstack.edge.repository import (
    DEFAULT_EXPIRES_DAYS,
    ChannelVersions,
    SignedUpdate,
    sign_update,
    signed_targets,
)
from fmstack.errors import InvalidInput, NotFound, Unsupported
from fmstack.server import credentials
from fmstack.server.client import HubClient
from fmstack.settings import Settings

app = typer.Typer(no_args_is_help=True)
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys: init (root + online key), rotate.")
app.add_typer(keys_app, name="keys")

KeysDir = Annotated[
    Path | None,
    typer.Option("--keys", help="The key folder (default FMSTACK_HOME/edge/keys).", file_okay=False),
]
RootKey = Annotated[
    Path | None,
    typer.Option(
        "--root-key",
        help="Where the root key is kept, e.g. on a removable disk (default KEYS/root.pem).",
        dir_okay=False,
    ),
]
ChannelOpt = Annotated[str, typer.Option("--channel", "-c", help="The channel, e.g. stable.")]
_CHANNEL = re.compile(CHANNEL_PATTERN)


def _keys(folder: Path | None, root_key: Path | None = None) -> KeyFolder:
    return KeyFolder.at(folder or Settings.from_env().home / "edge" / "keys", root_key)


def _client() -> HubClient:
    found = credentials.remote(Settings.from_env())
    if found is None:
        raise Unsupported(
            "edge channels live on a hub server: pass --hub URL (or set FMSTACK_HUB_URL) and log in with "
            "`fmstack login URL`"
        )
    return HubClient(found.url, found.token or None)


def _channel(name: str) -> str:
    if not _CHANNEL.match(name):
        raise InvalidInput(
            f"bad channel name {name!r}: lowercase letters, digits, '.', '_', '-' (at most 59)"
        )
    return name


@keys_app.command("init")
def keys_init(
    keys: KeysDir = None,
    root_key: RootKey = None,
    root_days: Annotated[
        int, typer.Option("--root-days", min=1, help="Days the root metadata is valid.")
    ] = 365,
    json_output: JsonFlag = False,
) -> None:
    """Create the root key and the online key (Ed25519, mode 0600) and root metadata version 1.

    Ship KEYS/roots/1.root.json with every device (`fmstack-edge agent --root`): it is what they trust.
    The root key signs root metadata only (init, rotate): move it offline (--root-key) afterwards.
    """
    folder = _keys(keys, root_key)
    root = init_keys(folder, root_days)
    result = {"keys": str(folder.folder), "root_key": str(folder.root_key), "trust_anchor": str(root)}

    def human() -> None:
        console.print(f"keys in {escape(str(folder.folder))} (private keys mode 0600)")
        console.print(f"trust anchor for devices: {escape(str(root))} (fmstack-edge agent --root)")
        console.print(
            f"keep the root key offline: move {escape(str(folder.root_key))} to removable media and pass "
            "--root-key PATH to `fmstack edge keys rotate`"
        )

    emit(result, json_output, human)


@keys_app.command("rotate")
def keys_rotate(
    keys: KeysDir = None,
    root_key: RootKey = None,
    root_days: Annotated[
        int, typer.Option("--root-days", min=1, help="Days the new root metadata is valid.")
    ] = 365,
    json_output: JsonFlag = False,
) -> None:
    """Replace the online key: a new root metadata version, signed with the root key, names the new one.

    Each channel receives the new root with its next publish; devices then trust only the new key.
    """
    folder = _keys(keys, root_key)
    root = rotate_online_key(folder, root_days)
    emit(
        {"root": str(root)},
        json_output,
        lambda: console.print(f"new online key; root metadata {escape(str(root))}"),
    )


def _rollout(text: str) -> int:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise InvalidInput(f"bad --rollout {text!r}: a percentage such as 10% or 100") from None
    if not 0 <= value <= 100 or value != int(value):
        raise InvalidInput(f"bad --rollout {text!r}: a whole percentage from 0 to 100")
    return int(value)


def serve_outputs(folder: Path, texts: list[str]) -> NDArray[np.float32]:
    """What ``fmstack serve``'s ONNX runtime answers: the golden outputs devices must reproduce."""
    from fmstack.servable import read_descriptor
    from fmstack.serve.runtimes.onnx import load

    runtime = load(folder, read_descriptor(folder), threads=1)
    try:
        return runtime.forward(runtime.encode(texts))
    finally:
        runtime.close()


def _channel_state(client: HubClient, channel: str) -> dict[str, Any]:
    try:
        info: dict[str, Any] = client.get_json(f"/api/v1/edge/channels/{channel}")
        return info
    except NotFound:
        return {"versions": {}, "bundles": []}


def _publish(
    ref: str,
    channel: str,
    rollout: int,
    keys: KeyFolder,
    golden: list[str] | None,
    tolerance: float,
    max_latency_ms: float,
    expires_days: int,
) -> dict[str, Any]:
    keys.online_signer()  # missing or wrong keys fail here, before anything is downloaded
    with open_hub() as hub, _client() as client:
        version = hub.resolve(ref)
        folder = hub.checkout(version.ref)
        state = _channel_state(client, channel)
        bundles = state["bundles"]
        number = (bundles[0]["version"] if bundles else 0) + 1
        bundle = build_bundle(
            folder, version.ref, channel, number, rollout, serve_outputs, golden, tolerance, max_latency_ms
        )
        update = sign_update(keys, ChannelVersions(**state["versions"]), bundle.targets, expires_days)
        return _upload(client, channel, update, bundle.generated())


def _upload(client: HubClient, channel: str, update: SignedUpdate, files: dict[str, bytes]) -> dict[str, Any]:
    body = {
        "roots": [base64.b64encode(r).decode() for r in update.roots],
        "targets": base64.b64encode(update.targets).decode(),
        "snapshot": base64.b64encode(update.snapshot).decode(),
        "timestamp": base64.b64encode(update.timestamp).decode(),
        "files": {sha: base64.b64encode(data).decode() for sha, data in files.items()},
    }
    answer: dict[str, Any] = client.request(
        "POST", f"/api/v1/edge/channels/{channel}/publish", json=body
    ).json()
    return answer


def _published(answer: dict[str, Any]) -> None:
    b = answer["bundle"]
    console.print(
        f"published bundle {b['version']} of channel {escape(answer['channel'])}: {escape(b['ref'])}, "
        f"rolled out to {b['rollout']}% of devices"
    )


@app.command()
def publish(
    ref: Annotated[
        str, typer.Argument(help="An ONNX version on the hub server, e.g. acme/intent@production.")
    ],
    channel: ChannelOpt,
    rollout: Annotated[
        str,
        typer.Option("--rollout", help="Percent of devices (by a hash of their id) that take it, e.g. 10%."),
    ] = "100%",
    keys: KeysDir = None,
    golden: Annotated[
        Path | None,
        typer.Option(
            "--golden",
            help="A text file, one golden input per line (default: built-in sentences).",
            dir_okay=False,
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0, help="Largest difference from a golden output a device accepts."),
    ] = DEFAULT_TOLERANCE,
    max_latency_ms: Annotated[
        float,
        typer.Option("--max-latency-ms", min=1, help="Slowest single-text prediction a device accepts."),
    ] = DEFAULT_MAX_LATENCY_MS,
    expires_days: Annotated[
        int,
        typer.Option(
            "--expires-days", min=1, help="Days the signed metadata stays valid: publish again before."
        ),
    ] = DEFAULT_EXPIRES_DAYS,
    json_output: JsonFlag = False,
) -> None:
    """Sign an ONNX version as the channel's next bundle and publish it through the hub server.

    The bundle carries the model, tokenizer, descriptor and golden inputs with the outputs `fmstack serve`
    gives them; devices check those before switching to it.
    """
    texts = None
    if golden is not None:
        texts = [line for line in golden.read_text().splitlines() if line.strip()]
        if not texts:
            raise InvalidInput(f"{golden}: no golden inputs (one text per line)")
    answer = _publish(
        ref, _channel(channel), _rollout(rollout), _keys(keys), texts, tolerance, max_latency_ms, expires_days
    )
    emit(answer, json_output, lambda: _published(answer))


@app.command()
def rollback(
    channel: ChannelOpt,
    keys: KeysDir = None,
    expires_days: Annotated[
        int, typer.Option("--expires-days", min=1, help="Days the signed metadata stays valid.")
    ] = DEFAULT_EXPIRES_DAYS,
    json_output: JsonFlag = False,
) -> None:
    """Publish the channel's previous bundle again, as a new (higher) version, to every device.

    Devices never install a lower version than they accepted, so a rollback is a new version.
    """
    with _client() as client:
        bundles = _channel_state(client, _channel(channel))["bundles"]
    current = bundles[0]["ref"] if bundles else None
    previous = next((b for b in bundles if b["ref"] != current), None)
    if previous is None:
        raise NotFound(f"channel {channel!r} has no earlier version than {current} to roll back to")
    answer = _publish(
        previous["ref"],
        channel,
        100,
        _keys(keys),
        None,
        DEFAULT_TOLERANCE,
        DEFAULT_MAX_LATENCY_MS,
        expires_days,
    )
    emit(answer, json_output, lambda: _published(answer))


@app.command()
def refresh(
    channel: ChannelOpt,
    keys: KeysDir = None,
    expires_days: Annotated[
        int, typer.Option("--expires-days", min=1, help="Days the re-signed metadata stays valid.")
    ] = DEFAULT_EXPIRES_DAYS,
    json_output: JsonFlag = False,
) -> None:
    """Sign the channel's current bundle again with a new expiry; devices download nothing new.

    Signed metadata expires (devices then refuse updates and keep serving): run this from a scheduler
    well within --expires-days of the last publish.
    """
    keys_folder = _keys(keys)
    with _client() as client:
        state = _channel_state(client, _channel(channel))
        if not state["bundles"]:
            raise NotFound(f"channel {channel!r} has nothing published to refresh")
        versions = ChannelVersions(**state["versions"])
        path = f"/api/v1/edge/channels/{channel}/metadata/{versions.targets}.targets.json"
        targets = signed_targets(keys_folder, client.request("GET", path).content)
        answer = _upload(client, channel, sign_update(keys_folder, versions, targets, expires_days), {})

    def human() -> None:
        console.print(
            f"re-signed bundle {answer['bundle']['version']} of channel {escape(channel)} for {expires_days} days"
        )

    emit(answer, json_output, human)


@app.command()
def devices(channel: ChannelOpt, json_output: JsonFlag = False) -> None:
    """The fleet of a channel: each device's bundle, health and last error, newest report first."""
    with _client() as client:
        fleet: list[dict[str, Any]] = client.get_json(f"/api/v1/edge/channels/{_channel(channel)}/devices")

    def human() -> None:
        table = Table("device", "bundle", "ref", "health", "reported", "last error", box=None)
        for d in fleet:
            table.add_row(
                escape(d["device_id"]),
                str(d["version"] or "-"),
                escape(d["ref"] or "-"),
                d["health"],
                d["reported_at"][:19],
                escape((d["last_error"] or "")[:80]),
            )
        console.print(table if fleet else f"no device has reported on channel {escape(channel)} yet")

    emit(fleet, json_output, human)
