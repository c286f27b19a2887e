"""Training checkpoints under FMSTACK_HOME/checkpoints, seen by `hub fsck` and `hub gc`: an interrupted
run's are listed and kept for --resume; once a run of the same spec succeeds they are finished with,
and gc removes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fmstack.cli.main import main
from fmstack.hub import Hub
from fmstack.hub.checkpoint_dirs import RESUMABLE
from fmstack.train.loop import Progress
from fmstack.train.run import train
from fmstack.train.spec import parse_spec


def _checkpoint_leftovers(capsys: pytest.CaptureFixture[str], *command: str) -> list[dict]:  # type: ignore[type-arg]
    assert main(["hub", *command, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["leftovers"]
    return [left for left in found if left["what"].startswith("checkpoints")]


def test_interrupted_checkpoints_are_kept_for_resume_and_removed_once_a_run_succeeds(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = {
        "task": "classification",
        "method": "lora",
        "base": tiny_bert,
        "data": topics,
        "batch_size": 8,
        "max_steps": 6,
        "save_every": 2,
    }
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({**fields, "output": "acme/t"}))

    def interrupt(progress: Progress) -> None:
        if progress.step == 5:  # the checkpoints of steps 2 and 4 are written
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(hub, parse_spec({**fields, "output": "acme/t"}), interrupt)
    (failed,) = hub.runs.recent(kind="train")
    assert failed.status == "failed"

    (kept,) = _checkpoint_leftovers(capsys, "fsck")
    folder = Path(kept["path"])
    assert folder.parent == hub.settings.home / "checkpoints" and sorted(
        p.name for p in folder.glob("step-*")
    ) == ["step-00000002", "step-00000004"]
    assert kept["what"] == f"checkpoints of failed run {failed.id}" and kept["keep"] == RESUMABLE
    assert kept["size"] > 10_000 and not kept["live"]
    assert _checkpoint_leftovers(capsys, "gc") == [] and folder.is_dir()  # gc keeps them

    assert main(["train", "run", str(spec_file), "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["resumed_from"] == 4
    (done,) = _checkpoint_leftovers(capsys, "fsck")
    assert (done["path"], done["keep"]) == (str(folder), "")
    assert done["what"] == f"checkpoints of succeeded run {resumed['run_id']}"
    assert _checkpoint_leftovers(capsys, "gc") == [done]
    assert not folder.exists() and _checkpoint_leftovers(capsys, "fsck") == []
