"""Scheduled batches: their messages wait as 'scheduled' (never claimed by the outbox) until
released as 'queued', or cancelled as 'skipped'. services.schedule decides when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tabmail.store.db import Database
from tabmail.store.sql import as_required_time

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
        sql = (
            "SELECT b.id, b.tournament_slug, b.round_seq, b.event, b.audience, b.scheduled_at, count(m.id) "
            "FROM batches b JOIN messages m ON m.batch_id = b.id "
            "WHERE m.state = 'scheduled' AND b.scheduled_at IS NOT NULL"
        )
        params: dict[str, Any] = {}
        if batch_id is not None:
            sql += " AND b.id = :batch"
            params["batch"] = batch_id
        sql += (
            " GROUP BY b.id, b.tournament_slug, b.round_seq, b.event, b.audience, b.scheduled_at"
            " ORDER BY b.scheduled_at, b.id"
        )
        with self._db.sql() as q:
            rows = q.rows(sql, params)
        return [ScheduledBatch(r[0], r[1], r[2], r[3], r[4], as_required_time(r[5]), int(r[6])) for r in rows]

    def release(self, batch_id: int) -> int:
        """The batch's waiting messages become queued (the outbox sends them). Returns how many."""
        with self._db.sql(write=True) as q:
            return q.run(
                "UPDATE messages SET state = 'queued' WHERE batch_id = :batch AND state = 'scheduled'",
                {"batch": batch_id},
            )

    def cancel(self, batch_id: int) -> int:
        """The batch's waiting messages become skipped (never sent). Returns how many."""
        with self._db.sql(write=True) as q:
            return q.run(
                "UPDATE messages SET state = 'skipped', last_error = :error "
                "WHERE batch_id = :batch AND state = 'scheduled'",
                {"batch": batch_id, "error": CANCELLED},
            )
