"""The database: private file, WAL, migrations (refusing newer, backing up before upgrading),
where it lives, sent records outliving tournament data, and UTC times.

Tests marked both_engines also run on PostgreSQL. The others are about a SQLite file: its mode,
WAL, the copy made before an upgrade, a file from migration 0001; PostgreSQL has none of these
(its first open and a newer schema are checked here too)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from tabmail.domain.imported import (
    DebateData,
    ImportBundle,
    PersonData,
    RoundData,
    TeamData,
    TournamentData,
)
from tabmail.domain.tournament import Position, Role
from tabmail.services.context import AppContext
from tabmail.store import db as db_module
from tabmail.store.db import Database, DatabaseError, resolve_url
from tabmail.store.models import BatchRow, MessageRow, StatusEventRow
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def raw_query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, so a file that is private is private because tabmail made it so."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- the file ----------------------------------------------------------------------------


@pytest.mark.usefixtures("open_umask")
def test_database_file_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tabmail.sqlite3"
    database = Database(path)
    try:
        assert mode(path) == 0o600
        database.migrate()
        with database.engine.connect() as conn:  # keep a connection so the WAL files exist
            conn.exec_driver_sql("SELECT count(*) FROM tournaments").scalar()
            assert mode(path) == 0o600
            assert mode(Path(f"{path}-wal")) == 0o600
            assert mode(Path(f"{path}-shm")) == 0o600
    finally:
        database.dispose()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_readable_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    path.touch(mode=0o644)
    assert mode(path) == 0o644
    Database(path).dispose()
    assert mode(path) == 0o600


def test_wal_mode_is_on(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert db.path is not None
    header = db.path.read_bytes()[:20]
    assert (header[18], header[19]) == (2, 2)  # WAL recorded in the file itself


# -- migrations --------------------------------------------------------------------------


def test_opening_the_app_context_migrates_a_new_database(tmp_path: Path) -> None:
    ctx = AppContext.open(tmp_path / "new.sqlite3")
    try:
        assert ctx.db.current_revision() == ctx.db.head_revision()
        tables = {r[0] for r in raw_query(tmp_path / "new.sqlite3", "SELECT name FROM sqlite_master")}
        assert {"tournaments", "people", "batches", "messages", "status_events", "settings"} <= tables
        assert ctx.tournaments.list_all() == []
    finally:
        ctx.close()
    assert list(tmp_path.glob("*.bak")) == []  # nothing to back up for a new database


@pytest.mark.both_engines
def test_a_database_from_a_newer_tabmail_is_refused(tmp_path: Path, db: Database, db_target: str) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    where = db.describe()
    db.dispose()

    with pytest.raises(DatabaseError) as caught:
        AppContext.open(db_target)

    message = str(caught.value)
    assert "newer tabmail" in message and "9999_future" in message and where in message
    again = Database(db_target)
    try:
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [("9999_future",)]
    finally:
        again.dispose()
    assert list(tmp_path.glob("*.bak")) == []


def test_an_empty_postgresql_database_gets_the_schema_on_first_open(postgres_server: PostgresServer) -> None:
    """What a tab room's first laptop meets: `createdb tabmail`, then tabmail opens it."""
    name = "t_empty_" + uuid.uuid4().hex[:12]
    postgres_server.admin(f"CREATE DATABASE {name}")
    url = postgres_server.url(name)
    try:
        ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
        try:
            assert ctx.db.current_revision() == ctx.db.head_revision()
            assert ctx.tournaments.list_all() == []
            with ctx.db.engine.connect() as conn:
                tables = set(conn.exec_driver_sql("SELECT tablename FROM pg_tables").scalars())
            assert {"tournaments", "people", "batches", "messages", "status_events", "settings"} <= tables
        finally:
            ctx.close()
    finally:
        postgres_server.drop(url)


EXTRA_MIGRATION = '''
"""test: one more table"""
from alembic import op
import sqlalchemy as sa

revision = "9001"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("extra_notes", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO extra_notes (id) VALUES (1)")
    if {fail!r}:
        raise RuntimeError("upgrade step failed")


def downgrade() -> None:
    op.drop_table("extra_notes")
'''


def newer_migrations(tmp_path: Path, down: str, fail: bool = False) -> Path:
    """The real migrations plus one more revision on top, as the next tabmail would ship."""
    folder = tmp_path / f"migrations-{'fail' if fail else 'ok'}"
    shutil.copytree(db_module.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "9001_extra.py").write_text(EXTRA_MIGRATION.format(down=down, fail=fail))
    return folder


def database_with_a_tournament(path: Path) -> str:
    """A database at the current schema holding one tournament; returns its revision."""
    ctx = AppContext.open(path)
    try:
        ctx.tournaments.apply_import(ImportBundle(TournamentData(slug="old-open", name="Old Open")))
        revision = ctx.db.current_revision()
        assert revision is not None
        return revision
    finally:
        ctx.close()


def test_upgrading_an_older_database_backs_it_up_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tabmail.sqlite3"
    old_revision = database_with_a_tournament(path)
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", newer_migrations(tmp_path, old_revision))

    database = Database(path)
    try:
        assert (database.current_revision(), database.head_revision()) == (old_revision, "9001")
        backup = database.migrate()
        assert database.current_revision() == "9001"
        assert database.migrate() is None  # at head: nothing to do, no second backup
    finally:
        database.dispose()

    assert backup is not None and backup.parent == tmp_path
    assert backup.name.startswith(f"tabmail.sqlite3.{old_revision}.") and backup.name.endswith(".bak")
    assert mode(backup) == 0o600
    assert raw_query(backup, "SELECT version_num FROM alembic_version") == [(old_revision,)]
    assert raw_query(backup, "SELECT slug FROM tournaments") == [("old-open",)]
    assert raw_query(backup, "SELECT name FROM sqlite_master WHERE name = 'extra_notes'") == []
    assert raw_query(path, "SELECT id FROM extra_notes") == [(1,)]
    assert raw_query(path, "SELECT slug FROM tournaments") == [("old-open",)]
    assert len(list(tmp_path.glob("*.bak"))) == 1


def test_a_failed_upgrade_leaves_a_backup_of_the_old_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tabmail.sqlite3"
    old_revision = database_with_a_tournament(path)
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", newer_migrations(tmp_path, old_revision, fail=True))

    database = Database(path)
    try:
        with pytest.raises(DatabaseError, match="upgrade step failed"):
            database.migrate()
    finally:
        database.dispose()

    [backup] = tmp_path.glob("*.bak")
    assert raw_query(backup, "SELECT version_num FROM alembic_version") == [(old_revision,)]
    assert raw_query(backup, "SELECT slug FROM tournaments") == [("old-open",)]
    assert raw_query(path, "SELECT version_num FROM alembic_version") == [(old_revision,)]
    # the whole upgrade was one transaction: the table its failed step had created is gone too
    assert raw_query(path, "SELECT name FROM sqlite_master WHERE name = 'extra_notes'") == []


# -- where the database is ---------------------------------------------------------------


def test_a_path_or_a_sqlalchemy_url_names_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_path = tmp_path / "a.sqlite3"
    assert resolve_url(by_path) == f"sqlite:///{by_path}"
    assert resolve_url("~/x.sqlite3") == f"sqlite:///{Path.home() / 'x.sqlite3'}"
    url = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    assert resolve_url(url) == url

    from_url = Database(url)
    assert from_url.path == tmp_path / "b.sqlite3" and from_url.describe() == str(tmp_path / "b.sqlite3")
    assert mode(tmp_path / "b.sqlite3") == 0o600
    from_url.dispose()

    monkeypatch.setenv("TABMAIL_DB", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    assert Database().path == tmp_path / "env.sqlite3"
    monkeypatch.setenv("TABMAIL_DB", str(tmp_path / "env2.sqlite3"))
    assert Database(None).path == tmp_path / "env2.sqlite3"
    assert Database(by_path).path == by_path  # an explicit --db wins over TABMAIL_DB

    with pytest.raises(DatabaseError, match="not a database URL or path"):
        Database("no such scheme://x")


# -- sent records outlive tournament data ------------------------------------------------


def tournament_bundle() -> ImportBundle:
    bundle = ImportBundle(TournamentData(slug="gone-open", name="Gone Open"))
    bundle.teams = [TeamData(key="t1", name="Team One")]
    bundle.people = [
        PersonData(key="ada", name="Ada Okafor", role=Role.SPEAKER, email="ada@example.org", team_key="t1"),
        PersonData(key="eve", name="Eve Sato", role=Role.ADJUDICATOR, email="eve@example.org"),
    ]
    bundle.rounds = [RoundData(seq=1, name="Round 1")]
    bundle.debates = [
        DebateData(
            key="d1",
            round_seq=1,
            venue_key=None,
            teams=[("t1", "og")],
            adjudicators=[("eve", Position.CHAIR)],
        )
    ]
    bundle.complete_rounds = {1}
    return bundle


@pytest.mark.both_engines
def test_sent_records_survive_deleting_people_and_tournaments(ctx: AppContext) -> None:
    result = ctx.tournaments.apply_import(tournament_bundle())
    people = {p.name: p.id for p in ctx.tournaments.people(result.tournament_id)}
    round_id = ctx.tournaments.get_round(result.tournament_id, 1).id
    sent_at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with ctx.db.session() as s:
        batch = BatchRow(
            tournament_id=result.tournament_id,
            round_id=round_id,
            tournament_slug="gone-open",
            round_seq=1,
            event="draw",
            subject_template="Draw",
            text_template="Hello {{ name }}",
            backend="smtp",
        )
        s.add(batch)
        s.flush()
        for i, name in enumerate(("Ada Okafor", "Eve Sato")):
            s.add(
                MessageRow(
                    id=f"m{i}",
                    batch_id=batch.id,
                    person_id=people[name],
                    recipient_name=name,
                    address=f"{name.split()[0].lower()}@example.org",
                    address_key=f"{name.split()[0].lower()}@example.org",
                    raw=b"Subject: Draw\r\n\r\nHello\r\n",
                    state="sent",
                    sent_at=sent_at,
                )
            )
        s.add(
            StatusEventRow(
                message_id="m0",
                provider="sendgrid",
                provider_event_id="ev1",
                event="delivered",
                status="delivered",
                event_time=sent_at,
            )
        )
        batch_id = batch.id

    with ctx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM people WHERE id = :id"), {"id": people["Ada Okafor"]})
    with ctx.db.session() as s:
        ada = s.get(MessageRow, "m0")
        assert ada is not None and ada.person_id is None
        assert (ada.recipient_name, ada.raw, ada.state) == (
            "Ada Okafor",
            b"Subject: Draw\r\n\r\nHello\r\n",
            "sent",
        )
        eve = s.get(MessageRow, "m1")
        assert eve is not None and eve.person_id == people["Eve Sato"]

    with ctx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM tournaments WHERE id = :id"), {"id": result.tournament_id})
    with ctx.db.session() as s:
        batch_row = s.get(BatchRow, batch_id)
        assert batch_row is not None
        assert (batch_row.tournament_id, batch_row.round_id) == (None, None)
        assert (batch_row.tournament_slug, batch_row.round_seq) == ("gone-open", 1)
        messages = s.scalars(select(MessageRow).order_by(MessageRow.id)).all()
        assert [(m.id, m.person_id, m.recipient_name) for m in messages] == [
            ("m0", None, "Ada Okafor"),
            ("m1", None, "Eve Sato"),
        ]
        [event] = s.scalars(select(StatusEventRow)).all()
        assert event.message_id == "m0"
    assert ctx.tournaments.list_all() == []


# -- times -------------------------------------------------------------------------------


@pytest.mark.both_engines
def test_times_are_stored_in_utc_and_come_back_aware(ctx: AppContext) -> None:
    sydney = timezone(timedelta(hours=11))
    local = datetime(2026, 11, 23, 8, 32, 59, 230806, tzinfo=sydney)
    with ctx.db.session() as s:
        batch = BatchRow(
            event="draw", subject_template="", text_template="", backend="file", created_at=local
        )
        s.add(batch)
        s.flush()
        batch_id = batch.id

    with ctx.db.session() as s:
        row = s.get(BatchRow, batch_id)
        assert row is not None
        assert row.created_at.tzinfo is UTC
        assert row.created_at == local
        assert (row.created_at.day, row.created_at.hour) == (22, 21)
    if ctx.db.is_sqlite:  # the exact text SQLite stores
        assert ctx.db.path is not None
        assert raw_query(ctx.db.path, "SELECT created_at FROM batches") == [("2026-11-22 21:32:59.230806",)]

    result = ctx.tournaments.apply_import(tournament_bundle())
    ada = next(p for p in ctx.tournaments.people(result.tournament_id) if p.name == "Ada Okafor")
    ctx.tournaments.set_person_email(ada.id, "ada.okafor@example.org", "director")
    changed_at = ctx.tournaments.address_history(ada.id)[-1][0]
    assert changed_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - changed_at) < timedelta(minutes=5)

    with pytest.raises(StatementError, match="naive datetime"), ctx.db.session() as s:
        s.add(
            BatchRow(
                event="draw",
                subject_template="",
                text_template="",
                backend="file",
                created_at=datetime(2026, 1, 1),
            )
        )
        s.flush()


def test_a_database_written_by_migration_0001_upgrades_keeping_each_messages_backend(
    tmp_path: Path,
) -> None:
    """0004 adds the backend each message was queued for (filled from its batch) and the lease
    columns; a database created by 0001 with a queued message upgrades in place (backed up)."""
    from alembic import command
    from sqlalchemy import inspect

    path = tmp_path / "old.sqlite3"
    command.upgrade(db_module._alembic_config(f"sqlite:///{path}"), "0001")
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO batches (id, tournament_slug, event, created_at, subject_template, "
            "text_template, backend, triggered_by) VALUES (1, 'x', 'custom', '2026-11-24 09:00:00.000000', "
            "'s', 't', 'smtp', '')"
        )
        con.execute(
            "INSERT INTO messages (id, batch_id, recipient_name, address, address_key, envelope_from, "
            "envelope_to, send_despite_flag, subject, context, reasons, state, attempts, created_at, "
            "delivery_status) VALUES ('m1', 1, 'A', 'a@example.org', 'a@example.org', 'tab@example.org', "
            "'a@example.org', 0, 's', '{}', '[]', 'retrying', 2, '2026-11-24 09:00:00.000000', 'unknown')"
        )
    con.close()

    database = Database(path)
    try:
        backup = database.migrate()
        assert backup is not None and backup.exists()
        assert database.current_revision() == database.head_revision()  # 0004 and everything after
        columns = {c["name"] for c in inspect(database.engine).get_columns("messages")}
        assert {"backend", "lease_owner", "lease_expires_at"} <= columns
    finally:
        database.dispose()
    assert raw_query(path, "SELECT id, state, attempts, backend, lease_owner FROM messages") == [
        ("m1", "retrying", 2, "smtp", None)
    ]


@pytest.mark.parametrize("start", ["new", "0010_replies_detached"])
def test_the_outboxs_writes_build_no_lookup_tables(tmp_path: Path, start: str) -> None:
    """SQLite checks the problem index's condition on each UPDATE of a message's state; written
    with IN lists (migration 0005), each check built temporary lookup tables (OpenEphemeral):
    about half of each claim's and result's cost. A new database, and one upgraded from 0010,
    write without them."""
    import re

    from alembic import command

    from tabmail.store import outbox_state

    path = tmp_path / "t.sqlite3"
    if start != "new":
        command.upgrade(db_module._alembic_config(f"sqlite:///{path}"), start)
    database = Database(path)
    try:
        database.migrate()
    finally:
        database.dispose()
    con = sqlite3.connect(path)
    try:
        for sql in (
            outbox_state._MARK_SENT_SQL,
            outbox_state._MARK_UNSENT_SQL,
            outbox_state._MARK_WAITING_SQL,
            outbox_state._CLAIM_UNFLAGGED_SQL,
            outbox_state._SKIP_FLAGGED_SQL,
        ):
            program = con.execute(f"EXPLAIN {sql}", dict.fromkeys(re.findall(r":(\w+)", sql))).fetchall()
            assert [op for op in program if op[1] == "OpenEphemeral"] == [], sql
    finally:
        con.close()


@pytest.mark.both_engines
def test_the_models_and_the_migrations_describe_the_same_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tabmail.store.models import Base

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.both_engines
def test_a_message_is_found_by_a_prefix_typed_in_either_case(ctx: AppContext) -> None:
    """`tabmail resend 01m8xc…`: a ULID is one id in either case, on both engines (SQLite's LIKE
    ignores case, PostgreSQL's does not), and a LIKE wildcard in what was typed is just text."""
    from tabmail.domain.notification import Audience, Event
    from tabmail.services import notify
    from tabmail.services.demo import load_demo_if_empty
    from tabmail.store.notifications import MessageNotFound

    assert load_demo_if_empty(ctx) is not None
    slug = ctx.tournaments.list_all()[0].slug
    batch = notify.enqueue(ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.TEAMS))
    first = ctx.notifications.messages(batch_id=batch.batch_id)[0].id
    assert first == first.upper()
    assert ctx.notifications.get(first.lower()).id == first
    assert ctx.notifications.get(first[:20].lower()).id == first
    with pytest.raises(MessageNotFound):
        ctx.notifications.get(first[:24] + "_%")


@pytest.mark.both_engines
def test_long_names_and_texts_are_kept_whole_on_both_engines(ctx: AppContext) -> None:
    """A column declared String(200) holds 300 characters on SQLite; PostgreSQL refused them
    ("value too long for type character varying(200)") before migration 0008."""
    long_name = "The Very Long Invitational " + "x" * 300
    person = "Ada " + "Okafor-" * 60
    ctx.tournaments.apply_import(
        ImportBundle(
            TournamentData(slug="long-open", name=long_name),
            people=[PersonData("p1", person, Role.SPEAKER, email="ada@example.org")],
        )
    )
    (t,) = ctx.tournaments.list_all()
    assert t.name == long_name
    (p,) = ctx.tournaments.people(t.id)
    assert p.name == person


@pytest.mark.both_engines
def test_a_nul_character_from_outside_is_stored_the_same_on_both_engines(ctx: AppContext) -> None:
    """PostgreSQL's text cannot hold NUL: an address from a Tabbycat site or a SendGrid reason
    with one made the whole import or poll fail there, every time (SQLite kept it). Both store
    U+FFFD in its place; the raw bytes of a message are not text and stay as they are."""
    from tabmail.domain.notification import DeliveryStatus
    from tabmail.status.events import ProviderEvent, derive_status

    ctx.tournaments.apply_import(
        ImportBundle(
            TournamentData(slug="nul-open", name="Nul Open"),
            people=[
                PersonData("p1", "Ada Okafor", Role.SPEAKER, email="ada\x00@example.org", phone="+44\x00 1"),
                PersonData("p2", "Bo Li", Role.SPEAKER, email="bo@example.org"),
            ],
        )
    )
    (t,) = ctx.tournaments.list_all()
    people = {p.name: p for p in ctx.tournaments.people(t.id)}
    assert people["Ada Okafor"].email == "ada\ufffd@example.org"
    assert not people["Ada Okafor"].email_valid
    assert people["Bo Li"].email == "bo@example.org"

    ev = ProviderEvent(
        provider_event_id="nul-1",
        name="bounce",
        status=DeliveryStatus.BOUNCED,
        event_time=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        tabmail_id=None,
        source="test",
        reason="550 no such\x00user",
        address="bo@example.org",
    )
    ctx.tracking.ingest([ev], derive=derive_status, now=datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    with ctx.db.session() as s:
        reasons = list(s.scalars(select(StatusEventRow.reason)))
    assert reasons == ["550 no such\ufffduser"]
