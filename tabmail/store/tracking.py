"""Provider events: stored once, matched to messages, turned into statuses and address flags.

``ingest`` is set-based so a poll of tens of thousands of events is a handful of queries: it
bulk-loads the event ids already stored (dedupe on the (provider, provider_event_id) unique
constraint), matches new events to messages in bulk, bulk-inserts them, recomputes the status of
every touched message from all its events, and adds address flags, all in one transaction. That
is store/tracking_ingest.py's ``EventIngest``, which the repository owns and makes on the first
``ingest``: it runs on SQLAlchemy, so a command that only reads (``tabmail status``) never loads
it. The reads here are plain SQL (store/sql.py).

Matching new events to messages (tabmail's id, then sg_message_id, then address and time) is
store/event_matching.py's ``EventMatcher``. Events that match nothing are kept with message_id
NULL, counted and logged, never dropped.

The status rule and the event shapes live in ``tabmail.status`` (a sibling this package may not
import): the caller passes the ``derive`` function and events that fit ``IncomingEvent``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import DeliveryStatus, MessageState, StatusEvent
from tabmail.domain.practice import PracticeSend
from tabmail.store.db import Database
from tabmail.store.sql import Sql, as_required_time, chunks

if TYPE_CHECKING:
    from tabmail.store.event_matching import IncomingEvent
    from tabmail.store.tracking_ingest import EventIngest

FLAG_SOURCE = "sendgrid"

EVENT_COLUMNS = (
    "id, message_id, provider, provider_event_id, event, status, event_time, received_at, "
    "address, reason, raw"
)


class DerivedStatus(Protocol):
    @property
    def status(self) -> DeliveryStatus: ...
    @property
    def at(self) -> datetime | None: ...
    @property
    def reason(self) -> str | None: ...


Derive = Callable[[Sequence[tuple[str, datetime, str | None]]], DerivedStatus]


@dataclass(slots=True)
class IngestResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    matched: int = 0
    unmatched: int = 0
    matched_by: dict[str, int] = field(default_factory=dict)  # tabmail_id / sg_message_id / ...
    changed_message_ids: list[str] = field(default_factory=list)  # status changed
    touched_message_ids: list[str] = field(default_factory=list)
    flagged_keys: list[str] = field(default_factory=list)
    learned_sg_ids: int = 0


def event_from_row(q: Sql, r: Sequence[Any]) -> StatusEvent:
    """A StatusEvent from a row of ``EVENT_COLUMNS`` read through ``q``."""
    try:
        status = DeliveryStatus(r[5])
    except ValueError:
        status = DeliveryStatus.UNKNOWN
    return StatusEvent(
        id=r[0],
        message_id=r[1],
        provider=r[2],
        provider_event_id=r[3],
        event=r[4],
        status=status,
        event_time=as_required_time(r[6]),
        received_at=as_required_time(r[7]),
        address=r[8],
        reason=r[9],
        raw=dict(q.json(r[10]) or {}),
    )


class TrackingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._ingest: EventIngest | None = None

    # -- ingest ---------------------------------------------------------------------------
    def ingest(
        self,
        events: Iterable[IncomingEvent],
        *,
        derive: Derive,
        now: datetime | None = None,
        window: timedelta = timedelta(days=3),
        skew: timedelta = timedelta(minutes=5),
        flag_source: str = FLAG_SOURCE,
    ) -> IngestResult:
        """Store new events, match them, update statuses and flags; one transaction.

        ``window``: how long after a send an address-only event (a suppression-list entry, an
        asynchronous bounce) still belongs to that send. ``skew``: tolerated clock difference
        between this laptop and SendGrid.
        """
        if self._ingest is None:
            from tabmail.store.tracking_ingest import EventIngest

            self._ingest = EventIngest(self._db)
        return self._ingest.ingest(
            events, derive=derive, now=now, window=window, skew=skew, flag_source=flag_source
        )

    # -- reading ---------------------------------------------------------------------------
    def timeline(self, message_id: str) -> list[StatusEvent]:
        """A message's events, oldest first."""
        with self._db.sql() as q:
            rows = q.rows(
                f"SELECT {EVENT_COLUMNS} FROM status_events WHERE message_id = :mid ORDER BY event_time, id",
                {"mid": message_id},
            )
            return [event_from_row(q, r) for r in rows]

    def unmatched(self, limit: int | None = 1000) -> list[StatusEvent]:
        """Events that matched no message, newest first."""
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM status_events WHERE message_id IS NULL "
            "ORDER BY event_time DESC, id DESC"
        )
        params: dict[str, Any] = {}
        if limit:
            sql += " LIMIT :limit"
            params["limit"] = limit
        with self._db.sql() as q:
            return [event_from_row(q, r) for r in q.rows(sql, params)]

    def unmatched_count(self) -> int:
        with self._db.sql() as q:
            return int(q.scalar("SELECT count(*) FROM status_events WHERE message_id IS NULL") or 0)

    def event_count(self) -> int:
        with self._db.sql() as q:
            return int(q.scalar("SELECT count(*) FROM status_events") or 0)

    def latest_event_times(self, message_ids: Collection[str]) -> dict[str, datetime]:
        """The provider time of each message's latest event (messages without events left out)."""
        out: dict[str, datetime] = {}
        with self._db.sql() as q:
            for part in chunks(list(set(message_ids))):
                params: dict[str, Any] = {}
                where = q.one_of("message_id", "mid", part, params)
                sql = (
                    f"SELECT message_id, max(event_time) FROM status_events WHERE {where} GROUP BY message_id"
                )
                for mid, at in q.rows(sql, params):
                    if mid is not None and at is not None:
                        # SQLite: the stored text; PostgreSQL: naive UTC. Both as aware UTC
                        out[mid] = as_required_time(at)
        return out

    def earliest_sent(self, since: datetime, statuses: Collection[str] | None = None) -> datetime | None:
        """The earliest send at or after ``since`` (of messages in ``statuses`` when given)."""
        params: dict[str, Any] = {"since": since}
        sql = "SELECT min(sent_at) FROM messages WHERE sent_at >= :since"
        with self._db.sql() as q:
            if statuses is not None:
                sql += " AND " + q.one_of("delivery_status", "statuses", list(statuses), params)
            value = q.scalar(sql, params)
        return as_required_time(value) if value is not None else None

    def latest_sent(self) -> datetime | None:
        with self._db.sql() as q:
            value = q.scalar("SELECT max(sent_at) FROM messages")
        return as_required_time(value) if value is not None else None

    def batches_with_events_from(self, provider: str, batch_ids: Collection[int]) -> set[int]:
        """The batches among ``batch_ids`` with at least one status event from ``provider``."""
        out: set[int] = set()
        with self._db.sql() as q:
            for part in chunks(list(set(batch_ids))):
                params: dict[str, Any] = {"provider": provider}
                where = q.one_of("m.batch_id", "batches", part, params)
                sql = (
                    "SELECT DISTINCT m.batch_id FROM messages m "
                    "JOIN status_events e ON e.message_id = m.id "
                    f"WHERE {where} AND e.provider = :provider"
                )
                out.update(int(r[0]) for r in q.rows(sql, params))
        return out

    def status_sources(self, message_ids: Collection[str]) -> dict[str, str]:
        """Which source (provider: "sendgrid", "inbox") gave each message its current status: the
        provider of its latest event with that status. Messages without events are left out."""
        out: dict[str, str] = {}
        with self._db.sql() as q:
            for part in chunks(list(set(message_ids))):
                params: dict[str, Any] = {}
                where = q.one_of("e.message_id", "mid", part, params)
                sql = (
                    "SELECT e.message_id, e.provider FROM status_events e "
                    "JOIN messages m ON m.id = e.message_id "
                    f"WHERE {where} AND e.status = m.delivery_status "
                    "ORDER BY e.event_time, e.id"
                )
                for mid, provider in q.rows(sql, params):
                    if mid is not None:
                        out[mid] = provider  # the latest wins
        return out

    def statuses_by_sg_id(self, sg_message_ids: Collection[str]) -> dict[str, str]:
        """Our current delivery status of the messages with these sg_message_ids."""
        out: dict[str, str] = {}
        with self._db.sql() as q:
            for part in chunks(list(set(sg_message_ids))):
                params: dict[str, Any] = {}
                where = q.one_of("sg_message_id", "sg", part, params)
                rows = q.rows(f"SELECT sg_message_id, delivery_status FROM messages WHERE {where}", params)
                out.update({sid: st for sid, st in rows if sid})
        return out

    def sent_through(self, backend: str, since: datetime) -> list[PracticeSend]:
        """Messages queued for ``backend`` and sent at or after ``since``, oldest first, each
        marked ``corrected`` when it resends a message that went to a different address."""
        sql = (
            "SELECT m.id, m.address, m.sent_at, o.address_key FROM messages m "
            "LEFT OUTER JOIN messages o ON o.id = m.resend_of "
            "WHERE m.backend = :backend AND m.state = :sent AND m.sent_at IS NOT NULL "
            "AND m.sent_at >= :since ORDER BY m.sent_at, m.id"
        )
        params = {"backend": backend, "sent": MessageState.SENT.value, "since": since}
        with self._db.sql() as q:
            rows = q.rows(sql, params)
        return [
            PracticeSend(
                message_id=mid,
                address=address,
                sent_at=as_required_time(sent_at),
                corrected=previous is not None and previous != address_key(address),
            )
            for mid, address, sent_at, previous in rows
        ]
