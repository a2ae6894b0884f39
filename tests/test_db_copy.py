"""tabmail db copy: every table, both directions between SQLite and a real PostgreSQL, verified
by counts and checksums; exact message bytes; one tournament's record; refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from tabmail.cli.main import main
from tabmail.services.context import AppContext
from tabmail.services.dbcopy import CopyError, copy_database
from tabmail.services.demo import load_demo_if_empty
from tabmail.store.copy import NOT_COPIED, copied_tables
from tabmail.store.db import Database
from tabmail.store.models import (
    AddressChangeRow,
    AddressFlagRow,
    Base,
    BatchRow,
    InboxMessageRow,
    MessageBodyRow,
    MessageRow,
    PersonRow,
    ResolutionRow,
    StatusEventRow,
    TournamentRow,
)
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer

BOTH_ENGINES = True  # tests taking ``db`` run on SQLite and PostgreSQL (tests/conftest.py)

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
# Bytes as sent: CRLF, 8-bit, a byte that is not UTF-8, a NUL: all must survive as they are.
RAW = b"From: Tab <tab@example.org>\r\nSubject: =?utf-8?q?R=C3=BCckrunde?=\r\n\r\nZimmer 12 \xe2\x80\x94 \xff\x00 end\r\n"


def _fill(url: str) -> None:
    """The demo tournament plus a row in every table the demo leaves empty, and a second
    tournament with a message of its own."""
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    try:
        assert load_demo_if_empty(ctx) is not None
        ctx.settings.set("from_address", "tab@example.org")
        ctx.settings.set_state("sendgrid.cursor", "2026-03-01T09:00:00Z")
        with ctx.db.session() as s:
            demo = s.scalars(select(TournamentRow)).one()
            people = s.scalars(select(PersonRow).where(PersonRow.tournament_id == demo.id)).all()
            other = TournamentRow(slug="spring-cup", name="Spring Cup", settings={"k": [1, "ü"]})
            s.add(other)
            s.flush()
            stranger = PersonRow(
                tournament_id=other.id,
                key="s1",
                name="Zoë Stranger",
                role="speaker",
                email="zoe@example.org",
                email_key="zoe@example.org",
                email_valid=True,
            )
            s.add(stranger)
            s.flush()
            for t, who in ((demo, people[0]), (other, stranger)):
                batch = BatchRow(
                    tournament_id=t.id,
                    tournament_slug=t.slug,
                    event="draw",
                    created_at=T0,
                    subject_template="Draw",
                    text_template="Hi {{ name }}",
                    backend="smtp",
                )
                s.add(batch)
                s.flush()
                for i in range(3):
                    mid = f"{t.slug}-{i:02d}"
                    s.add(
                        MessageRow(
                            id=mid,
                            batch_id=batch.id,
                            person_id=who.id,
                            recipient_name=who.name,
                            address=who.email or "x@example.org",
                            address_key=who.email_key or "x",
                            context={"n": i, "f": 1.5, "nested": {"b": [True, None]}},
                            reasons=["you are the chair"],
                            state="sent",
                            sent_at=T0,
                            delivery_status="bounced" if i == 0 else "delivered",
                            created_at=T0,
                            raw=RAW + mid.encode(),
                        )
                    )
                s.flush()
                # A resend whose id sorts before its original's: the copy meets it first.
                s.add(
                    MessageRow(
                        id=f"{t.slug}-!resend",
                        batch_id=batch.id,
                        person_id=who.id,
                        recipient_name=who.name,
                        address="new@example.org",
                        address_key="new@example.org",
                        resend_of=f"{t.slug}-00",
                        created_at=T0,
                    )
                )
                s.add(
                    StatusEventRow(
                        message_id=f"{t.slug}-00",
                        provider="sendgrid",
                        provider_event_id=f"ev-{t.slug}",
                        event="bounce",
                        status="bounced",
                        event_time=T0,
                        received_at=T0,
                        raw={"reason": "550 no such user"},
                    )
                )
                s.add(ResolutionRow(message_id=f"{t.slug}-01", reason="told in person", resolved_at=T0))
                s.add(
                    AddressFlagRow(
                        address_key=who.email_key or "x",
                        address=who.email or "x",
                        kind="bounce",
                        since=T0,
                        source="sendgrid",
                    )
                )
                s.add(
                    AddressChangeRow(
                        person_id=who.id,
                        old_address="old@example.org",
                        new_address=who.email,
                        changed_at=T0 + timedelta(minutes=1),
                        source="director",
                    )
                )
                s.add(
                    InboxMessageRow(
                        key=f"inbox-{t.slug}",
                        kind="reply",
                        message_id=f"{t.slug}-02",
                        person_id=who.id,
                        subject="Re: Draw",
                        raw=b"\x00\xffreply\r\n",
                        received_at=T0,
                        processed_at=T0,
                        detail={"x": 1},
                    )
                )
    finally:
        ctx.close()


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every copied table's rows, in primary-key order, as SQLAlchemy hands them back."""
    db = Database(url)
    try:
        out = {}
        with db.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name in NOT_COPIED:
                    continue
                rows = conn.execute(select(table)).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out
    finally:
        db.dispose()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.fresh_database()
    yield url
    postgres_server.drop(url)


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "laptop.sqlite3"
    _fill(str(path))
    return str(path)


def test_the_copy_handles_every_table_of_the_migrated_schema(db: Database) -> None:
    """A migration that adds a table the copy does not know fails here (and the copy refuses)."""
    tables = set(inspect(db.engine).get_table_names())
    assert tables - NOT_COPIED == copied_tables()


def test_the_filled_source_has_rows_in_every_copied_table(source: str) -> None:
    """So the round trip below checks every table (a new table needs a row in _fill)."""
    empty = [name for name, rows in _rows(source).items() if not rows]
    assert empty == []


def test_sqlite_to_postgresql_and_back_is_byte_equal(source: str, pg_url: str, tmp_path: Path) -> None:
    there = copy_database(source, pg_url, keyring_backend=MemoryKeyring())
    assert there.committed and there.ok
    assert {c.table for c in there.checks} == copied_tables()
    back_path = tmp_path / "home.sqlite3"
    back = copy_database(pg_url, back_path, keyring_backend=MemoryKeyring())
    assert back.committed and back.ok
    # The same checksums on both engines, table by table.
    assert {c.table: c.source_sum for c in there.checks} == {c.table: c.target_sum for c in back.checks}
    original, on_server, returned = _rows(source), _rows(pg_url), _rows(str(back_path))
    assert on_server == original
    assert returned == original
    # The exact bytes of every message, not merely equal after decoding.
    db = Database(str(back_path))
    try:
        with db.session() as s:
            bodies = {b.message_id: b.raw for b in s.scalars(select(MessageBodyRow))}
    finally:
        db.dispose()
    assert bodies["demo-open-01"] == RAW + b"demo-open-01"
    assert len(bodies) == 6


def test_the_copied_postgresql_database_takes_new_rows(source: str, pg_url: str) -> None:
    """Ids keep their values; the server's id sequences continue after them."""
    assert copy_database(source, pg_url, keyring_backend=MemoryKeyring()).committed
    ctx = AppContext.open(pg_url, keyring_backend=MemoryKeyring())
    try:
        with ctx.db.session() as s:
            before = s.scalar(select(func.max(TournamentRow.id)))
            row = TournamentRow(slug="autumn", name="Autumn")
            s.add(row)
            s.flush()
            assert before is not None and row.id > before
            # The live-change triggers the copy left out are on again.
            states = s.execute(
                text("SELECT tgname, tgenabled FROM pg_trigger WHERE tgname LIKE 'tabmail_%'")
            ).all()
            assert states and {str(state) for _name, state in states} == {"O"}
    finally:
        ctx.close()


def test_a_target_with_data_is_refused_and_left_as_it_was(source: str, tmp_path: Path) -> None:
    target = tmp_path / "shared.sqlite3"
    _fill(str(target))
    before = _rows(str(target))
    with pytest.raises(CopyError, match=r"is not empty \(2 tournaments, 8 messages"):
        copy_database(source, target, keyring_backend=MemoryKeyring())
    assert _rows(str(target)) == before


def test_one_tournament_taken_home_as_one_sqlite_file(source: str, pg_url: str, tmp_path: Path) -> None:
    assert copy_database(source, pg_url, keyring_backend=MemoryKeyring()).committed
    home = tmp_path / "spring-cup.sqlite3"
    report = copy_database(pg_url, home, tournament="spring-cup", keyring_backend=MemoryKeyring())
    assert report.committed and report.ok
    rows = _rows(str(home))
    assert [r[1] for r in rows["tournaments"]] == ["spring-cup"]
    assert {r[0] for r in rows["messages"]} == {f"spring-cup-{i:02d}" for i in range(3)} | {
        "spring-cup-!resend"
    }
    assert len(rows["people"]) == 1 and len(rows["status_events"]) == 1
    assert len(rows["address_flags"]) == 1 and len(rows["inbox_messages"]) == 1
    assert [r[0] for r in rows["settings"] if r[0].startswith("state.")] == []  # no poll cursors
    ctx = AppContext.open(home, keyring_backend=MemoryKeyring())
    try:
        assert [t.slug for t in ctx.tournaments.list_all()] == ["spring-cup"]
    finally:
        ctx.close()


def test_an_unknown_tournament_is_one_line_and_leaves_no_file(source: str, tmp_path: Path) -> None:
    home = tmp_path / "home.sqlite3"
    with pytest.raises(CopyError, match=r"no tournament 'nope' .*demo-open, spring-cup"):
        copy_database(source, home, tournament="nope", keyring_backend=MemoryKeyring())
    assert not home.exists()


def test_cli_prints_progress_and_the_table_and_never_the_password(
    source: str, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("TABMAIL_DB_PASSWORD", "pw-never-shown")
    assert main(["db", "copy", "--from", source, "--to", pg_url]) == 0
    out, err = capsys.readouterr()
    assert "copying messages: 8 of 8 rows" in err
    assert "message_bodies" in out and "database copied" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    assert set(lines) == copied_tables()
    assert lines["messages"][1:3] == ["8", "8"] and lines["messages"][-1] == "ok"
    assert "pw-never-shown" not in out + err


def test_cli_refuses_a_non_empty_target_in_one_line(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "copy", "--from", source, "--to", source]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the source and the target are the same database" in err[0]


def test_a_mismatch_exits_non_zero_and_commits_nothing(
    source: str, pg_url: str, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that changes what it is given (here a real trigger on the server) is caught by
    the checksums: the table says which, the exit status is 1 and the target stays empty."""
    db = Database(pg_url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION flip() RETURNS trigger AS $$ BEGIN "
            "NEW.raw := NEW.raw || '\\x00'::bytea; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER flip BEFORE INSERT ON message_bodies FOR EACH ROW EXECUTE FUNCTION flip()"
        )
    db.dispose()
    assert main(["db", "copy", "--from", source, "--to", pg_url]) == 1
    out, err = capsys.readouterr()
    bad = [line for line in out.splitlines() if "MISMATCH" in line]
    assert [line.split()[0] for line in bad] == ["message_bodies"]
    assert "nothing was committed" in err
    assert {k: v for k, v in _rows(pg_url).items() if v} == {}
