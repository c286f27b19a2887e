"""``fmstack demo``: the main job. Until the rest of the lifecycle lands, it runs the part that exists:
import the built-in base model into the hub and show it."""

from __future__ import annotations

from fmstack.cli.output import JsonFlag, console, emit, human_size
from fmstack.hub import Hub
from fmstack.hub.importers import import_builtin


def demo(json_output: JsonFlag = False) -> None:
    """Run the fmstack lifecycle end to end on this machine and show what it made."""
    with Hub.open() as hub:
        version = import_builtin(hub)
        detail = hub.info(version.ref)
        repos = hub.ls()

    def human() -> None:
        console.rule("fmstack demo")
        console.print(f"hub at {hub.settings.home}")
        console.print(
            f"base model [bold]{version.ref}[/]: {version.file_count} files, {human_size(version.total_size)}, "
            f"digest {version.digest[:12]}"
        )
        for f in detail.files:
            console.print(f"  {f.path:<40} {human_size(f.size):>10}")
        console.print(
            f"{len(repos)} repo(s) in the hub. Next: `fmstack hub info {version.ref}`, `fmstack hub --help`"
        )

    emit({"base_model": detail, "repos": repos}, json_output, human)
