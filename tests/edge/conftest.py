"""Tiny ONNX versions for the edge tests, built in milliseconds with ``onnx.helper`` (no torch export),
and the pieces every edge test shares: signing keys, a channel mirror over plain HTTP, an agent.

The graphs take ``input_ids`` and ``attention_mask`` like an exported encoder: token embeddings ->
(classifier) a masked mean and a linear layer to ``logits``, or (encoder) a linear layer and tanh to
``last_hidden_state``, so tokenisation, padding, pooling and softmax are all exercised. The tokenizer
is ``tests/tiny.py``'s WordLevel vocabulary.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fmstack.cli.edge import serve_outputs
from fmstack.edge.bundle import build_bundle
from fmstack.edge.keys import KeyFolder, init_keys
from fmstack.edge.repository import ChannelVersions, SignedUpdate, sign_update
from fmstack.servable import ServableModel, write_descriptor
from tests.tiny import LABELS, make_tokenizer

EDGE_SRC = Path(__file__).resolve().parents[2] / "edge" / "src"
if str(EDGE_SRC) not in sys.path:  # the device runtime, as a device would import it (not installed here)
    sys.path.insert(0, str(EDGE_SRC))

VOCAB, HIDDEN = 64, 8


def _graph(task: str, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    emb = numpy_helper.from_array(rng.normal(size=(VOCAB, HIDDEN)).astype(np.float32), "emb")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["x"])]  # (batch, seq, hidden)
    inits = [emb]
    if task == "classification":
        w = numpy_helper.from_array(rng.normal(size=(HIDDEN, len(LABELS))).astype(np.float32) * 3, "w")
        axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
        axis1 = numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")
        inits += [w, axes, axis1]
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),  # (batch, seq, 1)
            helper.make_node("Mul", ["x", "m3"], ["xm"]),
            helper.make_node("ReduceSum", ["xm", "axis1"], ["s"], keepdims=0),  # (batch, hidden)
            helper.make_node("ReduceSum", ["m3", "axis1"], ["n"], keepdims=0),  # (batch, 1)
            helper.make_node("Div", ["s", "n"], ["pooled"]),
            helper.make_node("MatMul", ["pooled", "w"], ["logits"]),  # (batch, labels)
        ]
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])
    else:
        w = numpy_helper.from_array(rng.normal(size=(HIDDEN, HIDDEN)).astype(np.float32), "w")
        inits.append(w)
        nodes += [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Tanh", ["h"], ["last_hidden_state"]),  # (batch, seq, hidden)
        ]
        out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", HIDDEN])
    graph = helper.make_graph(nodes, f"tiny-{task}", [ids, mask], [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def build_version(folder: Path, task: str = "classification", seed: int = 0) -> Path:
    """An ONNX version folder as ``fmstack compress`` writes one: model.onnx, tokenizer, fmstack.json."""
    folder.mkdir(parents=True)
    onnx.save(_graph(task, seed), str(folder / "model.onnx"))
    make_tokenizer(folder, model_max_length=32)
    classifier = task == "classification"
    descriptor = ServableModel(
        format="onnx",
        task="classification" if classifier else "embedding",
        labels=LABELS if classifier else [],
        max_length=32,
        output="logits" if classifier else "last_hidden_state",
    )
    write_descriptor(folder, descriptor)
    return folder


@pytest.fixture(scope="session")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("edge-versions")
    return {
        "cls": build_version(root / "cls", "classification", seed=0),
        "cls2": build_version(root / "cls2", "classification", seed=1),
        "enc": build_version(root / "enc", "embedding", seed=2),
    }


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFolder:
    folder = KeyFolder.at(tmp_path_factory.mktemp("edge-keys") / "keys")
    init_keys(folder)
    return folder


# -- a channel on a plain HTTP mirror: what an attacker controlling the server or network could serve --


@dataclass
class Mirror:
    """A channel laid out as the hub server serves it, in a folder behind ``http.server``. Tests
    publish into it with the real signing code, then tamper with its files as an attacker would."""

    root: Path
    url: str
    channel: str
    keys: KeyFolder
    versions: ChannelVersions = field(default_factory=ChannelVersions)
    bundle: int = 0
    hold: threading.Event | None = None  # set: model downloads stall until cleared (SIGKILL tests)
    started: threading.Event | None = None

    @property
    def base(self) -> Path:
        return self.root / "api/v1/edge/channels" / self.channel

    def publish(
        self,
        folder: Path,
        ref: str,
        rollout: int = 100,
        expires_days: int = 30,
        golden_from: Path | None = None,
        keys: KeyFolder | None = None,
    ) -> SignedUpdate:
        """Sign ``folder`` as the next bundle (golden outputs from ``golden_from``, default itself)."""
        self.bundle += 1
        predictor = (
            serve_outputs if golden_from is None else (lambda _f, texts: serve_outputs(golden_from, texts))
        )
        bundle = build_bundle(folder, ref, self.channel, self.bundle, rollout, predictor)
        update = sign_update(keys or self.keys, self.versions, bundle.targets, expires_days)
        meta = self.base / "metadata"
        meta.mkdir(parents=True, exist_ok=True)
        for i, root in enumerate(update.roots):
            (meta / f"{self.versions.root + i + 1}.root.json").write_bytes(root)
        self.versions = ChannelVersions(
            self.versions.root + len(update.roots),
            self.versions.targets + 1,
            self.versions.snapshot + 1,
            self.versions.timestamp + 1,
        )
        (meta / f"{self.versions.targets}.targets.json").write_bytes(update.targets)
        (meta / f"{self.versions.snapshot}.snapshot.json").write_bytes(update.snapshot)
        (meta / "timestamp.json").write_bytes(update.timestamp)
        for target in bundle.targets:
            dirname, _, name = target.path.rpartition("/")
            dest = self.base / "targets" / dirname / f"{target.sha256}.{name}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            if target.data is not None:
                dest.write_bytes(target.data)
            else:
                shutil.copy(folder / name, dest)
        return update

    def target(self, name: str) -> Path:
        """The file of the current bundle called ``name`` on the mirror."""
        return next(
            (self.base / "targets").rglob(f"*.{name}")
            if name == "bundle.json"
            else (self.base / "targets" / "bundles" / str(self.bundle)).glob(f"*.{name}")
        )


class _Handler(http.server.SimpleHTTPRequestHandler):
    mirror: Mirror

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith(".model.onnx") and self.mirror.hold is not None and self.mirror.hold.is_set():
            # A stalled download: send the headers and a few bytes, then wait (the agent is killed here).
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            self.wfile.write(b"\0" * 1024)
            self.wfile.flush()
            if self.mirror.started is not None:
                self.mirror.started.set()
            while self.mirror.hold.is_set():
                threading.Event().wait(0.05)
            return
        super().do_GET()


@pytest.fixture
def mirror(tmp_path: Path, keys: KeyFolder) -> Iterator[Mirror]:
    root = tmp_path / "mirror"
    root.mkdir()
    handler = type("Handler", (_Handler,), {})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    server.daemon_threads = True
    found = Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", "stable", keys)
    handler.mirror = found
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield found
    if found.hold is not None:
        found.hold.clear()
    server.shutdown()
    server.server_close()


# -- a real hub server (uvicorn in a thread of the test process) ------------------------------------


@dataclass
class LiveHub:
    url: str
    token: str
    hub: object  # fmstack.hub.Hub of the server
    env: dict[str, str]  # what a client shell would set: FMSTACK_HOME, FMSTACK_HUB_URL, FMSTACK_HUB_TOKEN


@pytest.fixture
def live_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveHub]:
    import uvicorn

    from fmstack.server.app import create_app
    from fmstack.server.settings import ServerSettings
    from fmstack.settings import Settings

    app = create_app(ServerSettings(hub=Settings.at(tmp_path / "server-home")))
    accounts = app.state.accounts
    accounts.add("acme", "user")
    token = accounts.create_token("acme", ["read", "write"]).token
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the hub server did not start"
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {"FMSTACK_HOME": str(tmp_path / "client-home"), "FMSTACK_HUB_URL": url, "FMSTACK_HUB_TOKEN": token}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield LiveHub(url, token, app.state.hub, env)
    server.should_exit = True
    thread.join(timeout=10)


def agent_config(server: str, folder: Path, keys: KeyFolder, **options: object) -> object:
    """An agent's settings for tests: one thread, short timeouts, a fixed device id."""
    from fmstack_edge.agent import AgentConfig

    base: dict[str, object] = {"device_id": "device-1", "timeout_s": 2.0, "threads": 1, "poll_s": 0.2}
    return AgentConfig(
        server=server, channel="stable", dir=folder, root=keys.roots / "1.root.json", **{**base, **options}
    )  # type: ignore[arg-type]
