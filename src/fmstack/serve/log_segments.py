"""Append-only segments of the prediction log: Arrow IPC stream files, appended to, fsynced per flush.

Why Arrow IPC streams and not Parquet files or a table: a Parquet file is only readable once its footer
is written, so a process killed mid-file loses all of it (or each flush needs a file of its own: a
day at one flush a second is 86,400 files). An IPC stream is readable up to its last complete record
batch, so one file per process and hour can be appended to and fsynced at every flush, and a SIGKILL
loses only the batch being written. A SQL table would put every prediction through the hub's metadata
database, which the hub's own writers share. pyarrow (and polars, DuckDB) read the files directly.

Layout, under the log folder (``FMSTACK_HOME/predictions`` unless ``--log-dir`` says otherwise)::

    <namespace>/<name>/predictions/<YYYYMMDDTHH>-<host>-<pid>-<tag>.arrow
    <namespace>/<name>/feedback/<YYYYMMDDTHH>-<host>-<pid>-<tag>.arrow

The hour in the name is the hour the file was opened (UTC), so readers skip files older than ``since``
without opening them. This module knows nothing of what the rows mean (``serve.prediction_log``).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

log = logging.getLogger("fmstack.serve")

_TS = pa.timestamp("us", tz="UTC")
PREDICTIONS = pa.schema(
    [
        ("request_id", pa.string()),
        ("index", pa.int32()),
        ("time", _TS),
        ("model", pa.string()),  # the served name, the ref as the server was started with it
        ("version", pa.string()),  # the version that answered: ns/name:N
        ("text", pa.string()),
        ("label", pa.string()),
        ("confidence", pa.float32()),
        ("scores", pa.list_(pa.float32())),  # in the order of the version's labels
        ("latency_ms", pa.float32()),
        ("sampled", pa.bool_()),  # False: logged because feedback came for it (see prediction_log)
    ]
)
FEEDBACK = pa.schema(
    [
        ("request_id", pa.string()),
        ("index", pa.int32()),
        ("time", _TS),
        ("model", pa.string()),
        ("version", pa.string()),
        ("predicted", pa.string()),
        ("label", pa.string()),  # the right label; null when only "correct": false was said
        ("correct", pa.bool_()),
        ("comment", pa.string()),
    ]
)
STREAMS = {"predictions": PREDICTIONS, "feedback": FEEDBACK}
ROLL_BYTES = 256 * 1024 * 1024  # a file this large is closed and another begun, within the hour too


def stream_folder(root: Path, repo: str, stream: str) -> Path:
    """The folder of one repo's stream; ``repo`` is ``namespace/name`` (checked by ``parse_ref``)."""
    return root.joinpath(*repo.split("/"), stream)


def _hour(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H")


class SegmentWriter:
    """Appends tables to this process's current segment of one stream. Not thread-safe: one writer
    thread owns it (``prediction_log.BackgroundWriter``)."""

    def __init__(self, folder: Path, schema: pa.Schema, roll_bytes: int = ROLL_BYTES) -> None:
        self.folder = folder
        self.schema = schema
        self.roll_bytes = roll_bytes
        self._file: BinaryIO | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._hour = ""

    def append(self, table: pa.Table) -> None:
        """Write ``table`` and make it durable (fsync) before returning."""
        now = datetime.now(UTC)
        if self._file is None or self._hour != _hour(now) or self._file.tell() > self.roll_bytes:
            self._open(now)
        assert self._writer is not None and self._file is not None
        self._writer.write_table(table.cast(self.schema))
        self._file.flush()
        os.fsync(self._file.fileno())

    def _open(self, now: datetime) -> None:
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._hour = _hour(now)
        tag = uuid.uuid4().hex[:8]
        path = self.folder / f"{self._hour}-{socket.gethostname()}-{os.getpid()}-{tag}.arrow"
        self._file = open(path, "xb")  # noqa: SIM115 - closed in close(), it lives across calls
        self._writer = pa.ipc.new_stream(self._file, self.schema)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()  # writes the end-of-stream marker
        if self._file is not None:
            self._file.close()
        self._writer = self._file = None


def segment_files(folder: Path, since: datetime | None = None) -> list[Path]:
    """The stream's files in time order; with ``since``, only those that may hold later rows."""
    if not folder.is_dir():
        return []
    first = _hour(since - timedelta(hours=1)) if since is not None else ""  # a file spans its hour
    return sorted(p for p in folder.glob("*.arrow") if p.name[:11] >= first)


def read_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The complete record batches of one segment. A segment whose writer was killed ends in a torn
    batch (or holds no complete header yet): what is complete is read, the rest skipped."""
    try:
        with pa.OSFile(str(path), "rb") as source:
            reader = pa.ipc.open_stream(source)
            while True:
                try:
                    yield reader.read_next_batch()
                except StopIteration:
                    return
    except (pa.ArrowInvalid, OSError) as exc:
        log.debug("segment %s ends early (a killed writer's last batch): %s", path, exc)


def read_stream(folder: Path, schema: pa.Schema, since: datetime | None = None) -> pa.Table:
    """Every row of a stream (optionally from ``since`` on) as one table of ``schema``."""
    batches = [b for path in segment_files(folder, since) for b in read_batches(path)]
    table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    if since is not None and table.num_rows:
        import pyarrow.compute as pc

        table = table.filter(pc.greater_equal(table["time"], pa.scalar(since, type=_TS)))
    return table
