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
from tabmail.store.outbox_state import ABANDONED as ABANDONED
from tabmail.store.outbox_state import PENDING as PENDING
from tabmail.store.outbox_state import Claim as Claim
from tabmail.store.outbox_state import InFlight as InFlight
from tabmail.store.outbox_state import OutboxItem as OutboxItem
from tabmail.store.outbox_state import OutboxStore
from tabmail.store.outbox_state import StateUpdate as StateUpdate
from tabmail.store.reading import MESSAGE_FIELDS, message_from_record, messages_sql
from tabmail.store.sql import Sql, as_required_time, as_time

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


_BATCH_FIELDS = (
    "id, tournament_id, round_id, event, audience, created_at, subject_template, text_template, "
    "html_template, backend, triggered_by, triggered_on, reroute_to, scheduled_at, tournament_slug, round_seq"
)


def batch_from_record(r: Sequence[Any]) -> BulkNotification:
    """A batch from a row of ``_BATCH_FIELDS``."""
    return BulkNotification(
        id=r[0],
        tournament_id=r[1] or 0,
        round_id=r[2],
        event=Event(r[3]),
        audience=Audience(r[4]) if r[4] else None,
        created_at=as_required_time(r[5]),
        templates=Templates(r[6], r[7], r[8]),
        backend=r[9],
        triggered_by=r[10],
        triggered_on=r[11] or "",
        reroute_to=r[12],
        scheduled_at=as_time(r[13]),
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
    q: Sql,
    messages: Sequence[NewMessage],
    batch_id: int,
    backend: str,
    state: MessageState = MessageState.QUEUED,
    actor: Actor | None = None,
) -> None:
    """The messages as 'queued', and their bodies: two executemany INSERTs."""
    if not messages:
        return
    rows = message_rows(messages, batch_id, backend, state, actor, _now())
    q.insert_rows("messages", rows, json_columns=("context", "reasons"), time_columns=("created_at",))
    q.insert_rows("message_bodies", [{"message_id": m.id, "raw": m.raw} for m in messages])


# The messages of an event for a round that reached their people or are on their way.
_RECEIVED = (
    "FROM messages m JOIN batches b ON b.id = m.batch_id "
    "WHERE b.tournament_id = :tournament AND b.event = :event AND b.reroute_to IS NULL "
    "AND m.state IN ('queued', 'scheduled', 'sending', 'retrying', 'sent', 'uncertain')"
)
assert all(f"'{s}'" in _RECEIVED for s in RECEIVED_OR_ON_ITS_WAY)
_CANCELLED = "cancelled by the director"


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
        with self._db.sql(write=True) as q:
            slug = q.scalar("SELECT slug FROM tournaments WHERE id = :id", {"id": batch.tournament_id})
            seq = None
            if batch.round_id:
                seq = q.scalar("SELECT seq FROM rounds WHERE id = :id", {"id": batch.round_id})
            batch_id = q.insert(
                "INSERT INTO batches (tournament_id, round_id, tournament_slug, round_seq, event, audience, "
                "created_at, subject_template, text_template, html_template, backend, triggered_by, "
                "triggered_on, reroute_to, scheduled_at) VALUES (:tournament, :round, :slug, :seq, :event, "
                ":audience, :now, :subject, :text, :html, :backend, :by, :on, :reroute, :scheduled) RETURNING id",
                {
                    "tournament": batch.tournament_id,
                    "round": batch.round_id,
                    "slug": slug or "",
                    "seq": seq,
                    "event": batch.event.value,
                    "audience": batch.audience.value if batch.audience else None,
                    "now": _now(),
                    "subject": batch.templates.subject,
                    "text": batch.templates.text,
                    "html": batch.templates.html,
                    "backend": batch.backend,
                    "by": batch.triggered_by,
                    "on": self._db.actor.machine,
                    "reroute": batch.reroute_to,
                    "scheduled": batch.scheduled_at,
                },
            )
            state = MessageState.SCHEDULED if batch.scheduled_at is not None else MessageState.QUEUED
            _insert_queued(q, messages, batch_id, batch.backend, state)
            return batch_id

    def add_messages(self, batch_id: int, messages: Sequence[NewMessage], backend: str | None = None) -> None:
        """Append messages (resends) to an existing batch, in one transaction, to be sent
        through ``backend`` (a resend: the one selected now; default: the batch's)."""
        with self._db.sql(write=True) as q:
            if backend is None:
                backend = q.scalar("SELECT backend FROM batches WHERE id = :id", {"id": batch_id}) or ""
            _insert_queued(q, messages, batch_id, backend, actor=self._db.actor)

    def already_received(
        self, round_id: int | None, tournament_id: int, event: Event
    ) -> tuple[set[int], set[str]]:
        """(person ids, address keys) that already got (or are getting) this event for this round."""
        params = {"tournament": tournament_id, "event": event.value, "round": round_id}
        which = "b.round_id = :round" if round_id is not None else "b.round_id IS NULL"
        with self._db.sql() as q:
            rows = q.rows(f"SELECT m.person_id, m.address_key {_RECEIVED} AND {which}", params)
        people = {pid for pid, _key in rows if pid is not None}
        return people, {key for _pid, key in rows}

    def last_contexts(
        self, round_id: int, tournament_id: int, event: Event
    ) -> dict[int, tuple[str, dict[str, Any]]]:
        """person id -> (address key, template context) of the last message of this event for
        this round that reached them or is on its way (test-mode copies left out): what they
        were last told, for a changes-only re-release."""
        params = {"tournament": tournament_id, "event": event.value, "round": round_id}
        result: dict[int, tuple[str, dict[str, Any]]] = {}
        with self._db.sql() as q:
            rows = q.rows(
                f"SELECT m.person_id, m.address_key, m.context {_RECEIVED} AND b.round_id = :round "
                "AND m.person_id IS NOT NULL ORDER BY m.created_at, b.id",
                params,
            )
            for pid, key, context in rows:
                result[int(pid)] = (key, dict(q.json(context) or {}))
        return result

    # -- outbox state (the writes: see outbox_state.OutboxStore) --------------------------------------
    def pending_by_state(self) -> dict[str, int]:
        """How many messages wait in the outbox, per state (queued, retrying)."""
        with self._db.sql() as q:
            rows = q.rows(
                "SELECT state, count(*) FROM messages WHERE state IN ('queued', 'retrying') GROUP BY state"
            )
        return {str(state): int(n) for state, n in rows}

    def pending_count(self, batch_id: int | None = None, *, exclude_batch: int | None = None) -> int:
        sql = "SELECT count(*) FROM messages WHERE state IN ('queued', 'retrying')"
        if batch_id is not None:
            sql += " AND batch_id = :batch"
        if exclude_batch is not None:
            sql += " AND batch_id != :other"
        with self._db.sql() as q:
            return int(q.scalar(sql, {"batch": batch_id, "other": exclude_batch}) or 0)

    def mark_sent(self, message_id: str, provider_message_id: str | None, detail: str, now: datetime) -> None:
        """Record a message as sent, whoever claimed it (for tools and tests; the outbox commits)."""
        with self._db.sql(write=True) as q:
            q.run(
                "UPDATE messages SET state = 'sent', sent_at = :now, provider_message_id = :provider, "
                "last_error = NULL, next_attempt_at = NULL WHERE id = :id",
                {"id": message_id, "now": now, "provider": provider_message_id},
            )

    def mark_unsent(
        self, message_id: str, state: MessageState, error: str, next_attempt_at: datetime | None = None
    ) -> None:
        """Record a message's state, whoever claimed it (for tools and tests; the outbox commits)."""
        with self._db.sql(write=True) as q:
            q.run(
                "UPDATE messages SET state = :state, last_error = :error, next_attempt_at = :next WHERE id = :id",
                {"id": message_id, "state": state.value, "error": error, "next": next_attempt_at},
            )

    def cancel_pending(self, batch_id: int | None = None) -> int:
        """Stop sending what has not been handed over yet: pending -> skipped (kept, visible)."""
        sql = (
            "UPDATE messages SET state = 'skipped', last_error = :error WHERE state IN ('queued', 'retrying')"
        )
        if batch_id is not None:
            sql += " AND batch_id = :batch"
        with self._db.sql(write=True) as q:
            return q.run(sql, {"error": _CANCELLED, "batch": batch_id})

    def retry_now(self, message_id: str) -> bool:
        """Director's "Retry now": a retrying message becomes due now, a failed one queued."""
        with self._db.sql(write=True) as q:
            return bool(
                q.run(
                    "UPDATE messages SET state = 'queued', next_attempt_at = NULL "
                    "WHERE id = :id AND state IN ('retrying', 'failed')",
                    {"id": message_id},
                )
            )

    def cancel(self, message_id: str) -> bool:
        """Director's "Cancel" of one queued or retrying message: skipped, kept and shown."""
        with self._db.sql(write=True) as q:
            return bool(
                q.run(
                    "UPDATE messages SET state = 'skipped', next_attempt_at = NULL, last_error = :error "
                    "WHERE id = :id AND state IN ('queued', 'retrying')",
                    {"id": message_id, "error": _CANCELLED},
                )
            )

    # -- reading --------------------------------------------------------------------
    def get(self, message_id: str) -> Message:
        """A message by id or by a unique prefix of at least 6 characters."""
        select = f"SELECT {', '.join(MESSAGE_FIELDS)} FROM messages WHERE "
        with self._db.sql() as q:
            rows = q.rows(select + "id = :id", {"id": message_id})
            if not rows and len(message_id) >= 6:
                # Ids are ULIDs, upper case; typed in lower case they are the same id. Not LIKE's
                # case rules: SQLite ignores case there, PostgreSQL does not.
                prefix = message_id.upper()
                rows = q.rows(
                    select + "substr(id, 1, :n) = :prefix ORDER BY id LIMIT 2",
                    {"n": len(prefix), "prefix": prefix},
                )
                if len(rows) > 1:
                    raise MessageNotFound(f"{message_id!r} matches several messages; give more characters")
        if not rows:
            raise MessageNotFound(f"no message with id {message_id!r}")
        return message_from_record(rows[0])

    def raw(self, message_id: str) -> bytes:
        with self._db.sql() as q:
            row = q.one(
                "SELECT b.raw FROM messages m LEFT JOIN message_bodies b ON b.message_id = m.id WHERE m.id = :id",
                {"id": message_id},
            )
        if row is None:
            raise MessageNotFound(f"no message with id {message_id!r}")
        return bytes(row[0] or b"")

    def get_batch(self, batch_id: int) -> BulkNotification:
        with self._db.sql() as q:
            row = q.one(f"SELECT {_BATCH_FIELDS} FROM batches WHERE id = :id", {"id": batch_id})
        if row is None:
            raise MessageNotFound(f"no batch with id {batch_id}")
        return batch_from_record(row)

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
        """Messages as ``reading.messages_sql`` lists them: oldest batch first, then by creation
        time and id."""
        sql, params = messages_sql(
            batch_id=batch_id, batch_ids=batch_ids, states=states, person_id=person_id, ids=ids, limit=limit
        )
        with self._db.sql() as q:
            return [message_from_record(r) for r in q.rows(sql, params)]

    def batches(
        self, *, tournament_id: int | None = None, round_id: int | None = None, no_round: bool = False
    ) -> list[BatchSummary]:
        """Batches (newest first) with counts per state and per delivery status. ``no_round``:
        only the tournament-wide batches (private URLs, registration), which have no round."""
        if no_round and round_id is not None:
            raise ValueError("batches: give a round_id or no_round, not both")
        where: list[str] = []
        params: dict[str, Any] = {"tournament": tournament_id, "round": round_id}
        if tournament_id is not None:
            where.append("tournament_id = :tournament")
        if round_id is not None:
            where.append("round_id = :round")
        elif no_round:
            where.append("round_id IS NULL")
        sql = f"SELECT {_BATCH_FIELDS} FROM batches"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._db.sql() as q:
            rows = q.rows(sql + " ORDER BY created_at DESC, id DESC", params)
            if not rows:
                return []
            summaries = {r[0]: BatchSummary(batch_from_record(r), r[14], r[15], 0) for r in rows}
            found: dict[str, Any] = {}
            counts = q.rows(
                "SELECT batch_id, state, delivery_status, count(*) FROM messages "
                f"WHERE {q.one_of('batch_id', 'ids', list(summaries), found)} "
                "GROUP BY batch_id, state, delivery_status",
                found,
            )
        for bid, state, status, n in counts:
            summ = summaries[bid]
            summ.total += n
            summ.states[state] += n
            summ.statuses[status] += n
        return list(summaries.values())

    def sent_since_midnight(self) -> int:
        """Messages handed over since 00:00 UTC today (for an SMTP daily cap)."""
        midnight = _now().replace(hour=0, minute=0, second=0, microsecond=0)
        with self._db.sql() as q:
            return int(
                q.scalar("SELECT count(*) FROM messages WHERE sent_at >= :midnight", {"midnight": midnight})
                or 0
            )

    def person_names(self, person_ids: Iterable[int]) -> dict[int, str]:
        params: dict[str, Any] = {}
        with self._db.sql() as q:
            rows = q.rows(
                f"SELECT id, name FROM people WHERE {q.one_of('id', 'ids', list(set(person_ids)), params)}",
                params,
            )
        return {int(i): n for i, n in rows}
