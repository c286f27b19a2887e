"""Each recipe end to end through ``fmstack recipe NAME`` on a small self-made sample and a tiny base
model: the versions it makes and their lineage, what it reports, and what ``fmstack serve`` then
answers over HTTP for the version it aliased ``production``."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fmstack.cli import main as cli_main
from fmstack.hub import Hub
from fmstack.monitor.loop_spec import parse_loop
from fmstack.serve import ServeSettings, start_server
from tests.recipes.conftest import BASE

pytestmark = pytest.mark.slow

# Small runs of a tiny model: full fine-tuning learns the topic words in a few epochs.
TRAIN = ["--base", BASE, "--method", "full", "--lr", "3e-3", "--epochs", "5", "--max-length", "32"]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _recipe(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = cli_main.main(["recipe", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def _serve(hub: Hub, ref: str) -> Any:
    return start_server(ServeSettings(models=[ref], port=0, threads=1, poll_aliases_s=0), hub.settings)


INTENTS = {
    "lost_card": ["my card is lost", "i lost my card yesterday", "card missing help", "cannot find my card"],
    "balance": ["what is my balance", "show account balance", "how much money do i have", "balance please"],
    "transfer": [
        "send money to my friend",
        "transfer funds abroad",
        "make a bank transfer",
        "wire money now",
    ],
}


def _intent_rows(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        intent = list(INTENTS)[i % 3]
        rows.append([f"{rng.choice(['', 'hi ', 'hello, '])}{rng.choice(INTENTS[intent])} {i}", intent])
    return rows


def test_intents_picks_a_threshold_on_validation_and_serve_applies_it(
    tiny_hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_csv(tmp_path / "requests.csv", ["utterance", "intent"], _intent_rows(90, seed=1))
    args = ["intents", "--data", str(data), "--text-column", "utterance", "--label-column", "intent"]
    result = _recipe(capsys, *args, *TRAIN, "--output", "acme/intents", "--target-accuracy", "0.9")
    metrics, curve = result["metrics"], result["tables"]["validation_curve"]
    threshold = metrics["threshold"]
    assert 0 < threshold <= 1 and {"test_accuracy", "test_macro_f1", "test_coverage"} <= set(metrics)
    assert [p["coverage"] for p in curve] == sorted((p["coverage"] for p in curve), reverse=True)
    assert curve[0]["coverage"] == 1.0
    served = result["versions"]["production"]
    assert served["repo"] == "acme/intents"
    # The threshold travels in the version's fmstack.json, made by a recorded run from the int8 model.
    ref = f"{served['repo']}:{served['number']}"
    descriptor = json.loads(tiny_hub.read_file(ref, "fmstack.json"))
    assert descriptor["fallback_threshold"] == threshold and descriptor["format"] == "onnx"
    parents = {p.ref for p in tiny_hub.lineage("acme/intents@production").upstream.parents}
    made = result["versions"]
    assert parents == {f"{made[s]['repo']}:{made[s]['number']}" for s in ("compressed", "data")}
    texts = ["i lost my card", "zzz qqq", "what is my balance", "hello"]
    with _serve(tiny_hub, "acme/intents@production") as server, httpx.Client(base_url=server.url) as client:
        reply = client.post("/v1/classify", json={"model": "acme/intents@production", "input": texts})
    assert reply.status_code == 200, reply.text
    for item in reply.json()["data"]:  # no serve flag: the version's own threshold applies
        assert item["fallback"] == (max(item["scores"].values()) < threshold)


# A self-made finance sample, imbalanced as such data is: neutral 6, bullish 3, bearish 1.
SENTIMENT = {
    "neutral": [
        "shares were flat in quiet trading",
        "the company holds its annual meeting",
        "index unchanged at close",
    ],
    "bullish": [
        "stock soars on record profit",
        "shares jump after strong earnings",
        "analysts upgrade, rally ahead",
    ],
    "bearish": ["shares plunge on profit warning", "stock crashes after weak guidance"],
}


def test_sentiment_weighs_classes_and_reports_macro_f1(
    tiny_hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(3)
    weights = {"neutral": 6, "bullish": 3, "bearish": 1}
    labels = [label for label, w in weights.items() for _ in range(w * 9)]
    rows = [
        [f"{rng.choice(SENTIMENT[label])} {rng.choice(['ACME', 'BETA', 'GAMMA'])} {i}", label]
        for i, label in enumerate(labels)
    ]
    data = _write_csv(tmp_path / "headlines.csv", ["headline", "sentiment"], rows)
    args = ["sentiment", "--data", str(data), "--text-column", "headline", "--label-column", "sentiment"]
    loop_file = tmp_path / "loop.yaml"
    result = _recipe(capsys, *args, *TRAIN, "--output", "acme/sentiment", "--loop-spec", str(loop_file))
    metrics = result["metrics"]
    for name in ("test_accuracy", "test_macro_f1", "test_int8_accuracy", "test_int8_macro_f1"):
        assert 0 <= metrics[name] <= 1, name
    assert {row["label"] for row in result["tables"]["test_per_class"]} == set(weights)
    trained = result["versions"]["trained"]
    run = tiny_hub.runs.get(trained["run_id"])
    assert run.spec["class_weights"] == "balanced"  # recorded with the training run
    production = tiny_hub.resolve("acme/sentiment-onnx@production")
    assert production.number == result["versions"]["compressed"]["number"]
    loop = parse_loop(yaml.safe_load(loop_file.read_text()))  # drift monitoring: what the monitor runs
    assert loop.model == "acme/sentiment-onnx@production" and loop.trigger.max_label_psi == 0.2
    assert loop.train_spec(loop.data).class_weights == "balanced"


def test_search_indexes_the_catalog_and_serves_filtered_top_k(
    tiny_hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topics = {
        "shoes": ["running shoes", "trail sneakers", "leather boots"],
        "books": ["crime novel", "cookbook of soups", "history of rome"],
        "audio": ["wireless headphones", "bluetooth speaker", "studio microphone"],
    }
    items = [[f"{topic}-{i}", name, topic] for topic, names in topics.items() for i, name in enumerate(names)]
    catalog = _write_csv(tmp_path / "items.csv", ["sku", "title", "category"], items)
    rng = random.Random(5)
    asks = ["i want {}", "looking for {}", "buy {} cheap", "best {} for me"]
    pairs = [[rng.choice(asks).format(name) + f" {i}", name] for i in range(60) for name in [items[i % 9][1]]]
    data = _write_csv(tmp_path / "clicks.csv", ["search", "clicked"], pairs)
    args = ["search", "--data", str(data), "--query-column", "search", "--item-column", "clicked"]
    args += ["--items", str(catalog), "--item-id-column", "sku", "--item-text-column", "title"]
    result = _recipe(capsys, *args, "--base", BASE, "--epochs", "2", "--lr", "1e-3", "--output", "acme/shop")
    metrics = result["metrics"]
    for name in ("base", "tuned_int8"):
        assert 0 <= metrics[f"test_{name}_recall@10"] <= 1 and 0 <= metrics[f"test_{name}_ndcg@10"] <= 1
    assert metrics["test_queries"] > 0
    parents = {p.ref for p in tiny_hub.lineage("acme/shop@production").upstream.parents}
    made = result["versions"]
    assert parents == {f"{made[s]['repo']}:{made[s]['number']}" for s in ("compressed", "data")}
    with _serve(tiny_hub, "acme/shop@production") as server, httpx.Client(base_url=server.url) as client:
        body = {"model": "acme/shop@production", "query": "bluetooth speaker", "top_k": 3}
        hits = client.post("/v1/search", json=body).json()["data"][0]["hits"]
        filtered = client.post("/v1/search", json={**body, "filter": {"category": "books"}}).json()
    assert hits[0]["id"] == "audio-1" and hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert len(hits) == 3 and hits[0]["metadata"] == {"category": "audio"}
    assert [h["metadata"]["category"] for h in filtered["data"][0]["hits"]] == ["books"] * 3
