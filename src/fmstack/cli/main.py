"""The ``fmstack`` command. Each group lives in its own module (``fmstack hub`` -> ``cli/hub.py``).

Errors are mapped here, once: an ``FmstackError`` or a usage error is the user's to fix (one message
on stderr, exit 1); anything else is a bug (exit 2; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from typing import Annotated

import typer
from rich.markup import escape

from fmstack import __version__
from fmstack.cli.output import err_console
from fmstack.errors import FmstackError, Unsupported, clip
from fmstack.settings import Settings

# The most characters of one error message: messages clip each piece of user input they quote, and this
# catches any that does not (a 50 MB line must not flood the terminal).
MESSAGE_CHARS = 5000

# name -> (module, help). One line per command group; the module defines ``app`` (a Typer).
GROUPS: dict[str, tuple[str, str]] = {
    "hub": ("fmstack.cli.hub", "Versioned models, datasets and adapters: push, pull, tag, lineage, fsck."),
    "data": (
        "fmstack.cli.data",
        "Datasets: ingest raw files, process them with a spec (local or Ray), show, head.",
    ),
    "train": (
        "fmstack.cli.train",
        "Fine-tune (probe, full, LoRA, IA3, adapters, prefix, SetFit few-shot), add a class from a few "
        "examples (add-class), and pretrain (MLM, CLM).",
    ),
    "runs": ("fmstack.cli.runs", "Runs that produced versions: ls, show (spec, metrics, environment), logs."),
    "monitor": (
        "fmstack.cli.monitor",
        "What served versions did: reports with drift scores and plots; feedback exported as datasets.",
    ),
    "loop": ("fmstack.cli.loop", "Retrain on feedback, gate against production, move the alias: run."),
    "edge": (
        "fmstack.cli.edge",
        "Devices: signing keys, publish ONNX versions to channels (TUF), the fleet, rollback.",
    ),
    "recipe": (
        "fmstack.cli.recipe",
        "Application recipes end to end on your data: intents (with human fallback), sentiment, search.",
    ),
    "fed": (
        "fmstack.cli.fed",
        "Federated fine-tuning: start a federation, client tokens, join with local data, status, simulate.",
    ),
    "server": (
        "fmstack.cli.server",
        "The hub server: start, create-admin, users, orgs, members, tokens, audit log.",
    ),
}
# name -> (module, function name, help). Top-level commands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "fmstack.cli.demo",
        "demo",
        "Run the whole lifecycle on this machine and show it (the main job).",
    ),
    "eval": ("fmstack.cli.eval", "evaluate", "Metrics of a model or adapter version on a dataset split."),
    "generate": ("fmstack.cli.generate", "generate", "Sample text from a causal language model version."),
    "compress": (
        "fmstack.cli.compress",
        "compress",
        "Merge, export to ONNX, quantise and prune, gated on accuracy.",
    ),
    "serve": (
        "fmstack.cli.serve",
        "serve",
        "Serve versions over HTTP: OpenAI embeddings, classify, KServe v2.",
    ),
    "login": ("fmstack.cli.remote", "login", "Use a hub server: check a token and store it (mode 0600)."),
    "logout": ("fmstack.cli.remote", "logout", "Forget the stored hub server and token."),
    "whoami": ("fmstack.cli.remote", "whoami", "Who the hub server takes this machine's token for."),
}

# Commands that work on a remote hub (FMSTACK_HUB_URL or --hub): they open it with
# ``cli.remote.open_hub()`` and call the same ``HubApi`` as on the local hub. Any other command (the
# demo, and these `hub` maintenance commands) works on the local hub only, and refuses to run while a
# remote hub is selected rather than quietly using the local one.
REMOTE_READY = frozenset(
    {
        "hub",
        "runs",
        "login",
        "logout",
        "whoami",
        "server",
        "data",
        "train",
        "compress",
        "eval",
        "generate",
        "serve",
        "monitor",
        "loop",
        "edge",
        "fed",
    }
)
LOCAL_ONLY_HUB = frozenset({"fsck", "gc", "import-hf", "import-builtin"})

app = typer.Typer(
    name="fmstack",
    help="fmstack: share, train, compress and serve foundation models on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
_debug = False
_argv: list[str] = []  # this invocation's arguments, for the root callback


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fmstack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    hub_url: Annotated[
        str | None,
        typer.Option(
            "--hub", metavar="URL", help="Use this hub server instead of the local hub (FMSTACK_HUB_URL)."
        ),
    ] = None,
) -> None:
    global _debug
    _debug = debug
    if hub_url is not None:  # Settings.from_env() is the one reader of the environment
        os.environ["FMSTACK_HUB_URL"] = hub_url
    _refuse_local_only(_argv)


def _register(argv: list[str]) -> None:
    """Import only the module of the command being run: the others pull in torch, transformers and
    friends, which would make every command (and ``--help``) take seconds to start. The overview
    lists every command from the tables above without importing anything."""
    wanted = _command_name(argv)
    for name, (module, help_text) in GROUPS.items():
        group = importlib.import_module(module).app if name == wanted else typer.Typer()
        app.add_typer(group, name=name, help=help_text)
    for name, (module, func, help_text) in COMMANDS.items():
        if name == wanted:
            app.command(name)(getattr(importlib.import_module(module), func))
        else:
            app.command(name, help=help_text)(_placeholder)


def _command_words(argv: list[str]) -> list[str]:
    """The words that are not options or the root's option values (``--hub URL hub ls`` -> hub, ls)."""
    found, words = [], iter(argv)
    for word in words:
        if word == "--hub":
            next(words, None)
        elif not word.startswith("-"):
            found.append(word)
    return found


def _command_name(argv: list[str]) -> str | None:
    words = _command_words(argv)
    return words[0] if words else None


def _refuse_local_only(argv: list[str]) -> None:
    url = Settings.from_env().hub_url
    words = _command_words(argv)
    if url is None or not words or "--help" in argv:
        return
    local_only = words[0] not in REMOTE_READY or (
        words[0] == "hub" and words[1:2] and words[1] in LOCAL_ONLY_HUB
    )
    if local_only:
        command = " ".join(words[:2] if words[0] == "hub" else words[:1])
        raise Unsupported(
            f"`fmstack {command}` works on the local hub only, and a remote hub is selected ({url}, from "
            "FMSTACK_HUB_URL or --hub): unset FMSTACK_HUB_URL (or drop --hub) to run it here, then "
            "`fmstack --hub URL hub push` what it made"
        )


def _placeholder() -> None:  # stands in for a command that is not being run, in the overview only
    raise AssertionError("unreachable: the real command is registered when it is run")


def main(argv: list[str] | None = None) -> int:
    # Libraries' deprecation notices and exporter chatter are for developers, not for people running commands; --debug
    # brings them back.
    if "--debug" not in (sys.argv if argv is None else argv):
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
    argv = sys.argv[1:] if argv is None else argv
    global _argv
    _argv = argv
    _register(argv)
    # --hub selects the server through FMSTACK_HUB_URL for this invocation only: a caller that runs
    # several commands in one process (tests, scripts calling main()) must not inherit it.
    selected = os.environ.get("FMSTACK_HUB_URL")
    try:
        return _run(argv)
    finally:
        if selected is None:
            os.environ.pop("FMSTACK_HUB_URL", None)
        else:
            os.environ["FMSTACK_HUB_URL"] = selected


def _run(argv: list[str]) -> int:
    try:
        # With standalone_mode=False, a command's `raise typer.Exit(n)` comes back as the return value.
        code = app(args=argv, prog_name="fmstack", standalone_mode=False)
    except FmstackError as exc:
        # Messages quote user input (paths, refs, texts) and hints like pip install 'fmstack[s3]': never markup.
        message = escape(clip(exc, MESSAGE_CHARS))
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors: bad option, missing argument, bad value
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was shown on purpose
            exc.show()  # type: ignore[attr-defined]
            return 0
        exc.show()  # type: ignore[attr-defined]
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # a bug: report it as one, not as the user's fault
        if _debug:
            err_console.print_exception()
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(clip(exc, MESSAGE_CHARS))}\n"
            "This is a bug in fmstack; re-run with --debug for the traceback and report it.",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    if code == 130:  # Typer turns a Ctrl-C inside a command into exit code 130, silently
        err_console.print("interrupted")
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
