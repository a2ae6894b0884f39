"""The message listing is one SQL text (store/reading.py), run through sqlite3 on a SQLite file
and through SQLAlchemy's text() on PostgreSQL (store/sql.py). Both must give what the ORM reads
from the same rows: every field, every filter, the same order."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tabmail.domain.notification import Audience, DeliveryStatus, Event, Message, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.store.db import default_database_path, resolve_url
from tabmail.store.models import MessageRow
from tabmail.store.reading import sqlite_file


def varied_outbox(ctx: AppContext) -> list[Message]:
    """The demo's round-1 draw and its private URLs queued, then messages in every state with
    every optional field set somewhere (times with microseconds, JSON lists and dicts)."""
    slug = ctx.tournaments.list_all()[0].slug
    for event, seq in ((Event.DRAW, 1), (Event.URLS, None)):
        plan = notify.plan(ctx, slug, event, round_seq=seq, audience=Audience.ALL)
        notify.enqueue(ctx, plan, selected=notify.selection_for(plan))
    every = ctx.notifications.messages()
    assert len({m.batch_id for m in every}) == 2 and len(every) > 40
    when = datetime(2026, 11, 22, 21, 32, 59, 230806, tzinfo=UTC)
    states = [MessageState.SENT, MessageState.RETRYING, MessageState.FAILED, MessageState.UNCERTAIN]
    with ctx.db.session() as s:
        for i, m in enumerate(every[:12]):
            row = s.get(MessageRow, m.id)
            assert row is not None
            row.state = states[i % 4].value
            row.attempts = i
            row.last_error = f"421 try later ({i})" if i % 2 else None
            row.sent_at = when + timedelta(seconds=i) if i % 4 == 0 else None
            row.next_attempt_at = when + timedelta(minutes=i) if i % 4 == 1 else None
            row.status_at = when - timedelta(hours=i)
            row.delivery_status = "delivered" if i % 3 else "bounced"
            row.status_reason = "550 no such user" if i % 3 == 0 else None
            row.provider_message_id = f"sg-{i}"
            row.sg_message_id = f"sg-{i}.filter"
            row.reasons = ["changed room", f"é {i}"]
            row.context = {"ROOM": f"Hall {i}", "CHANGES": ["side"], "n": i}
            row.made_by, row.made_on = ("Ana", "tabroom-laptop") if i == 5 else (None, None)
        resend = s.get(MessageRow, every[13].id)
        assert resend is not None
        resend.resend_of = every[0].id
    return ctx.notifications.messages()


FILTERS: list[dict[str, Any]] = [
    {},
    {"states": [s for s in MessageState if s is not MessageState.SENT]},  # tabmail outbox
    {"states": [MessageState.SENT]},
    {"batch_id": 1},
    {"batch_id": 2, "states": [MessageState.QUEUED]},
    {"batch_ids": [1, 2]},
    {"batch_ids": []},
    {"ids": []},
    {"limit": 5},
]


def as_the_orm_reads_it(ctx: AppContext, message_id: str) -> Message:
    """The message as SQLAlchemy's ORM reads its row (column types convert each value)."""
    with ctx.db.session() as s:
        r = s.get(MessageRow, message_id)
        assert r is not None
        return Message(
            id=r.id,
            batch_id=r.batch_id,
            person_id=r.person_id,
            recipient_name=r.recipient_name,
            address=r.address,
            state=MessageState(r.state),
            attempts=r.attempts,
            last_error=r.last_error,
            message_id_header=r.message_id_header,
            provider_message_id=r.provider_message_id,
            sg_message_id=r.sg_message_id,
            delivery_status=DeliveryStatus(r.delivery_status),
            status_at=r.status_at,
            status_reason=r.status_reason,
            resend_of=r.resend_of,
            reasons=tuple(r.reasons or ()),
            context=dict(r.context or {}),
            created_at=r.created_at,
            sent_at=r.sent_at,
            next_attempt_at=r.next_attempt_at,
            role=r.role,
            made_by=r.made_by,
            made_on=r.made_on,
        )


def expected(every: list[Message], f: dict[str, Any]) -> list[str]:
    def keep(m: Message) -> bool:
        return (
            ("states" not in f or not f["states"] or m.state in f["states"])
            and ("batch_id" not in f or m.batch_id == f["batch_id"])
            and ("batch_ids" not in f or m.batch_id in f["batch_ids"])
            and ("ids" not in f or m.id in f["ids"])
            and ("person_id" not in f or m.person_id == f["person_id"])
        )

    kept = [m.id for m in every if keep(m)]
    return kept[: f["limit"]] if "limit" in f else kept


@pytest.mark.both_engines
def test_the_listing_gives_what_the_orm_rows_hold_for_every_filter(practice_demo: AppContext) -> None:
    ctx = practice_demo
    every = varied_outbox(ctx)
    # Each message as the ORM reads its row (typed columns: aware UTC times, decoded JSON).
    assert every == [as_the_orm_reads_it(ctx, m.id) for m in every]
    assert every == [ctx.notifications.get(m.id) for m in every]
    assert [m.state for m in every[:4]] == [
        MessageState.SENT,
        MessageState.RETRYING,
        MessageState.FAILED,
        MessageState.UNCERTAIN,
    ]
    first = every[0]
    assert first.sent_at == datetime(2026, 11, 22, 21, 32, 59, 230806, tzinfo=UTC)
    assert first.context["ROOM"] == "Hall 0" and first.reasons == ("changed room", "é 0")
    assert every[13].resend_of == first.id and every[5].made_by == "Ana"
    person = next(m.person_id for m in every if m.person_id is not None)
    some = [every[3].id, every[20].id, every[-1].id]
    for f in [*FILTERS, {"person_id": person}, {"ids": some}, {"ids": some, "batch_id": 1}]:
        got = ctx.notifications.messages(**f)
        assert [m.id for m in got] == expected(every, f), f
        assert got == [ctx.notifications.get(m.id) for m in got], f
    # oldest batch first, then by creation time and id
    assert [(m.batch_id, m.created_at, m.id) for m in every] == sorted(
        (m.batch_id, m.created_at, m.id) for m in every
    )


def test_the_file_is_named_as_the_full_path_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    def full_path(target: str | None) -> Path:
        database = make_url(resolve_url(target)).database
        assert database is not None
        return Path(database).absolute()

    for target in ("t.sqlite3", str(tmp_path / "a b.sqlite3"), "sqlite:///rel.sqlite3", "~/x.sqlite3"):
        assert sqlite_file(target) == full_path(target), target
    monkeypatch.delenv("TABMAIL_DB", raising=False)
    assert sqlite_file(None) == default_database_path()
    monkeypatch.setenv("TABMAIL_DB", "env.sqlite3")
    assert sqlite_file("") == tmp_path / "env.sqlite3"


def test_a_batch_written_through_the_driver_holds_what_sqlalchemy_would_write(tmp_path: Path) -> None:
    """On SQLite a batch's rows go to the driver as tuples, each value through its column
    type's processor (notifications._insert_many): the stored text is the same as through
    SQLAlchemy's own insert, NUL replaced as everywhere."""
    from sqlalchemy import insert

    from tabmail.domain.imported import ImportBundle, TournamentData
    from tabmail.domain.notification import Templates
    from tabmail.store.models import MessageBodyRow
    from tabmail.store.notifications import NewBatch, NewMessage, message_rows

    def one(i: int) -> NewMessage:
        return NewMessage(
            id=f"01TEST{i:020d}",
            person_id=None,
            recipient_name=f"Zoë \x00 {i}",
            role="speaker" if i else None,
            address=f"z{i}@example.org",
            address_key=f"z{i}@example.org",
            envelope_from="tab@example.org",
            envelope_to=f"z{i}@example.org",
            subject="Draw – Round 1",
            context={"ROOM": "Hall\x00 7", "SCORES": [75.5, 76], "é": None},
            reasons=("you speak", "ünïcode"),
            raw=b"Subject: x\r\n\r\n\x00body",
            message_id_header=f"<{i}@example.org>",
            send_despite_flag=bool(i % 2),
        )

    def stored(path: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
            rows += conn.execute("SELECT * FROM message_bodies ORDER BY message_id").fetchall()
        conn.close()
        return rows

    messages = [one(i) for i in range(3)]
    when = datetime(2026, 11, 22, 21, 32, 59, 230806, tzinfo=UTC)
    paths = [tmp_path / "driver.sqlite3", tmp_path / "sqlalchemy.sqlite3"]
    for n, path in enumerate(paths):
        ctx = AppContext.open(path)
        try:
            ctx.tournaments.apply_import(ImportBundle(TournamentData(slug="z-open", name="Z Open")))
            tournament_id = ctx.tournaments.list_all()[0].id
            batch = NewBatch(tournament_id, None, Event.DRAW, None, Templates("s", "t"), "file", "test")
            batch_id = ctx.notifications.create_batch(batch, messages if n == 0 else [])
            if n == 1:  # the same rows through SQLAlchemy's insert
                with ctx.db.write_session() as s:
                    s.execute(
                        insert(MessageRow),
                        message_rows(messages, batch_id, "file", MessageState.QUEUED, None, when),
                    )
                    s.execute(insert(MessageBodyRow), [{"message_id": m.id, "raw": m.raw} for m in messages])
            with ctx.db.session() as s:  # the same creation time in both
                s.execute(MessageRow.__table__.update().values(created_at=when))
        finally:
            ctx.close()
    driver, reference = stored(paths[0]), stored(paths[1])
    assert len(driver) == 6 and driver == reference
    assert "Zoë \ufffd 0" in driver[0] and b"Subject: x\r\n\r\n\x00body" in driver[3]
