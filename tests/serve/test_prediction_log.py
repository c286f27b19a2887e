"""The prediction log and ``POST /v1/feedback`` over real sockets, and the log writer under SIGKILL."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from fmstack.serve import RunningServer
from fmstack.serve.log_segments import FEEDBACK, PREDICTIONS, read_stream, stream_folder
from tests.serve.conftest import LABELS

Serve = Callable[..., RunningServer]
MODEL = "acme/intent@production"


def _classify(client: httpx.Client, texts: list[str]) -> dict[str, object]:
    r = client.post("/v1/classify", json={"model": MODEL, "input": texts})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert r.headers["x-request-id"] == body["request_id"]
    return body


def test_feedback_joins_the_right_predictions_under_concurrent_load(serve: Serve, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    server = serve([MODEL], log_predictions=1.0, log_dir=logs, log_flush_s=0.1)
    # 48 clients at once, each classifying two texts of its own and then correcting the second.
    texts = {i: [f"first text {i}", f"refund number {i} please"] for i in range(48)}
    truth = {i: LABELS[i % len(LABELS)] for i in texts}

    def client_session(i: int) -> tuple[str, dict[str, object]]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = _classify(client, texts[i])
            rid = str(body["request_id"])
            r = client.post("/v1/feedback", json={"request_id": rid, "index": 1, "label": truth[i]})
            assert r.status_code == 200, r.text
            return rid, r.json()

    with ThreadPoolExecutor(16) as pool:
        answers = dict(zip(texts, pool.map(client_session, texts), strict=True))
    ids = {rid: i for i, (rid, _) in answers.items()}
    assert len(ids) == len(texts)  # every answer has an id of its own
    for i, (_rid, fb) in answers.items():
        assert fb["label"] == truth[i] and fb["index"] == 1 and fb["version"] == "acme/intent:1"
        assert fb["correct"] == (fb["predicted"] == truth[i])

    with httpx.Client(base_url=server.url) as client:
        rid = answers[0][0]
        again = client.post("/v1/feedback", json={"request_id": rid, "index": 1, "correct": True})
        assert again.status_code == 409 and "already" in again.json()["error"]["message"]
        unknown = client.post("/v1/feedback", json={"request_id": "nope", "correct": True})
        assert unknown.status_code == 404 and "--feedback-window" in unknown.json()["error"]["message"]
        bad = client.post("/v1/feedback", json={"request_id": rid, "index": 0, "label": "weather"})
        assert bad.status_code == 422 and "billing" in bad.json()["error"]["message"]
        out = client.post("/v1/feedback", json={"request_id": rid, "index": 2, "correct": True})
        assert out.status_code == 422 and "out of range" in out.json()["error"]["message"]
        both = client.post("/v1/feedback", json={"request_id": rid, "label": "refund", "correct": True})
        assert both.status_code == 422 and "not both" in both.json()["error"]["message"]
        pending = _classify(client, ["hello again"])["request_id"]
        metrics = client.get("/metrics").text
        assert 'fmstack_serve_feedback_total{model="acme/intent@production"' in metrics
    server.stop()  # drains the writers

    predictions = read_stream(stream_folder(logs, "acme/intent", "predictions"), PREDICTIONS).to_pylist()
    feedback = read_stream(stream_folder(logs, "acme/intent", "feedback"), FEEDBACK).to_pylist()
    assert len(predictions) == 2 * len(texts) + 1 and len(feedback) == len(texts)
    by_key = {(p["request_id"], p["index"]): p for p in predictions}
    for row in feedback:  # each feedback row joins to the prediction of the text it was about
        i = ids[row["request_id"]]
        joined = by_key[(row["request_id"], row["index"])]
        assert joined["text"] == texts[i][1] and row["label"] == truth[i]
        assert joined["label"] == row["predicted"] and joined["version"] == row["version"]

    # A restarted server reads the window back: feedback on an earlier answer still joins, and an
    # answer given before the restart is still refused a second time.
    again_server = serve([MODEL], log_predictions=1.0, log_dir=logs, log_flush_s=0.1)
    with httpx.Client(base_url=again_server.url) as client:
        ok = client.post("/v1/feedback", json={"request_id": pending, "label": "greeting"})
        assert ok.status_code == 200, ok.text
        dup = client.post("/v1/feedback", json={"request_id": answers[3][0], "index": 1, "correct": False})
        assert dup.status_code == 409


def test_sampling_and_feedback_without_a_log(serve: Serve, tmp_path: Path) -> None:
    plain = serve([MODEL, "acme/embed"])
    with httpx.Client(base_url=plain.url) as client:
        rid = _classify(client, ["hello"])["request_id"]
        embedded = client.post("/v1/embeddings", json={"model": "acme/embed", "input": "hello"})
        assert len(embedded.headers["x-request-id"]) == 32 and embedded.headers["x-request-id"] != rid
        r = client.post("/v1/feedback", json={"request_id": rid, "correct": True})
        assert r.status_code == 400 and "--log-predictions" in r.json()["error"]["message"]
    # At a rate near 0 nothing is sampled, yet feedback on any answer joins: its prediction is logged then.
    logs = tmp_path / "logs"
    sampled = serve([MODEL], log_predictions=1e-9, log_dir=logs, log_flush_s=0.1, log_redact_pii=True)
    with httpx.Client(base_url=sampled.url) as client:
        rids = [_classify(client, [f"mail me at ann{i}@example.com"])["request_id"] for i in range(5)]
        assert client.post("/v1/feedback", json={"request_id": rids[2], "correct": True}).status_code == 200
    sampled.stop()
    rows = read_stream(stream_folder(logs, "acme/intent", "predictions"), PREDICTIONS).to_pylist()
    assert [(r["request_id"], r["sampled"]) for r in rows] == [(rids[2], False)]
    assert rows[0]["text"] == "mail me at [EMAIL]"


_CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from fmstack.serve.log_segments import FEEDBACK
    from fmstack.serve.prediction_log import BackgroundWriter

    written = 0

    def flushed(n):  # called by the writer thread once n more rows are fsynced
        global written
        written += n
        sys.stdout.write(f"flushed {written} {time.monotonic()}\\n")
        sys.stdout.flush()

    writer = BackgroundWriter(Path(sys.argv[1]), FEEDBACK, 0.2, 100_000, flushed, lambda n: None)
    i = 0
    while True:
        writer.put((str(i), 0, datetime.now(UTC), "m", "acme/intent:1", "a", "a", True, None))
        sys.stdout.write(f"queued {i} {time.monotonic()}\\n")
        sys.stdout.flush()
        i += 1
        time.sleep(0.002)
    """
)


def test_a_killed_writer_loses_at_most_the_flush_interval(tmp_path: Path) -> None:
    folder = tmp_path / "feedback"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(folder)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    flushes: list[tuple[int, float]] = []  # (rows durable so far, when), as the child's writer said
    while len(flushes) < 5:  # about 1 s of rows at one flush per 0.2 s
        line = child.stdout.readline()
        assert line, "the writer child died"
        kind, count, at = line.split()
        if kind == "flushed":
            flushes.append((int(count), float(at)))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    written = [int(r) for r in read_stream(folder, FEEDBACK).column("request_id").to_pylist()]
    assert written == list(range(len(written)))  # in order, nothing torn or repeated
    assert len(written) >= flushes[-1][0]  # every row the writer had fsynced survived the kill
    # The writer wrote every --log-flush (0.2 s) while rows came in, so at a kill only the rows of the
    # last interval (plus the batch being written) could be lost: the intervals stay near 0.2 s (the
    # bound allows for a loaded machine's scheduling).
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(flushes)]
    assert max(gaps) < 0.2 + 1.5, gaps
