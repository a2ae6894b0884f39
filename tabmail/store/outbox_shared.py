"""Several senders on one PostgreSQL database: each takes its own share of the due messages.

Without this, every sender reads the same due messages in the same order and tries to claim each
one: for every message sent, the other senders each make a claim that fails, and a claim waits
for the row lock of the sender whose claim is in progress. ``Reservations.reserve`` instead
marks a few due messages as this sender's (``lease_owner`` and ``lease_expires_at`` on a message
still 'queued' or 'retrying', taken with FOR UPDATE SKIP LOCKED, so two senders reserving at
once get different messages) and returns them to send.

A reservation is only a hint about who should try a message: the compare-and-set claim right
before the hand-over (outbox_state.py) still decides, so a message is never handed over twice
whatever reservations say. A reservation ends with its lease: a sender that vanished leaves its
reserved messages 'queued', for anyone once the lease has passed (and a sender that finds nothing
left to reserve falls back to the plain due list, reserved or not, so nothing waits on a lease
while some sender runs). SQLite (one laptop) does not use this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tabmail.store.db import Database
from tabmail.store.outbox_state import OUTBOX_ITEMS_SQL, OutboxItem, outbox_item

_RESERVE_SQL = """
UPDATE messages SET lease_owner = :owner, lease_expires_at = :lease
WHERE id IN (
    SELECT id FROM messages
    WHERE (state = 'queued' OR (state = 'retrying' AND next_attempt_at <= :due))
      AND (lease_owner IS NULL OR lease_owner = :owner OR lease_expires_at IS NULL
           OR lease_expires_at < :now)
      {batch}
    ORDER BY created_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


class Reservations:
    """Due messages reserved for one sender at a time (PostgreSQL only)."""

    def __init__(self, db: Database) -> None:
        if db.is_sqlite:
            raise ValueError("reservations are for a database several senders share")
        self._db = db

    def reserve(
        self,
        *,
        owner: str,
        lease_until: datetime,
        due: datetime,
        now: datetime,
        limit: int,
        batch_id: int | None = None,
    ) -> list[OutboxItem]:
        """Reserve up to ``limit`` messages due at ``due`` that no other sender holds a live
        reservation on (``now``: the wall clock the leases are judged by), and return them with
        their bytes, oldest first. Empty: nothing left that is not someone else's."""
        params: dict[str, Any] = {
            "owner": owner,
            "lease": lease_until,
            "due": due,
            "now": now,
            "limit": limit,
        }
        batch = ""
        if batch_id is not None:
            batch = "AND batch_id = :batch"
            params["batch"] = batch_id
        with self._db.sql(write=True) as q:
            ids = [r[0] for r in q.rows(_RESERVE_SQL.format(batch=batch), params)]
            if not ids:
                return []
            found: dict[str, Any] = {}
            where = q.one_of("m.id", "ids", ids, found)
            rows = q.rows(f"{OUTBOX_ITEMS_SQL} WHERE {where} ORDER BY m.created_at, m.id", found)
            return [outbox_item(r) for r in rows]
