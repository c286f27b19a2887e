"""``fmstack loop run LOOP.yaml``: thin over ``fmstack.monitor.loop``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from fmstack.cli.output import JsonFlag, console, emit, err_console
from fmstack.cli.remote import open_hub

if TYPE_CHECKING:
    from fmstack.monitor.loop import Outcome

app = typer.Typer(no_args_is_help=True, help="The retrain-and-promote loop: trigger, train, gate, promote.")


@app.command("run")
def run(
    spec_file: Annotated[Path, typer.Argument(help="The loop spec (YAML); see docs/monitor.md.")],
    once: Annotated[
        bool, typer.Option("--once", help="Check the trigger once, act on it, and exit.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the trigger and say what would run; change nothing.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Retrain on feedback when a trigger fires, gate the candidate against production, move the alias.

    Watches a served model's feedback and drift; when the trigger fires, exports the feedback, trains a
    candidate on the old data plus the feedback (the spec's train section is a training spec), compresses
    it, gates it against production on a fixed held-out set and on held-out feedback, and moves the
    alias. Servers that follow the alias swap on their own. Every step is a recorded run; a failed
    gate leaves production as it was and exits 1 naming why (in daemon mode it waits for new feedback).

    Without --once or --dry-run it runs as a daemon, checking every poll_s seconds, until SIGTERM/Ctrl+C.

    Example: fmstack loop run loop.yaml --once
    """
    from fmstack.monitor.logs import log_root
    from fmstack.monitor.loop import run_daemon, run_once
    from fmstack.monitor.loop_spec import parse_loop
    from fmstack.specfile import read_spec_file

    spec = parse_loop(read_spec_file(spec_file, "loop spec"))
    with open_hub() as hub:
        root = log_root(hub.settings, spec.log_dir)
        if once or dry_run:
            outcome = run_once(hub, spec, root, dry_run=dry_run, say=_say)
            emit(_as_dict(outcome), json_output, lambda: _show(outcome))
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
        try:
            err_console.print(f"watching {spec.model} every {spec.poll_s:g} s (Ctrl+C or SIGTERM to stop)")
            run_daemon(hub, spec, root, stop, say=_say)
        except KeyboardInterrupt:
            stop.set()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _say(message: str) -> None:
    err_console.print(Text(message))


def _as_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "production": outcome.production,
        "trigger": {
            "fired": outcome.trigger.fired,
            "reasons": outcome.trigger.reasons,
            **outcome.trigger.figures,
        },
        "candidate": outcome.candidate,
        "promoted": outcome.promoted,
        "gate": outcome.verdict.figures if outcome.verdict else None,
        "runs": outcome.runs,
        "seconds": outcome.seconds,
    }


def _show(outcome: Outcome) -> None:
    reasons = "; ".join(outcome.trigger.reasons)
    if outcome.status == "waiting":
        console.print(Text(f"not triggered ({outcome.production}): {reasons}"))
    elif outcome.status == "planned":
        console.print(
            Text(
                f"triggered ({reasons}): would export, merge, train, gate and promote; --dry-run: nothing done"
            )
        )
    else:
        console.print(Text(f"promoted {outcome.promoted} (was {outcome.production}) after {reasons}"))
        if outcome.verdict:
            console.print(Text(", ".join(f"{k} {v:.4f}" for k, v in outcome.verdict.figures.items())))
        total = outcome.seconds.get("trigger_to_promotion")
        if total is not None:
            console.print(f"trigger to promotion: {total:.1f} s")
