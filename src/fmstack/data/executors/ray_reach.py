"""Before work starts on a Ray cluster: check that every node reaches what its tasks will open.

Tasks of ``data process --executor ray`` read and write shard files in ``$FMSTACK_HOME/work``; ranks of
``train --executor ray`` open the hub from the job's settings and write their output under
``$FMSTACK_HOME/tmp``. A node on another machine sees none of that unless ``FMSTACK_HOME`` is on a
filesystem every node mounts at the same path, and the hub is on services every node reaches
(PostgreSQL, S3). Without this check such a job would fail shard by shard, or hang, after its work had
begun; with it, it fails at once naming each node and what to change.

One probe per live node (pinned to it, no CPU reserved) reads a token the driver has just written into
``$FMSTACK_HOME/tmp``, and opens the database and the blob store as the job's tasks would.
Knows nothing of what the job does.
"""

from __future__ import annotations

import uuid
from typing import Any

from fmstack.errors import Unavailable, clip
from fmstack.hub.scratch import owner_tag, scratch_root
from fmstack.settings import Settings

PROBE_TIMEOUT_S = 120.0


def _probe(marker: str, token: str, database_url: str, store_url: str) -> dict[str, Any]:
    """Runs on one node: what of the driver's hub this node cannot reach (empty when all is well)."""
    import socket
    from pathlib import Path

    from sqlalchemy import create_engine, text

    from fmstack.hub.blobs import open_blob_store

    problems = []
    try:
        seen = Path(marker).read_text() == token
    except OSError:
        seen = False
    if not seen:
        problems.append(
            f"FMSTACK_HOME is not the driver's folder here ({Path(marker).parent.parent} is not shared)"
        )
    sqlite_file = database_url.removeprefix("sqlite:///") if database_url.startswith("sqlite:///") else None
    if sqlite_file is not None and not Path(sqlite_file).is_file():  # connecting would create an empty one
        problems.append(f"the SQLite database {sqlite_file} does not exist here")
    try:
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # whatever the driver or the file says: it is what this node would hit
        problems.append(
            f"the database {database_url.split('@')[-1]} cannot be opened ({clip(str(exc), 200)})"
        )
    try:
        store = open_blob_store(store_url)
        store.has("0" * 64)
        if "://" not in store_url and not Path(store_url).expanduser().is_dir():
            problems.append(f"the blob folder {store_url} does not exist here")
    except Exception as exc:  # credentials missing on this node, an endpoint it cannot reach, ...
        problems.append(f"the blob store {store_url} cannot be read ({clip(str(exc), 200)})")
    return {"host": socket.gethostname(), "problems": problems}


def check_nodes_reach(settings: Settings) -> None:
    """Raise ``Unavailable`` naming every live node of the connected Ray cluster that cannot reach
    ``settings``' FMSTACK_HOME, database or blob store, with the way out. ``ray.init`` must have run."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    root = scratch_root(settings.home)
    root.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    marker = root / f".ray-reach-{owner_tag()}-{token[:8]}"
    marker.write_text(token)
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]  # type: ignore[no-untyped-call]
        pending = [
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(str(marker), token, settings.database_url, settings.store_url)
            for node in nodes
        ]
        try:
            answers = ray.get(pending, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise Unavailable(
                f"the Ray cluster's nodes did not answer a {PROBE_TIMEOUT_S:.0f} s check of what they can reach "
                "(a node without free workers, or one that cannot start Python); see `ray status`"
            ) from None
    finally:
        marker.unlink(missing_ok=True)
    failed = [
        f"node {node['NodeManagerAddress']} ({answer['host']}, {node['NodeID'][:8]}): "
        + "; ".join(answer["problems"])
        for node, answer in zip(nodes, answers, strict=True)
        if answer["problems"]
    ]
    if failed:
        raise Unavailable(
            f"{len(failed)} of {len(nodes)} Ray nodes cannot reach this hub, so their work would fail:\n"
            + "\n".join(f"  {line}" for line in failed)
            + f"\nEvery node opens FMSTACK_HOME ({settings.home}) and the hub. Mount FMSTACK_HOME at the same "
            "path on every node (a shared filesystem), keep metadata in PostgreSQL "
            "(FMSTACK_DATABASE_URL=postgresql+psycopg://...) and blobs on S3 (FMSTACK_STORE_URL=s3://bucket/prefix, "
            "with the AWS_* credentials and endpoint in every node's environment when it runs `ray start`); "
            "or run on one machine without --ray-address / RAY_ADDRESS. docs/deploy.md shows a working setup."
        )
