"""``fmstack-edge agent``: keep a device on its channel's newest good bundle, and never off a working one.

One poll (``Agent.poll``): refresh the signed metadata; if the channel's bundle is newer than the
highest ever accepted, not refused before, and rolled out to this device (``rollout.py``), download
it into the inactive slot, verify it (TUF), run the health check (``health.py``), switch atomically
(``slots.py``) and start answering with it. Anything that fails leaves the active slot serving, is
logged on one line, and is reported to the server with the device's state.

After a switch the new slot is on probation: if the agent crashes ``max_crashes`` times before it has
served ``probation_s`` seconds, or its health check fails after a restart, the agent rolls back to the
previous slot and never retries that version (an operator's rollback is a new, higher version).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import urllib3
from tuf.api import exceptions as tuf_errors

from fmstack_edge.bundle import Health
from fmstack_edge.errors import EdgeError, UpdateRejected
from fmstack_edge.health import check
from fmstack_edge.model import Model
from fmstack_edge.rollout import bucket, eligible
from fmstack_edge.server import Current, Served
from fmstack_edge.slots import OPTIMIZED, Slots, State
from fmstack_edge.updater import ChannelClient, channel_url, describe

log = logging.getLogger("fmstack_edge.agent")


@dataclass(frozen=True)
class AgentConfig:
    server: str
    channel: str
    dir: Path
    root: Path | None = None  # the trust anchor (1.root.json), needed on the first run only
    token: str | None = None
    device_id: str | None = None  # default: a random id kept in DIR/device-id
    poll_s: float = 60.0
    max_crashes: int = 3
    probation_s: float = 120.0
    timeout_s: float = 30.0
    max_bundle_bytes: int = 2 * 2**30
    threads: int | None = None


class Agent:
    def __init__(self, config: AgentConfig, served: Served | None = None) -> None:
        self.config = config
        self.served = served or Served()
        self.slots = Slots(config.dir)
        self.device_id = config.device_id or _device_id(config.dir)
        self.state = self.slots.load()
        self.client = ChannelClient(
            config.server,
            config.channel,
            config.dir / "tuf",
            config.dir / "staging",
            config.root,
            config.token,
            config.timeout_s,
        )

    # -- start-up ---------------------------------------------------------------------------------

    def boot(self) -> None:
        """Count a crash on probation (rolling back after too many), then load the active slot."""
        state = self.state
        if state.probation is not None and state.running:
            state.probation.crashes += 1
            log.warning(
                "the agent stopped without shutting down %d time(s) since switching to bundle %s",
                state.probation.crashes,
                state.version,
            )
            if state.probation.crashes >= self.config.max_crashes and state.previous is None:
                # The only bundle this device has: dropping it would leave nothing to serve.
                log.error("bundle %s keeps crashing, but there is no earlier slot: keeping it", state.version)
                state.probation = None
            elif state.probation.crashes >= self.config.max_crashes:
                self._roll_back(f"bundle {state.version} crashed the agent {state.probation.crashes} times")
        state.running = True
        self.slots.save(state)
        while state.active is not None:
            try:
                self._load_active()
                return
            except EdgeError as exc:
                if not self._roll_back(f"bundle {state.version} in slot {state.active} does not load: {exc}"):
                    break
        log.info("no bundle installed yet; waiting for the channel %s", self.config.channel)

    def _load_active(self) -> None:
        state = self.state
        if state.active is None:
            raise UpdateRejected("no active slot")
        folder = self.slots.path(state.active)
        optimized = folder / OPTIMIZED
        if state.probation is not None:  # a restart on probation: the slot must still pass its check
            model, _ = check(folder, _health_of(folder), self.config.threads, optimized)
        else:
            model = Model(folder, threads=self.config.threads, optimized=optimized)
        self._serve(model, state)
        log.info(
            "serving bundle %s (%s) from slot %s", state.version, state.refs.get(state.active), state.active
        )

    def _serve(self, model: Model, state: State) -> None:
        ref = state.refs.get(state.active or "", "")
        self.served.swap(Current(model, ref.split(":")[0] or self.config.channel, ref))

    def _roll_back(self, reason: str) -> bool:
        failed = self.state.version
        if self.slots.roll_back(self.state, reason):
            log.error("rolled back from bundle %s to %s: %s", failed, self.state.version, reason)
            return True
        log.error("%s; no previous slot to roll back to", reason)
        self.state.active = None
        self.slots.save(self.state)
        return False

    def shutdown(self) -> None:
        """A clean stop: not counted as a crash of a slot on probation."""
        self.state.running = False
        self.slots.save(self.state)

    def confirm(self) -> None:
        """End the probation of a slot that has served long enough without a crash."""
        probation = self.state.probation
        if probation is not None and time.time() - probation.since >= self.config.probation_s:
            self.state.probation = None
            self.slots.save(self.state)
            log.info(
                "bundle %s confirmed after %.0f s of service", self.state.version, self.config.probation_s
            )

    # -- one poll ---------------------------------------------------------------------------------

    def poll(self) -> str:
        """Look for an update and install it if it is good; returns what happened (also logged)."""
        state = self.state
        try:
            outcome = self._update()
            health = "ok" if state.active else "empty"
        except UpdateRejected as exc:
            outcome, health = f"update rejected: {exc}", "rejected"
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError, ValueError) as exc:
            outcome, health = f"update rejected: {describe(exc)}", "rejected"
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            outcome, health = f"server unreachable ({type(exc).__name__}: {exc})", "offline"
        serving = f"bundle {state.version}" if state.active else "nothing"
        if health != "ok":
            state.last_error = outcome
            self.slots.save(state)
            log.warning("%s; still serving %s", outcome, serving)
        else:
            log.info("%s; serving %s", outcome, serving)
        self.report(health)
        return outcome

    def _update(self) -> str:
        state = self.state
        updater, manifest = self.client.latest()
        if manifest.channel != self.config.channel:
            raise UpdateRejected(
                f"bundle.json is for channel {manifest.channel!r}, not {self.config.channel!r}"
            )
        if manifest.version <= state.highest:
            if manifest.version < state.highest:
                raise UpdateRejected(
                    f"bundle {manifest.version} is lower than bundle {state.highest} already accepted "
                    "(no downgrades: an operator's rollback is published as a new, higher version)"
                )
            return f"bundle {manifest.version} is current"
        if manifest.version in state.rejected:
            return f"bundle {manifest.version} failed here before; waiting for a newer one"
        if not eligible(self.device_id, self.config.channel, manifest.rollout):
            return (
                f"bundle {manifest.version} is rolled out to {manifest.rollout}% of devices; this one "
                f"(bucket {bucket(self.device_id, self.config.channel)}) waits"
            )
        folder = self.slots.prepare(state)
        log.info("downloading bundle %s (%s) into slot %s", manifest.version, manifest.ref, state.inactive())
        size = self.client.download(updater, manifest, folder, self.config.max_bundle_bytes)
        try:
            model, report = check(folder, manifest.health, self.config.threads, folder / OPTIMIZED)
        except UpdateRejected:
            state.rejected.append(manifest.version)
            self.slots.save(state)
            raise
        # The bound the slot is checked against again after a restart on probation.
        (folder / ".health.json").write_text(
            json.dumps(
                {"tolerance": manifest.health.tolerance, "max_latency_ms": manifest.health.max_latency_ms}
            )
        )
        self.slots.switch(state, manifest.version, manifest.ref)
        self._serve(model, state)
        return (
            f"installed bundle {manifest.version} ({manifest.ref}, {size:,} bytes; golden outputs within "
            f"{report.max_difference:.2g}, {report.latency_ms:.1f} ms per text)"
        )

    def report(self, health: str) -> None:
        """Tell the server how this device is; a failure to report is logged, never fatal."""
        state = self.state
        body = {
            "version": state.version,
            "ref": state.refs.get(state.active or ""),
            "health": health,
            "last_error": (state.last_error or "")[:2000] or None,
            "slot": state.active,
        }
        url = f"{channel_url(self.config.server, self.config.channel)}/devices/{self.device_id}"
        request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        if self.config.token:
            request.add_header("Authorization", f"Bearer {self.config.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as answer:
                answer.read()
        except OSError as exc:
            log.debug("could not report to %s: %s", url, exc)

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll_s`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.poll()
            self.confirm()
            stop.wait(self.config.poll_s)


def _health_of(folder: Path) -> Health:
    try:
        raw = json.loads((folder / ".health.json").read_text())
        return Health(float(raw["tolerance"]), float(raw["max_latency_ms"]))
    except (OSError, ValueError, KeyError):
        return Health()


def _device_id(root: Path) -> str:
    path = root / "device-id"
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(uuid.uuid4().hex)
    return path.read_text().strip()
