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

from sqlalchemy import bindparam, text

from tabmail.store.db import Database
from tabmail.store.models import MessageRow, UTCDateTime
from tabmail.store.outbox_state import OutboxItem, outbox_item, outbox_items_query

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
_TIMES = (
    bindparam("lease", type_=UTCDateTime()),
    bindparam("due", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
)
_RESERVE = text(_RESERVE_SQL.format(batch="")).bindparams(*_TIMES)
_RESERVE_BATCH = text(_RESERVE_SQL.format(batch="AND batch_id = :batch")).bindparams(*_TIMES)


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
        params = {"owner": owner, "lease": lease_until, "due": due, "now": now, "limit": limit}
        statement = _RESERVE if batch_id is None else _RESERVE_BATCH
        if batch_id is not None:
            params["batch"] = batch_id
        with self._db.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(statement, params)]
            if not ids:
                return []
            q = (
                outbox_items_query()
                .where(MessageRow.id.in_(ids))
                .order_by(MessageRow.created_at, MessageRow.id)
            )
            return [outbox_item(r) for r in conn.execute(q)]
