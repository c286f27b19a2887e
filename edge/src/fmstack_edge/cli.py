"""The ``fmstack-edge`` command: ``serve`` a bundle folder, run the update ``agent``, ``predict`` once.

Exit codes: 0 done, 1 the user's or the bundle's problem (one line on stderr), 2 a bug.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from fmstack_edge import __version__
from fmstack_edge.agent import Agent, AgentConfig
from fmstack_edge.errors import EdgeError
from fmstack_edge.model import Model
from fmstack_edge.server import Current, Limits, Served, start

log = logging.getLogger("fmstack_edge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmstack-edge",
        description="Run fmstack's ONNX bundles on a device (no torch), and keep them updated safely.",
    )
    parser.add_argument("--version", action="version", version=f"fmstack-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug lines (every request).")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Serve one bundle folder over HTTP (/v1/classify, /v1/embeddings).")
    serve.add_argument("folder", type=Path, help="A bundle (or any ONNX version folder with fmstack.json).")
    serve.add_argument("--name", help="The model name clients send in 'model' (default: the folder's name).")
    _http_options(serve, default_port=8080)

    agent = sub.add_parser(
        "agent",
        help="Follow a channel: download, verify, health-check and switch to new bundles; serve the active one.",
        description="Polls the hub server's channel; installs a newer signed bundle into the inactive A/B "
        "slot, checks it on its golden outputs, switches atomically, and rolls back a slot that fails. "
        "Logs one line per poll; reports the device's state to the server.",
    )
    agent.add_argument("--server", required=True, help="The hub server's URL, e.g. https://hub.example.")
    agent.add_argument("--channel", required=True, help="The channel to follow (as published to).")
    agent.add_argument(
        "--dir", type=Path, required=True, help="The device's folder: slots, state, trusted metadata."
    )
    agent.add_argument(
        "--root",
        type=Path,
        help="The trusted root (1.root.json from `fmstack edge keys init`); needed on the first run.",
    )
    agent.add_argument("--token-file", type=Path, help="A file holding a hub read token (private channels).")
    agent.add_argument("--device-id", help="This device's id (default: a random one kept in DIR/device-id).")
    agent.add_argument("--poll", type=float, default=60.0, help="Seconds between polls (default 60).")
    agent.add_argument("--once", action="store_true", help="Poll once and exit (no HTTP server).")
    agent.add_argument(
        "--max-crashes", type=int, default=3, help="Crashes of a new slot before rolling back (default 3)."
    )
    agent.add_argument(
        "--probation",
        type=float,
        default=120.0,
        help="Seconds a new slot serves before it is confirmed (default 120).",
    )
    agent.add_argument(
        "--timeout", type=float, default=30.0, help="Seconds a stalled download waits (default 30)."
    )
    agent.add_argument(
        "--max-bundle-mb",
        type=float,
        default=2048.0,
        help="Largest bundle this device takes, in MB (default 2048).",
    )
    _http_options(agent, default_port=8080)

    predict = sub.add_parser("predict", help="Answer texts with a bundle folder once; JSON on stdout.")
    predict.add_argument("folder", type=Path)
    predict.add_argument("texts", nargs="+")
    return parser


def _http_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="Interface (default 127.0.0.1; 0.0.0.0 for all).")
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"TCP port (default {default_port}; 0 picks one)."
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: the cores, at most 4).")
    parser.add_argument(
        "--max-body-bytes", type=int, default=Limits.max_body_bytes, help="Largest request body."
    )


def _until_signal() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _serve(args: argparse.Namespace) -> None:
    model = Model(args.folder, threads=args.threads)
    served = Served(Current(model, args.name or args.folder.resolve().name, str(args.folder)))
    stop = _until_signal()
    httpd = start(served, args.host, args.port, Limits(max_body_bytes=args.max_body_bytes))
    host, port = str(httpd.server_address[0]), int(httpd.server_address[1])
    print(f"serving {args.folder} ({model.task}) on http://{host}:{port}", flush=True)
    stop.wait()
    httpd.shutdown()
    httpd.server_close()


def _agent(args: argparse.Namespace) -> None:
    token = args.token_file.read_text().strip() if args.token_file else None
    config = AgentConfig(
        server=args.server,
        channel=args.channel,
        dir=args.dir,
        root=args.root,
        token=token,
        device_id=args.device_id,
        poll_s=args.poll,
        max_crashes=args.max_crashes,
        probation_s=args.probation,
        timeout_s=args.timeout,
        max_bundle_bytes=int(args.max_bundle_mb * 2**20),
        threads=args.threads,
    )
    agent = Agent(config)
    agent.boot()
    if args.once:
        agent.poll()
        agent.shutdown()
        return
    stop = _until_signal()
    httpd = start(agent.served, args.host, args.port, Limits(max_body_bytes=args.max_body_bytes))
    host, port = str(httpd.server_address[0]), int(httpd.server_address[1])
    print(f"agent {agent.device_id} on channel {args.channel}; serving on http://{host}:{port}", flush=True)
    try:
        agent.run(stop)
    finally:
        httpd.shutdown()
        httpd.server_close()
        agent.shutdown()


def _predict(args: argparse.Namespace) -> None:
    model = Model(args.folder)
    if model.task == "classification":
        out = [{"label": p.label, "scores": p.scores} for p in model.predict(args.texts)]
        print(json.dumps(out, indent=2))
    else:
        print(json.dumps(model.embed(args.texts).tolist()))


COMMANDS = {"serve": _serve, "agent": _agent, "predict": _predict}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("tuf").setLevel(logging.WARNING)  # its own per-file debug chatter
    try:
        COMMANDS[args.command](args)
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.exception("internal error")
        print(
            f"internal error: {type(exc).__name__}: {exc} (a bug in fmstack-edge; please report it)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
