"""Send batches and their messages: writing them, reading them, and (through the OutboxStore
each repository owns as ``outbox``, in outbox_state.py) the outbox's durable per-message state.

Every state change is one short transaction, so a process killed at any instant leaves each
message in exactly one well-defined state. ``claim`` is an atomic compare-and-set, so two
outbox runs (even in two processes) can never both hand the same message over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from tabmail.domain.actor import Actor
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
from tabmail.store.db import Database
from tabmail.store.models import (
    BatchRow,
    MessageBodyRow,
    MessageRow,
    PersonRow,
    RoundRow,
    TournamentRow,
)
from tabmail.store.outbox_state import ABANDONED as ABANDONED
from tabmail.store.outbox_state import PENDING as PENDING
from tabmail.store.outbox_state import Claim as Claim
from tabmail.store.outbox_state import InFlight as InFlight
from tabmail.store.outbox_state import OutboxItem as OutboxItem
from tabmail.store.outbox_state import OutboxStore
from tabmail.store.outbox_state import StateUpdate as StateUpdate
from tabmail.store.reading import message_from_record, messages_sql

# States that count as "already got this event" for the default selection of a later send.
RECEIVED_OR_ON_ITS_WAY = (
    MessageState.QUEUED.value,
    MessageState.SCHEDULED.value,
    MessageState.SENDING.value,
    MessageState.RETRYING.value,
    MessageState.SENT.value,
    MessageState.UNCERTAIN.value,
)


def _now() -> datetime:
    return datetime.now(UTC)


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
    scheduled_at: datetime | None = None  # its messages wait as 'scheduled' until released


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
    """A Message from its ORM row (listings read plain rows: ``reading.message_from_record``)."""
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
        made_by=r.made_by,
        made_on=r.made_on,
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
        triggered_on=r.triggered_on or "",
        reroute_to=r.reroute_to,
        scheduled_at=r.scheduled_at,
    )


def message_rows(
    messages: Sequence[NewMessage],
    batch_id: int,
    backend: str,
    state: MessageState,
    actor: Actor | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The ``messages`` table's rows for a batch's new messages (as ``_insert_queued`` writes them)."""
    return [
        {
            "id": m.id,
            "backend": backend,
            "batch_id": batch_id,
            "person_id": m.person_id,
            "recipient_name": m.recipient_name,
            "role": m.role,
            "address": m.address,
            "address_key": m.address_key,
            "envelope_from": m.envelope_from,
            "envelope_to": m.envelope_to,
            "subject": m.subject,
            "context": m.context,
            "reasons": list(m.reasons),
            "message_id_header": m.message_id_header,
            "state": state.value,
            "attempts": 0,
            "created_at": now,
            "delivery_status": DeliveryStatus.UNKNOWN.value,
            "resend_of": m.resend_of,
            "send_despite_flag": m.send_despite_flag,
            # A resend says who asked for it; a batch's messages have the batch's word.
            "made_by": actor.who if actor and m.resend_of else None,
            "made_on": actor.machine if actor and m.resend_of else None,
        }
        for m in messages
    ]


def _insert_queued(
    s: Session,
    messages: Sequence[NewMessage],
    batch_id: int,
    backend: str,
    state: MessageState = MessageState.QUEUED,
    actor: Actor | None = None,
) -> None:
    """The messages as 'queued', and their bodies: two executemany INSERTs (no ORM objects:
    a 1,150-message batch is written in a fraction of the time add_all takes)."""
    if not messages:
        return
    _insert_many(s, MessageRow.__table__, message_rows(messages, batch_id, backend, state, actor, _now()))
    _insert_many(s, MessageBodyRow.__table__, [{"message_id": m.id, "raw": m.raw} for m in messages])


def _insert_many(s: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany INSERT of ``rows`` (each with the same keys). On SQLite it is handed to
    the driver as plain tuples, each value through its column type's own bind processor:
    SQLAlchemy's per-row work for an ORM bulk insert (parameter dicts, defaults, the
    statement's bookkeeping) cost as much as the driver's own executemany for a 1,150-message
    batch. The statement still goes through the engine's events (db._no_nul_in_text)."""
    conn = s.connection()
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    # Only the columns whose type converts a value (JSON, times, booleans) are converted, and a
    # value every row shares (the batch's time, its backend) only once.
    first = rows[0]
    converted = []
    for i, name in enumerate(names):
        process = table.c[name].type.bind_processor(conn.dialect)
        if process is not None:
            converted.append((i, process, first[name], process(first[name])))
    params = []
    for row in rows:
        values = [row[name] for name in names]
        for i, process, shared, done in converted:
            value = values[i]
            values[i] = done if value is shared else process(value)
        params.append(tuple(values))
    conn.exec_driver_sql(statement, params)


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.outbox = OutboxStore(db)  # claims, leases, results, recovery, re-queueing

    def close(self) -> None:
        """Close the outbox's own database connection (if it opened one)."""
        self.outbox.close()

    @property
    def db(self) -> Database:
        return self._db

    # -- enqueue --------------------------------------------------------------------
    def create_batch(self, batch: NewBatch, messages: Sequence[NewMessage]) -> int:
        """Write the batch and ALL its messages as queued (scheduled, for a batch with a release
        time) in one transaction."""
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
                triggered_on=self._db.actor.machine,
                reroute_to=batch.reroute_to,
                scheduled_at=batch.scheduled_at,
            )
            s.add(row)
            s.flush()
            state = MessageState.SCHEDULED if batch.scheduled_at is not None else MessageState.QUEUED
            _insert_queued(s, messages, row.id, batch.backend, state)
            return row.id

    def add_messages(self, batch_id: int, messages: Sequence[NewMessage], backend: str | None = None) -> None:
        """Append messages (resends) to an existing batch, in one transaction, to be sent
        through ``backend`` (a resend: the one selected now; default: the batch's)."""
        with self._db.write_session() as s:
            if backend is None:
                row = s.get(BatchRow, batch_id)
                backend = row.backend if row is not None else ""
            _insert_queued(s, messages, batch_id, backend, actor=self._db.actor)

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

    def last_contexts(
        self, round_id: int, tournament_id: int, event: Event
    ) -> dict[int, tuple[str, dict[str, Any]]]:
        """person id -> (address key, template context) of the last message of this event for
        this round that reached them or is on its way (test-mode copies left out): what they
        were last told, for a changes-only re-release."""
        with self._db.session() as s:
            q = (
                select(MessageRow.person_id, MessageRow.address_key, MessageRow.context)
                .join(BatchRow, BatchRow.id == MessageRow.batch_id)
                .where(
                    BatchRow.tournament_id == tournament_id,
                    BatchRow.round_id == round_id,
                    BatchRow.event == event.value,
                    BatchRow.reroute_to.is_(None),
                    MessageRow.person_id.is_not(None),
                    MessageRow.state.in_(RECEIVED_OR_ON_ITS_WAY),
                )
                .order_by(MessageRow.created_at, BatchRow.id)
            )
            result: dict[int, tuple[str, dict[str, Any]]] = {}
            for pid, key, context in s.execute(q):
                result[int(pid)] = (key, dict(context or {}))
            return result

    # -- outbox state (the writes: see outbox_state.OutboxStore) --------------------------------------
    def pending_by_state(self) -> dict[str, int]:
        """How many messages wait in the outbox, per state (queued, retrying)."""
        with self._db.session() as s:
            rows = s.execute(
                select(MessageRow.state, func.count())
                .where(MessageRow.state.in_(PENDING))
                .group_by(MessageRow.state)
            ).all()
            return {str(state): int(n) for state, n in rows}

    def pending_count(self, batch_id: int | None = None, *, exclude_batch: int | None = None) -> int:
        with self._db.session() as s:
            q = select(func.count()).select_from(MessageRow).where(MessageRow.state.in_(PENDING))
            if batch_id is not None:
                q = q.where(MessageRow.batch_id == batch_id)
            if exclude_batch is not None:
                q = q.where(MessageRow.batch_id != exclude_batch)
            return int(s.scalar(q) or 0)

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
                # Ids are ULIDs, upper case; typed in lower case they are the same id. Not LIKE's
                # case rules: SQLite ignores case there, PostgreSQL does not.
                prefix = message_id.upper()
                rows = list(
                    s.scalars(
                        select(MessageRow).where(MessageRow.id.startswith(prefix, autoescape=True)).limit(2)
                    )
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
        """Messages as ``reading.messages_sql`` lists them (the one definition, shared with the
        commands that read a SQLite file through sqlite3 alone)."""
        sql, params = messages_sql(
            batch_id=batch_id, batch_ids=batch_ids, states=states, person_id=person_id, ids=ids, limit=limit
        )
        with self._db.session() as s:
            return [message_from_record(r) for r in s.execute(text(sql), params)]

    def batches(
        self, *, tournament_id: int | None = None, round_id: int | None = None, no_round: bool = False
    ) -> list[BatchSummary]:
        """Batches (newest first) with counts per state and per delivery status. ``no_round``:
        only the tournament-wide batches (private URLs, registration), which have no round."""
        if no_round and round_id is not None:
            raise ValueError("batches: give a round_id or no_round, not both")
        with self._db.session() as s:
            q = select(BatchRow)
            if tournament_id is not None:
                q = q.where(BatchRow.tournament_id == tournament_id)
            if round_id is not None:
                q = q.where(BatchRow.round_id == round_id)
            elif no_round:
                q = q.where(BatchRow.round_id.is_(None))
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
