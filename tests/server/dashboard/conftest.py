"""One seeded hub served by a real uvicorn server (in a thread, on a free port) and one headless
Chromium per test module, driven by Playwright through Debian's ``/usr/bin/chromium``.

The hub: organisation ``acme`` (alice writes there) with a public dataset ``acme/raw`` (ingested from a
CSV with rejected rows), a public model ``acme/clf`` trained twice from it (metrics, an alias, a card
that tries to run script) and its compressed ``acme/clf-int8``; and bob's private ``bob/secret``, made
from ``acme/raw:1`` too, so it sits in that dataset's lineage, with a card naming "zebra".
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from fmstack.data.ingest import IngestSpec, ingest
from fmstack.hub import Hub
from fmstack.server.accounts import Accounts
from fmstack.server.app import create_app
from fmstack.server.settings import ServerSettings
from fmstack.server.visibility import set_visibility
from fmstack.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A loaded 2-core CI machine can take seconds per page; expect() waits this long before failing.
expect.set_options(timeout=20_000)
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboard"
EVIL_CARD = (
    "# Intent classifier\n\nTrained on **acme/raw**.\n\n"
    "<script>alert('card script')</script>\n\n"
    '<img src="x" onerror="alert(\'card onerror\')">\n\n'
    "[click me](javascript:alert('card link'))\n\n"
    "| metric | value |\n| --- | --- |\n| accuracy | 0.91 |\n"
)
CSV = (
    "text,label\n"
    + "".join(f"the ball goal team match number {i},sport\n" for i in range(12))
    + "".join(f"bread soup cheese dinner {i} very tasty,food\n" for i in range(7))
    + "".join(f"bank card loan {i},money\n" for i in range(4))
    + ",sport\n"  # empty text: rejected
    + "a row with,too,many fields\n"  # unparseable: rejected
)


@dataclass
class Seeded:
    url: str
    home: Path
    hub: Hub
    accounts: Accounts
    tokens: dict[str, str]  # user -> token
    runs: dict[str, int]  # "ingest", "train1", "train2", "compress", "secret" -> run id
    dataset: str  # acme/raw:1


def _folder(root: Path, name: str, content: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(content)
    (folder / "model.safetensors").write_bytes(content.encode() * 50)
    return folder


def _train_run(hub: Hub, inputs: list[str], losses: list[float], accuracy: list[float]) -> int:
    run_id = hub.runs.start("train", {"method": "lora", "epochs": 1, "learning_rate": 5e-4}, inputs)
    for step, loss in enumerate(losses, start=1):
        hub.runs.log_metrics(run_id, step * 10, {"loss": loss, "lr": 5e-4 * (1 - step / (len(losses) + 1))})
    for i, acc in enumerate(accuracy, start=1):
        hub.runs.log_metrics(run_id, i * 10 * len(losses) // len(accuracy), {"eval_accuracy": acc})
    hub.runs.append_log(run_id, "epoch 1: loss falling\n<b>not bold</b>\n")
    return run_id


def seed(hub: Hub, accounts: Accounts, root: Path) -> tuple[dict[str, str], dict[str, int]]:
    accounts.add("admin", "user", admin=True)
    accounts.add("alice", "user")
    accounts.add("bob", "user")
    accounts.add("acme", "org")
    accounts.add_member("acme", "alice", "write")
    tokens = {
        "admin": accounts.create_token("admin", ["admin"]).token,
        "alice": accounts.create_token("alice", ["write"]).token,
        "bob": accounts.create_token("bob", ["write"]).token,
    }
    data = root / "raw"
    data.mkdir(parents=True)
    (data / "intents.csv").write_text(CSV)
    raw = ingest(hub, IngestSpec(name="acme/raw", paths=[str(data / "intents.csv")])).published
    runs = {"ingest": hub.resolve("acme/raw:1").run_id or 0}
    runs["train1"] = _train_run(hub, ["acme/raw:1"], [2.0, 1.4, 1.0, 0.8, 0.7, 0.6], [0.5, 0.8])
    hub.push("acme/clf", _folder(root, "clf1", '{"v": 1}'), "model", card=EVIL_CARD, run_id=runs["train1"])
    hub.runs.finish(runs["train1"])
    runs["train2"] = _train_run(hub, ["acme/raw:1"], [2.1, 1.2, 0.7, 0.5, 0.4, 0.35], [0.6, 0.9])
    hub.push("acme/clf", _folder(root, "clf2", '{"v": 2}'), "model", card=EVIL_CARD, run_id=runs["train2"])
    hub.runs.finish(runs["train2"])
    hub.tag("acme/clf:2", "production")
    runs["compress"] = hub.runs.start("compress", {"quantize": "int8"}, ["acme/clf:2"])
    hub.push("acme/clf-int8", _folder(root, "int8", '{"q": 8}'), "model", run_id=runs["compress"])
    hub.runs.finish(runs["compress"])
    with Hub(dataclasses.replace(hub.settings, user="bob")) as as_bob:
        runs["secret"] = as_bob.runs.start("train", {"method": "full"}, ["acme/raw:1"])
        as_bob.push(
            "bob/secret",
            _folder(root, "secret", '{"s": 1}'),
            "model",
            card="# zebra secret",
            run_id=runs["secret"],
        )
        as_bob.runs.finish(runs["secret"])
    for repo in ("acme/raw", "acme/clf", "acme/clf-int8"):
        set_visibility(hub, repo, "public")
    assert raw.version.ref == "acme/raw:1"
    return tokens, runs


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("dashboard")
    app = create_app(ServerSettings(hub=Settings.at(root / "home")))
    tokens, runs = seed(app.state.hub, app.state.accounts, root / "src")
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the dashboard's server did not start")
        time.sleep(0.05)
    port = sock.getsockname()[1]
    try:
        yield Seeded(
            f"http://127.0.0.1:{port}",
            root / "home",
            app.state.hub,
            app.state.accounts,
            tokens,
            runs,
            "acme/raw:1",
        )
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            "no /usr/bin/chromium: scripts/setup.sh installs Debian's chromium (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield made
    finally:
        made.close()


def login(page: Page, url: str, token: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))


def screenshot(page: Page, name: str, **options: Any) -> Path:
    """Save a screenshot of the page as a test artifact (``test-artifacts/dashboard/``, ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, **options)
    return path
