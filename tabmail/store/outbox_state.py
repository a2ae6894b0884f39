"""The outbox's durable per-message state: claims with leases, results, recovery, re-queueing.

``OutboxStore``: an object each NotificationRepository owns (``repo.outbox``). Every write is
one short statement or transaction of plain portable SQL (the same strings serve SQLAlchemy's
text() on any database and, on a SQLite file, the outbox's own autocommit connection), and every
write is idempotent, so after DatabaseLocked the same call can be made again.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tabmail.domain.notification import MessageState
from tabmail.store.db import (
    LOCK_POLL_MS,
    Database,
    DatabaseLocked,
    is_connection_error,
    is_lock_error,
)
from tabmail.store.sql import SessionSql, Sql, as_time, in_list, sqlite_time

if TYPE_CHECKING:
    from sqlalchemy import Connection

PENDING = (MessageState.QUEUED.value, MessageState.RETRYING.value)
WAL_AUTOCHECKPOINT_PAGES = 10_000  # SQLite's default is 1,000

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
    "UPDATE messages SET state = :state, last_error = COALESCE(:error, last_error), next_attempt_at = :next, "
    "attempts = COALESCE(:attempts, attempts) WHERE id = :id AND lease_owner = :owner"
)
# Results for a message that was never claimed (no connection, settings refused, daily cap):
# only while it is still pending, so another process's claim is never overwritten.
_MARK_WAITING_SQL = (
    "UPDATE messages SET state = :state, last_error = COALESCE(:error, last_error), next_attempt_at = :next, "
    "attempts = COALESCE(:attempts, attempts) WHERE id = :id AND state IN ('queued', 'retrying')"
)
# On a SQLite file the claim reads the flags first, in the same write transaction (_claim_sqlite).
_FLAGGED_AMONG_SQL = (
    "SELECT m.id FROM messages m WHERE m.id IN ({}) AND m.send_despite_flag = FALSE AND EXISTS "
    "(SELECT 1 FROM address_flags f WHERE f.address_key = m.address_key AND f.cleared_at IS NULL)"
)
_CLAIM_UNFLAGGED_SQL = (
    "UPDATE messages SET state = 'sending', attempts = attempts + 1, "
    "lease_owner = :owner, lease_expires_at = :lease "
    "WHERE id = :id AND state IN ('queued', 'retrying') AND backend = :backend"
)
_SKIP_FLAGGED_SQL = (
    "UPDATE messages SET state = 'skipped', last_error = :error "
    "WHERE id = :id AND state IN ('queued', 'retrying') AND send_despite_flag = FALSE"
)
_RENEW_SQL = "UPDATE messages SET lease_expires_at = :lease WHERE state = 'sending' AND lease_owner = :owner"
# What the outbox needs of each message it may send: its ids, envelope, bytes and backend.
OUTBOX_ITEMS_SQL = (
    "SELECT m.id, m.batch_id, m.envelope_from, m.envelope_to, m.address_key, b.raw, m.attempts, "
    "m.backend FROM messages m JOIN message_bodies b ON b.message_id = m.id"
)
_SKIPPED_FLAGGED = "skipped: the address is flagged as bouncing (checked just before sending)"
ABANDONED = (
    "tabmail stopped while this message was being handed to the server; "
    "it may or may not have been sent. Check before resending."
)


def _update_params(
    updates: Sequence[StateUpdate], owner: str | None, *, sqlite: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Parameters for _MARK_SENT, _MARK_UNSENT (claimed) and _MARK_WAITING (never claimed);
    ``sqlite``: times already as SQLite's text (the outbox's own connection, no conversion)."""
    when = sqlite_time if sqlite else (lambda t: t)
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
            "error": None if u.error is None else u.error[:4000],  # None: keep what was said before
            "next": when(u.next_attempt_at),
            "attempts": u.attempts,
        }
        if u.claimed:
            unsent.append({**params, "owner": owner})
        else:
            waiting.append(params)
    return sent, unsent, waiting


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """A message's new outbox state, written by ``NotificationRepository.commit``.

    ``claimed``: the message was claimed by this process (written only while its lease is this
    process's); otherwise it was never handed over (written only while still pending).
    ``error``: the words to keep as its last error (None: leave them, as a withdrawn claim does).
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


def outbox_item(r: Any) -> OutboxItem:
    """A row of OUTBOX_ITEMS_SQL as an OutboxItem."""
    return OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5] or b"", r[6], r[7])


class OutboxStore:
    """The outbox's durable per-message state, owned by NotificationRepository as ``outbox``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_lock = threading.Lock()
        self._lease_cache: tuple[datetime, str | None] | None = None
        self._server: Connection | None = None  # a server database's autocommit connection
        self._server_lock = threading.Lock()

    def in_flight(self) -> list[InFlight]:
        """Messages in 'sending', with who holds them and until when."""
        with self._db.sql() as q:
            rows = q.rows("SELECT id, lease_owner, lease_expires_at FROM messages WHERE state = 'sending'")
        return [InFlight(r[0], r[1], as_time(r[2])) for r in rows]

    def mark_abandoned(self, owner: str | None, expired_before: datetime | None = None) -> list[str]:
        """'sending' -> uncertain for the messages ``owner`` holds (None: those with no lease, from
        before leases existed), only those whose lease ended before ``expired_before`` when given.
        The same condition is checked again in the update, so a lease renewed meanwhile stands."""
        where = "state = 'sending' AND " + (
            "lease_owner IS NULL" if owner is None else "lease_owner = :owner"
        )
        params: dict[str, Any] = {"owner": owner}
        if expired_before is not None:
            where += " AND lease_expires_at < :before"
            params["before"] = expired_before
        with self._db.sql(write=True) as q:
            ids = [r[0] for r in q.rows(f"SELECT id FROM messages WHERE {where}", params)]
            if ids:
                params["error"] = ABANDONED
                q.run(
                    "UPDATE messages SET state = 'uncertain', last_error = :error "
                    f"WHERE {where} AND " + q.one_of("id", "ids", ids, params),
                    params,
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
        if self._db.path is not None:
            con = self._outbox_connection()
            with self._sqlite_lock:
                try:
                    cur = con.execute(_RENEW_SQL, {"owner": owner, "lease": sqlite_time(lease_until)})
                except sqlite3.OperationalError as exc:
                    raise self._locked(exc) from None
            return int(cur.rowcount)
        try:
            with self._db.sql(write=True) as q:
                return q.run(_RENEW_SQL, {"owner": owner, "lease": lease_until})
        except Exception as exc:
            raise self._locked(exc) from None

    def due(self, now: datetime, limit: int = 500, batch_id: int | None = None) -> list[OutboxItem]:
        sql = (
            OUTBOX_ITEMS_SQL
            + " WHERE (m.state = 'queued' OR (m.state = 'retrying' AND m.next_attempt_at <= :now))"
        )
        params: dict[str, Any] = {"now": now, "limit": limit}
        if batch_id is not None:
            sql += " AND m.batch_id = :batch"
            params["batch"] = batch_id
        with self._db.sql() as q:
            return [outbox_item(r) for r in q.rows(sql + " ORDER BY m.created_at, m.id LIMIT :limit", params)]

    @staticmethod
    def _retrying(batch_id: int | None) -> tuple[str, dict[str, Any]]:
        if batch_id is None:
            return "state = 'retrying'", {}
        return "state = 'retrying' AND batch_id = :batch", {"batch": batch_id}

    def next_retry_at(self, batch_id: int | None = None) -> datetime | None:
        where, params = self._retrying(batch_id)
        with self._db.sql() as q:
            return as_time(q.scalar(f"SELECT min(next_attempt_at) FROM messages WHERE {where}", params))

    def retry_summary(self, batch_id: int | None = None) -> tuple[datetime | None, int, str]:
        """(the earliest retry, how many messages wait for one, the error of the earliest)."""
        where, params = self._retrying(batch_id)
        with self._db.sql() as q:
            first = q.one(
                f"SELECT next_attempt_at, last_error FROM messages WHERE {where} "
                "ORDER BY next_attempt_at LIMIT 1",
                params,
            )
            if first is None:
                return None, 0, ""
            count = q.scalar(f"SELECT count(*) FROM messages WHERE {where}", params)
        return as_time(first[0]), int(count or 0), first[1] or ""

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
        if self._db.path is not None:  # a SQLite file
            try:
                return self._commit_sqlite(updates, claim, by)
            except sqlite3.OperationalError as exc:
                raise self._locked(exc) from None
        if not self._db.is_sqlite:
            from sqlalchemy.exc import DBAPIError

            # A server database: every statement here is atomic and idempotent on its own, so
            # each commits by itself (no BEGIN/COMMIT round trips; several senders on one
            # database spend most of their time waiting for the server's answers).
            with self._server_lock:
                try:  # connecting too: after a failure the next call makes a new connection
                    return self._commit_portable(SessionSql(self._server_connection()), updates, claim, by)
                except DBAPIError as exc:
                    self._drop_server_connection()  # the next call connects afresh
                    raise self._locked(exc) from None  # a server gone: one plain line
        try:  # an in-memory database
            with self._db.sql(write=True) as q:
                return self._commit_portable(q, updates, claim, by)
        except Exception as exc:
            raise self._locked(exc) from None

    def _commit_portable(
        self, q: Sql, updates: Sequence[StateUpdate], claim: Sequence[str], by: Claim | None
    ) -> tuple[list[bool], list[str]]:
        sent, unsent, waiting = _update_params(updates, by.owner if by else None, sqlite=False)
        q.many(_MARK_SENT_SQL, sent)
        q.many(_MARK_UNSENT_SQL, unsent)
        q.many(_MARK_WAITING_SQL, waiting)
        if not claim:
            return [], []
        assert by is not None
        return self._claim(q, claim, by)

    def claim(self, ids: Sequence[str], by: Claim) -> tuple[list[bool], list[str]]:
        return self.commit((), claim=ids, by=by)

    def _locked(self, exc: Exception) -> Exception:
        if is_lock_error(exc):
            return DatabaseLocked("the database is locked by another process")
        if not self._db.is_sqlite and is_connection_error(exc):
            return self._db.unreachable(exc)
        return exc

    def _commit_sqlite(
        self, updates: Sequence[StateUpdate], claim: Sequence[str], by: Claim | None
    ) -> tuple[list[bool], list[str]]:
        """``commit`` for SQLite on a dedicated DBAPI connection in autocommit mode: the same
        statements as the portable path without SQLAlchemy's per-statement overhead, which was
        most of the outbox's cost per message (tests/bench/bench_send.py). Each statement is
        atomic on its own; the results and the claim of one call are one transaction."""
        con = self._outbox_connection()
        # One transaction for all of it (one WAL commit instead of one per statement): the
        # results and the next claim are durable together, before the message is handed over.
        # A claim reads the flags, then writes: one transaction whenever there is one.
        transaction = bool(claim) or len(updates) > 1
        sent, unsent, waiting = _update_params(updates, by.owner if by else None, sqlite=True)
        with self._sqlite_lock:
            if transaction:
                con.execute("BEGIN IMMEDIATE")
            try:
                if sent:
                    con.executemany(_MARK_SENT_SQL, sent)
                if unsent:
                    con.executemany(_MARK_UNSENT_SQL, unsent)
                if waiting:
                    con.executemany(_MARK_WAITING_SQL, waiting)
                outcome = self._claim_sqlite(con, claim, by)
                if transaction:
                    con.execute("COMMIT")
            except BaseException:
                if transaction and con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            return outcome

    def _claim_sqlite(
        self, con: sqlite3.Connection, claim: Sequence[str], by: Claim | None
    ) -> tuple[list[bool], list[str]]:
        """The claim of ``_claim`` in the caller's write transaction: which of the messages have
        a flagged address (one SELECT), then one compare-and-set per message. Holding the write
        lock, nobody flags an address in between. (The portable statement checks the flag in
        the UPDATE itself; on SQLite that subquery made each claim ~4x slower: ~230 against
        ~57 us for the bench round's 1,150 claims in groups of 8.)"""
        if not claim:
            return [], []
        assert by is not None
        flagged = {
            r[0] for r in con.execute(_FLAGGED_AMONG_SQL.format(", ".join("?" * len(claim))), list(claim))
        }
        params = {
            "id": "",
            "owner": by.owner,
            "lease": self._lease_text(by.lease_until),
            "backend": by.backend,
        }
        ok: list[bool] = []
        skipped: list[str] = []
        for mid in claim:
            if mid in flagged:
                ok.append(False)
                if con.execute(_SKIP_FLAGGED_SQL, {"error": _SKIPPED_FLAGGED, "id": mid}).rowcount == 1:
                    skipped.append(mid)
                continue
            params["id"] = mid
            ok.append(con.execute(_CLAIM_UNFLAGGED_SQL, params).rowcount == 1)
        return ok, skipped

    def _lease_text(self, lease_until: datetime) -> str | None:
        """The lease time as stored, formatted once per lease (a claim per message reuses it)."""
        cached = self._lease_cache
        if cached is None or cached[0] != lease_until:
            cached = (lease_until, sqlite_time(lease_until))
            self._lease_cache = cached
        return cached[1]

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
            # The outbox's own commits leave the WAL to grow to ~40 MB before checkpointing it:
            # a checkpoint in the middle of a send (copying pages into the database file and
            # syncing it) cost more than the claims and results themselves (bench writes). The
            # next checkpoint of any connection, or the last one closing, does it once.
            con.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            self._sqlite = con
        return self._sqlite

    def close(self) -> None:
        """Close the outbox's own connection (AppContext.close calls this)."""
        with self._sqlite_lock:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
        with self._server_lock:
            self._drop_server_connection()

    def _server_connection(self) -> Connection:
        """A server database's connection of the outbox's own, in autocommit mode, kept between
        commits (no pool checkout, no BEGIN/COMMIT round trips per message)."""
        if self._server is None:
            self._server = self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._server

    def _drop_server_connection(self) -> None:
        conn, self._server = self._server, None
        if conn is not None:
            try:
                conn.invalidate()
            finally:
                conn.close()

    def _claim(self, q: Sql, ids: Sequence[str], by: Claim) -> tuple[list[bool], list[str]]:
        """Atomically move pending messages to 'sending' (attempts + 1) under ``by``'s lease,
        checking address flags and the backend in the same statement. Returns one bool per id,
        and the ids skipped because their address is flagged (now 'skipped'; the director's
        explicit override is respected).

        One short transaction: this runs once per message, right before it is handed over.
        """
        wanted = list(ids)
        lease = {"owner": by.owner, "lease": by.lease_until, "backend": by.backend}
        if len(wanted) == 1:
            if q.run(_CLAIM_ONE_SQL, {"id": wanted[0], **lease}) == 1:
                return [True], []
            if q.run(_SKIP_ONE_SQL, {"id": wanted[0], "error": _SKIPPED_FLAGGED}) == 1:
                return [False], wanted
            return [False], []
        params: dict[str, Any] = dict(lease)
        claimed = {
            r[0]
            for r in q.rows(
                "UPDATE messages SET state = 'sending', attempts = attempts + 1, "
                "lease_owner = :owner, lease_expires_at = :lease "
                f"WHERE {q.one_of('id', 'ids', wanted, params)} AND state IN ('queued', 'retrying') "
                f"AND backend = :backend AND (send_despite_flag = TRUE OR address_key NOT IN ({_FLAGGED})) "
                "RETURNING id",
                params,
            )
        }
        rest = [i for i in wanted if i not in claimed]
        skipped: list[str] = []
        if rest:
            params = {"error": _SKIPPED_FLAGGED}
            skipped = [
                r[0]
                for r in q.rows(
                    "UPDATE messages SET state = 'skipped', last_error = :error "
                    f"WHERE {q.one_of('id', 'ids', rest, params)} AND state IN ('queued', 'retrying') "
                    f"AND send_despite_flag = FALSE AND address_key IN ({_FLAGGED}) RETURNING id",
                    params,
                )
            ]
        return [i in claimed for i in wanted], skipped

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
        params: dict[str, Any] = {"backend": backend}
        where = "state " + in_list(
            "state", [x.value for x in states if x is not MessageState.SENDING], params
        )
        if message_ids is not None:
            where += " AND id " + in_list("id", list(message_ids), params)
        if batch_id is not None:
            where += " AND batch_id = :batch"
            params["batch"] = batch_id
        with self._db.sql(write=True) as q:
            ids = [r[0] for r in q.rows(f"SELECT id FROM messages WHERE {where}", params)]
            if ids:
                q.run(
                    "UPDATE messages SET state = 'queued', next_attempt_at = NULL, attempts = 0, "
                    f"backend = :backend, last_error = NULL WHERE {where}",
                    params,
                )
            return ids

    def pending_backends(self, batch_id: int | None = None) -> dict[str, int]:
        """Pending messages per backend they are queued for."""
        sql = "SELECT backend, count(*) FROM messages WHERE state IN ('queued', 'retrying')"
        params: dict[str, Any] = {}
        if batch_id is not None:
            sql += " AND batch_id = :batch"
            params["batch"] = batch_id
        with self._db.sql() as q:
            return {b: int(n) for b, n in q.rows(sql + " GROUP BY backend", params)}
