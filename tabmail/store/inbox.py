"""Messages read from the tab room's mailbox, and the lookups inbound matching needs."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.orm import Session

from tabmail.domain.inbox import InboxEntry, SentChoice, SentRef
from tabmail.store.db import Database
from tabmail.store.event_matching import chunks
from tabmail.store.models import BatchRow, InboxMessageRow, MessageRow, StatusEventRow

INBOX = cast(Table, InboxMessageRow.__table__)
REPLY_KINDS = ("reply",)


def _sent(row: Any) -> SentRef:
    mid, header, key, person, slug, sent_at = row
    return SentRef(mid, header, key, person, slug or "", sent_at)


def _sent_query() -> Any:
    return select(
        MessageRow.id,
        MessageRow.message_id_header,
        MessageRow.address_key,
        MessageRow.person_id,
        BatchRow.tournament_slug,
        MessageRow.sent_at,
    ).join(BatchRow, BatchRow.id == MessageRow.batch_id)


class InboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- lookups for matching ---------------------------------------------------------------
    def known_keys(self, keys: Collection[str]) -> set[str]:
        found: set[str] = set()
        with self._db.session() as s:
            for part in chunks(sorted(set(keys))):
                found.update(s.scalars(select(InboxMessageRow.key).where(InboxMessageRow.key.in_(part))))
        return found

    def sent_by_header(self, headers: Collection[str]) -> dict[str, SentRef]:
        """Our messages whose Message-ID is one of ``headers``, by that Message-ID."""
        out: dict[str, SentRef] = {}
        with self._db.session() as s:
            for part in chunks(sorted(set(headers))):
                for row in s.execute(_sent_query().where(MessageRow.message_id_header.in_(part))):
                    ref = _sent(row)
                    if ref.message_id_header:
                        out[ref.message_id_header] = ref
        return out

    def tournament_slugs(self) -> list[str]:
        with self._db.session() as s:
            return sorted({slug for slug in s.scalars(select(BatchRow.tournament_slug).distinct()) if slug})

    def latest_sent_to(
        self, address_key: str, *, slug: str | None = None, since: datetime | None = None
    ) -> SentRef | None:
        with self._db.session() as s:
            q = _sent_query().where(MessageRow.address_key == address_key, MessageRow.sent_at.is_not(None))
            if slug is not None:
                q = q.where(BatchRow.tournament_slug == slug)
            if since is not None:
                q = q.where(MessageRow.sent_at >= since)
            row = s.execute(q.order_by(MessageRow.sent_at.desc(), MessageRow.id.desc()).limit(1)).first()
            return _sent(row) if row is not None else None

    def event_matches(self, provider: str, event_ids: Collection[str]) -> dict[str, str]:
        """The message each stored event was matched to (unmatched ones left out)."""
        out: dict[str, str] = {}
        with self._db.session() as s:
            for part in chunks(sorted(set(event_ids))):
                q = select(StatusEventRow.provider_event_id, StatusEventRow.message_id).where(
                    StatusEventRow.provider == provider, StatusEventRow.provider_event_id.in_(part)
                )
                out.update({eid: mid for eid, mid in s.execute(q) if mid})
        return out

    def addresses_of(self, message_ids: Collection[str]) -> dict[str, str]:
        """The address each of our messages went to."""
        out: dict[str, str] = {}
        with self._db.session() as s:
            for part in chunks(sorted(set(message_ids))):
                q = select(MessageRow.id, MessageRow.address).where(MessageRow.id.in_(part))
                out.update({mid: address for mid, address in s.execute(q) if address})
        return out

    def sent_choices(self, search: str = "", *, limit: int = 200) -> list[SentChoice]:
        """Our sent messages, newest first, whose recipient's name or address contains
        ``search`` (any case), for attaching a reply by hand."""
        with self._db.session() as s:
            q = (
                select(
                    MessageRow.id,
                    MessageRow.recipient_name,
                    MessageRow.address,
                    MessageRow.subject,
                    MessageRow.sent_at,
                    BatchRow.tournament_slug,
                    BatchRow.round_seq,
                )
                .join(BatchRow, BatchRow.id == MessageRow.batch_id)
                .where(MessageRow.sent_at.is_not(None))
            )
            words = search.strip().lower()
            if words:
                pattern = "%" + words.replace("\\", "").replace("%", "").replace("_", "") + "%"
                q = q.where(
                    or_(
                        func.lower(MessageRow.recipient_name).like(pattern),
                        MessageRow.address_key.like(pattern),
                    )
                )
            q = q.order_by(MessageRow.sent_at.desc(), MessageRow.id.desc()).limit(limit)
            return [SentChoice(*row) for row in s.execute(q)]

    def people_of(self, message_ids: Collection[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        with self._db.session() as s:
            for part in chunks(sorted(set(message_ids))):
                q = select(MessageRow.id, MessageRow.person_id).where(MessageRow.id.in_(part))
                out.update({mid: person for mid, person in s.execute(q)})
        return out

    # -- writing ----------------------------------------------------------------------------
    def add(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert new inbox rows; a key already stored (read twice, or by another process) is
        skipped. One transaction."""
        if not rows:
            return 0
        with self._db.session() as s:
            known = self._known(s, [str(r["key"]) for r in rows])
            fresh = [r for r in rows if r["key"] not in known]
            fresh = list({r["key"]: r for r in fresh}.values())
            if fresh:
                s.connection().execute(INBOX.insert(), fresh)
            return len(fresh)

    def _known(self, s: Session, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for part in chunks(sorted(set(keys))):
            found.update(s.scalars(select(InboxMessageRow.key).where(InboxMessageRow.key.in_(part))))
        return found

    def mark_read(self, ids: Iterable[int], when: datetime | None = None) -> int:
        wanted = list(ids)
        if not wanted:
            return 0
        with self._db.session() as s:
            result = s.execute(
                update(InboxMessageRow)
                .where(InboxMessageRow.id.in_(wanted), InboxMessageRow.read_at.is_(None))
                .values(read_at=when or datetime.now(UTC))
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def attach(
        self,
        entry_id: int,
        message_id: str | None,
        *,
        matched_by: str | None,
        note: dict[str, Any] | None,
    ) -> InboxEntry | None:
        """Attach an inbox message to one of our messages by hand (``message_id`` None: detach
        it again). Its person and "from another address" follow the message; ``note`` (who and
        when, or None to remove it) is kept in its detail as ``by_hand``. Returns the entry as
        stored now (None: no such entry)."""
        with self._db.session() as s:
            row = s.get(InboxMessageRow, entry_id)
            if row is None:
                return None
            person: int | None = None
            different = False
            if message_id is not None:
                target = s.get(MessageRow, message_id)
                if target is None:
                    return None
                person = target.person_id
                different = bool(row.from_key) and row.from_key != target.address_key
            row.message_id, row.person_id, row.matched_by = message_id, person, matched_by
            row.different_sender = different
            detail = dict(row.detail or {})
            if note is None:
                detail.pop("by_hand", None)
            else:
                detail["by_hand"] = note
            row.detail = detail
        found = self.entries(entry_id=entry_id, limit=1)
        return found[0] if found else None

    # -- reading ----------------------------------------------------------------------------
    def entries(
        self,
        *,
        kinds: Collection[str] | None = None,
        tournament_slug: str | None = None,
        round_seq: int | None = None,
        message_id: str | None = None,
        person_id: int | None = None,
        unmatched: bool | None = None,
        entry_id: int | None = None,
        limit: int | None = 5000,
    ) -> list[InboxEntry]:
        """Inbox messages, newest first, with what they were attached to."""
        with self._db.session() as s:
            q = (
                select(
                    InboxMessageRow,
                    MessageRow.recipient_name,
                    MessageRow.address,
                    BatchRow.tournament_slug,
                    BatchRow.round_seq,
                )
                .outerjoin(MessageRow, MessageRow.id == InboxMessageRow.message_id)
                .outerjoin(BatchRow, BatchRow.id == MessageRow.batch_id)
            )
            if kinds is not None:
                q = q.where(InboxMessageRow.kind.in_(list(kinds)))
            if tournament_slug is not None:
                q = q.where(BatchRow.tournament_slug == tournament_slug)
            if round_seq is not None:
                q = q.where(BatchRow.round_seq == round_seq)
            if message_id is not None:
                q = q.where(InboxMessageRow.message_id == message_id)
            if person_id is not None:
                q = q.where(InboxMessageRow.person_id == person_id)
            if entry_id is not None:
                q = q.where(InboxMessageRow.id == entry_id)
            if unmatched is True:
                q = q.where(InboxMessageRow.message_id.is_(None))
            elif unmatched is False:
                q = q.where(InboxMessageRow.message_id.is_not(None))
            q = q.order_by(InboxMessageRow.received_at.desc(), InboxMessageRow.id.desc())
            if limit:
                q = q.limit(limit)
            return [_entry(*row) for row in s.execute(q)]

    def raw(self, entry_id: int) -> bytes | None:
        with self._db.session() as s:
            return s.scalar(select(InboxMessageRow.raw).where(InboxMessageRow.id == entry_id))

    def counts(self) -> dict[str, int]:
        """Messages read per kind (ignored ones included)."""
        with self._db.session() as s:
            q = select(InboxMessageRow.kind, func.count()).group_by(InboxMessageRow.kind)
            return {kind: int(n) for kind, n in s.execute(q)}

    def unread_reply_counts(self) -> list[tuple[int | None, int | None, int]]:
        """Unread replies as (tournament id, round id, count): one row per round, and per
        tournament for its batches with no round (round id None). One query."""
        with self._db.session() as s:
            q = (
                select(BatchRow.tournament_id, BatchRow.round_id, func.count())
                .select_from(InboxMessageRow)
                .join(MessageRow, MessageRow.id == InboxMessageRow.message_id)
                .join(BatchRow, BatchRow.id == MessageRow.batch_id)
                .where(InboxMessageRow.kind.in_(REPLY_KINDS), InboxMessageRow.read_at.is_(None))
                .group_by(BatchRow.tournament_id, BatchRow.round_id)
            )
            return [(tid, rid, int(n)) for tid, rid, n in s.execute(q)]

    def reply_counts_in_batches(self, batch_ids: Collection[int]) -> dict[str, tuple[int, int]]:
        """(replies, unread replies) per message of these batches, in one query (a round view)."""
        if not batch_ids:
            return {}
        with self._db.session() as s:
            q = (
                select(
                    InboxMessageRow.message_id,
                    func.count(),
                    func.count().filter(InboxMessageRow.read_at.is_(None)),
                )
                .join(MessageRow, MessageRow.id == InboxMessageRow.message_id)
                .where(MessageRow.batch_id.in_(sorted(set(batch_ids))), InboxMessageRow.kind.in_(REPLY_KINDS))
                .group_by(InboxMessageRow.message_id)
            )
            return {mid: (int(n), int(unread)) for mid, n, unread in s.execute(q) if mid is not None}

    def reply_counts(self, message_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        """(replies, unread replies) per message, for the round view's marker."""
        out: dict[str, tuple[int, int]] = {}
        with self._db.session() as s:
            for part in chunks(sorted(set(message_ids))):
                q = (
                    select(
                        InboxMessageRow.message_id,
                        func.count(),
                        func.count().filter(InboxMessageRow.read_at.is_(None)),
                    )
                    .where(InboxMessageRow.message_id.in_(part), InboxMessageRow.kind.in_(REPLY_KINDS))
                    .group_by(InboxMessageRow.message_id)
                )
                for mid, n, unread in s.execute(q):
                    if mid is not None:
                        out[mid] = (int(n), int(unread))
        return out


def _entry(
    r: InboxMessageRow, name: str | None, address: str | None, slug: str | None, seq: int | None
) -> InboxEntry:
    return InboxEntry(
        id=r.id,
        kind=r.kind,
        received_at=r.received_at,
        from_address=r.from_address,
        from_name=r.from_name,
        subject=r.subject,
        message_id=r.message_id,
        person_id=r.person_id,
        matched_by=r.matched_by,
        different_sender=r.different_sender,
        reply_text=r.reply_text,
        read_at=r.read_at,
        detail=dict(r.detail or {}),
        header_message_id=r.header_message_id,
        recipient_name=name,
        sent_to=address,
        tournament_slug=slug,
        round_seq=seq,
    )
