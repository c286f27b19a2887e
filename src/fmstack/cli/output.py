"""How commands speak: Rich for people, JSON for scripts, errors on stderr. Shared by every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from fmstack.hub.entities import to_jsonable

# Output that goes to a file or another program is not cut to a terminal's width: Rich would wrap it at
# 80 columns and cut table cells (refs in `runs ls`) with an ellipsis.
PIPE_WIDTH = 10_000


def _console(stderr: bool = False) -> Console:
    on_screen = Console(stderr=stderr)
    return on_screen if on_screen.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH)


console = _console()
err_console = _console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]


def emit(data: Any, json_output: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON when asked, else call ``human`` to render it for a person."""
    if json_output:
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, default=str) + "\n")
    else:
        human()


def markdown(text: str) -> Markdown | Text:
    """Markdown rendered for a terminal; the text itself for a file or a pipe (``> card.md`` keeps it)."""
    return Markdown(text) if console.is_terminal else Text(text)


def rule(title: str) -> None:
    """A titled separator line, as wide as the terminal (or a short one in a file)."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(Text(f"--- {title} ---"))


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


@contextmanager
def byte_progress(description: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A transfer bar (size, speed, ETA) on stderr; a no-op for --json or when stderr is not a terminal."""
    if not enabled or not err_console.is_terminal:
        yield lambda _n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
