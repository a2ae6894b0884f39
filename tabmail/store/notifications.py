"""Send batches and their messages: the outbox's durable state.

Every state change is one short transaction, so a process killed at any instant leaves each
message in exactly one well-defined state. ``claim`` is an atomic compare-and-set, so two
outbox runs (even in two processes) can never both hand the same message over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, func, select, text, update
from sqlalchemy.exc import OperationalError

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import (
    Audience,
    BulkNotification,
    DeliveryStatus,
    Event,
    Message,
    MessageState,
    Templates,
)
from tabmail.store.db import (
    LOCK_POLL_MS,
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    DatabaseLocked,
    is_lock_error,
)
from tabmail.store.models import (
    AddressFlagRow,
    BatchRow,
    MessageBodyRow,
    MessageRow,
    PersonRow,
    RoundRow,
    TournamentRow,
    UTCDateTime,
)

PENDING = (MessageState.QUEUED.value, MessageState.RETRYING.value)
# States that count as "already got this event" for the default selection of a later send.
RECEIVED_OR_ON_ITS_WAY = (
    MessageState.QUEUED.value,
    MessageState.SENDING.value,
    MessageState.RETRYING.value,
    MessageState.SENT.value,
    MessageState.UNCERTAIN.value,
)


def _now() -> datetime:
    return datetime.now(UTC)


# The outbox's per-message statements, written once as plain portable SQL with named
# parameters: SQLAlchemy runs them as text() on any database, and on a SQLite file the outbox
# hands the same strings to its own connection (see _commit_sqlite). They run twice per message
# sent; building SQLAlchemy expressions each time cost more than SQLite's own work.
# A claim is an atomic compare-and-set: the message must still be pending, queued for this
# backend, and its address not flagged (unless the director said so); it takes a lease.
_FLAGGED = "SELECT address_key FROM address_flags WHERE cleared_at IS NULL"
_CLAIM_ONE_SQL = (
    "UPDATE messages SET state = 'sending', attempts = attempts + 1, "
    "lease_owner = :owner, lease_expires_at = :lease "
    "WHERE id = :id AND state IN ('queued', 'retrying') AND backend = :backend "
    f"AND (send_despite_flag = TRUE OR address_key NOT IN ({_FLAGGED}))"
)
_SKIP_ONE_SQL = (
    "UPDATE messages SET state = 'skipped', last_error = :error "
    "WHERE id = :id AND state IN ('queued', 'retrying') "
    f"AND send_despite_flag = FALSE AND address_key IN ({_FLAGGED})"
)
# Results of a claimed message: only while this process still holds it (a message another
# process marked uncertain because it thought this one dead is still this one's to settle).
_MARK_SENT_SQL = (
    "UPDATE messages SET state = 'sent', sent_at = :now, provider_message_id = :provider_id, "
    "last_error = NULL, next_attempt_at = NULL WHERE id = :id AND lease_owner = :owner"
)
_MARK_UNSENT_SQL = (
    "UPDATE messages SET state = :state, last_error = :error, next_attempt_at = :next, "
    "attempts = COALESCE(:attempts, attempts) WHERE id = :id AND lease_owner = :owner"
)
# Results for a message that was never claimed (no connection, settings refused, daily cap):
# only while it is still pending, so another process's claim is never overwritten.
_MARK_WAITING_SQL = (
    "UPDATE messages SET state = :state, last_error = :error, next_attempt_at = :next, "
    "attempts = COALESCE(:attempts, attempts) WHERE id = :id AND state IN ('queued', 'retrying')"
)
_RENEW_SQL = "UPDATE messages SET lease_expires_at = :lease WHERE state = 'sending' AND lease_owner = :owner"
_CLAIM_ONE = text(_CLAIM_ONE_SQL).bindparams(bindparam("lease", type_=UTCDateTime()))
_SKIP_ONE = text(_SKIP_ONE_SQL)
_MARK_SENT = text(_MARK_SENT_SQL).bindparams(bindparam("now", type_=UTCDateTime()))
_MARK_UNSENT = text(_MARK_UNSENT_SQL).bindparams(bindparam("next", type_=UTCDateTime()))
_MARK_WAITING = text(_MARK_WAITING_SQL).bindparams(bindparam("next", type_=UTCDateTime()))
_RENEW = text(_RENEW_SQL).bindparams(bindparam("lease", type_=UTCDateTime()))
_SKIPPED_FLAGGED = "skipped: the address is flagged as bouncing (checked just before sending)"
ABANDONED = (
    "tabmail stopped while this message was being handed to the server; "
    "it may or may not have been sent. Check before resending."
)


def _sqlite_time(value: datetime | None) -> str | None:
    """A time as SQLAlchemy stores it in SQLite (UTCDateTime: naive UTC, microseconds)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _update_params(
    updates: Sequence[StateUpdate], owner: str | None, *, sqlite: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Parameters for _MARK_SENT, _MARK_UNSENT (claimed) and _MARK_WAITING (never claimed)."""
    when = _sqlite_time if sqlite else (lambda t: t)
    sent: list[dict[str, Any]] = []
    unsent: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    for u in updates:
        if u.state is MessageState.SENT:
            sent.append(
                {
                    "id": u.message_id,
                    "now": when(u.sent_at),
                    "provider_id": u.provider_message_id,
                    "owner": owner,
                }
            )
            continue
        params = {
            "id": u.message_id,
            "state": u.state.value,
            "error": (u.error or "")[:4000],
            "next": when(u.next_attempt_at),
            "attempts": u.attempts,
        }
        if u.claimed:
            unsent.append({**params, "owner": owner})
        else:
            waiting.append(params)
    return sent, unsent, waiting


@dataclass(frozen=True, slots=True)
class NewBatch:
    tournament_id: int
    round_id: int | None
    event: Event
    audience: Audience | None
    templates: Templates
    backend: str
    triggered_by: str
    reroute_to: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: str
    person_id: int | None
    recipient_name: str
    role: str | None
    address: str
    address_key: str
    envelope_from: str
    envelope_to: str
    subject: str
    context: dict[str, Any]
    reasons: tuple[str, ...]
    raw: bytes
    message_id_header: str
    resend_of: str | None = None
    send_despite_flag: bool = False


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """A message's new outbox state, written by ``NotificationRepository.commit``.

    ``claimed``: the message was claimed by this process (written only while its lease is this
    process's); otherwise it was never handed over (written only while still pending).
    ``attempts``: the attempt count to store (None: leave it)."""

    message_id: str
    state: MessageState
    error: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    provider_message_id: str | None = None
    claimed: bool = True
    attempts: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """Who claims (host:pid:token), until when the claim holds unless renewed, for which backend."""

    owner: str
    lease_until: datetime
    backend: str


@dataclass(frozen=True, slots=True)
class InFlight:
    id: str
    lease_owner: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: str
    batch_id: int
    envelope_from: str
    envelope_to: str
    address_key: str
    raw: bytes
    attempts: int
    backend: str = ""


@dataclass(slots=True)
class BatchSummary:
    batch: BulkNotification
    tournament_slug: str
    round_seq: int | None
    total: int
    states: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)


class MessageNotFound(TabmailError, LookupError):
    pass


def message_from_row(r: MessageRow) -> Message:
    return Message(
        id=r.id,
        batch_id=r.batch_id,
        person_id=r.person_id,
        recipient_name=r.recipient_name,
        address=r.address,
        state=MessageState(r.state),
        attempts=r.attempts,
        last_error=r.last_error,
        message_id_header=r.message_id_header,
        provider_message_id=r.provider_message_id,
        sg_message_id=r.sg_message_id,
        delivery_status=DeliveryStatus(r.delivery_status),
        status_at=r.status_at,
        status_reason=r.status_reason,
        resend_of=r.resend_of,
        reasons=tuple(r.reasons or ()),
        context=dict(r.context or {}),
        created_at=r.created_at,
        sent_at=r.sent_at,
        next_attempt_at=r.next_attempt_at,
        role=r.role,
    )


def batch_from_row(r: BatchRow) -> BulkNotification:
    return BulkNotification(
        id=r.id,
        tournament_id=r.tournament_id or 0,
        round_id=r.round_id,
        event=Event(r.event),
        audience=Audience(r.audience) if r.audience else None,
        created_at=r.created_at,
        templates=Templates(r.subject_template, r.text_template, r.html_template),
        backend=r.backend,
        triggered_by=r.triggered_by,
        reroute_to=r.reroute_to,
    )


def _queued_row(m: NewMessage, batch_id: int, now: datetime, backend: str) -> MessageRow:
    return MessageRow(
        id=m.id,
        backend=backend,
        batch_id=batch_id,
        person_id=m.person_id,
        recipient_name=m.recipient_name,
        role=m.role,
        address=m.address,
        address_key=m.address_key,
        envelope_from=m.envelope_from,
        envelope_to=m.envelope_to,
        subject=m.subject,
        context=m.context,
        reasons=list(m.reasons),
        raw=m.raw,
        message_id_header=m.message_id_header,
        state=MessageState.QUEUED.value,
        attempts=0,
        created_at=now,
        delivery_status=DeliveryStatus.UNKNOWN.value,
        resend_of=m.resend_of,
        send_despite_flag=m.send_despite_flag,
    )


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_lock = threading.Lock()

    @property
    def db(self) -> Database:
        return self._db

    # -- enqueue --------------------------------------------------------------------
    def create_batch(self, batch: NewBatch, messages: Sequence[NewMessage]) -> int:
        """Write the batch and ALL its messages as queued in one transaction."""
        with self._db.write_session() as s:
            t = s.get(TournamentRow, batch.tournament_id)
            r = s.get(RoundRow, batch.round_id) if batch.round_id else None
            row = BatchRow(
                tournament_id=batch.tournament_id,
                round_id=batch.round_id,
                tournament_slug=t.slug if t else "",
                round_seq=r.seq if r else None,
                event=batch.event.value,
                audience=batch.audience.value if batch.audience else None,
                created_at=_now(),
                subject_template=batch.templates.subject,
                text_template=batch.templates.text,
                html_template=batch.templates.html,
                backend=batch.backend,
                triggered_by=batch.triggered_by,
                reroute_to=batch.reroute_to,
            )
            s.add(row)
            s.flush()
            now = _now()
            s.add_all(_queued_row(m, row.id, now, batch.backend) for m in messages)
            return row.id

    def add_messages(self, batch_id: int, messages: Sequence[NewMessage], backend: str | None = None) -> None:
        """Append messages (resends) to an existing batch, in one transaction, to be sent
        through ``backend`` (a resend: the one selected now; default: the batch's)."""
        with self._db.write_session() as s:
            if backend is None:
                row = s.get(BatchRow, batch_id)
                backend = row.backend if row is not None else ""
            now = _now()
            s.add_all(_queued_row(m, batch_id, now, backend) for m in messages)

    def already_received(
        self, round_id: int | None, tournament_id: int, event: Event
    ) -> tuple[set[int], set[str]]:
        """(person ids, address keys) that already got (or are getting) this event for this round."""
        with self._db.session() as s:
            q = (
                select(MessageRow.person_id, MessageRow.address_key)
                .join(BatchRow, BatchRow.id == MessageRow.batch_id)
                .where(
                    BatchRow.tournament_id == tournament_id,
                    BatchRow.event == event.value,
                    BatchRow.reroute_to.is_(None),
                    MessageRow.state.in_(RECEIVED_OR_ON_ITS_WAY),
                )
            )
            q = (
                q.where(BatchRow.round_id == round_id)
                if round_id is not None
                else q.where(BatchRow.round_id.is_(None))
            )
            people: set[int] = set()
            keys: set[str] = set()
            for pid, key in s.execute(q):
                if pid is not None:
                    people.add(pid)
                keys.add(key)
            return people, keys

    # -- outbox ---------------------------------------------------------------------
    def in_flight(self) -> list[InFlight]:
        """Messages in 'sending', with who holds them and until when."""
        with self._db.session() as s:
            q = select(MessageRow.id, MessageRow.lease_owner, MessageRow.lease_expires_at).where(
                MessageRow.state == MessageState.SENDING.value
            )
            return [InFlight(*r) for r in s.execute(q)]

    def mark_abandoned(self, owner: str | None, expired_before: datetime | None = None) -> list[str]:
        """'sending' -> uncertain for the messages ``owner`` holds (None: those with no lease, from
        before leases existed), only those whose lease ended before ``expired_before`` when given.
        The same condition is checked again in the update, so a lease renewed meanwhile stands."""
        cond: list[ColumnElement[bool]] = [MessageRow.state == MessageState.SENDING.value]
        cond.append(MessageRow.lease_owner.is_(None) if owner is None else MessageRow.lease_owner == owner)
        if expired_before is not None:
            cond.append(MessageRow.lease_expires_at < expired_before)
        with self._db.write_session() as s:
            ids = list(s.scalars(select(MessageRow.id).where(*cond)))
            if ids:
                s.execute(
                    update(MessageRow)
                    .where(MessageRow.id.in_(ids), *cond)
                    .values(state=MessageState.UNCERTAIN.value, last_error=ABANDONED)
                )
            return ids

    def recover_interrupted(self) -> list[str]:
        """Every message left 'sending' -> uncertain, whoever holds it. Only for a caller that
        knows no other process is sending (the outbox itself judges leases: ``mark_abandoned``)."""
        out: list[str] = []
        for owner in {m.lease_owner for m in self.in_flight()}:
            out += self.mark_abandoned(owner)
        return out

    def renew_leases(self, owner: str, lease_until: datetime) -> int:
        """Extend the lease on every message ``owner`` is sending."""
        params = {"owner": owner, "lease": lease_until}
        if self._db.path is not None:
            con = self._outbox_connection()
            with self._sqlite_lock:
                try:
                    cur = con.execute(_RENEW_SQL, {"owner": owner, "lease": _sqlite_time(lease_until)})
                except sqlite3.OperationalError as exc:
                    raise self._locked(exc) from None
            return int(cur.rowcount)
        with self._db.engine.begin() as conn:
            return int(conn.execute(_RENEW, params).rowcount)

    def due(self, now: datetime, limit: int = 500, batch_id: int | None = None) -> list[OutboxItem]:
        with self._db.session() as s:
            q = (
                select(
                    MessageRow.id,
                    MessageRow.batch_id,
                    MessageRow.envelope_from,
                    MessageRow.envelope_to,
                    MessageRow.address_key,
                    MessageBodyRow.raw,
                    MessageRow.attempts,
                    MessageRow.backend,
                )
                .join(MessageBodyRow, MessageBodyRow.message_id == MessageRow.id)
                .where(
                    (MessageRow.state == MessageState.QUEUED.value)
                    | (
                        (MessageRow.state == MessageState.RETRYING.value)
                        & (MessageRow.next_attempt_at <= now)
                    )
                )
            )
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            q = q.order_by(MessageRow.created_at, MessageRow.id).limit(limit)
            return [OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5] or b"", r[6], r[7]) for r in s.execute(q)]

    def next_retry_at(self, batch_id: int | None = None) -> datetime | None:
        with self._db.session() as s:
            q = select(func.min(MessageRow.next_attempt_at)).where(
                MessageRow.state == MessageState.RETRYING.value
            )
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            return s.scalar(q)

    def retry_summary(self, batch_id: int | None = None) -> tuple[datetime | None, int, str]:
        """(the earliest retry, how many messages wait for one, the error of the earliest)."""
        with self._db.session() as s:
            q = select(MessageRow.next_attempt_at, MessageRow.last_error).where(
                MessageRow.state == MessageState.RETRYING.value
            )
            c = (
                select(func.count())
                .select_from(MessageRow)
                .where(MessageRow.state == MessageState.RETRYING.value)
            )
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
                c = c.where(MessageRow.batch_id == batch_id)
            first = s.execute(q.order_by(MessageRow.next_attempt_at).limit(1)).first()
            if first is None:
                return None, 0, ""
            return first[0], int(s.scalar(c) or 0), first[1] or ""

    def pending_count(self, batch_id: int | None = None, *, exclude_batch: int | None = None) -> int:
        with self._db.session() as s:
            q = select(func.count()).select_from(MessageRow).where(MessageRow.state.in_(PENDING))
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            if exclude_batch is not None:
                q = q.where(MessageRow.batch_id != exclude_batch)
            return int(s.scalar(q) or 0)

    def commit(
        self, updates: Sequence[StateUpdate], claim: Sequence[str] = (), *, by: Claim | None = None
    ) -> tuple[list[bool], list[str]]:
        """Write outbox results and claim the next messages, in ONE short transaction.

        Claiming moves pending messages to 'sending' (attempts + 1) with ``by``'s lease, checking
        address flags and the backend in the same statement; returns one bool per claimed id, and
        the ids skipped because their address is flagged (now 'skipped'; the director's explicit
        override is respected). Every write is idempotent, so after DatabaseLocked (another
        process holds SQLite's write lock) the same call can simply be made again.
        """
        if claim and by is None:
            raise ValueError("a claim needs an owner, a lease and a backend")
        if self._db.path is not None and len(claim) <= 1:  # a SQLite file
            try:
                return self._commit_sqlite(updates, claim, by)
            except sqlite3.OperationalError as exc:
                raise self._locked(exc) from None
        try:
            with self._db.engine.begin() as conn:
                short = self._db.path is not None  # the outbox waits for a lock itself, visibly
                if short:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={LOCK_POLL_MS}")
                try:
                    return self._commit_portable(conn, updates, claim, by)
                finally:
                    if short:
                        conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        except OperationalError as exc:
            raise self._locked(exc) from None

    def _commit_portable(
        self, conn: Connection, updates: Sequence[StateUpdate], claim: Sequence[str], by: Claim | None
    ) -> tuple[list[bool], list[str]]:
        sent, unsent, waiting = _update_params(updates, by.owner if by else None, sqlite=False)
        if sent:
            conn.execute(_MARK_SENT, sent)
        if unsent:
            conn.execute(_MARK_UNSENT, unsent)
        if waiting:
            conn.execute(_MARK_WAITING, waiting)
        if not claim:
            return [], []
        assert by is not None
        return self._claim(conn, claim, by)

    def claim(self, ids: Sequence[str], by: Claim) -> tuple[list[bool], list[str]]:
        return self.commit((), claim=ids, by=by)

    def _locked(self, exc: Exception) -> Exception:
        if is_lock_error(exc):
            return DatabaseLocked("the database is locked by another process")
        return exc

    def _commit_sqlite(
        self, updates: Sequence[StateUpdate], claim: Sequence[str], by: Claim | None
    ) -> tuple[list[bool], list[str]]:
        """``commit`` for SQLite on a dedicated DBAPI connection in autocommit mode: the same
        statements as the portable path without SQLAlchemy's per-statement overhead, which was
        most of the outbox's cost per message (tests/bench/bench_send.py). Each statement is
        atomic on its own; several results are still written in one transaction."""
        con = self._outbox_connection()
        several = len(updates) > 1
        sent, unsent, waiting = _update_params(updates, by.owner if by else None, sqlite=True)
        with self._sqlite_lock:
            if several:
                con.execute("BEGIN IMMEDIATE")
            try:
                for params in sent:
                    con.execute(_MARK_SENT_SQL, params)
                for params in unsent:
                    con.execute(_MARK_UNSENT_SQL, params)
                for params in waiting:
                    con.execute(_MARK_WAITING_SQL, params)
                if several:
                    con.execute("COMMIT")
            except BaseException:
                if several and con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            if not claim:
                return [], []
            assert by is not None
            mid = claim[0]
            params = {
                "id": mid,
                "owner": by.owner,
                "lease": _sqlite_time(by.lease_until),
                "backend": by.backend,
            }
            if con.execute(_CLAIM_ONE_SQL, params).rowcount == 1:
                return [True], []
            if con.execute(_SKIP_ONE_SQL, {"error": _SKIPPED_FLAGGED, "id": mid}).rowcount == 1:
                return [False], [mid]
            return [False], []

    def _outbox_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            assert self._db.path is not None
            con = sqlite3.connect(
                str(self._db.path), timeout=30, isolation_level=None, check_same_thread=False
            )
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA synchronous=NORMAL")
            # Short: the outbox waits for another process's lock itself, saying so, without
            # holding up the event loop (services/outbox.py).
            con.execute(f"PRAGMA busy_timeout={LOCK_POLL_MS}")
            self._sqlite = con
        return self._sqlite

    def close(self) -> None:
        """Close the outbox's own SQLite connection (AppContext.close calls this)."""
        with self._sqlite_lock:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None

    def _claim(self, conn: Connection, ids: Sequence[str], by: Claim) -> tuple[list[bool], list[str]]:
        """Atomically move pending messages to 'sending' (attempts + 1) under ``by``'s lease,
        checking address flags and the backend in the same statement. Returns one bool per id,
        and the ids skipped because their address is flagged (now 'skipped'; the director's
        explicit override is respected).

        One short Core transaction: this runs once per message, right before it is handed over.
        """
        wanted = list(ids)
        lease = {"owner": by.owner, "lease": by.lease_until, "backend": by.backend}
        if len(wanted) == 1:
            if conn.execute(_CLAIM_ONE, {"id": wanted[0], **lease}).rowcount == 1:
                return [True], []
            if conn.execute(_SKIP_ONE, {"id": wanted[0], "error": _SKIPPED_FLAGGED}).rowcount == 1:
                return [False], wanted
            return [False], []
        flagged = select(AddressFlagRow.address_key).where(AddressFlagRow.cleared_at.is_(None))
        claimed = {
            r[0]
            for r in conn.execute(
                update(MessageRow)
                .where(
                    MessageRow.id.in_(wanted),
                    MessageRow.state.in_(PENDING),
                    MessageRow.backend == by.backend,
                    MessageRow.send_despite_flag.is_(True) | MessageRow.address_key.not_in(flagged),
                )
                .values(
                    state=MessageState.SENDING.value,
                    attempts=MessageRow.attempts + 1,
                    lease_owner=by.owner,
                    lease_expires_at=by.lease_until,
                )
                .returning(MessageRow.id)
            )
        }
        rest = [i for i in wanted if i not in claimed]
        skipped: list[str] = []
        if rest:
            skipped = [
                r[0]
                for r in conn.execute(
                    update(MessageRow)
                    .where(
                        MessageRow.id.in_(rest),
                        MessageRow.state.in_(PENDING),
                        MessageRow.send_despite_flag.is_(False),
                        MessageRow.address_key.in_(flagged),
                    )
                    .values(
                        state=MessageState.SKIPPED.value,
                        last_error=_SKIPPED_FLAGGED,
                    )
                    .returning(MessageRow.id)
                )
            ]
        return [i in claimed for i in wanted], skipped

    def mark_sent(self, message_id: str, provider_message_id: str | None, detail: str, now: datetime) -> None:
        """Record a message as sent, whoever claimed it (for tools and tests; the outbox commits)."""
        with self._db.write_session() as s:
            s.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(
                    state=MessageState.SENT.value,
                    sent_at=now,
                    provider_message_id=provider_message_id,
                    last_error=None,
                    next_attempt_at=None,
                )
            )

    def mark_unsent(
        self, message_id: str, state: MessageState, error: str, next_attempt_at: datetime | None = None
    ) -> None:
        """Record a message's state, whoever claimed it (for tools and tests; the outbox commits)."""
        with self._db.write_session() as s:
            s.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(state=state.value, last_error=error, next_attempt_at=next_attempt_at)
            )

    def cancel_pending(self, batch_id: int | None = None) -> int:
        """Stop sending what has not been handed over yet: pending -> skipped (kept, visible)."""
        with self._db.write_session() as s:
            q = update(MessageRow).where(MessageRow.state.in_(PENDING))
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            res = s.execute(
                q.values(state=MessageState.SKIPPED.value, last_error="cancelled by the director")
            )
            return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def requeue(
        self,
        backend: str,
        *,
        message_ids: Sequence[str] | None = None,
        batch_id: int | None = None,
        states: Sequence[MessageState] = (
            MessageState.QUEUED,
            MessageState.RETRYING,
            MessageState.FAILED,
        ),
    ) -> list[str]:
        """The director's explicit choice: send these messages again, as they are, through
        ``backend``, with a fresh attempt count. Only messages in ``states`` move (a message
        being sent never does). Returns the ids re-queued."""
        if message_ids is None and batch_id is None:
            raise ValueError("say which messages: ids or a batch")
        cond: list[ColumnElement[bool]] = [
            MessageRow.state.in_([x.value for x in states if x is not MessageState.SENDING])
        ]
        if message_ids is not None:
            cond.append(MessageRow.id.in_(list(message_ids)))
        if batch_id is not None:
            cond.append(MessageRow.batch_id == batch_id)
        with self._db.write_session() as s:
            ids = list(s.scalars(select(MessageRow.id).where(*cond)))
            if ids:
                s.execute(
                    update(MessageRow)
                    .where(MessageRow.id.in_(ids), *cond)
                    .values(
                        state=MessageState.QUEUED.value,
                        next_attempt_at=None,
                        attempts=0,
                        backend=backend,
                        last_error=None,
                    )
                )
            return ids

    def pending_backends(self, batch_id: int | None = None) -> dict[str, int]:
        """Pending messages per backend they are queued for."""
        with self._db.session() as s:
            q = (
                select(MessageRow.backend, func.count())
                .where(MessageRow.state.in_(PENDING))
                .group_by(MessageRow.backend)
            )
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            return {b: int(n) for b, n in s.execute(q)}

    def retry_now(self, message_id: str) -> bool:
        """Director's "Retry now": a retrying message becomes due now, a failed one queued."""
        with self._db.session() as s:
            res = s.execute(
                update(MessageRow)
                .where(
                    MessageRow.id == message_id,
                    MessageRow.state.in_([MessageState.RETRYING.value, MessageState.FAILED.value]),
                )
                .values(
                    state=MessageState.QUEUED.value,
                    next_attempt_at=None,
                )
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def cancel(self, message_id: str) -> bool:
        """Director's "Cancel" of one queued or retrying message: skipped, kept and shown."""
        with self._db.session() as s:
            res = s.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id, MessageRow.state.in_(PENDING))
                .values(
                    state=MessageState.SKIPPED.value,
                    next_attempt_at=None,
                    last_error="cancelled by the director",
                )
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    # -- reading --------------------------------------------------------------------
    def get(self, message_id: str) -> Message:
        """A message by id or by a unique prefix of at least 6 characters."""
        with self._db.session() as s:
            row = s.get(MessageRow, message_id)
            if row is None and len(message_id) >= 6:
                rows = list(
                    s.scalars(select(MessageRow).where(MessageRow.id.like(message_id + "%")).limit(2))
                )
                if len(rows) == 1:
                    row = rows[0]
                elif len(rows) > 1:
                    raise MessageNotFound(f"{message_id!r} matches several messages; give more characters")
            if row is None:
                raise MessageNotFound(f"no message with id {message_id!r}")
            return message_from_row(row)

    def raw(self, message_id: str) -> bytes:
        with self._db.session() as s:
            raw: bytes | None = s.scalar(
                select(MessageBodyRow.raw).where(MessageBodyRow.message_id == message_id)
            )
            if raw is None:
                if s.get(MessageRow, message_id) is None:
                    raise MessageNotFound(f"no message with id {message_id!r}")
                return b""
            return raw

    def get_batch(self, batch_id: int) -> BulkNotification:
        with self._db.session() as s:
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise MessageNotFound(f"no batch with id {batch_id}")
            return batch_from_row(row)

    def messages(
        self,
        *,
        batch_id: int | None = None,
        batch_ids: Sequence[int] | None = None,
        states: Sequence[MessageState] | None = None,
        person_id: int | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        with self._db.session() as s:
            q = select(MessageRow)
            if ids is not None:
                q = q.where(MessageRow.id.in_(list(ids)))
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            if batch_ids is not None:
                q = q.where(MessageRow.batch_id.in_(list(batch_ids)))
            if states:
                q = q.where(MessageRow.state.in_([x.value for x in states]))
            if person_id is not None:
                q = q.where(MessageRow.person_id == person_id)
            q = q.order_by(MessageRow.batch_id, MessageRow.created_at, MessageRow.id)
            if limit:
                q = q.limit(limit)
            return [message_from_row(r) for r in s.scalars(q)]

    def batches(self, *, tournament_id: int | None = None, round_id: int | None = None) -> list[BatchSummary]:
        """Batches (newest first) with counts per state and per delivery status."""
        with self._db.session() as s:
            q = select(BatchRow)
            if tournament_id is not None:
                q = q.where(BatchRow.tournament_id == tournament_id)
            if round_id is not None:
                q = q.where(BatchRow.round_id == round_id)
            rows = list(s.scalars(q.order_by(BatchRow.created_at.desc(), BatchRow.id.desc())))
            if not rows:
                return []
            ids = [r.id for r in rows]
            summaries = {
                r.id: BatchSummary(batch_from_row(r), r.tournament_slug, r.round_seq, 0) for r in rows
            }
            counts = s.execute(
                select(MessageRow.batch_id, MessageRow.state, MessageRow.delivery_status, func.count())
                .where(MessageRow.batch_id.in_(ids))
                .group_by(MessageRow.batch_id, MessageRow.state, MessageRow.delivery_status)
            )
            for bid, state, status, n in counts:
                summ = summaries[bid]
                summ.total += n
                summ.states[state] += n
                summ.statuses[status] += n
            return [summaries[i] for i in ids]

    def sent_since_midnight(self) -> int:
        """Messages handed over since 00:00 UTC today (for an SMTP daily cap)."""
        midnight = _now().replace(hour=0, minute=0, second=0, microsecond=0)
        with self._db.session() as s:
            q = select(func.count()).select_from(MessageRow).where(MessageRow.sent_at >= midnight)
            return int(s.scalar(q) or 0)

    def person_names(self, person_ids: Iterable[int]) -> dict[int, str]:
        with self._db.session() as s:
            ids = list(set(person_ids))
            return {
                i: n for i, n in s.execute(select(PersonRow.id, PersonRow.name).where(PersonRow.id.in_(ids)))
            }
