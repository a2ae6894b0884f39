"""Problems across tournaments, and the director's own resolutions of them.

``candidates`` reads, in two queries whatever the size of the database, every message that may
be a problem (by state or delivery status) together with where it was sent, plus every resend
in the same batches (a delivered resend resolves its original). Which of them are unresolved
problems is the domain's call (``tabmail.domain.problems``), made in ``services/problems.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, or_, select

from tabmail.domain.notification import DeliveryStatus, Message, MessageState
from tabmail.domain.problems import Resolution
from tabmail.store.db import Database
from tabmail.store.models import BatchRow, MessageRow, PersonRow, ResolutionRow, RoundRow, TournamentRow
from tabmail.store.notifications import message_from_row

# States and delivery statuses a problem can have (domain.problems.PROBLEM_CATEGORIES).
_PROBLEM_STATES = (MessageState.FAILED.value, MessageState.UNCERTAIN.value, MessageState.SKIPPED.value)
_PROBLEM_STATUSES = (
    DeliveryStatus.BOUNCED.value,
    DeliveryStatus.BLOCKED.value,
    DeliveryStatus.DROPPED.value,
    DeliveryStatus.SPAM_REPORT.value,
    DeliveryStatus.UNSUBSCRIBED.value,
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

    def candidates(
        self,
        *,
        tournament_id: int | None = None,
        round_id: int | None = None,
        batch_ids: Sequence[int] | None = None,
    ) -> Candidates:
        with self._db.session() as s:
            maybe = or_(
                MessageRow.state.in_(_PROBLEM_STATES),
                MessageRow.state.in_((MessageState.SENT.value, MessageState.UNCERTAIN.value))
                & MessageRow.delivery_status.in_(_PROBLEM_STATUSES),
            )
            scope = (
                select(MessageRow.batch_id).join(BatchRow, BatchRow.id == MessageRow.batch_id).where(maybe)
            )
            if tournament_id is not None:
                scope = scope.where(BatchRow.tournament_id == tournament_id)
            if round_id is not None:
                scope = scope.where(BatchRow.round_id == round_id)
            if batch_ids is not None:
                scope = scope.where(MessageRow.batch_id.in_(list(batch_ids)))
            ids = sorted(set(s.scalars(scope.distinct())))
            if not ids:
                return Candidates([], {})
            rows = s.scalars(
                select(MessageRow)
                .where(MessageRow.batch_id.in_(ids), or_(maybe, MessageRow.resend_of.is_not(None)))
                .order_by(MessageRow.batch_id, MessageRow.created_at, MessageRow.id)
            )
            messages = [message_from_row(r) for r in rows]
            batches: dict[int, Sent] = {}
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
                .where(BatchRow.id.in_(ids))
            )
            for bid, tid, tname, slug, rid, rname, rseq, event, audience, backend in s.execute(q):
                batches[bid] = Sent(
                    batch_id=bid,
                    tournament_id=tid or 0,
                    tournament_name=tname or slug,
                    round_id=rid,
                    round_name=rname or (f"Round {rseq}" if rseq else "No round"),
                    event=event,
                    audience=audience,
                    backend=backend,
                )
            return Candidates(messages, batches)

    def current_addresses(self, person_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """Person id -> (address, address key) for people whose address is valid today."""
        if not person_ids:
            return {}
        with self._db.session() as s:
            q = select(PersonRow.id, PersonRow.email, PersonRow.email_key).where(
                PersonRow.id.in_(list(set(person_ids))), PersonRow.email_valid.is_(True)
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
                q = q.where(ResolutionRow.message_id.in_(list(ids)))
            return {
                r.message_id: Resolution(r.message_id, r.reason, r.resolved_at, r.resolved_by)
                for r in s.scalars(q)
            }
