"""The message listing, written as plain SQL, and where a SQLite file lives.

``messages_sql`` is the one definition of the message listing (``NotificationRepository``
runs it on either engine, store/sql.py). Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabmail.domain.notification import DeliveryStatus, Message, MessageState
from tabmail.store.sql import as_time, in_list

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
