"""A real multi-node Ray cluster on this machine, for tests and benchmarks: ``ray start --head`` and
``ray start --address`` processes (``--block``, so each stays our child and is stopped by its process
group, never by ``ray stop``, which would stop every Ray runtime on the machine), with free ports,
temp folders of their own and one CPU each.

A worker node can be started in a mount namespace of its own (``unshare -m``, root only) where some
folders are hidden behind an empty tmpfs: a node that cannot see what the driver sees, as a node on
another machine could not see a local FMSTACK_HOME.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.seaweed import free_ports

STARTUP_S = 180.0
DRIVER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}  # for nodes and drivers


def ray_binary() -> str | None:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.is_file() else shutil.which("ray")


def can_hide_folders() -> bool:
    """Whether a node can be started with folders hidden (``unshare -m`` and ``mount`` work)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@dataclass
class RayCluster:
    address: str  # 127.0.0.1:PORT, for ray.init / --ray-address / RAY_ADDRESS
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def node_count(self) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _COUNT_NODES, self.address],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **DRIVER_ENV},
        )
        return int(out.stdout.strip() or 0)


_COUNT_NODES = """
import sys, ray
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level="ERROR")
print(sum(1 for n in ray.nodes() if n["Alive"]))
"""


@contextmanager
def ray_cluster(
    root: Path, nodes: int = 2, env: dict[str, str] | None = None, hidden: list[Path] | None = None
) -> Iterator[RayCluster]:
    """Start a head and ``nodes - 1`` workers (1 CPU each) with ``env`` added to their environment (the
    S3 credentials a node's tasks need); the last worker runs with the ``hidden`` folders masked."""
    ray = ray_binary()
    if ray is None:
        raise RuntimeError("no `ray` command: pip install 'fmstack[ray]'")
    root.mkdir(parents=True, exist_ok=True)
    port, manager, object_manager, client = free_ports(4)
    # Token authentication is off: the cluster listens on this machine only, and its drivers (the CLI
    # under test) would need the token passed to them. docs/deploy.md keeps it on for a real cluster.
    node_env = {**os.environ, **(env or {}), **DRIVER_ENV}
    node_env.pop("RAY_ADDRESS", None)
    cluster = RayCluster(f"127.0.0.1:{port}", root)
    # Ray's temp folder holds its unix sockets, whose paths may not exceed 107 bytes: a short one.
    temp = Path(tempfile.mkdtemp(prefix="fmray-"))
    common = ["--num-cpus=1", "--num-gpus=0", "--block", "--disable-usage-stats"]
    head = [
        ray, "start", "--head", f"--port={port}", f"--temp-dir={temp}",
        "--include-dashboard=false", f"--ray-client-server-port={client}",
        f"--node-manager-port={manager}", f"--object-manager-port={object_manager}", *common,
    ]  # fmt: skip
    try:
        cluster.processes.append(_spawn(head, node_env, root / "head.log"))
        _wait_nodes(cluster, 1)
        for i in range(1, nodes):
            worker = [ray, "start", f"--address={cluster.address}", *common]
            if hidden and i == nodes - 1:
                mounts = " && ".join(f"mount -t tmpfs fmstack-hidden {shlex.quote(str(p))}" for p in hidden)
                worker = ["unshare", "-m", "sh", "-c", f"{mounts} && exec {shlex.join(worker)}"]
            cluster.processes.append(_spawn(worker, node_env, root / f"worker{i}.log"))
        _wait_nodes(cluster, nodes)
        yield cluster
    finally:
        for proc in reversed(cluster.processes):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_nodes(cluster: RayCluster, count: int) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        dead = [p for p in cluster.processes if p.poll() is not None]
        if dead:
            logs = "\n".join(f"{log.name}:\n{log.read_text()[-2000:]}" for log in cluster.root.glob("*.log"))
            raise RuntimeError(f"a Ray node exited with {dead[0].returncode}:\n{logs}")
        try:
            if cluster.node_count() >= count:
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {STARTUP_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the node's process group (``ray start --block`` and the raylet, GCS and workers it
    started), then SIGKILL to what is left of it."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # what the node's leader started may outlive it
        os.killpg(proc.pid, signal.SIGKILL)
