"""Scheduled batches: their messages wait as 'scheduled' (never claimed by the outbox) until
released as 'queued', or cancelled as 'skipped'. services.schedule decides when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from tabmail.domain.notification import MessageState
from tabmail.store.db import Database
from tabmail.store.models import BatchRow, MessageRow

CANCELLED = "cancelled before its scheduled time"


@dataclass(frozen=True, slots=True)
class ScheduledBatch:
    batch_id: int
    tournament_slug: str
    round_seq: int | None
    event: str
    audience: str | None
    at: datetime
    count: int  # messages still waiting


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def waiting(self, batch_id: int | None = None) -> list[ScheduledBatch]:
        """Batches with messages still waiting for their time, earliest first."""
        with self._db.session() as s:
            q = (
                select(
                    BatchRow.id,
                    BatchRow.tournament_slug,
                    BatchRow.round_seq,
                    BatchRow.event,
                    BatchRow.audience,
                    BatchRow.scheduled_at,
                    func.count(MessageRow.id),
                )
                .join(MessageRow, MessageRow.batch_id == BatchRow.id)
                .where(MessageRow.state == MessageState.SCHEDULED.value, BatchRow.scheduled_at.is_not(None))
                .group_by(BatchRow.id)
                .order_by(BatchRow.scheduled_at, BatchRow.id)
            )
            if batch_id is not None:
                q = q.where(BatchRow.id == batch_id)
            return [
                ScheduledBatch(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]))
                for r in s.execute(q)
                if r[5] is not None
            ]

    def release(self, batch_id: int) -> int:
        """The batch's waiting messages become queued (the outbox sends them). Returns how many."""
        with self._db.write_session() as s:
            result = s.execute(
                update(MessageRow)
                .where(MessageRow.batch_id == batch_id, MessageRow.state == MessageState.SCHEDULED.value)
                .values(state=MessageState.QUEUED.value)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def cancel(self, batch_id: int) -> int:
        """The batch's waiting messages become skipped (never sent). Returns how many."""
        with self._db.write_session() as s:
            result = s.execute(
                update(MessageRow)
                .where(MessageRow.batch_id == batch_id, MessageRow.state == MessageState.SCHEDULED.value)
                .values(state=MessageState.SKIPPED.value, last_error=CANCELLED)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
