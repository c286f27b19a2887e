"""The coordinator: federations, client tokens, rounds and updates over the server's tables, and the
hub versions each round produces. Nothing is kept in memory between calls, so a server killed
mid-round picks the round up where the database left it.

A round closes when ``clients_per_round`` updates are accepted, or at its deadline with at least
``min_clients`` (with fewer, the deadline moves on and the round keeps waiting). Closing it is lazy:
whichever request comes first after the condition holds (an upload, a client asking for work, a status
read) aggregates. Updates for a closed round are recorded as late and refused (stragglers). Each
accepted update is stored as a version of ``NS/NAME-updates`` made by a ``fed-client`` run whose input
is the round's global adapter; the round's result is a version of ``NS/NAME`` made by a ``fed-round``
run whose inputs are the previous global adapter and the accepted updates: that is the lineage.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import safetensors
import sqlalchemy.exc
import torch
from safetensors.torch import load, load_file, save_file
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fmstack.errors import Conflict, InvalidInput, NotFound, Unauthorized, clip
from fmstack.federated import rounds, validate
from fmstack.federated.local import WEIGHTS, initial_adapter
from fmstack.federated.spec import FederationSpec
from fmstack.hub import Hub
from fmstack.hub.refs import parse_repo
from fmstack.hub.scratch import scratch_dir
from fmstack.server.federation import tokens
from fmstack.server.federation.entities import FederationStatus, RoundInfo, Task, UpdateOutcome
from fmstack.server.federation.publish import card, client_means, copy_version
from fmstack.server.federation.schema import FedClientRow, FederationRow, FedRoundRow, FedUpdateRow
from fmstack.server.tokens import digest

log = logging.getLogger("fmstack.federated")
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_BAD_TOKEN = "the federation token is not valid here (wrong, revoked, or for another federation)"
# One aggregation at a time per federation in this process (a second would redo the same work).
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Coordinator:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._sessions = sessionmaker(hub.engine, expire_on_commit=False)

    # -- federations and clients -----------------------------------------------------------------

    def start(self, spec: FederationSpec, owner: str) -> FederationStatus:
        """Create the federation, push round 1's global adapter (fresh, seeded) and open round 1."""
        with self._sessions() as session:
            if self._find(session, spec.name) is not None:
                raise Conflict(
                    f"federation {spec.name!r} exists: `fmstack fed status {spec.name}` shows it; pick another name"
                )
        self.hub.check_repo_kind(spec.name, "adapter")
        self.hub.resolve(spec.base)  # NotFound with the way out, before any work
        if spec.eval_data:
            self.hub.resolve(spec.eval_data)
        with (
            self.hub.runs.recorded("fed-start", spec.model_dump(), inputs=[spec.base]) as run_id,
            scratch_dir(self.hub.settings.home, "fed") as tmp,
        ):
            initial_adapter(self.hub, spec, tmp)
            version = self.hub.push(
                spec.name, tmp, "adapter", message="federated: initial adapter", run_id=run_id
            )
        moment = now()
        try:
            with self._sessions.begin() as session:
                fed = FederationRow(
                    name=spec.name,
                    owner=owner,
                    spec=spec.model_dump(mode="json"),
                    status="running",
                    round=1,
                    global_ref=version.ref,
                    created_at=moment,
                    updated_at=moment,
                )
                session.add(fed)
                session.flush()
                session.add(self._new_round(fed.id, 1, version.ref, spec, moment))
        except sqlalchemy.exc.IntegrityError:
            raise Conflict(f"federation {spec.name!r} was created meanwhile") from None
        log.info("federation %s started: %d rounds, strategy %s", spec.name, spec.rounds, spec.strategy)
        return self.status(spec.name)

    def add_client(self, name: str, client: str) -> str:
        """A token for ``client`` in federation ``name`` (shown once; a new one replaces the old)."""
        if not _CLIENT_NAME.fullmatch(client):
            raise InvalidInput(
                f"bad client name {clip(client)!r}: letters, digits, '.', '_', '-' (at most 100)"
            )
        token, prefix = tokens.mint()
        with self._sessions.begin() as session:
            fed = self._get(session, name)
            row = session.scalars(
                select(FedClientRow).where(FedClientRow.federation_id == fed.id, FedClientRow.name == client)
            ).first()
            if row is None:
                session.add(
                    FedClientRow(
                        federation_id=fed.id,
                        name=client,
                        prefix=prefix,
                        token_sha256=digest(token),
                        created_at=now(),
                    )
                )
            else:
                row.prefix, row.token_sha256, row.revoked_at = prefix, digest(token), None
        return token

    def authenticate(self, name: str, token: str) -> str:
        """The client a federation token belongs to; ``Unauthorized`` for any other token."""
        prefix = tokens.prefix_of(token)
        if prefix is None:
            raise Unauthorized(_BAD_TOKEN)
        with self._sessions.begin() as session:
            found = session.execute(
                select(FedClientRow, FederationRow.name)
                .join(FederationRow, FederationRow.id == FedClientRow.federation_id)
                .where(FedClientRow.prefix == prefix)
            ).first()
            if found is None or found[1] != name or found[0].revoked_at is not None:
                raise Unauthorized(_BAD_TOKEN)
            if not hmac.compare_digest(digest(token), found[0].token_sha256):
                raise Unauthorized(_BAD_TOKEN)
            found[0].last_seen_at = now()
            return found[0].name

    def stop(self, name: str) -> FederationStatus:
        with self._sessions.begin() as session:
            fed = self._get(session, name)
            if fed.status == "running":
                fed.status, fed.updated_at = "stopped", now()
        return self.status(name)

    # -- what clients do ---------------------------------------------------------------------------

    def task(self, name: str, client: str) -> Task:
        self.advance(name)
        with self._sessions() as session:
            fed = self._get(session, name)
            if fed.status != "running":
                return Task(
                    "done", fed.round, fed.spec, fed.global_ref, None, f"the federation is {fed.status}"
                )
            current = self._open_round(session, fed)
            if current is None:
                return Task(
                    "wait", fed.round, fed.spec, fed.global_ref, None, "the round is being aggregated"
                )
            if self._accepted(session, current.id, client) is not None:
                return Task(
                    "wait",
                    current.number,
                    fed.spec,
                    current.input_ref,
                    _aware(current.deadline_at),
                    f"your update for round {current.number} is in; waiting for the others",
                )
            base = str(fed.spec["base"])
        digest_ = self.hub.resolve(base).digest
        return Task(
            "train", current.number, fed.spec, current.input_ref, _aware(current.deadline_at), "", digest_
        )

    def global_file(self, name: str, number: int) -> Path:
        """The weights file of round ``number``'s starting global adapter (a verified checkout)."""
        with self._sessions() as session:
            row = self._round(session, self._get(session, name), number)
            ref = row.input_ref
        if ref is None:
            raise NotFound(f"round {number} of {name!r} has no global adapter")
        return self.hub.checkout(ref) / WEIGHTS

    def submit(
        self, name: str, client: str, number: int, data: bytes, examples: int, metrics: dict[str, float]
    ) -> UpdateOutcome:
        """Validate and store one client's trained weights for round ``number``; then maybe close it."""
        self.advance(name)  # a round past its deadline closes first: this update is then late
        with self._sessions() as session:
            fed = self._get(session, name)
            spec = FederationSpec.model_validate(fed.spec)
            current = self._open_round(session, fed)
            target = self._round(session, fed, number)
            done = self._accepted(session, target.id, client)
            if done is not None:  # a retry after a lost answer: the same outcome again
                return UpdateOutcome("accepted", number, "", done.norm, done.update_ref, done.run_id)
        if current is None or current.number != number:
            reason = (
                f"round {number} is closed (the federation is at round {fed.round}, {fed.status}): left out"
            )
            self._record(target.id, client, "late", reason, examples, len(data), metrics)
            return UpdateOutcome("late", number, reason)
        outcome = self._check_and_store(spec, target, client, data, examples, metrics)
        self.advance(name)
        return outcome

    def _check_and_store(
        self,
        spec: FederationSpec,
        target: FedRoundRow,
        client: str,
        data: bytes,
        examples: int,
        metrics: dict[str, float],
    ) -> UpdateOutcome:
        number, input_ref = target.number, str(target.input_ref)
        global_dir = self.hub.checkout(input_ref)
        global_ = load_file(str(global_dir / WEIGHTS))
        reason, norm = _problem(data, global_, spec.max_update_norm)
        if examples < 1 and reason is None:
            reason = f"an update must come from at least one example (got {examples})"
        if reason is not None:
            self._record(target.id, client, "rejected", reason, examples, len(data), metrics, norm=norm)
            log.warning(
                "federation %s round %d: update from %s rejected: %s", spec.name, number, client, reason
            )
            return UpdateOutcome("rejected", number, reason, norm)
        run_spec = {
            "federation": spec.name,
            "round": number,
            "client": client,
            "examples": examples,
            "bytes": len(data),
            "update_norm": norm,
            "metrics": metrics,
        }
        run_id = self.hub.runs.start("fed-client", run_spec, inputs=[input_ref])
        with scratch_dir(self.hub.settings.home, "fed") as tmp:
            copy_version(global_dir, tmp)
            (tmp / WEIGHTS).write_bytes(data)
            version = self.hub.push(
                f"{spec.name}-updates",
                tmp,
                "adapter",
                message=f"round {number}: update from {client}",
                run_id=run_id,
            )
        self.hub.runs.log_metrics(run_id, number, {k: float(v) for k, v in metrics.items()})
        self.hub.runs.finish(run_id, "succeeded", spec_update={"result": {"update": version.ref}})
        self._record(
            target.id, client, "accepted", "", examples, len(data), metrics, norm, version.ref, run_id
        )
        return UpdateOutcome("accepted", number, "", norm, version.ref, run_id)

    # -- rounds ----------------------------------------------------------------------------------

    def advance(self, name: str) -> None:
        """Close the open round if it is full, or past its deadline with enough updates; move a
        deadline that passed with too few on."""
        with _lock(name):
            with self._sessions() as session:
                fed = self._get(session, name)
                current = self._open_round(session, fed) if fed.status == "running" else None
                if current is None:
                    return
                spec = FederationSpec.model_validate(fed.spec)
                accepted = self._accepted_all(session, current.id)
                late = now() >= _aware(current.deadline_at)
                state = fed.server_state
            if len(accepted) >= spec.clients_per_round or (late and len(accepted) >= spec.min_clients):
                self._aggregate(spec, current, accepted, state)
            elif late:
                self._extend(current.id, spec, len(accepted))

    def _extend(self, round_id: int, spec: FederationSpec, have: int) -> None:
        with self._sessions.begin() as session:
            row = session.get(FedRoundRow, round_id)
            if row is None or row.status != "open":
                return
            row.deadline_at = now() + timedelta(seconds=spec.round_deadline_s)
            row.note = f"deadline passed with {have} of {spec.min_clients} needed updates; waiting again"
        log.info("federation %s round %d: %s", spec.name, row.number, row.note)

    def _aggregate(
        self, spec: FederationSpec, current: FedRoundRow, accepted: list[FedUpdateRow], state: bytes | None
    ) -> None:
        number, input_ref = current.number, str(current.input_ref)
        global_dir = self.hub.checkout(input_ref)
        global_ = load_file(str(global_dir / WEIGHTS))
        clients = [
            (load_file(str(self.hub.checkout(str(u.update_ref)) / WEIGHTS)), u.examples) for u in accepted
        ]
        result = rounds.server_step(spec, number, global_, clients, state)
        refs = [str(u.update_ref) for u in accepted]
        run_spec = {
            "federation": spec.name,
            "round": number,
            "strategy": spec.strategy,
            "clients": [u.client for u in accepted],
            "client_runs": [u.run_id for u in accepted],
        }
        with (
            self.hub.runs.recorded("fed-round", run_spec, inputs=[input_ref, *refs]) as run_id,
            scratch_dir(self.hub.settings.home, "fed") as tmp,
        ):
            copy_version(global_dir, tmp)
            (tmp / WEIGHTS).unlink()
            save_file(
                {k: v.contiguous() for k, v in result.weights.items()}, str(tmp / WEIGHTS), {"format": "pt"}
            )
            metrics = dict(result.metrics) | self._evaluate(spec, tmp)
            metrics |= client_means(accepted)
            version = self.hub.push(
                spec.name,
                tmp,
                "adapter",
                message=f"federated round {number} ({spec.strategy}, {len(accepted)} clients)",
                card=card(spec, number, metrics, accepted),
                run_id=run_id,
            )
            self.hub.runs.log_metrics(run_id, number, metrics)
            self.hub.runs.finish(
                run_id, "succeeded", spec_update={"result": {**metrics, "output": version.ref}}
            )
        self._close(current.id, spec, version.ref, run_id, metrics, result.server_state)
        log.info("federation %s round %d closed: %s (%s)", spec.name, number, version.ref, metrics)

    def _evaluate(self, spec: FederationSpec, folder: Path) -> dict[str, float]:
        if not spec.eval_data:
            return {}
        from fmstack.federated.evaluate import evaluate_folder

        return evaluate_folder(self.hub, spec, folder)

    def _close(
        self,
        round_id: int,
        spec: FederationSpec,
        ref: str,
        run_id: int,
        metrics: dict[str, float],
        state: bytes | None,
    ) -> None:
        moment = now()
        with self._sessions.begin() as session:
            row = session.get(FedRoundRow, round_id, with_for_update=True)
            if row is None or row.status != "open":
                return  # closed by another process meanwhile
            fed = session.get(FederationRow, row.federation_id, with_for_update=True)
            if fed is None:
                return
            row.status, row.output_ref, row.run_id, row.closed_at = "closed", ref, run_id, moment
            row.metrics = metrics
            fed.global_ref, fed.server_state, fed.updated_at = ref, state, moment
            if row.number >= spec.rounds or fed.status != "running":
                fed.status = "finished" if fed.status == "running" else fed.status
            else:
                fed.round = row.number + 1
                session.add(self._new_round(fed.id, row.number + 1, ref, spec, moment))

    # -- reading -----------------------------------------------------------------------------------

    def status(self, name: str) -> FederationStatus:
        with self._sessions() as session:
            fed = self._get(session, name)
            spec = FederationSpec.model_validate(fed.spec)
            clients = list(
                session.scalars(
                    select(FedClientRow.name)
                    .where(FedClientRow.federation_id == fed.id)
                    .order_by(FedClientRow.name)
                )
            )
            infos = []
            for row in session.scalars(
                select(FedRoundRow).where(FedRoundRow.federation_id == fed.id).order_by(FedRoundRow.number)
            ):
                updates = [
                    {
                        "client": u.client,
                        "status": u.status,
                        "reason": u.reason,
                        "examples": u.examples,
                        "norm": u.norm,
                        "bytes": u.bytes,
                        "metrics": u.metrics,
                        "update": u.update_ref,
                        "run_id": u.run_id,
                        "at": _aware(u.at).isoformat(),
                    }
                    for u in session.scalars(
                        select(FedUpdateRow).where(FedUpdateRow.round_id == row.id).order_by(FedUpdateRow.id)
                    )
                ]
                infos.append(
                    RoundInfo(
                        row.number,
                        row.status,
                        row.input_ref,
                        row.output_ref,
                        row.run_id,
                        _aware(row.opened_at),
                        _aware(row.deadline_at),
                        _aware(row.closed_at) if row.closed_at else None,
                        dict(row.metrics),
                        row.note,
                        updates,
                    )
                )
            closed = sum(1 for r in infos if r.status == "closed")
            return FederationStatus(
                fed.name,
                fed.owner,
                fed.status,
                fed.round,
                fed.global_ref,
                fed.spec,
                clients,
                infos,
                rounds.epsilon_after(spec, closed),
            )

    def owner(self, name: str) -> str:
        with self._sessions() as session:
            return self._get(session, name).owner

    # -- rows ----------------------------------------------------------------------------------------

    @staticmethod
    def _find(session: Session, name: str) -> FederationRow | None:
        return session.scalars(select(FederationRow).where(FederationRow.name == name)).first()

    def _get(self, session: Session, name: str) -> FederationRow:
        parse_repo(name)
        fed = self._find(session, name)
        if fed is None:
            raise NotFound(
                f"no federation named {clip(name)!r}; start one with `fmstack fed start SPEC.yaml`"
            )
        return fed

    @staticmethod
    def _open_round(session: Session, fed: FederationRow) -> FedRoundRow | None:
        return session.scalars(
            select(FedRoundRow).where(FedRoundRow.federation_id == fed.id, FedRoundRow.status == "open")
        ).first()

    @staticmethod
    def _round(session: Session, fed: FederationRow, number: int) -> FedRoundRow:
        row = session.scalars(
            select(FedRoundRow).where(FedRoundRow.federation_id == fed.id, FedRoundRow.number == number)
        ).first()
        if row is None:
            raise NotFound(f"federation {fed.name!r} has no round {number} (it is at round {fed.round})")
        return row

    @staticmethod
    def _accepted(session: Session, round_id: int, client: str) -> FedUpdateRow | None:
        return session.scalars(
            select(FedUpdateRow).where(
                FedUpdateRow.round_id == round_id,
                FedUpdateRow.client == client,
                FedUpdateRow.status == "accepted",
            )
        ).first()

    @staticmethod
    def _accepted_all(session: Session, round_id: int) -> list[FedUpdateRow]:
        return list(
            session.scalars(
                select(FedUpdateRow)
                .where(FedUpdateRow.round_id == round_id, FedUpdateRow.status == "accepted")
                .order_by(FedUpdateRow.client)
            )
        )

    @staticmethod
    def _new_round(
        federation_id: int, number: int, ref: str, spec: FederationSpec, moment: datetime
    ) -> FedRoundRow:
        return FedRoundRow(
            federation_id=federation_id,
            number=number,
            status="open",
            input_ref=ref,
            opened_at=moment,
            deadline_at=moment + timedelta(seconds=spec.round_deadline_s),
            metrics={},
            note="",
        )

    def _record(
        self,
        round_id: int,
        client: str,
        status: str,
        reason: str,
        examples: int,
        size: int,
        metrics: dict[str, float],
        norm: float | None = None,
        ref: str | None = None,
        run_id: int | None = None,
    ) -> None:
        with self._sessions.begin() as session:
            session.add(
                FedUpdateRow(
                    round_id=round_id,
                    client=client,
                    status=status,
                    reason=reason,
                    examples=examples,
                    norm=norm,
                    bytes=size,
                    metrics=metrics,
                    update_ref=ref,
                    run_id=run_id,
                    at=now(),
                )
            )


@contextmanager
def _lock(name: str) -> Iterator[None]:
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(name, threading.Lock())
    with lock:
        yield


def _problem(
    data: bytes, global_: dict[str, torch.Tensor], max_norm: float | None
) -> tuple[str | None, float | None]:
    try:
        local = load(data)
    except (safetensors.SafetensorError, ValueError, RuntimeError) as exc:
        return f"not a safetensors file of tensors: {clip(exc)}", None
    return validate.problem(local, global_, max_norm)
