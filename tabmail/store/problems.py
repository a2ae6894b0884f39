"""Problems across tournaments, and the director's own resolutions of them.

``candidates`` reads, in two queries whatever the size of the database, every message that may
be a problem (by state or delivery status) or resends one (a delivered resend resolves its
original), through a partial index, together with where it was sent. Which of them are unresolved
problems is the domain's call (``tabmail.domain.problems``), made in ``services/problems.py``.

Plain SQL through ``Database.sql()`` (store/sql.py): on a SQLite file ``tabmail problems`` loads
no SQLAlchemy (the start-up test checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, Message
from tabmail.domain.problems import Resolution
from tabmail.store.db import Database
from tabmail.store.problem_index import MAYBE_PROBLEM_SQL
from tabmail.store.reading import MESSAGE_FIELDS, message_from_record
from tabmail.store.sql import Sql, as_required_time, chunks

# The problem query: the message listing's columns (read by ``message_from_record``) but the
# contexts, reasons and header ids nobody shows here, left NULL. Its WHERE is the partial
# index's condition word for word: SQLite picks the index only for that very text
# (store/problem_index.py).
_NOT_SHOWN = {"message_id_header", "provider_message_id", "sg_message_id", "reasons", "context"}
CANDIDATES_SQL = (
    f"SELECT {', '.join('NULL' if f in _NOT_SHOWN else f for f in MESSAGE_FIELDS)} FROM messages "
    f"WHERE {MAYBE_PROBLEM_SQL} ORDER BY batch_id, created_at, id"
)

_SENT = (
    "SELECT b.id, b.tournament_id, t.name, b.tournament_slug, b.round_id, r.name, b.round_seq, "
    "b.event, b.audience, b.backend FROM batches b "
    "LEFT OUTER JOIN tournaments t ON t.id = b.tournament_id "
    "LEFT OUTER JOIN rounds r ON r.id = b.round_id WHERE "
)

# One statement for a new resolution and a changed one (SQLite and PostgreSQL both take it).
_RESOLVE = (
    "INSERT INTO problem_resolutions (message_id, reason, resolved_at, resolved_by) "
    "VALUES (:message_id, :reason, :at, :by) "
    "ON CONFLICT (message_id) DO UPDATE SET reason = excluded.reason, "
    "resolved_at = excluded.resolved_at, resolved_by = excluded.resolved_by"
)


@dataclass(frozen=True, slots=True)
class Sent:
    """Where a message was sent from: its batch's tournament and round."""

    batch_id: int
    tournament_id: int
    tournament_name: str
    round_id: int | None
    round_name: str
    event: str
    audience: str | None
    backend: str


@dataclass(frozen=True, slots=True)
class Candidates:
    messages: list[Message]  # possible problems and every resend in their batches
    batches: dict[int, Sent]


class ProblemRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def candidates(self, *, tournament_id: int | None = None, round_id: int | None = None) -> Candidates:
        """Every message that may be a problem or resends one (through the partial index
        ``ix_messages_maybe_problem``), without the bodies and contexts nobody shows here."""
        messages = [m for part in self.candidate_chunks() for m in part]
        batches = self.sent_for(sorted({m.batch_id for m in messages}))
        wanted = {
            b
            for b, sent in batches.items()
            if (tournament_id is None or sent.tournament_id == tournament_id)
            and (round_id is None or sent.round_id == round_id)
        }
        return Candidates([m for m in messages if m.batch_id in wanted], {b: batches[b] for b in wanted})

    def candidate_chunks(self, size: int = 500) -> Iterator[list[Message]]:
        """``candidates``' messages, ``size`` at a time (ordered by batch, then time), so a caller
        on the GUI thread can do other work between chunks: each chunk is read when asked for."""
        with self._db.sql() as q:
            for part in q.stream(CANDIDATES_SQL, None, size):
                yield [message_from_record(r) for r in part]

    def sent_for(self, batch_ids: Sequence[int]) -> dict[int, Sent]:
        """Where each batch was sent from (tournament, round, backend)."""
        if not batch_ids:
            return {}
        with self._db.sql() as q:
            return self._batches(q, list(batch_ids))

    def _batches(self, q: Sql, ids: list[int]) -> dict[int, Sent]:
        batches: dict[int, Sent] = {}
        for part in chunks(ids):
            params: dict[str, Any] = {}
            where = q.one_of("b.id", "batch", part, params)
            for bid, tid, tname, slug, rid, rname, rseq, event, audience, backend in q.rows(
                _SENT + where, params
            ):
                batches[bid] = Sent(
                    batch_id=bid,
                    tournament_id=tid or 0,
                    tournament_name=tname or slug,
                    round_id=rid,
                    round_name=rname or (f"Round {rseq}" if rseq else TOURNAMENT_WIDE_NAME),
                    event=event,
                    audience=audience,
                    backend=backend,
                )
        return batches

    def current_addresses(self, person_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Person id -> (address, address key) for people whose address is valid today."""
        if not person_ids:
            return {}
        params: dict[str, Any] = {}
        with self._db.sql() as q:
            where = q.one_of("id", "person", list(set(person_ids)), params)
            sql = f"SELECT id, email, email_key FROM people WHERE {where} AND email_valid = TRUE"
            return {pid: (email, key) for pid, email, key in q.rows(sql, params) if email}

    # -- the director's resolutions -------------------------------------------------------------
    def resolve(self, message_id: str, reason: str, by: str = "", at: datetime | None = None) -> Resolution:
        """Mark a message resolved by hand; resolving it again replaces the reason, time and who."""
        when = at or datetime.now(UTC)
        with self._db.sql(write=True) as q:
            q.run(_RESOLVE, {"message_id": message_id, "reason": reason, "at": when, "by": by})
        return Resolution(message_id, reason, when, by)

    def unresolve(self, message_id: str) -> bool:
        with self._db.sql(write=True) as q:
            return q.run("DELETE FROM problem_resolutions WHERE message_id = :id", {"id": message_id}) > 0

    def resolutions(self, ids: Sequence[str] | None = None) -> dict[str, Resolution]:
        sql = "SELECT message_id, reason, resolved_at, resolved_by FROM problem_resolutions"
        params: dict[str, Any] = {}
        if ids is not None and not ids:
            return {}
        with self._db.sql() as q:
            if ids is not None:
                sql += " WHERE " + q.one_of("message_id", "id", list(ids), params)
            return {
                mid: Resolution(mid, reason, as_required_time(at), by)
                for mid, reason, at, by in q.rows(sql, params)
            }
