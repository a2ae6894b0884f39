"""Messages read from the tab room's mailbox, and the lookups inbound matching needs.

Plain SQL (store/sql.py) on either engine: importing this loads neither SQLAlchemy nor the ORM
models. Tables and columns are those of ``InboxMessageRow``, ``MessageRow``, ``BatchRow`` and
``StatusEventRow`` in store/models.py.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tabmail.domain.inbox import InboxEntry, SentChoice, SentRef
from tabmail.store.db import Database
from tabmail.store.sql import Json, Sql, as_time, chunks

REPLY_KIND = "reply"

# inbox_messages' columns but id, with the value the ORM model gives one a row leaves out.
_NEW_ROW: dict[str, Any] = {
    "key": None,
    "folder": "",
    "uidvalidity": 0,
    "uid": 0,
    "kind": None,
    "received_at": None,
    "processed_at": None,  # now
    "header_message_id": None,
    "from_address": None,
    "from_key": None,
    "from_name": "",
    "subject": "",
    "message_id": None,
    "person_id": None,
    "matched_by": None,
    "different_sender": False,
    "reply_text": None,
    "detail": None,  # {}
    "raw": None,
    "truncated": False,
    "read_at": None,
}
_INSERT = (
    f"INSERT INTO inbox_messages ({', '.join(_NEW_ROW)}) VALUES ({', '.join(':' + c for c in _NEW_ROW)}) "
    "ON CONFLICT (key) DO NOTHING"
)

_SENT_FIELDS = "m.id, m.message_id_header, m.address_key, m.person_id, b.tournament_slug, m.sent_at"
_SENT_FROM = "FROM messages m JOIN batches b ON b.id = m.batch_id"

_ENTRY_FIELDS = (
    "i.id, i.kind, i.received_at, i.from_address, i.from_name, i.subject, i.message_id, i.person_id, "
    "i.matched_by, i.different_sender, i.reply_text, i.read_at, i.detail, i.header_message_id, "
    "m.recipient_name, m.address, b.tournament_slug, b.round_seq"
)
_ENTRY_FROM = "FROM inbox_messages i LEFT JOIN messages m ON m.id = i.message_id LEFT JOIN batches b ON b.id = m.batch_id"


def _sent(row: Sequence[Any]) -> SentRef:
    """A SentRef from a row of ``_SENT_FIELDS``."""
    mid, header, key, person, slug, sent_at = row
    return SentRef(mid, header, key, person, slug or "", as_time(sent_at))


class InboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- lookups for matching ---------------------------------------------------------------
    def known_keys(self, keys: Collection[str]) -> set[str]:
        found: set[str] = set()
        with self._db.sql() as q:
            for part in chunks(sorted(set(keys))):
                params: dict[str, Any] = {}
                where = q.one_of("key", "keys", part, params)
                found.update(r[0] for r in q.rows(f"SELECT key FROM inbox_messages WHERE {where}", params))
        return found

    def sent_by_header(self, headers: Collection[str]) -> dict[str, SentRef]:
        """Our messages whose Message-ID is one of ``headers``, by that Message-ID."""
        out: dict[str, SentRef] = {}
        with self._db.sql() as q:
            for part in chunks(sorted(set(headers))):
                params: dict[str, Any] = {}
                where = q.one_of("m.message_id_header", "headers", part, params)
                for row in q.rows(f"SELECT {_SENT_FIELDS} {_SENT_FROM} WHERE {where}", params):
                    ref = _sent(row)
                    if ref.message_id_header:
                        out[ref.message_id_header] = ref
        return out

    def tournament_slugs(self) -> list[str]:
        with self._db.sql() as q:
            rows = q.rows("SELECT DISTINCT tournament_slug FROM batches")
        return sorted({r[0] for r in rows if r[0]})

    def latest_sent_to(
        self, address_key: str, *, slug: str | None = None, since: datetime | None = None
    ) -> SentRef | None:
        sql = f"SELECT {_SENT_FIELDS} {_SENT_FROM} WHERE m.address_key = :key AND m.sent_at IS NOT NULL"
        params: dict[str, Any] = {"key": address_key}
        if slug is not None:
            sql += " AND b.tournament_slug = :slug"
            params["slug"] = slug
        if since is not None:
            sql += " AND m.sent_at >= :since"
            params["since"] = since
        with self._db.sql() as q:
            row = q.one(sql + " ORDER BY m.sent_at DESC, m.id DESC LIMIT 1", params)
        return _sent(row) if row is not None else None

    def event_matches(self, provider: str, event_ids: Collection[str]) -> dict[str, str]:
        """The message each stored event was matched to (unmatched ones left out)."""
        out: dict[str, str] = {}
        with self._db.sql() as q:
            for part in chunks(sorted(set(event_ids))):
                params: dict[str, Any] = {"provider": provider}
                where = q.one_of("provider_event_id", "events", part, params)
                rows = q.rows(
                    f"SELECT provider_event_id, message_id FROM status_events WHERE provider = :provider AND {where}",
                    params,
                )
                out.update({eid: mid for eid, mid in rows if mid})
        return out

    def addresses_of(self, message_ids: Collection[str]) -> dict[str, str]:
        """The address each of our messages went to."""
        out: dict[str, str] = {}
        with self._db.sql() as q:
            for part in chunks(sorted(set(message_ids))):
                params: dict[str, Any] = {}
                where = q.one_of("id", "ids", part, params)
                rows = q.rows(f"SELECT id, address FROM messages WHERE {where}", params)
                out.update({mid: address for mid, address in rows if address})
        return out

    def sent_choices(self, search: str = "", *, limit: int = 200) -> list[SentChoice]:
        """Our sent messages, newest first, whose recipient's name or address contains
        ``search`` (any case), for attaching a reply by hand."""
        sql = (
            "SELECT m.id, m.recipient_name, m.address, m.subject, m.sent_at, b.tournament_slug, b.round_seq "
            f"{_SENT_FROM} WHERE m.sent_at IS NOT NULL"
        )
        params: dict[str, Any] = {"limit": limit}
        words = search.strip().lower()
        if words:
            # LIKE's wildcards and PostgreSQL's escape character are dropped from the search;
            # both sides lower-cased (PostgreSQL's LIKE is case-sensitive; address keys are
            # lower-case already)
            params["pattern"] = "%" + words.replace("\\", "").replace("%", "").replace("_", "") + "%"
            sql += " AND (lower(m.recipient_name) LIKE :pattern OR m.address_key LIKE :pattern)"
        with self._db.sql() as q:
            rows = q.rows(sql + " ORDER BY m.sent_at DESC, m.id DESC LIMIT :limit", params)
        return [SentChoice(r[0], r[1], r[2], r[3], as_time(r[4]), r[5], r[6]) for r in rows]

    def people_of(self, message_ids: Collection[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        with self._db.sql() as q:
            for part in chunks(sorted(set(message_ids))):
                params: dict[str, Any] = {}
                where = q.one_of("id", "ids", part, params)
                out.update(
                    {
                        mid: person
                        for mid, person in q.rows(f"SELECT id, person_id FROM messages WHERE {where}", params)
                    }
                )
        return out

    # -- writing ----------------------------------------------------------------------------
    def add(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert new inbox rows (columns of ``inbox_messages``; one left out gets the model's
        default); a key already stored (read twice, or by another process) is skipped. One
        transaction. Returns how many rows' keys were not stored yet (on PostgreSQL a key another
        process stores at the same instant is skipped by the INSERT, yet counted here)."""
        if not rows:
            return 0
        fresh_by_key: dict[str, dict[str, Any]] = {}
        for r in rows:
            unknown = set(r) - set(_NEW_ROW)
            if unknown:
                raise ValueError(f"inbox_messages has no column {', '.join(sorted(unknown))}")
            if not r.get("key") or not r.get("kind"):
                raise ValueError("an inbox row needs its key and kind")
            fresh_by_key[str(r["key"])] = r
        now = datetime.now(UTC)
        with self._db.sql(write=True) as q:
            known = self._known(q, list(fresh_by_key))
            fresh = [r for key, r in fresh_by_key.items() if key not in known]
            values = []
            for r in fresh:
                row = _NEW_ROW | r
                row["processed_at"] = row["processed_at"] or now
                row["detail"] = Json(row["detail"] or {})
                values.append(row)
            # ON CONFLICT: a key another process stored since _known looked is skipped too
            q.many(_INSERT, values)
        return len(fresh)

    @staticmethod
    def _known(q: Sql, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for part in chunks(sorted(set(keys))):
            params: dict[str, Any] = {}
            where = q.one_of("key", "keys", part, params)
            found.update(r[0] for r in q.rows(f"SELECT key FROM inbox_messages WHERE {where}", params))
        return found

    def mark_read(self, ids: Iterable[int], when: datetime | None = None) -> int:
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        changed = 0
        at = when or datetime.now(UTC)
        with self._db.sql(write=True) as q:
            for part in chunks(wanted):
                params: dict[str, Any] = {"when": at}
                where = q.one_of("id", "ids", part, params)
                changed += q.run(
                    f"UPDATE inbox_messages SET read_at = :when WHERE {where} AND read_at IS NULL", params
                )
        return changed

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
        when, or None to remove it) is kept in its detail as ``by_hand``. One UPDATE of the
        row (on PostgreSQL its trigger announces the message ids before and after). Returns
        the entry as stored now (None: no such entry, or no such message)."""
        with self._db.sql(write=True) as q:
            row = q.one("SELECT from_key, detail FROM inbox_messages WHERE id = :id", {"id": entry_id})
            if row is None:
                return None
            from_key, stored = row
            person: int | None = None
            different = False
            if message_id is not None:
                target = q.one(
                    "SELECT person_id, address_key FROM messages WHERE id = :id", {"id": message_id}
                )
                if target is None:
                    return None
                person = target[0]
                different = bool(from_key) and from_key != target[1]
            detail = dict(q.json(stored) or {})
            if note is None:
                detail.pop("by_hand", None)
            else:
                detail["by_hand"] = note
            q.run(
                "UPDATE inbox_messages SET message_id = :message_id, person_id = :person, "
                "matched_by = :matched_by, different_sender = :different, detail = :detail WHERE id = :id",
                {
                    "id": entry_id,
                    "message_id": message_id,
                    "person": person,
                    "matched_by": matched_by,
                    "different": different,
                    "detail": Json(detail),
                },
            )
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
        where: list[str] = []
        params: dict[str, Any] = {}
        for column, name, value in (
            ("b.tournament_slug", "slug", tournament_slug),
            ("b.round_seq", "seq", round_seq),
            ("i.message_id", "message_id", message_id),
            ("i.person_id", "person_id", person_id),
            ("i.id", "entry_id", entry_id),
        ):
            if value is not None:
                where.append(f"{column} = :{name}")
                params[name] = value
        if unmatched is True:
            where.append("i.message_id IS NULL")
        elif unmatched is False:
            where.append("i.message_id IS NOT NULL")
        with self._db.sql() as q:
            if kinds is not None:
                where.append(q.one_of("i.kind", "kinds", list(kinds), params))
            sql = f"SELECT {_ENTRY_FIELDS} {_ENTRY_FROM}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY i.received_at DESC, i.id DESC"
            if limit:
                sql += " LIMIT :limit"
                params["limit"] = limit
            return [_entry(q.json(r[12]), r) for r in q.rows(sql, params)]

    def raw(self, entry_id: int) -> bytes | None:
        with self._db.sql() as q:
            value = q.scalar("SELECT raw FROM inbox_messages WHERE id = :id", {"id": entry_id})
        return None if value is None else bytes(value)

    def counts(self) -> dict[str, int]:
        """Messages read per kind (ignored ones included)."""
        with self._db.sql() as q:
            rows = q.rows("SELECT kind, COUNT(*) FROM inbox_messages GROUP BY kind")
        return {kind: int(n) for kind, n in rows}

    def unread_reply_counts(self) -> list[tuple[int | None, int | None, int]]:
        """Unread replies as (tournament id, round id, count): one row per round, and per
        tournament for its batches with no round (round id None). One query."""
        with self._db.sql() as q:
            rows = q.rows(
                "SELECT b.tournament_id, b.round_id, COUNT(*) FROM inbox_messages i "
                "JOIN messages m ON m.id = i.message_id JOIN batches b ON b.id = m.batch_id "
                "WHERE i.kind = :kind AND i.read_at IS NULL GROUP BY b.tournament_id, b.round_id",
                {"kind": REPLY_KIND},
            )
        return [(tid, rid, int(n)) for tid, rid, n in rows]

    def reply_counts_in_batches(self, batch_ids: Collection[int]) -> dict[str, tuple[int, int]]:
        """(replies, unread replies) per message of these batches, in one query (a round view)."""
        if not batch_ids:
            return {}
        with self._db.sql() as q:
            params: dict[str, Any] = {"kind": REPLY_KIND}
            where = q.one_of("m.batch_id", "batches", sorted(set(batch_ids)), params)
            rows = q.rows(
                "SELECT i.message_id, COUNT(*), COUNT(*) FILTER (WHERE i.read_at IS NULL) FROM inbox_messages i "
                f"JOIN messages m ON m.id = i.message_id WHERE {where} AND i.kind = :kind GROUP BY i.message_id",
                params,
            )
        return {mid: (int(n), int(unread)) for mid, n, unread in rows if mid is not None}

    def reply_counts(self, message_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        """(replies, unread replies) per message, for the round view's marker."""
        out: dict[str, tuple[int, int]] = {}
        with self._db.sql() as q:
            for part in chunks(sorted(set(message_ids))):
                params: dict[str, Any] = {"kind": REPLY_KIND}
                where = q.one_of("message_id", "ids", part, params)
                rows = q.rows(
                    "SELECT message_id, COUNT(*), COUNT(*) FILTER (WHERE read_at IS NULL) FROM inbox_messages "
                    f"WHERE {where} AND kind = :kind GROUP BY message_id",
                    params,
                )
                for mid, n, unread in rows:
                    if mid is not None:
                        out[mid] = (int(n), int(unread))
        return out


def _entry(detail: Any, r: Sequence[Any]) -> InboxEntry:
    """An InboxEntry from a row of ``_ENTRY_FIELDS`` (its detail already decoded)."""
    return InboxEntry(
        id=r[0],
        kind=r[1],
        received_at=as_time(r[2]),
        from_address=r[3],
        from_name=r[4],
        subject=r[5],
        message_id=r[6],
        person_id=r[7],
        matched_by=r[8],
        different_sender=bool(r[9]),
        reply_text=r[10],
        read_at=as_time(r[11]),
        detail=dict(detail or {}),
        header_message_id=r[13],
        recipient_name=r[14],
        sent_to=r[15],
        tournament_slug=r[16],
        round_seq=r[17],
    )
