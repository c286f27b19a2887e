"""``fmstack hub ...``: the hub's commands, thin over ``fmstack.hub``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from fmstack.cli.output import JsonFlag, byte_progress, console, emit, human_size, markdown, rule
from fmstack.cli.remote import open_hub
from fmstack.errors import NotFound
from fmstack.hub import Hub, HubApi, Kind, LineageNode, VersionInfo
from fmstack.hub import lineage as lineage_mod
from fmstack.hub.cards import parse_card
from fmstack.hub.importers import import_builtin, import_hf
from fmstack.hub.maintenance import fsck, gc
from fmstack.hub.manifest import collect_files
from fmstack.hub.refs import parse_repo
from fmstack.hub.scratch import Leftover
from fmstack.textfile import read_user_text

app = typer.Typer(no_args_is_help=True)

RefArg = Annotated[
    str, typer.Argument(help="NAMESPACE/NAME (latest), NAMESPACE/NAME:VERSION or NAMESPACE/NAME@ALIAS.")
]
RepoArg = Annotated[str, typer.Argument(help="NAMESPACE/NAME, e.g. acme/intent-classifier.")]


def _show_version(v: VersionInfo, verb: str) -> None:
    console.print(
        f"{verb} [bold]{v.ref}[/] ({v.kind}, {v.file_count} files, {human_size(v.total_size)}, digest {v.digest[:12]})"
    )


@app.command()
def push(
    repo: RepoArg,
    path: Annotated[Path, typer.Argument(help="A folder or a single file to store as the new version.")],
    kind: Annotated[Kind, typer.Option("--kind", "-k", help="What the repo holds.")],
    message: Annotated[str, typer.Option("--message", "-m", help="A note kept with the version.")] = "",
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="Point this alias at the new version.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Store a folder or file as a new immutable version. Identical content returns the latest version."""
    total = sum(p.stat().st_size for _, p in collect_files(path))
    with open_hub() as hub, byte_progress(f"push {repo}", total, not json_output) as advance:
        latest = _latest_number(hub, repo)
        version = hub.push(repo, path, kind, message=message, alias=alias, progress=advance)
    verb = "unchanged, already" if version.number == latest else "stored"
    emit(version, json_output, lambda: _show_version(version, verb))


def _latest_number(hub: HubApi, repo: str) -> int | None:
    try:
        return hub.resolve(parse_repo(repo).repo).number
    except NotFound:
        return None


@app.command()
def pull(
    ref: RefArg,
    dest: Annotated[Path, typer.Argument(help="Folder to write the files into (created if missing).")],
    json_output: JsonFlag = False,
) -> None:
    """Write a version's files into DEST, verifying every hash."""
    with open_hub() as hub:
        total = hub.resolve(ref).total_size
        with byte_progress(f"pull {ref}", total, not json_output) as advance:
            version = hub.pull(ref, dest, progress=advance)
    emit(
        {"version": version, "dest": str(dest)},
        json_output,
        lambda: _show_version(version, f"pulled into {dest}:"),
    )


@app.command("ls")
def list_repos(
    kind: Annotated[Kind | None, typer.Option("--kind", "-k", help="Only repos of this kind.")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List repos with their latest version and aliases."""
    with open_hub() as hub:
        repos = hub.ls(kind=kind, namespace=namespace)

    def human() -> None:
        if not repos and (kind or namespace):
            console.print("no repos match")
            return
        if not repos:
            console.print("no repos yet: `fmstack hub import-builtin` or `fmstack hub push` adds one")
            return
        table = Table("repo", "kind", "versions", "latest", "aliases", box=None)
        for r in repos:
            aliases = ", ".join(f"{a}→{n}" for a, n in r.aliases.items())
            table.add_row(r.repo, r.kind, str(r.versions), str(r.latest or "-"), aliases)
        console.print(table)

    emit(repos, json_output, human)


@app.command()
def info(ref: RefArg, json_output: JsonFlag = False) -> None:
    """Show a version: files, sizes, aliases, lineage summary and card."""
    with open_hub() as hub:
        detail = hub.info(ref)

    def human() -> None:
        v = detail.version
        console.print(f"[bold]{v.ref}[/]  {v.kind}  {human_size(v.total_size)}  digest {v.digest}")
        console.print(
            f"created {v.created_at:%Y-%m-%d %H:%M} by {v.creator}" + (f": {v.message}" if v.message else "")
        )
        if detail.aliases:
            console.print("aliases: " + ", ".join(detail.aliases))
        if detail.produced_by is not None:
            console.print(
                f"produced by run {detail.produced_by} from {', '.join(detail.inputs) or 'nothing recorded'}"
            )
        if detail.used_by:
            console.print("used by: " + ", ".join(detail.used_by))
        table = Table("file", "size", "sha256", box=None)
        for f in detail.files:
            table.add_row(Text(f.path), human_size(f.size), f.sha256[:12])  # a path, never markup
        console.print(table)
        if detail.card:
            _print_card(detail.card)

    emit(detail, json_output, human)


@app.command()
def tag(
    ref: RefArg,
    alias: Annotated[str, typer.Argument(help="Alias to set, e.g. production.")],
    json_output: JsonFlag = False,
) -> None:
    """Point ALIAS at the version REF names (the move is kept in an audit log)."""
    with open_hub() as hub:
        version = hub.tag(ref, alias)
    emit(version, json_output, lambda: console.print(f"{version.repo}@{alias} → {version.number}"))


@app.command()
def untag(
    repo: RepoArg,
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
    json_output: JsonFlag = False,
) -> None:
    """Remove ALIAS from a repo (logged)."""
    with open_hub() as hub:
        hub.untag(repo, alias)
    emit(
        {"repo": repo, "alias": alias, "removed": True},
        json_output,
        lambda: console.print(f"removed {repo}@{alias}"),
    )


@app.command()
def history(repo: RepoArg, json_output: JsonFlag = False) -> None:
    """Show every alias move of a repo: old, new, when, who."""
    with open_hub() as hub:
        events = hub.alias_history(repo)

    def human() -> None:
        table = Table("when", "alias", "from", "to", "who", box=None)
        for e in events:
            table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.alias, str(e.old or "-"), str(e.new or "-"), e.who)
        console.print(table)

    emit(events, json_output, human)


def _print_card(text: str) -> None:
    meta, body = parse_card(text)
    rule("card")
    for key, value in meta.model_dump(exclude_defaults=True).items():
        console.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)
    console.print(markdown(body))


def _tree(node: LineageNode, tree: Tree) -> None:
    label = (
        f"{node.ref} [dim]({node.kind}"
        + (f", {node.run_kind} run {node.run_id}" if node.run_id else "")
        + ")[/]"
    )
    _tree_children(node.parents, tree.add(label))


def _tree_children(children: list[LineageNode], tree: Tree) -> None:
    for child in children:
        _tree(child, tree)


@app.command()
def lineage(ref: RefArg, json_output: JsonFlag = False) -> None:
    """Show what a version was made from (upstream) and what was made from it (downstream)."""
    with open_hub() as hub:
        result = hub.lineage(ref)

    def human() -> None:
        up = Tree(f"[bold]{result.ref}[/] made from")
        _tree_children(result.upstream.parents, up)
        console.print(up if result.upstream.parents else f"{result.ref}: no recorded inputs")
        down = Tree(f"[bold]{result.ref}[/] used to make")
        _tree_children(result.downstream, down)
        console.print(down if result.downstream else f"{result.ref}: nothing made from it yet")

    emit(lineage_mod.graph(result), json_output, human)


@app.command()
def rm(
    ref: Annotated[
        str,
        typer.Argument(
            help="NAMESPACE/NAME:VERSION or @ALIAS for one version; NAMESPACE/NAME for the whole repo."
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Remove even if aliases or downstream versions depend on it.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Remove a version or a repo. Its blobs stay until `fmstack hub gc`."""
    with open_hub() as hub:
        removed = hub.rm(ref, force=force)
    emit(removed, json_output, lambda: console.print("removed " + ", ".join(v.ref for v in removed)))


@app.command()
def card(
    ref: RefArg,
    edit: Annotated[
        Path | None, typer.Option("--edit", help="Replace the card with this Markdown file.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Show a version's card, or replace it with --edit FILE (front matter is validated)."""
    with open_hub() as hub:
        if edit is not None:
            hub.set_card(ref, read_user_text(edit, "card file"))
        text = hub.card(ref)
    emit(
        {"ref": ref, "card": text},
        json_output,
        lambda: _print_card(text) if text else console.print("(no card)"),
    )


@app.command("fsck")
def fsck_cmd(
    quick: Annotated[
        bool, typer.Option("--quick", help="Check presence only; skip re-hashing blobs.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Check the store: missing, corrupt and orphan blobs, incomplete versions. Exit 1 on problems
    other than orphans (which `fmstack hub gc` removes)."""
    with Hub.open() as hub:
        report = fsck(hub, verify=not quick)

    def human() -> None:
        console.print(f"checked {report.checked_versions} versions, {report.checked_blobs} blobs")
        for label, items in (
            ("missing", report.missing),
            ("corrupt", report.corrupt),
            ("incomplete", report.incomplete),
        ):
            for item in items:
                console.print(f"[red]{label}[/] {escape(item)}")
        if report.orphans:
            console.print(
                f"{len(report.orphans)} orphan blobs ({human_size(report.orphan_bytes)}): `fmstack hub gc` removes them"
            )
        _print_leftovers(report.leftovers)
        if any(not (left.live or left.keep) for left in report.leftovers):
            console.print("`fmstack hub gc` removes the leftovers whose process is gone")
        if report.ok:
            console.print("[green]ok[/]")

    emit({**report.__dict__, "ok": report.ok}, json_output, human)
    if not report.ok:
        raise typer.Exit(1)


@app.command("gc")
def gc_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Remove blobs that no version references (left by removed versions or interrupted pushes)."""
    with Hub.open() as hub:
        result = gc(hub, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"

    def human() -> None:
        _print_leftovers(result.leftovers)
        left = len(result.leftovers)
        console.print(
            f"{verb} {len(result.removed)} blobs, {human_size(result.bytes_freed)}"
            + (
                f", and {left} leftover(s) of killed work, {human_size(result.leftover_bytes)}"
                if left
                else ""
            )
        )

    emit(result, json_output, human)


def _print_leftovers(leftovers: list[Leftover]) -> None:
    for left in leftovers:
        note = ", its process is still running" if left.live else f", kept: {left.keep}" if left.keep else ""
        console.print(Text(f"leftover {left.what} {left.path} ({human_size(left.size)}{note})"))


@app.command("import-hf")
def import_hf_cmd(
    folder: Annotated[
        Path, typer.Argument(help="A Hugging Face model folder: config.json, *.safetensors, tokenizer files.")
    ],
    repo: RepoArg,
    convert: Annotated[
        bool,
        typer.Option("--convert", help="Load pickle weights with weights_only=True and store safetensors."),
    ] = False,
    message: Annotated[str, typer.Option("--message", "-m", help="A note kept with the version.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Import a Hugging Face model folder as a model version with a card derived from its config."""
    with Hub.open() as hub:
        version = import_hf(hub, folder, repo, convert=convert, message=message)
    emit(version, json_output, lambda: _show_version(version, "imported"))


@app.command("import-builtin")
def import_builtin_cmd(json_output: JsonFlag = False) -> None:
    """Register fmstack/minilm-l6 (all-MiniLM-L6-v2) from its installed package; no network."""
    with Hub.open() as hub:
        version = import_builtin(hub)
    emit(version, json_output, lambda: _show_version(version, "built-in model is"))
