"""The Hugging Face-compatible API against a real server (``fmstack server start``, uvicorn), with the
real clients a user brings, run as a user runs them: in a fresh interpreter with ``HF_ENDPOINT``
pointed at the server, default options, an empty Hugging Face cache, ``HF_HUB_OFFLINE`` unset. Nothing
leaves the machine: the endpoint is the local server and telemetry is off.

Predictions through the API must equal loading the same version locally (from ``hub.pull``'s files
or fmstack's own loader). Plain HTTP checks (headers, ranges, pages, traversal, errors) use httpx.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from fmstack.hub import Hub
from fmstack.server.visibility import set_visibility
from fmstack.settings import Settings
from tests.server.conftest import RunningHub, launch
from tests.tiny import TOPICS
from tests.train.conftest import classification_table, push_dataset, push_tiny_bert, texts

TEXTS = texts(6, seed=11)[0]


@dataclass
class Served:
    server: RunningHub
    hub: Hub
    root: Path

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, script: str, *args: str, token: str | None = None, cache: str = "hf-home") -> Any:
        """Run ``script`` in a fresh interpreter as a user of the real clients would, with the Hugging
        Face cache (HF_HOME) ``cache``; its last line of output is ``RESULT <json>``."""
        return run_client(self.url, self.root / cache, script, *args, token=token)


def run_client(url: str, hf_home: Path, script: str, *args: str, token: str | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FMSTACK_", "TRANSFORMERS_"))}
    env |= {"HF_ENDPOINT": url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1", "NO_PROXY": "*"}
    env |= {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    if token is not None:
        env["HF_TOKEN"] = token
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.rpartition("RESULT ")[2])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module, on a hub holding: acme/tiny-bert v1 (alias production) and v2, a
    sentence-transformers model, a dataset (all public) and a private model."""
    root = tmp_path_factory.mktemp("hf")
    home = root / "home"
    hub = Hub(Settings.at(home))
    push_tiny_bert(hub, root / "v1", repo="acme/tiny-bert")
    push_tiny_bert(hub, root / "v2", repo="acme/tiny-bert", dropout=0.1)  # another config: version 2
    hub.tag("acme/tiny-bert:1", "production")
    hub.push("acme/tiny-st", _sentence_transformer(root), "model")
    splits = {"train": classification_table(32, 1), "validation": classification_table(12, 2)}
    push_dataset(hub, root, "acme/topics", splits, labels=sorted(TOPICS))
    push_tiny_bert(hub, root / "secret", repo="acme/secret")
    for repo in ("acme/tiny-bert", "acme/tiny-st", "acme/topics"):
        set_visibility(hub, repo, "public")
    server = launch(home)
    try:
        yield Served(server, hub, root)
    finally:
        server.stop()
        hub.close()


def _sentence_transformer(root: Path) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    bert = root / "v1" / "tiny-bert"
    word = Transformer(str(bert))
    model = SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), pooling_mode="mean")])
    model.save(str(root / "st"))
    return root / "st"


def _pulled(served: Served, ref: str) -> Path:
    target = served.root / "pulled" / ref.replace("/", "_").replace(":", "_").replace("@", "_")
    if not target.exists():
        served.hub.pull(ref, target)
    return target


def _sha(served: Served, ref: str) -> str:
    return served.hub.resolve(ref).digest[:40]


# -- huggingface_hub ---------------------------------------------------------------------------------

SNAPSHOTS = """
import json, os, sys
from huggingface_hub import snapshot_download
out = {}
for revision in sys.argv[1:]:
    folder = snapshot_download("acme/tiny-bert", revision=revision)
    out[revision] = {"sha": os.path.basename(folder), "files": {
        name: open(os.path.join(folder, name), "rb").read().hex() for name in sorted(os.listdir(folder))}}
print("RESULT", json.dumps(out))
"""


def test_snapshot_download_by_number_alias_and_main_gives_each_versions_bytes(served: Served) -> None:
    got = served.client(SNAPSHOTS, "1", "production", "main", "2")
    for revision, ref in [("1", ":1"), ("production", "@production"), ("main", ""), ("2", ":2")]:
        folder = _pulled(served, f"acme/tiny-bert{ref}")
        expected = {p.name: p.read_bytes().hex() for p in sorted(folder.iterdir())}
        assert got[revision]["files"] == expected, revision
        assert got[revision]["sha"] == _sha(served, f"acme/tiny-bert{ref}")  # the snapshot folder is the sha
    assert got["1"]["sha"] != got["2"]["sha"]


ERRORS = """
import json, os
from huggingface_hub import hf_hub_download
out = {}
for name, repo, filename, revision in [
    ("repo", "acme/nothing", "config.json", None),
    ("private", "acme/secret", "config.json", None),
    ("revision", "acme/tiny-bert", "config.json", "9"),
    ("alias", "acme/tiny-bert", "config.json", "staging"),
    ("entry", "acme/tiny-bert", "missing.json", "1"),
    ("dataset-as-model", "acme/topics", "dataset.json", None),
]:
    try:
        hf_hub_download(repo, filename, revision=revision)
        out[name] = "downloaded"
    except Exception as exc:
        out[name] = type(exc).__name__
cache = os.path.join(os.environ["HF_HOME"], "hub", "models--acme--tiny-bert", ".no_exist")
out["no_exist"] = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
print("RESULT", json.dumps(out))
"""


def test_errors_are_the_clients_own_not_found_errors(served: Served) -> None:
    got = served.client(ERRORS)
    assert got == {
        "repo": "RepositoryNotFoundError",
        "private": "RepositoryNotFoundError",
        "revision": "RevisionNotFoundError",
        "alias": "RevisionNotFoundError",
        "entry": "RemoteEntryNotFoundError",
        "dataset-as-model": "RepositoryNotFoundError",
        # X-Repo-Commit on EntryNotFound lets the client remember the absent file per version
        "no_exist": [_sha(served, "acme/tiny-bert:1")],
    }


PRIVATE = """
import json
from huggingface_hub import hf_hub_download
try:
    print("RESULT", json.dumps(open(hf_hub_download("acme/secret", "config.json")).read()))
except Exception as exc:
    print("RESULT", json.dumps(type(exc).__name__ + ": " + str(exc).splitlines()[0]))
"""


def test_a_private_repo_reads_with_hf_token_and_is_missing_without(served: Served) -> None:
    """Each call with its own cache: a client that fails to reach a file it has cached answers from
    the cache, which is the client's behaviour, not the server's."""
    from fmstack.server.accounts import Accounts

    accounts = Accounts(served.hub.engine)  # the team: bob reads in org acme, carol is no member
    for name, kind in [("acme", "org"), ("bob", "user"), ("carol", "user")]:
        accounts.add(name, kind)
    accounts.add_member("acme", "bob", "read")
    bob, carol = (accounts.create_token(user, ["read"]).token for user in ("bob", "carol"))
    config = (_pulled(served, "acme/secret") / "config.json").read_text()
    assert served.client(PRIVATE, token=served.server.token, cache="admin") == config
    assert served.client(PRIVATE, token=bob, cache="member") == config
    assert served.client(PRIVATE, token=carol, cache="not-member").startswith("RepositoryNotFoundError")
    assert served.client(PRIVATE, cache="anonymous").startswith("RepositoryNotFoundError")
    wrong = served.client(PRIVATE, token="fmk_0123456789ab_" + "x" * 43, cache="wrong-token")
    assert wrong.startswith("HfHubHTTPError") and "401" in wrong and "xxxx" not in wrong


# -- transformers, sentence-transformers, peft, datasets ------------------------------------------------

TRANSFORMERS = """
import json, sys, torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer
texts = json.loads(sys.argv[1])
out = {}
for revision in sys.argv[2:]:
    model = AutoModel.from_pretrained("acme/tiny-bert", revision=revision).eval()
    tokenizer = AutoTokenizer.from_pretrained("acme/tiny-bert", revision=revision)
    with torch.no_grad():
        out[revision] = model(**tokenizer(texts, padding=True, return_tensors="pt")).last_hidden_state.tolist()
out["sentence-transformers"] = SentenceTransformer("acme/tiny-st", revision="1").encode(texts).tolist()
print("RESULT", json.dumps(out))
"""


@pytest.mark.slow  # a client process importing torch, transformers and sentence-transformers
def test_transformers_and_sentence_transformers_load_versions_and_answer_as_locally(served: Served) -> None:
    """AutoModel/AutoTokenizer by number and by alias, SentenceTransformer by number: one client
    process for both libraries (importing them is most of the time)."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    got = served.client(TRANSFORMERS, json.dumps(TEXTS), "1", "production", "2")
    for revision, ref in [("1", ":1"), ("production", "@production"), ("2", ":2")]:
        folder = _pulled(served, f"acme/tiny-bert{ref}")
        model, tokenizer = AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
        with torch.no_grad():
            local = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).last_hidden_state
        torch.testing.assert_close(torch.tensor(got[revision]), local, atol=1e-5, rtol=0)
    encoded = SentenceTransformer(str(_pulled(served, "acme/tiny-st:1"))).encode(TEXTS)
    torch.testing.assert_close(
        torch.tensor(got["sentence-transformers"]), torch.tensor(encoded), atol=1e-5, rtol=0
    )


DATASETS = """
import json
import datasets
ds = datasets.load_dataset("acme/topics")
print("RESULT", json.dumps({split: {"rows": ds[split].to_list(), "labels": ds[split].features["label"].names}
                            for split in ds}))
"""


def test_datasets_load_dataset_reads_a_dataset_version(served: Served) -> None:
    import datasets

    folder = _pulled(served, "acme/topics")
    got = served.client(DATASETS)
    for split in ("train", "validation"):
        files = sorted(str(p) for p in (folder / "data").glob(f"{split}-*.parquet"))
        local = datasets.load_dataset("parquet", data_files={split: files})[split]
        assert got[split]["rows"] == local.to_list() and len(local) > 0
        assert got[split]["labels"] == sorted(TOPICS)
    assert set(got) == {"train", "validation"}


PEFT = """
import json, sys, torch
from peft import PeftModel
from transformers import AutoConfig, AutoTokenizer
from transformers.dynamic_module_utils import get_class_from_dynamic_module
adapter, base, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = AutoConfig.from_pretrained(adapter, trust_remote_code=True)
Classifier = get_class_from_dynamic_module("pooled.PooledEncoderForSequenceClassification", adapter)
classifier = Classifier.from_pretrained(base, config=config, revision="production")
model = PeftModel.from_pretrained(classifier, adapter).eval()
tokenizer = AutoTokenizer.from_pretrained(base, revision="production")
with torch.no_grad():
    print("RESULT", json.dumps(model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.tolist()))
"""


@pytest.mark.slow  # trains a tiny LoRA adapter through fmstack (~10 s on a loaded 2-core machine)
def test_peft_loads_an_adapter_version_with_fmstacks_predictions(served: Served) -> None:
    """The adapter's docs/interop.md recipe, with hub names instead of pulled folders; the base by its
    alias (version 1, the one the adapter was trained on)."""
    from fmstack.train.inference import load
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    spec = {"task": "classification", "base": "acme/tiny-bert:1", "data": "acme/topics:1", "max_steps": 3}
    spec |= {"lr": 1e-2, "seed": 3, "method": "lora", "output": "acme/topics-lora"}
    ref = train(served.hub, parse_spec(spec)).output.ref
    set_visibility(served.hub, "acme/topics-lora", "public")
    got = served.client(PEFT, "acme/topics-lora", "acme/tiny-bert", json.dumps(TEXTS))
    loaded = load(served.hub, ref)
    with torch.no_grad():
        batch = loaded.tokenizer(TEXTS, padding=True, return_tensors="pt")
        ours = loaded.model.eval()(**batch).logits.float()
    torch.testing.assert_close(torch.tensor(got), ours, atol=1e-4, rtol=0)


# -- the HTTP surface ------------------------------------------------------------------------------------


def test_repo_info_names_the_version_by_a_stable_sha_with_dates_in_z(served: Served) -> None:
    info = httpx.get(f"{served.url}/api/models/acme/tiny-bert").json()
    assert info["id"] == "acme/tiny-bert" and info["sha"] == _sha(served, "acme/tiny-bert:2")
    assert info["lastModified"].endswith("Z") and info["createdAt"].endswith("Z")
    files = served.hub.info("acme/tiny-bert:2").files
    assert [(s["rfilename"], s["size"]) for s in info["siblings"]] == [(f.path, f.size) for f in files]
    at_alias = httpx.get(f"{served.url}/api/models/acme/tiny-bert/revision/production").json()
    at_sha = httpx.get(f"{served.url}/api/models/acme/tiny-bert/revision/{at_alias['sha']}").json()
    assert at_alias["sha"] == at_sha["sha"] == _sha(served, "acme/tiny-bert:1")
    assert httpx.get(f"{served.url}/api/datasets/acme/topics").json()["sha"] == _sha(served, "acme/topics")


def test_resolve_sends_the_headers_the_clients_check_and_ranges(served: Served) -> None:
    file = next(f for f in served.hub.info("acme/tiny-bert:1").files if f.path == "model.safetensors")
    url = f"{served.url}/acme/tiny-bert/resolve/1/model.safetensors"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["x-repo-commit"] == _sha(served, "acme/tiny-bert:1")
    assert head.headers["etag"] == head.headers["x-linked-etag"] == f'"{file.sha256}"'
    assert head.headers["x-linked-size"] == head.headers["content-length"] == str(file.size)
    whole = (_pulled(served, "acme/tiny-bert:1") / "model.safetensors").read_bytes()
    assert httpx.get(url).content == whole
    part = httpx.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == whole[100:]
    assert part.headers["content-range"] == f"bytes 100-{file.size - 1}/{file.size}"
    past = httpx.get(url, headers={"Range": f"bytes={file.size}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{file.size}"


def test_the_tree_pages_with_a_link_header_to_the_full_listing(served: Served) -> None:
    url: str | None = f"{served.url}/api/models/acme/tiny-bert/tree/1?recursive=true&limit=1"
    seen = []
    while url is not None:
        answer = httpx.get(url)
        assert answer.status_code == 200 and len(answer.json()) <= 1
        seen += [e["path"] for e in answer.json()]
        url = answer.links.get("next", {}).get("url")
    assert seen == sorted(f.path for f in served.hub.info("acme/tiny-bert:1").files)
    data = httpx.get(f"{served.url}/api/datasets/acme/topics/tree/main/data").json()
    assert data and all(e["path"].startswith("data/") for e in data)
    # behind a TLS proxy on this machine the next page is the public https URL the client can follow
    proxied = httpx.get(
        f"{served.url}/api/models/acme/tiny-bert/tree/1?limit=1",
        headers={"Host": "hub.example.com", "X-Forwarded-Proto": "https"},
    )
    assert proxied.links["next"]["url"].startswith(
        "https://hub.example.com/api/models/acme/tiny-bert/tree/1?"
    )
    missing = httpx.get(f"{served.url}/api/datasets/acme/topics/tree/main/nope")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"


@pytest.mark.parametrize(
    "path",
    [
        "/acme/tiny-bert/resolve/1/../../../../etc/passwd",
        "/acme/tiny-bert/resolve/1/%2e%2e/%2e%2e/etc/passwd",
        "/acme/tiny-bert/resolve/1//etc/passwd",
        "/acme/tiny-bert/resolve/1/%2Fetc%2Fpasswd",
        "/acme/tiny-bert/resolve/1/..%5C..%5Cetc%5Cpasswd",
        "/acme/tiny-bert/resolve/1/config.json%00.txt",
        "/acme/tiny-bert/resolve/%2e%2e/config.json",
        "/acme/%2e%2e/resolve/1/config.json",
        "/api/models/acme/tiny-bert/tree/1/%2e%2e",
        "/api/models/acme/tiny-bert/tree/1/..%5Cx",
        "/datasets/acme/topics/resolve/main/%2e%2e/dataset.json",
    ],
)
def test_path_traversal_is_refused_in_every_path_parameter(served: Served, path: str) -> None:
    """Sent byte for byte (http.client does not normalise '..' away as httpx would)."""
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path)
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    assert answer.status == 422, (answer.status, body[:300])  # refused as bad input, not just unmatched
    assert b"root:" not in body and b"BertModel" not in body


def test_a_private_repo_answers_exactly_as_a_missing_one(served: Served) -> None:
    for route in (
        "/api/models/acme/{}",
        "/acme/{}/resolve/main/config.json",
        "/api/models/acme/{}/tree/main",
    ):
        private = httpx.get(served.url + route.format("secret"))
        missing = httpx.get(served.url + route.format("absent"))
        assert private.status_code == missing.status_code == 404
        assert private.headers["x-error-code"] == missing.headers["x-error-code"] == "RepoNotFound"
        assert private.text.replace("secret", "NAME") == missing.text.replace("absent", "NAME")
        allowed = httpx.get(served.url + route.format("secret"), headers=served.server.headers())
        assert allowed.status_code == 200


def test_a_missing_file_names_the_versions_commit(served: Served) -> None:
    answer = httpx.head(f"{served.url}/acme/tiny-bert/resolve/production/generation_config.json")
    assert answer.status_code == 404 and answer.headers["x-error-code"] == "EntryNotFound"
    assert answer.headers["x-repo-commit"] == _sha(served, "acme/tiny-bert@production")


def test_a_damaged_blob_is_never_served_complete(served: Served) -> None:
    (served.root / "damaged").mkdir()
    (served.root / "damaged" / "weights.bin").write_bytes(b"only this repo has these bytes" * 1000)
    served.hub.push("acme/damaged", served.root / "damaged", "model")
    set_visibility(served.hub, "acme/damaged", "public")
    (file,) = served.hub.info("acme/damaged").files
    blob = served.root / "home" / "blobs" / "sha256" / file.sha256[:2] / file.sha256[2:]
    blob.write_bytes(b"X" + blob.read_bytes()[1:])  # same size, other bytes
    with pytest.raises(httpx.HTTPError):
        answer = httpx.get(f"{served.url}/acme/damaged/resolve/main/weights.bin")
        assert len(answer.content) < file.size  # never reached: the body ends early


def test_error_messages_become_safe_header_values() -> None:
    """X-Error-Message carries the error's text; a control character quoted from user input would make
    the HTTP layer refuse the whole response (a 500 instead of the 4xx)."""
    from fmstack.server.hf_api import _header_safe

    assert _header_safe("bad path 'a\x00b\x7f'\r\nnext \u2603") == "bad path 'a?b?' next ?"
    assert len(_header_safe("x" * 10_000)) < 400


def test_main_is_the_latest_version_unless_an_alias_is_named_main(served: Served) -> None:
    for content in (b"one", b"two"):
        (served.root / "aliased").mkdir(exist_ok=True)
        (served.root / "aliased" / "f.txt").write_bytes(content)
        served.hub.push("acme/aliased", served.root / "aliased", "model")
    set_visibility(served.hub, "acme/aliased", "public")

    def main_sha() -> str:
        sha: str = httpx.get(f"{served.url}/api/models/acme/aliased/revision/main").json()["sha"]
        return sha

    assert main_sha() == _sha(served, "acme/aliased:2")
    served.hub.tag("acme/aliased:1", "main")
    assert main_sha() == _sha(served, "acme/aliased:1")
    assert httpx.get(f"{served.url}/acme/aliased/resolve/main/f.txt").content == b"one"
    for bad in ("0", "3", "1a", "staging", "f" * 40):
        answer = httpx.get(f"{served.url}/api/models/acme/aliased/revision/{bad}")
        assert answer.status_code == 404 and answer.headers["x-error-code"] == "RevisionNotFound", bad


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kb / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_a_large_file_is_streamed_in_bounded_memory(served: Served) -> None:
    """64 MB through /resolve raise the server's peak memory by far less than the file: it is read and
    sent 1 MiB at a time, never whole (uvicorn runs in the `fmstack server start` process itself)."""
    size = 64 * 2**20
    (served.root / "large").mkdir()
    with open(served.root / "large" / "big.bin", "wb") as out:
        for _ in range(size // 2**20):
            out.write(os.urandom(2**20))
    served.hub.push("acme/large", served.root / "large", "model")
    set_visibility(served.hub, "acme/large", "public")
    before = _peak_rss_mb(served.server.process.pid)
    received = 0
    with httpx.stream("GET", f"{served.url}/acme/large/resolve/main/big.bin", timeout=120) as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_bytes():
            received += len(chunk)
    assert received == size
    assert _peak_rss_mb(served.server.process.pid) - before < 24, "the server held much of the file at once"


def test_no_token_on_a_server_without_anonymous_reads_is_not_called_a_bad_token(tmp_path: Path) -> None:
    """huggingface_hub reads "Invalid credentials in Authorization header" as a bad token; a request
    with no token at all must not say so (the client then says to log in for a private repo)."""
    from fastapi.testclient import TestClient

    from fmstack.server.app import create_app
    from fmstack.server.settings import ServerSettings

    app = create_app(ServerSettings(hub=Settings.at(tmp_path / "home"), anonymous_read=False))
    with TestClient(app) as client:
        none = client.get("/api/models/acme/anything")
        bad = client.get(
            "/api/models/acme/anything", headers={"Authorization": "Bearer fmk_0123456789ab_" + "x" * 43}
        )
    assert none.status_code == bad.status_code == 401
    assert bad.headers["x-error-message"] == "Invalid credentials in Authorization header"
    assert "anonymous" in none.headers["x-error-message"]


def test_the_same_answers_on_sqlite_and_postgresql(server_settings: Any, tmp_path: Path) -> None:
    """In-process on each metadata backend (PostgreSQL gives zone-aware datetimes, SQLite naive ones):
    the same sha, UTC dates with a Z, the same files and headers."""
    from datetime import datetime

    from fastapi.testclient import TestClient

    from fmstack.server.app import create_app

    app = create_app(server_settings)
    hub: Hub = app.state.hub
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "sub" / "w.bin").write_bytes(b"w" * 100)
    version = hub.push("acme/m", tmp_path / "m", "model", alias="production")
    set_visibility(hub, "acme/m", "public")
    with TestClient(app) as client:
        info = client.get("/api/models/acme/m/revision/production").json()
        head = client.head("/acme/m/resolve/1/sub/w.bin")
        tree = client.get("/api/models/acme/m/tree/main", params={"recursive": "true"}).json()
    assert info["sha"] == version.digest[:40] == head.headers["x-repo-commit"]
    stamp = datetime.fromisoformat(info["lastModified"].replace("Z", "+00:00"))
    assert info["lastModified"].endswith("Z") and abs(stamp - version.created_at).total_seconds() < 1
    assert head.headers["x-linked-size"] == "100"
    assert [(e["type"], e["path"]) for e in tree] == [
        ("file", "config.json"),
        ("directory", "sub"),
        ("file", "sub/w.bin"),
    ]
