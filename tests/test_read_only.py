"""A database this process cannot write (the offline review case) opens read-only: commands
that read work, sending is refused in one line, the schema is never migrated, nothing changes.

Root writes any file whatever its mode, so as root the commands run without the capabilities
that let root ignore file permissions (setpriv drops them from the bounding set).

SQLite only: these are about a database file's permissions, which a PostgreSQL database has not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabmail.services.context import AppContext
from tabmail.store import db as db_module
from tabmail.store.db import Database, DatabaseError
from tests.conftest import REPO
from tests.test_cli_foundation import BASE_ENV, one_error_line
from tests.test_store import database_with_a_tournament, newer_migrations

DEMO = REPO / "resources" / "demo"
CAPS = "-dac_override,-dac_read_search,-fowner"


def as_a_user(*args: str) -> subprocess.CompletedProcess[str]:
    """``tabmail ARGS`` as a process bound by file permissions (root loses its override)."""
    prefix = [] if os.geteuid() != 0 else ["setpriv", f"--bounding-set={CAPS}", f"--inh-caps={CAPS}"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "tabmail", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BASE_ENV,
        timeout=60,
        check=False,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo imported and one draw queued, through the real CLI."""
    db = tmp_path_factory.mktemp("ro") / "tabmail.sqlite3"
    for args in (
        ["import", "csv", str(DEMO), "--tournament", "Demo Open"],
        ["send", "draw", "--tournament", "demo-open", "--round", "1", "--queue-only", "--yes"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "tabmail", "--db", str(db), *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=BASE_ENV,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(params=["read-only file", "read-only folder"])
def read_only_copy(request: pytest.FixtureRequest, demo_db: Path, tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "review"
    folder.mkdir()
    path = folder / "tabmail.sqlite3"
    shutil.copyfile(demo_db, path)
    path.chmod(0o400)
    if request.param == "read-only folder":
        folder.chmod(0o555)
    yield path
    folder.chmod(0o755)


def test_a_read_only_database_is_read_and_left_unchanged(read_only_copy: Path) -> None:
    before = digest(read_only_copy)
    done = as_a_user("--db", str(read_only_copy), "outbox")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"tabmail: read-only database: sending disabled ({read_only_copy} is opened read-only)"
    ]
    assert done.stdout.count(" queued ") >= 10
    assert as_a_user("--db", str(read_only_copy), "tournaments").stdout.startswith("demo-open ")
    assert digest(read_only_copy) == before


def test_sending_from_a_read_only_database_is_refused_in_one_line(read_only_copy: Path) -> None:
    before = digest(read_only_copy)
    for args in (
        ["send", "draw", "--tournament", "demo-open", "--round", "2", "--yes"],
        ["outbox", "run", "--no-wait"],
    ):
        line = one_error_line(as_a_user("--db", str(read_only_copy), *args))
        assert line.startswith("tabmail: error: read-only database: sending disabled"), line
    line = one_error_line(as_a_user("--db", str(read_only_copy), "import", "csv", str(DEMO)))
    assert "read-only database: this command would change it" in line
    assert digest(read_only_copy) == before


def test_read_only_on_request_writes_nothing(demo_db: Path, tmp_path: Path) -> None:
    """``--read-only`` (and ``read_only=True``) on a file that could be written."""
    path = tmp_path / "copy.sqlite3"
    shutil.copyfile(demo_db, path)
    before = digest(path)
    ctx = AppContext.open(path, read_only=True)
    try:
        assert ctx.read_only and len(ctx.notifications.messages()) >= 10
        with pytest.raises(Exception, match=r"readonly|read-only"):
            ctx.settings.set_text("backend", "smtp")
    finally:
        ctx.close()
    line = one_error_line(as_a_user("--read-only", "--db", str(path), "config", "set", "backend", "smtp"))
    assert "read-only database" in line
    assert digest(path) == before


def test_a_read_only_database_behind_the_code_is_refused_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    old_revision = database_with_a_tournament(path)
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", newer_migrations(tmp_path, old_revision))
    before = digest(path)

    database = Database(path, read_only=True)
    try:
        with pytest.raises(DatabaseError) as caught:
            database.migrate()
    finally:
        database.dispose()

    message = str(caught.value)
    assert "read-only" in message and f"({old_revision})" in message and "(9001)" in message
    assert digest(path) == before
    conn = sqlite3.connect(str(path))
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(old_revision,)]
    conn.close()
    assert list(tmp_path.glob("*.bak")) == []
