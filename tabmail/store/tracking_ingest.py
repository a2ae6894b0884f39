"""Storing provider events (``TrackingRepository.ingest``, store/tracking.py), on SQLAlchemy.

The repository owns an ``EventIngest``, made on its first ingest, so that only a command that
stores events loads the ORM. See store/tracking.py for what an ingest does, in one transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from tabmail.domain.addresses import address_key
from tabmail.store.db import Database
from tabmail.store.event_matching import EventMatcher, IncomingEvent
from tabmail.store.models import AddressFlagRow, MessageRow, PersonRow, StatusEventRow, UTCDateTime
from tabmail.store.sql import chunks
from tabmail.store.tracking import FLAG_SOURCE, Derive, IngestResult

# The repository's logger, as when this was part of it: "matched no message" is its line
log = logging.getLogger("tabmail.store.tracking")

MESSAGES = cast(Table, MessageRow.__table__)
EVENTS = cast(Table, StatusEventRow.__table__)


class EventIngest:
    """``TrackingRepository.ingest``: the repository makes one on its first ingest."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        """See ``TrackingRepository.ingest``."""
        now = now or datetime.now(UTC)
        unique: dict[tuple[str, str], IncomingEvent] = {}
        received = 0
        for ev in events:
            received += 1
            unique.setdefault((ev.provider, ev.provider_event_id), ev)
        result = IngestResult(received=received)
        if not unique:
            return result
        with self._db.session() as s:
            existing = self._existing_ids(s, list(unique))
            new = [ev for key, ev in unique.items() if key not in existing]
            result.duplicates = received - len(new)
            if not new:
                return result
            matches, how, learned = EventMatcher(s, window, skew).match(new)
            rows = [_row(ev, mid, now) for ev, mid in zip(new, matches, strict=True)]
            result.inserted = self._insert(s, rows)
            for method in how:
                if method:
                    result.matched_by[method] = result.matched_by.get(method, 0) + 1
            result.matched = sum(1 for m in matches if m is not None)
            result.unmatched = len(new) - result.matched
            result.learned_sg_ids = self._learn(s, learned)
            touched = sorted({m for m in matches if m is not None})
            result.touched_message_ids = touched
            result.changed_message_ids = self._recompute(s, touched, derive)
            result.flagged_keys = self._flag(s, new, matches, flag_source)
        if result.unmatched:
            log.info(
                "%d new %s event(s) matched no message; kept as unmatched (tabmail events --unmatched)",
                result.unmatched,
                new[0].provider,
            )
        return result

    def _existing_ids(self, s: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        by_provider: dict[str, list[str]] = defaultdict(list)
        for provider, event_id in keys:
            by_provider[provider].append(event_id)
        found: set[tuple[str, str]] = set()
        for provider, ids in by_provider.items():
            for part in chunks(ids):
                q = select(StatusEventRow.provider_event_id).where(
                    StatusEventRow.provider == provider, StatusEventRow.provider_event_id.in_(part)
                )
                found.update((provider, i) for i in s.scalars(q))
        return found

    def _insert(self, s: Session, rows: list[dict[str, Any]]) -> int:
        """Bulk insert; a row another process stored meanwhile is skipped by the constraint."""
        dialect = self._db.engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt: Any = sqlite_insert(EVENTS).on_conflict_do_nothing()
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(EVENTS).on_conflict_do_nothing()
        else:  # pragma: no cover - other databases: plain insert (dedupe above suffices)
            stmt = insert(EVENTS)
        # Core executemany on the connection: one prepared statement, no ORM bookkeeping
        conn = s.connection()
        for part in chunks(rows, 5000):
            conn.execute(stmt, list(part))
        return len(rows)

    def _learn(self, s: Session, learned: dict[str, str]) -> int:
        """Store sg_message_ids learned from events on messages that did not have one."""
        if not learned:
            return 0
        ids = list(learned)
        missing: list[str] = []
        for part in chunks(ids):
            missing.extend(
                s.scalars(
                    select(MessageRow.id).where(MessageRow.id.in_(part), MessageRow.sg_message_id.is_(None))
                )
            )
        if missing:
            stmt = (
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("m_id"))
                .values(sg_message_id=bindparam("m_sg"))
            )
            s.connection().execute(stmt, [{"m_id": i, "m_sg": learned[i]} for i in missing])
        return len(missing)

    def _recompute(self, s: Session, message_ids: list[str], derive: Derive) -> list[str]:
        if not message_ids:
            return []
        per: dict[str, list[tuple[str, datetime, str | None]]] = defaultdict(list)
        current: dict[str, tuple[str, datetime | None, str | None]] = {}
        for part in chunks(message_ids):
            q = select(
                StatusEventRow.message_id,
                StatusEventRow.status,
                StatusEventRow.event_time,
                StatusEventRow.reason,
            ).where(StatusEventRow.message_id.in_(part))
            for mid, status, at, reason in s.execute(q):
                if mid is not None:
                    per[mid].append((status, at, reason))
            q2 = select(
                MessageRow.id, MessageRow.delivery_status, MessageRow.status_at, MessageRow.status_reason
            ).where(MessageRow.id.in_(part))
            for mid, cur, cur_at, cur_reason in s.execute(q2):
                current[mid] = (cur, cur_at, cur_reason)
        changes: list[dict[str, Any]] = []
        for mid in message_ids:
            if mid not in current:
                continue
            d = derive(per.get(mid, []))
            new = (d.status.value, d.at, d.reason)
            if new != current[mid]:
                changes.append({"m_id": mid, "m_status": new[0], "m_at": new[1], "m_reason": new[2]})
        if changes:
            stmt = (
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("m_id"))
                .values(
                    delivery_status=bindparam("m_status"),
                    status_at=bindparam("m_at", type_=UTCDateTime()),
                    status_reason=bindparam("m_reason"),
                )
            )
            s.connection().execute(stmt, changes)
        return [str(c["m_id"]) for c in changes]

    def _flag(
        self, s: Session, events: list[IncomingEvent], matches: list[str | None], source: str
    ) -> list[str]:
        """Flag addresses the events condemn: only addresses we sent to or know as a person's,
        never over a flag of that kind the director cleared after the event happened."""
        first: dict[tuple[str, str], IncomingEvent] = {}
        matched: set[tuple[str, str]] = set()
        for ev, mid in zip(events, matches, strict=True):
            key = address_key(ev.address)
            if ev.flag is None or key is None:
                continue
            slot = (key, ev.flag.value)
            if slot not in first or ev.event_time < first[slot].event_time:
                first[slot] = ev
            if mid is not None:
                matched.add(slot)
        if not first:
            return []
        keys = sorted({k for k, _ in first})
        active: set[tuple[str, str]] = set()
        cleared: dict[tuple[str, str], datetime] = {}
        known_people: set[str] = set()
        for part in chunks(keys):
            q = select(AddressFlagRow.address_key, AddressFlagRow.kind, AddressFlagRow.cleared_at).where(
                AddressFlagRow.address_key.in_(part)
            )
            for key, kind, cleared_at in s.execute(q):
                if cleared_at is None:
                    active.add((key, kind))
                else:
                    cleared[(key, kind)] = max(cleared_at, cleared.get((key, kind), cleared_at))
            known_people.update(
                k for k in s.scalars(select(PersonRow.email_key).where(PersonRow.email_key.in_(part))) if k
            )
        rows = []
        for (key, kind), ev in sorted(first.items()):
            if (key, kind) in active or not ((key, kind) in matched or key in known_people):
                continue
            if (key, kind) in cleared and cleared[(key, kind)] >= ev.event_time:
                continue  # old news: the director cleared this after it happened
            rows.append(
                {
                    "address_key": key,
                    "address": (ev.address or key).strip(),
                    "kind": kind,
                    "since": ev.event_time,
                    "diagnostic": (ev.reason or ev.name)[:2000],
                    "source": source,
                }
            )
        if rows:
            s.execute(insert(AddressFlagRow), rows)
        return sorted({str(r["address_key"]) for r in rows})


def _row(ev: IncomingEvent, message_id: str | None, now: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "provider": ev.provider,
        "provider_event_id": ev.provider_event_id[:300],
        "event": ev.name[:50],
        "status": ev.status.value,
        "source": ev.source[:30],
        "event_time": ev.event_time,
        "received_at": now,
        "address": ev.address[:320] if ev.address else None,
        "address_key": address_key(ev.address),
        "reason": ev.reason,
        "raw": ev.raw,
    }
