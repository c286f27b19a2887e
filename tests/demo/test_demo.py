"""`fmstack demo` end to end on a fresh FMSTACK_HOME: the real lifecycle, the built-in base model."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from fmstack.cli import demo as demo_cli
from fmstack.cli import main as cli_main
from fmstack.demo import sample
from fmstack.demo.lifecycle import DEMO_MAX_DROP, DemoSummary, _timed
from fmstack.hub import Hub


def test_sample_is_reproducible_imbalanced_and_has_duplicates_to_remove() -> None:
    splits = sample.generate()
    assert splits == sample.generate() and splits != sample.generate(seed=8)
    assert set(splits) == {"train", "validation", "test"}
    train = Counter(intent for _, intent in splits["train"])
    assert set(train) == set(sample.PHRASINGS) == {intent for _, intent in splits["test"]}
    assert max(train.values()) >= 4 * min(train.values())  # Zipf-like, not 60 of each
    assert len(splits["train"]) > len(set(splits["train"]))


def _pattern(template: str) -> re.Pattern[str]:
    """A template as a regex: slots match anything; commas and apostrophes may be dropped."""
    parts = re.split(r"\{\w+\}", template)
    escaped = [re.escape(p).replace(",", ",?").replace("'", "'?") for p in parts]
    return re.compile(".+".join(escaped), re.IGNORECASE)


def test_held_out_phrasings_are_in_the_test_split_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "TYPO_RATE", 0.0)  # typos would hide which phrasing a row came from
    splits = sample.generate()
    for intent, templates in sample.HELD_OUT.items():
        patterns = [_pattern(t) for t in templates]
        seen = [
            text
            for text, _ in splits["train"] + splits["validation"]
            if any(p.search(text) for p in patterns)
        ]
        assert not seen, (intent, seen)
    held_out = [_pattern(t) for ts in sample.HELD_OUT.values() for t in ts]
    in_test = sum(any(p.search(text) for p in held_out) for text, _ in splits["test"])
    assert 0.3 * len(splits["test"]) < in_test < 0.7 * len(splits["test"])


def test_sample_has_typos_and_requests_with_two_plausible_intents() -> None:
    splits = sample.generate()
    ambiguous = [_pattern(t) for t, _ in sample.AMBIGUOUS]
    rows = [row for split in splits.values() for row in split]
    assert sum(any(p.search(text) for p in ambiguous) for text, _ in rows) >= 0.03 * len(rows)
    rng = random.Random(0)
    assert all(sample.typo("hello there", rng) != "hello there" for _ in range(50))


def test_each_step_reports_its_own_duration_not_the_time_so_far(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, float | None]] = []
    summary = DemoSummary(home="")
    for step, seconds in (("first", 0.3), ("second", 0.1)):
        _timed(summary, step, lambda text, took: calls.append((text, took)))(lambda s=seconds: time.sleep(s))
    assert [c[0] for c in calls] == ["first", "first", "second", "second"]
    assert calls[0][1] is None and calls[2][1] is None
    second = calls[3][1]
    assert second is not None and 0.1 <= second < 0.3  # its own time; the time so far would be >= 0.4
    assert calls[1][1] == summary.seconds["first"] and calls[3][1] == summary.seconds["second"]
    say = demo_cli._progress(quiet=False)
    say("ingest the raw requests", None)
    say("ingest the raw requests", 3.3)
    say("process", None)
    err = capsys.readouterr().err
    assert "[1/7] ingest the raw requests" in err and "done in 3.3s" in err and "[2/7] process" in err


def test_demo_runs_the_whole_lifecycle(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    versions = summary["versions"]
    assert {"base", "raw", "data", "trained", "compressed", "production"} <= set(versions)
    assert versions["trained"]["kind"] == "adapter"
    # Held-out phrasings, typos and requests with two plausible intents: informative, not 100%.
    assert 0.75 <= summary["eval_metrics"]["accuracy"] <= 0.98
    compression = summary["compression"]
    assert compression["size_ratio"] < 0.3 and compression["drop_points"] <= DEMO_MAX_DROP
    assert len(summary["predictions"]) == 5 and summary["embedding_dims"] == 384
    assert summary["latency_ms"]["requests"] == 40
    with Hub.open() as hub:
        served = hub.resolve("demo/intent-onnx@production")
        assert served.ref == versions["compressed"]["repo"] + ":" + str(versions["compressed"]["number"])
        upstream = {n.ref for n in hub.lineage(served.ref).upstream.parents}
        assert upstream == {"demo/intent-lora:1", "demo/requests:1"}
        kinds = [r.kind for r in hub.runs.recent()]
        assert sorted(kinds) == ["compress", "data.ingest", "data.process", "eval", "train"]


def test_demo_refuses_a_missing_data_file(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--data", str(fmstack_home / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
