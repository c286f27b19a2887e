"""The team story on one machine: one real hub server, three users with their own FMSTACK_HOME and token.

Ann (write in org acme) trains a tiny LoRA adapter on her machine and pushes base, data and adapter to
the server, privately. Bob (member of acme) trains his own adapter from her base and data straight
against the server (a RemoteHub: inputs through his verified checkout cache, run and result recorded
there), serves Ann's adapter with ``fmstack --hub URL serve`` and gets her scores, and loads it with
plain transformers + peft through ``HF_ENDPOINT`` and gets her logits. Carol (no membership) sees none of
acme's repos, neither through fmstack nor through huggingface_hub.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from fmstack.cli import main as cli_main
from fmstack.hub import Hub, HubApi
from fmstack.server.remote import RemoteHub
from fmstack.settings import Settings
from tests.server.conftest import RunningHub
from tests.server.test_hf_api import PEFT, TEXTS, run_client
from tests.server.test_remote_work_commands import SERVED_TEXT, classify
from tests.tiny import TOPICS
from tests.train.conftest import classification_table, push_dataset, push_tiny_bert

NOT_FOUND = """
import json
from huggingface_hub import snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError
seen = {}
for repo in ("acme/tiny-bert", "acme/topics-lora"):
    try:
        snapshot_download(repo)
        seen[repo] = "found"
    except RepositoryNotFoundError:
        seen[repo] = "not found"
print("RESULT", json.dumps(seen))
"""


class _Admin:
    """``fmstack server ...`` on the server's own home, run in this process: the administrator's commands
    work on the database the running server reads (as from a shell on its machine); a process for each
    would add an interpreter start per command and test nothing more (tests/server/test_cli.py covers them)."""

    def __init__(
        self, server: RunningHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.server, self.monkeypatch, self.capsys = server, monkeypatch, capsys

    def __call__(self, *args: str) -> str:
        with self.monkeypatch.context() as env:  # the environment the server's processes get
            for name in [k for k in os.environ if k.startswith("FMSTACK_")]:
                env.delenv(name)
            for name, value in self.server.env.items():
                if name.startswith("FMSTACK_"):
                    env.setenv(name, value)
            code = cli_main.main(list(args))
        out, err = self.capsys.readouterr()
        assert code == 0, f"fmstack {' '.join(args)} exited {code}: {err}"
        return out

    def token(self, user: str, role: str | None) -> str:
        self("server", "user", "add", user)
        if role is not None:
            self("server", "member", "add", "acme", user, "--role", role)
        return self("server", "token", "create", user, "--scope", "write").strip()


def _copy(src: HubApi, dest: HubApi, ref: str, work: Path) -> None:
    """Move one version between hubs the way a user does: pull it, push it, same card."""
    folder = work / ref.replace("/", "_").replace(":", "_")
    src.pull(ref, folder)
    info = src.info(ref)
    dest.push(info.version.repo, folder, info.version.kind, card=info.card)


@pytest.mark.slow  # two tiny trainings and three client interpreters: ~2 min on a loaded 2-core machine
def test_a_team_shares_private_models_through_one_server(
    hub_server: RunningHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fmstack.train.inference import load
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    admin = _Admin(hub_server, monkeypatch, capsys)
    admin("server", "org", "add", "acme")
    ann, bob, carol = (admin.token(*u) for u in (("ann", "write"), ("bob", "write"), ("carol", None)))

    # Ann trains on her machine and shares base, data and adapter (private: new repos are).
    with (
        Hub(Settings.at(tmp_path / "ann")) as mine,
        RemoteHub.connect(mine.settings, hub_server.url, ann) as shared,
    ):
        push_tiny_bert(mine, tmp_path / "ann-files", repo="acme/tiny-bert")
        splits = {"train": classification_table(32, 1), "validation": classification_table(12, 2)}
        push_dataset(mine, tmp_path / "ann-files", "acme/topics", splits, labels=sorted(TOPICS))
        spec = {"task": "classification", "base": "acme/tiny-bert:1", "data": "acme/topics:1", "max_steps": 3}
        spec |= {"lr": 1e-2, "seed": 3, "method": "lora", "output": "acme/topics-lora"}
        adapter = train(mine, parse_spec(spec)).output.ref
        for ref in ("acme/tiny-bert:1", "acme/topics:1", adapter):
            _copy(mine, shared, ref, tmp_path / "ann-out")
        shared.tag("acme/tiny-bert:1", "production")
        loaded = load(mine, adapter)
        with torch.no_grad():
            batch = loaded.tokenizer(TEXTS, padding=True, return_tensors="pt")
            anns_logits = loaded.model.eval()(**batch).logits.float()
            one = loaded.tokenizer([SERVED_TEXT], return_tensors="pt")
            probs = loaded.model(**one).logits.float().softmax(-1)[0].tolist()
            anns_scores = dict(zip(loaded.labels, probs, strict=True))
        assert {r.visibility for r in shared.ls()} == {"private"}

    # Bob, a member, trains from Ann's base and data straight against the server, and pushes there.
    with RemoteHub.connect(Settings.at(tmp_path / "bob"), hub_server.url, bob) as shared:
        spec |= {"seed": 4, "output": "acme/topics-lora-bob"}
        bobs = train(shared, parse_spec(spec))
        assert shared.runs.get(bobs.run_id).status == "succeeded"
        assert {r.repo for r in shared.ls()} == {
            "acme/tiny-bert",
            "acme/topics",
            "acme/topics-lora",
            "acme/topics-lora-bob",
        }

    # ... serves Ann's adapter from the server and gets her scores ...
    env = {**hub_server.env, "FMSTACK_HOME": str(tmp_path / "bob"), "FMSTACK_HUB_TOKEN": bob}
    (served,) = classify(hub_server.url, env, "acme/topics-lora:1")
    assert served["data"][0]["scores"] == pytest.approx(anns_scores, abs=1e-4)  # type: ignore[index]

    # ... and loads Ann's adapter with plain transformers + peft, through the server's HF API.
    hf_home = tmp_path / "bob-hf"
    got = run_client(
        hub_server.url, hf_home, PEFT, "acme/topics-lora", "acme/tiny-bert", json.dumps(TEXTS), token=bob
    )
    torch.testing.assert_close(torch.tensor(got), anns_logits, atol=1e-4, rtol=0)

    # Carol, no member, sees none of it: not through fmstack, not through huggingface_hub.
    with RemoteHub.connect(Settings.at(tmp_path / "carol"), hub_server.url, carol) as shared:
        assert shared.ls() == []
    seen = run_client(hub_server.url, tmp_path / "carol-hf", NOT_FOUND, token=carol)
    assert seen == {"acme/tiny-bert": "not found", "acme/topics-lora": "not found"}
    audit = admin("server", "audit", "--json", "-n", "100")
    pushes = {(e["actor"], e["target"]) for e in json.loads(audit) if e["action"] == "push"}
    assert ("ann", "acme/topics-lora:1") in pushes and ("bob", "acme/topics-lora-bob:1") in pushes
