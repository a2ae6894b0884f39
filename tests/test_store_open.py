"""Opening a database: a file that is not tabmail's is refused before anything changes it; a
first start killed half-way leaves nothing behind; a database at the head revision opens
without importing Alembic."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tabmail.services.context import AppContext
from tabmail.store import db as db_module
from tabmail.store.db import Database, DatabaseError
from tabmail.store.dbfile import APPLICATION_ID, scan_revisions
from tests.conftest import REPO

FOSSIL_APPLICATION_ID = 0x0F055112  # a real registered id (Fossil's repositories)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def app_id(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("PRAGMA application_id").fetchone()[0])
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(str(path))
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def foreign_sqlite(path: Path, application_id: int = 0) -> None:
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    if application_id:
        conn.execute(f"PRAGMA application_id = {application_id}")
    conn.commit()
    conn.close()
    path.chmod(0o644)


# -- refused, untouched ----------------------------------------------------------------------


def test_a_text_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping: eggs, milk\n")
    path.chmod(0o644)

    with pytest.raises(DatabaseError, match="not a tabmail database \\(not an SQLite file\\)"):
        Database(path)

    assert mode(path) == 0o644
    assert path.read_text() == "shopping: eggs, milk\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_pipe_is_refused_without_changing_its_mode(tmp_path: Path) -> None:
    """Stands in for /dev/null: a special file must never be chmod-ed (as root that changes the system)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o644)
    os.chmod(fifo, 0o644)

    with pytest.raises(DatabaseError, match="not a regular file"):
        Database(fifo)

    assert mode(fifo) == 0o644 and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_device_node_is_refused_without_changing_its_mode() -> None:
    before = os.stat("/dev/null")
    with pytest.raises(DatabaseError, match="not a regular file"):
        Database("/dev/null")
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_ctime_ns) == (before.st_mode, before.st_ctime_ns)


def test_another_apps_sqlite_database_gets_no_tabmail_tables(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    foreign_sqlite(path)

    with pytest.raises(DatabaseError) as caught:
        AppContext.open(path)

    assert "not a tabmail database" in str(caught.value) and "notes" in str(caught.value)
    assert tables(path) == {"notes"}
    assert mode(path) == 0o644


def test_a_database_marked_by_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "repo.fossil"
    foreign_sqlite(path, FOSSIL_APPLICATION_ID)

    with pytest.raises(
        DatabaseError, match="another application's SQLite database \\(application id 0x0F055112\\)"
    ):
        AppContext.open(path)

    assert tables(path) == {"notes"} and mode(path) == 0o644


def test_a_folder_is_refused_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="is a folder, not a database file"):
        Database(tmp_path)


# -- accepted ---------------------------------------------------------------------------------


def test_a_new_database_is_marked_as_tabmails(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    AppContext.open(path).close()
    assert app_id(path) == APPLICATION_ID
    AppContext.open(path).close()  # and opens again


@pytest.mark.parametrize("kind", ["empty file", "sqlite without tables"])
def test_an_empty_file_becomes_a_new_database(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "blank.sqlite3"
    if kind == "empty file":
        path.touch()
    else:
        conn = sqlite3.connect(str(path))
        conn.execute("PRAGMA user_version = 0")
        conn.execute("VACUUM")
        conn.close()
    ctx = AppContext.open(path)
    try:
        assert ctx.tournaments.list_all() == []
    finally:
        ctx.close()
    assert app_id(path) == APPLICATION_ID and "tournaments" in tables(path)


def test_a_database_from_before_the_mark_opens_and_is_marked(tmp_path: Path) -> None:
    """Databases written by earlier tabmails have alembic_version at one of our revisions, no mark."""
    path = tmp_path / "old.sqlite3"
    AppContext.open(path).close()
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA application_id = 0")
    conn.commit()
    conn.close()
    assert app_id(path) == 0

    ctx = AppContext.open(path)
    try:
        assert ctx.tournaments.list_all() == []
    finally:
        ctx.close()
    assert app_id(path) == APPLICATION_ID


# -- one transaction -------------------------------------------------------------------------

KILL_AT_FIFTH_TABLE = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from tabmail.store.db import Database

created = 0

@event.listens_for(Engine, "after_cursor_execute")
def after(conn, cursor, statement, parameters, context, executemany):
    global created
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        created += 1
        if created == 5:
            os.kill(os.getpid(), signal.SIGKILL)

Database(sys.argv[1]).migrate()
"""


def test_a_first_start_killed_while_creating_the_schema_leaves_nothing_half_made(tmp_path: Path) -> None:
    path = tmp_path / "tabmail.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", KILL_AT_FIFTH_TABLE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert tables(path) == set()  # nothing committed: the four tables made before the kill are gone

    ctx = AppContext.open(path)  # the next start simply creates the schema
    try:
        assert ctx.db.current_revision() == ctx.db.head_revision()
        assert ctx.tournaments.list_all() == []
    finally:
        ctx.close()


# -- cheap when nothing is to do -------------------------------------------------------------


def test_the_revision_scan_agrees_with_alembic(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db_module._alembic_config("sqlite://"))
    scanned = scan_revisions(db_module.MIGRATIONS_DIR / "versions")
    assert scanned.head == script.get_current_head()
    assert scanned.known == {r.revision for r in script.walk_revisions()}


OPEN_AT_HEAD = """
import sys
from tabmail.services.context import AppContext
ctx = AppContext.open(sys.argv[1])
ctx.tournaments.list_all()
ctx.close()
print(sorted(m for m in ("alembic", "jinja2", "tabmail.importers.tabbycat") if m in sys.modules))
"""


def test_a_database_at_the_head_revision_opens_without_alembic(tmp_path: Path) -> None:
    path = tmp_path / "tabmail.sqlite3"
    AppContext.open(path).close()
    done = subprocess.run(
        [sys.executable, "-c", OPEN_AT_HEAD, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
