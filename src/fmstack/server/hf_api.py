"""The Hugging Face-compatible read API: with ``HF_ENDPOINT`` pointed at a hub server, users' own
tools (``huggingface_hub``, ``transformers``, ``sentence_transformers``, ``peft``, ``datasets``)
download hub versions unmodified.

Routes, as the clients call them (``{type}`` is ``models`` (model and adapter repos) or ``datasets``):

  GET       /api/{type}/{ns}/{name}[/revision/{rev}]      repo info: id, sha, siblings, dates in Z
  GET       /api/{type}/{ns}/{name}/tree/{rev}[/{path}]   listing, paged by a ``Link`` header
  HEAD|GET  /{ns}/{name}/resolve/{rev}/{path}             a model's file, ``Range`` -> 206
  HEAD|GET  /datasets/{ns}/{name}/resolve/{rev}/{path}    a dataset's file

Errors carry the ``X-Error-Code`` the clients branch on (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``, the last with ``X-Repo-Commit`` so that transformers caches "this optional file is
absent"). Access is the server's (``access.require_read``): a private repo without access answers
exactly as a missing one. Revisions are mapped to versions in ``hf_revisions``, listings built in
``hf_tree``, bytes streamed in ``hf_files``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response, StreamingResponse

from fmstack.errors import FmstackError, IntegrityError, InvalidInput, NotFound, Unauthorized, clip
from fmstack.hub import Hub
from fmstack.hub.entities import FileInfo, Kind, VersionDetail
from fmstack.server.access import Principal, principal, require_read
from fmstack.server.hf_files import RangeNotSatisfiable, parse_range, stream
from fmstack.server.hf_revisions import (
    LATEST,
    EntryNotFound,
    RevisionNotFound,
    by_sha,
    check_revision,
    commit_sha,
    hub_refs,
    is_sha,
    revision_not_found,
)
from fmstack.server.hf_tree import PAGE_SIZE, Commit, file_entry, find_file, hub_date, page, tree_entries
from fmstack.server.http_errors import error_response
from fmstack.server.paths import file_path, repo_of
from fmstack.server.visibility import repo_not_found, repo_visibility

RepoType = Literal["models", "datasets"]
KINDS_OF: dict[RepoType, tuple[Kind, ...]] = {"models": ("model", "adapter"), "datasets": ("dataset",)}
EXPAND_PAGE_SIZE = 50  # the Hub's page size when each entry carries its last commit


class HfRoute(APIRoute):
    """Errors of these routes answered the way Hugging Face clients read them: the server's usual
    status and JSON body, plus ``X-Error-Code`` / ``X-Error-Message`` (and ``X-Repo-Commit`` on a
    missing file). Dependencies (the token check) run inside the handler, so their errors are too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except FmstackError as exc:
                return hf_error(exc, sent_token="authorization" in request.headers)

        return answer


def hf_error(exc: FmstackError, *, sent_token: bool) -> Response:
    response = error_response(exc)
    code = _error_code(exc)
    if code is not None:
        response.headers["X-Error-Code"] = code
    if isinstance(exc, Unauthorized) and sent_token:
        # The phrase huggingface_hub turns into "invalid token" instead of "repository not found";
        # without a token (a server with no anonymous reads) the client's not-found, which tells
        # the user to log in, is the right one.
        response.headers["X-Error-Message"] = "Invalid credentials in Authorization header"
    else:
        response.headers["X-Error-Message"] = _header_safe(str(exc))
    if isinstance(exc, EntryNotFound):
        response.headers["X-Repo-Commit"] = exc.commit
    return response


def _error_code(exc: FmstackError) -> str | None:
    if isinstance(exc, EntryNotFound):
        return "EntryNotFound"
    if isinstance(exc, RevisionNotFound):
        return "RevisionNotFound"
    if isinstance(exc, NotFound):
        return "RepoNotFound"
    return None


def _header_safe(text: str) -> str:
    """A message fit for a header value: one line of printable latin-1, clipped (a control character
    from user input would make the HTTP layer refuse the whole response)."""
    flat = " ".join(clip(text, 300).split())
    printable = "".join(c if c.isprintable() else "?" for c in flat)
    return printable.encode("latin-1", "replace").decode("latin-1")


router = APIRouter(route_class=HfRoute, tags=["huggingface"])
Caller = Annotated[Principal, Depends(principal)]
Limit = Annotated[int | None, Query(ge=1, le=PAGE_SIZE, description="Entries per page (default: the Hub's).")]


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


# -- resolving ---------------------------------------------------------------------------------------


def readable_repo(hub: Hub, caller: Principal, namespace: str, name: str) -> str:
    """``ns/name`` once the caller may read it; else the same not-found as a missing repo."""
    repo = repo_of(namespace, name)
    require_read(hub, caller, repo)
    return repo


def resolve_version(hub: Hub, repo: str, repo_type: RepoType, revision: str) -> VersionDetail:
    """The version ``revision`` names in ``repo`` (see ``hf_revisions``), with its files. One lookup
    for a number or an alias; the list of versions only for a sha or when nothing matched."""
    check_revision(revision)
    detail = _sha_version(hub, repo, revision) if is_sha(revision) else None
    if detail is None:
        detail = _first_found(hub, hub_refs(repo, revision))
    if detail is None:
        versions = hub.versions(repo)
        _check_type(repo, repo_type, versions[0].kind if versions else None)
        raise revision_not_found(repo, revision, versions)
    _check_type(repo, repo_type, detail.version.kind)
    return detail


def _first_found(hub: Hub, refs: list[str]) -> VersionDetail | None:
    for ref in refs:
        try:
            return hub.info(ref)
        except (NotFound, InvalidInput):  # no such version or alias, or not a ref's spelling
            continue
    return None


def _sha_version(hub: Hub, repo: str, sha: str) -> VersionDetail | None:
    version = by_sha(hub.versions(repo), sha)
    try:
        return hub.info(version.ref) if version is not None else None
    except NotFound:  # removed since
        return None


def _check_type(repo: str, repo_type: RepoType, kind: Kind | None) -> None:
    """A dataset asked for as a model (or the reverse) is not there, as on the Hub."""
    if kind is not None and kind not in KINDS_OF[repo_type]:
        raise repo_not_found(repo)


def _commit(detail: VersionDetail) -> Commit:
    version = detail.version
    title = version.message or f"version {version.number}"
    return Commit(commit_sha(version), title, hub_date(version.created_at))


# -- repo info ---------------------------------------------------------------------------------------


def repo_info(hub: Hub, repo: str, detail: VersionDetail) -> dict[str, Any]:
    """The repo at one version, in the shape of the Hub's ``/api/models/{repo}`` answer."""
    version = detail.version
    namespace = repo.split("/")[0]
    return {
        "_id": commit_sha(version)[:24],
        "id": repo,
        "modelId": repo,
        "author": namespace,
        "sha": commit_sha(version),
        "lastModified": hub_date(version.created_at),
        "createdAt": hub_date(version.created_at),
        "private": repo_visibility(hub, repo) != "public",
        "disabled": False,
        "gated": False,
        "downloads": 0,
        "likes": 0,
        "tags": [version.kind, f"fmstack-version:{version.number}", *(f"alias:{a}" for a in detail.aliases)],
        "library_name": library_of(detail.files),
        "usedStorage": version.total_size,
        "siblings": [_sibling(f) for f in detail.files],
        "cardData": {},
    }


def _sibling(file: FileInfo) -> dict[str, Any]:
    entry = file_entry(file, None)
    return {"rfilename": file.path, "size": file.size, "blobId": entry["oid"], "lfs": _lfs(entry)}


def _lfs(entry: dict[str, Any]) -> dict[str, Any]:
    lfs: dict[str, Any] = entry["lfs"]
    return {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}


def library_of(files: Sequence[FileInfo]) -> str | None:
    """The library that loads the version, from its files (what the Hub's ``library_name`` says)."""
    names = {f.path for f in files}
    if "adapter_config.json" in names:
        return "peft"
    if "modules.json" in names:
        return "sentence-transformers"
    if "config.json" in names:
        return "transformers"
    return None


def info(request: Request, caller: Principal, repo_type: RepoType, ns: str, name: str, rev: str) -> Any:
    hub = _hub(request)
    repo = readable_repo(hub, caller, ns, name)
    return repo_info(hub, repo, resolve_version(hub, repo, repo_type, rev))


def tree(
    request: Request,
    caller: Principal,
    repo_type: RepoType,
    where: tuple[str, str, str, str],
    recursive: bool,
    expand: bool,
    cursor: str | None,
    limit: int | None,
) -> Response:
    """One page of the listing under ``path`` (``where`` = namespace, name, revision, path)."""
    namespace, name, revision, path = where
    hub = _hub(request)
    repo = readable_repo(hub, caller, namespace, name)
    detail = resolve_version(hub, repo, repo_type, revision)
    folder = file_path(path) if path else ""
    commit = _commit(detail)
    entries = tree_entries(detail.files, folder, recursive=recursive, commit=commit if expand else None)
    if entries is None:
        raise EntryNotFound(f"{detail.version.ref} has no folder {clip(folder)!r}", commit.sha)
    size = limit or (EXPAND_PAGE_SIZE if expand else PAGE_SIZE)
    entries, next_cursor = page(entries, cursor, size)
    headers = {"X-Repo-Commit": commit.sha}
    if next_cursor is not None:
        headers["Link"] = f'<{request.url.include_query_params(cursor=str(next_cursor))}>; rel="next"'
    return JSONResponse(entries, headers=headers)


def _api_routes(repo_type: RepoType) -> None:
    """The ``/api/{repo_type}/...`` routes; spelled out per type so that no other ``/api/...`` path of
    the server can fall into them."""
    base = f"/api/{repo_type}/{{namespace}}/{{name}}"

    @router.get(base, name=f"hf_{repo_type}_info")
    def info_latest(request: Request, caller: Caller, namespace: str, name: str) -> Any:
        return info(request, caller, repo_type, namespace, name, LATEST)

    @router.get(f"{base}/revision/{{revision}}", name=f"hf_{repo_type}_info_at")
    def info_at(request: Request, caller: Caller, namespace: str, name: str, revision: str) -> Any:
        return info(request, caller, repo_type, namespace, name, revision)

    @router.get(f"{base}/tree/{{revision}}", name=f"hf_{repo_type}_tree")
    def tree_root(
        request: Request,
        caller: Caller,
        namespace: str,
        name: str,
        revision: str,
        recursive: bool = False,
        expand: bool = False,
        cursor: str | None = None,
        limit: Limit = None,
    ) -> Response:
        where = (namespace, name, revision, "")
        return tree(request, caller, repo_type, where, recursive, expand, cursor, limit)

    @router.get(f"{base}/tree/{{revision}}/{{path:path}}", name=f"hf_{repo_type}_tree_path")
    def tree_path(
        request: Request,
        caller: Caller,
        namespace: str,
        name: str,
        revision: str,
        path: str,
        recursive: bool = False,
        expand: bool = False,
        cursor: str | None = None,
        limit: Limit = None,
    ) -> Response:
        where = (namespace, name, revision, path)
        return tree(request, caller, repo_type, where, recursive, expand, cursor, limit)


_api_routes("models")
_api_routes("datasets")


# -- files ---------------------------------------------------------------------------------------------


def _file(
    request: Request, caller: Principal, repo_type: RepoType, ns: str, name: str, rev: str, path: str
) -> Response:
    hub = _hub(request)
    repo = readable_repo(hub, caller, ns, name)
    detail = resolve_version(hub, repo, repo_type, rev)
    sha = commit_sha(detail.version)
    file = find_file(detail.files, file_path(path))
    if file is None:
        raise EntryNotFound(f"{detail.version.ref} has no file {clip(path)!r}", sha)
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{file.sha256}"',
        "X-Linked-Etag": f'"{file.sha256}"',
        "X-Linked-Size": str(file.size),
        "Accept-Ranges": "bytes",
    }
    try:
        span = parse_range(request.headers.get("range"), file.size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{file.size}"
        return Response(status_code=416, headers=headers)
    status = 200 if span is None else 206
    headers["Content-Length"] = str(file.size if span is None else span.length)
    if span is not None:
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{file.size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    label = f"{detail.version.ref} {file.path}"
    try:
        reader = hub.blobs.open(file.sha256, label)
    except NotFound as exc:  # the manifest names a blob the store lost: the hub's damage, not the caller's
        raise IntegrityError(str(exc)) from None
    body = stream(reader, file.sha256, span, label)
    return StreamingResponse(body, status_code=status, headers=headers, media_type="application/octet-stream")


@router.api_route("/datasets/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
def resolve_dataset_file(
    request: Request, caller: Caller, namespace: str, name: str, revision: str, path: str
) -> Response:
    return _file(request, caller, "datasets", namespace, name, revision, path)


@router.api_route("/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
def resolve_model_file(
    request: Request, caller: Caller, namespace: str, name: str, revision: str, path: str
) -> Response:
    return _file(request, caller, "models", namespace, name, revision, path)
