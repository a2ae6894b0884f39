"""Problems across tournaments, and the director's own resolutions of them.

``candidates`` reads, in two queries whatever the size of the database, every message that may
be a problem (by state or delivery status) or resends one (a delivered resend resolves its
original), through a partial index, together with where it was sent. Which of them are unresolved
problems is the domain's call (``tabmail.domain.problems``), made in ``services/problems.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, delete, select, text, type_coerce
from sqlalchemy.orm import Session

from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, DeliveryStatus, Message, MessageState
from tabmail.domain.problems import Resolution
from tabmail.store.db import Database
from tabmail.store.models import (
    MAYBE_PROBLEM_SQL,
    BatchRow,
    MessageRow,
    PersonRow,
    ResolutionRow,
    RoundRow,
    TournamentRow,
)
from tabmail.store.sql import as_time

_COLUMNS = (
    MessageRow.id,
    MessageRow.batch_id,
    MessageRow.person_id,
    MessageRow.recipient_name,
    MessageRow.address,
    MessageRow.state,
    MessageRow.attempts,
    MessageRow.last_error,
    MessageRow.delivery_status,
    type_coerce(MessageRow.status_at, String).label("status_at"),
    MessageRow.status_reason,
    MessageRow.resend_of,
    type_coerce(MessageRow.created_at, String).label("created_at"),
    type_coerce(MessageRow.sent_at, String).label("sent_at"),
    type_coerce(MessageRow.next_attempt_at, String).label("next_attempt_at"),
    MessageRow.role,
    MessageRow.made_by,
    MessageRow.made_on,
)


def _message(r: Any) -> Message:
    return Message(
        id=r.id,
        batch_id=r.batch_id,
        person_id=r.person_id,
        recipient_name=r.recipient_name,
        address=r.address,
        state=MessageState(r.state),
        attempts=r.attempts,
        last_error=r.last_error,
        delivery_status=DeliveryStatus(r.delivery_status),
        status_at=as_time(r.status_at),
        status_reason=r.status_reason,
        resend_of=r.resend_of,
        created_at=as_time(r.created_at),
        sent_at=as_time(r.sent_at),
        next_attempt_at=as_time(r.next_attempt_at),
        role=r.role,
        made_by=r.made_by,
        made_on=r.made_on,
    )


def _stamp(at: datetime | None) -> float:
    return 0.0 if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


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
        on the GUI thread can do other work between chunks."""
        with self._db.session() as s:
            q = (
                select(*_COLUMNS)
                .where(text(MAYBE_PROBLEM_SQL))
                .order_by(MessageRow.batch_id, MessageRow.created_at, MessageRow.id)
            )
            for part in s.execute(q.execution_options(yield_per=size)).partitions(size):
                yield [_message(r) for r in part]

    def sent_for(self, batch_ids: Sequence[int]) -> dict[int, Sent]:
        """Where each batch was sent from (tournament, round, backend)."""
        if not batch_ids:
            return {}
        with self._db.session() as s:
            return self._batches(s, list(batch_ids))

    def _batches(self, s: Session, ids: list[int]) -> dict[int, Sent]:
        batches: dict[int, Sent] = {}
        for part in range(0, len(ids), 900):
            q = (
                select(
                    BatchRow.id,
                    BatchRow.tournament_id,
                    TournamentRow.name,
                    BatchRow.tournament_slug,
                    BatchRow.round_id,
                    RoundRow.name,
                    BatchRow.round_seq,
                    BatchRow.event,
                    BatchRow.audience,
                    BatchRow.backend,
                )
                .outerjoin(TournamentRow, TournamentRow.id == BatchRow.tournament_id)
                .outerjoin(RoundRow, RoundRow.id == BatchRow.round_id)
                .where(BatchRow.id.in_(ids[part : part + 900]))
            )
            for bid, tid, tname, slug, rid, rname, rseq, event, audience, backend in s.execute(q):
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
        with self._db.session() as s:
            q = select(PersonRow.id, PersonRow.email, PersonRow.email_key).where(
                self._db.one_of(PersonRow.id, list(set(person_ids))), PersonRow.email_valid.is_(True)
            )
            return {pid: (email, key) for pid, email, key in s.execute(q) if email}

    # -- the director's resolutions -------------------------------------------------------------
    def resolve(self, message_id: str, reason: str, by: str = "", at: datetime | None = None) -> Resolution:
        when = at or datetime.now(UTC)
        with self._db.session() as s:
            row = s.get(ResolutionRow, message_id)
            if row is None:
                row = ResolutionRow(message_id=message_id, reason=reason, resolved_at=when, resolved_by=by)
                s.add(row)
            else:
                row.reason, row.resolved_at, row.resolved_by = reason, when, by
        return Resolution(message_id, reason, when, by)

    def unresolve(self, message_id: str) -> bool:
        with self._db.session() as s:
            res = s.execute(delete(ResolutionRow).where(ResolutionRow.message_id == message_id))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def resolutions(self, ids: Sequence[str] | None = None) -> dict[str, Resolution]:
        with self._db.session() as s:
            q = select(ResolutionRow)
            if ids is not None:
                if not ids:
                    return {}
                q = q.where(self._db.one_of(ResolutionRow.message_id, ids))
            return {
                r.message_id: Resolution(r.message_id, r.reason, r.resolved_at, r.resolved_by)
                for r in s.scalars(q)
            }
