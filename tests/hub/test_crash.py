"""A push killed with SIGKILL at any point leaves no visible partial version; fsck then reports at most
orphan blobs, and gc removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmstack.hub import Hub
from fmstack.hub.maintenance import fsck, gc
from fmstack.settings import Settings
from tests.hub.folders import make_folder

PUSHER = """
import sys
from fmstack.hub import Hub
hub = Hub.open()
print("ready", flush=True)
sys.stdin.readline()
hub.push("acme/big", sys.argv[1], "model")
print("done", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4])
def test_sigkill_during_push_leaves_no_partial_version(
    backend_settings: Settings, tmp_path: Path, delay: float
) -> None:
    files = {f"shard-{i:02d}.bin": os.urandom(512 * 1024) for i in range(48)}
    folder = make_folder(tmp_path / "big", files)
    with Hub(backend_settings) as hub:  # create the schema first: the kill should hit the push itself
        hub.push("acme/other", make_folder(tmp_path / "small", {"a": "1"}), "model")
    child = subprocess.Popen(
        [sys.executable, "-c", PUSHER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    with Hub(backend_settings) as hub:
        versions = [r for r in hub.ls() if r.repo == "acme/big"]
        if versions:  # the kill came after the commit: the version must be whole
            detail = hub.info("acme/big")
            assert sorted(f.path for f in detail.files) == sorted(files)
            hub.pull("acme/big", tmp_path / "out")
            assert all((tmp_path / "out" / n).read_bytes() == b for n, b in files.items())
        report = fsck(hub)
        assert report.ok, report
        gc(hub)
        after = fsck(hub)
        assert after.ok and after.orphans == []
        assert list((backend_settings.home / "blobs/tmp").glob("*.part")) == []
