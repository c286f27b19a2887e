"""Real processes pushing to one repo at once, on SQLite and PostgreSQL: all succeed with distinct
versions and the store stays consistent."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from fmstack.hub import Hub
from fmstack.hub.maintenance import fsck
from fmstack.settings import Settings
from tests.hub.folders import make_folder

WRITERS = 4


def _push(settings: Settings, folder: Path, barrier: mp.synchronize.Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    barrier.wait(timeout=60)  # open the hub (and race on creating its schema) all at once
    with Hub(settings) as hub:
        out.put((folder.name, hub.push("acme/shared", folder, "model", alias=f"by-{folder.name}").number))


def test_concurrent_pushes_get_distinct_versions(backend_settings: Settings, tmp_path: Path) -> None:
    folders = [
        make_folder(tmp_path / f"w{i}", {"weights.bin": f"writer {i}" * 1000, "n": str(i)})
        for i in range(WRITERS)
    ]
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_push, args=(backend_settings, f, barrier, out)) for f in folders]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    results = dict(out.get(timeout=5) for _ in range(WRITERS))
    assert sorted(results.values()) == list(range(1, WRITERS + 1))
    with Hub(backend_settings) as hub:
        for name, number in results.items():
            assert hub.resolve(f"acme/shared@by-{name}").number == number
            assert hub.read_file(f"acme/shared:{number}", "n").decode() == name.removeprefix("w")
        report = fsck(hub)
        assert report.ok and not report.orphans
