"""Reads written as plain SQL, shared by both ways tabmail reaches its database.

``messages_sql`` is the one definition of the message listing: ``NotificationRepository.messages``
runs it through SQLAlchemy (SQLite or PostgreSQL), and ``SqliteReader`` runs it through the
standard library's sqlite3 alone. A command that only looks at a SQLite file whose schema is
current (``tabmail outbox``) opens a ``SqliteReader`` and never imports SQLAlchemy (~0.4 s of a
fresh process's start); anything else (a server database, a new or older file) takes the full
path, which creates or upgrades the schema first.

Nothing here imports SQLAlchemy: the start-up test (tests/test_startup_imports.py) checks it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from tabmail.domain.notification import DeliveryStatus, Message, MessageState
from tabmail.store.dbfile import connect_readonly, inspect_file, scan_revisions
from tabmail.store.sql import as_time, in_list

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30  # as the full path's connections (db.SQLITE_BUSY_TIMEOUT_MS)

# The columns a Message is made of, in the order ``message_from_record`` reads them.
MESSAGE_FIELDS = (
    "id",
    "batch_id",
    "person_id",
    "recipient_name",
    "address",
    "state",
    "attempts",
    "last_error",
    "message_id_header",
    "provider_message_id",
    "sg_message_id",
    "delivery_status",
    "status_at",
    "status_reason",
    "resend_of",
    "reasons",
    "context",
    "created_at",
    "sent_at",
    "next_attempt_at",
    "role",
    "made_by",
    "made_on",
)


def messages_sql(
    *,
    batch_id: int | None = None,
    batch_ids: Sequence[int] | None = None,
    states: Sequence[MessageState] | None = None,
    person_id: int | None = None,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The message listing as SQL with named parameters (``:name``, which both sqlite3 and
    SQLAlchemy's ``text()`` take), oldest batch first, then by creation time and id."""
    params: dict[str, Any] = {}
    where: list[str] = []
    if ids is not None:
        where.append("id " + in_list("id", list(ids), params))
    if batch_id is not None:
        where.append("batch_id = :batch_id")
        params["batch_id"] = batch_id
    if batch_ids is not None:
        where.append("batch_id " + in_list("batch", list(batch_ids), params))
    if states:
        where.append("state " + in_list("state", [s.value for s in states], params))
    if person_id is not None:
        where.append("person_id = :person_id")
        params["person_id"] = person_id
    sql = f"SELECT {', '.join(MESSAGE_FIELDS)} FROM messages"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY batch_id, created_at, id"
    if limit:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return sql, params


def _json(value: Any) -> Any:
    """A JSON column: text on SQLite, already decoded by the PostgreSQL driver."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def message_from_record(r: Sequence[Any]) -> Message:
    """A Message from one row of ``messages_sql`` (columns in ``MESSAGE_FIELDS`` order)."""
    return Message(
        id=r[0],
        batch_id=r[1],
        person_id=r[2],
        recipient_name=r[3],
        address=r[4],
        state=MessageState(r[5]),
        attempts=r[6],
        last_error=r[7],
        message_id_header=r[8],
        provider_message_id=r[9],
        sg_message_id=r[10],
        delivery_status=DeliveryStatus(r[11]),
        status_at=as_time(r[12]),
        status_reason=r[13],
        resend_of=r[14],
        reasons=tuple(_json(r[15]) or ()),
        context=dict(_json(r[16]) or {}),
        created_at=as_time(r[17]),
        sent_at=as_time(r[18]),
        next_attempt_at=as_time(r[19]),
        role=r[20],
        made_by=r[21],
        made_on=r[22],
    )


class MessageReader(Protocol):
    """What a command that lists messages needs: ``SqliteReader``, or the full path's
    ``NotificationRepository``."""

    def messages(
        self,
        *,
        batch_id: int | None = None,
        batch_ids: Sequence[int] | None = None,
        states: Sequence[MessageState] | None = None,
        person_id: int | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Message]: ...


def sqlite_file(target: str | os.PathLike[str] | None) -> Path | None:
    """The SQLite file ``target`` names (as ``db.resolve_url`` reads it), or None for anything
    else: a server URL, an in-memory database, a URL with options."""
    if target is None or str(target) == "":
        env = os.environ.get("TABMAIL_DB")
        if not env:
            from tabmail.store.dbfile import default_database_path

            return default_database_path()
        target = env
    text = str(target)
    if text == ":memory:":
        return None
    if "://" in text:
        prefix = "sqlite:///"
        rest = text[len(prefix) :]
        if not text.startswith(prefix) or not rest or any(c in rest for c in "?%"):
            return None
        return Path(rest).absolute()
    return Path(text).expanduser().absolute()


class SqliteReader:
    """Reads a current tabmail SQLite file through sqlite3 alone; it never writes."""

    def __init__(self, path: Path, conn: sqlite3.Connection, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only  # asked for, or the file cannot be written: sending is disabled
        self._conn = conn

    @classmethod
    def open(cls, target: str | os.PathLike[str] | None, *, read_only: bool = False) -> SqliteReader | None:
        """A reader for ``target``, or None when the full path must open it: not a SQLite file,
        no schema yet, a schema that is not the scripts' head (it is upgraded first, or refused),
        or a file from before tabmail marked its databases (the full path marks it). A file that
        is not tabmail's is refused (DatabaseError) as the full path would, changing nothing."""
        path = sqlite_file(target)
        if path is None:
            return None
        revisions = scan_revisions(MIGRATIONS_DIR / "versions")
        state = inspect_file(path, revisions.known)
        if state.empty or not state.marked or revisions.head is None or state.revision != revisions.head:
            return None
        read_only = read_only or not state.writable
        if read_only:
            conn = connect_readonly(path)
        else:
            conn = sqlite3.connect(str(path), timeout=SQLITE_BUSY_TIMEOUT_S)
            conn.execute("PRAGMA query_only=ON")
        return cls(path, conn, read_only)

    def describe(self) -> str:
        return str(self.path)

    def messages(
        self,
        *,
        batch_id: int | None = None,
        batch_ids: Sequence[int] | None = None,
        states: Sequence[MessageState] | None = None,
        person_id: int | None = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        sql, params = messages_sql(
            batch_id=batch_id, batch_ids=batch_ids, states=states, person_id=person_id, ids=ids, limit=limit
        )
        return [message_from_record(r) for r in self._conn.execute(sql, params)]

    def close(self) -> None:
        self._conn.close()
