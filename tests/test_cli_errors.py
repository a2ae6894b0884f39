"""Failures promised as one line: a folder or a driverless URL as --db, a full disk, a reader
that stops reading (``tabmail … | head``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tabmail.resources import resource
from tests.conftest import REPO
from tests.test_cli_foundation import BASE_ENV, one_error_line, tabmail

DEMO = resource("demo")


def test_a_folder_as_db_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(tabmail("--db", str(tmp_path), "outbox"))
    assert f"{tmp_path} is a folder, not a database file" in line


def test_a_postgresql_url_without_its_driver_is_one_line() -> None:
    # pg8000 is a driver tabmail never installs (psycopg is its PostgreSQL driver).
    line = one_error_line(tabmail("--db", "postgresql+pg8000://tab@127.0.0.1:1/tabmail", "outbox"))
    assert "needs the Python driver 'pg8000'" in line and "not installed" in line


def test_a_postgresql_server_that_refuses_the_connection_is_one_line() -> None:
    line = one_error_line(tabmail("--db", "postgresql+psycopg://tab@127.0.0.1:1/tabmail", "outbox"))
    assert line.startswith("tabmail: error: the database server could not be used:")
    assert "Connection refused" in line and "unexpected" not in line


# SQLite's own page limit gives the very error a full disk gives (SQLITE_FULL), through every
# layer of the real command.
FULL_DISK = """
import sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "connect")
def no_room_to_grow(dbapi_connection, record):
    pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
    dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

from tabmail.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_while_writing_the_database_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "tabmail.sqlite3"
    assert tabmail("--db", str(db), "outbox").returncode == 0  # the schema exists; nothing more fits
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FULL_DISK,
            "--db",
            str(db),
            "import",
            "csv",
            str(DEMO),
            "--tournament",
            "Full",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BASE_ENV,
        timeout=60,
        check=False,
    )
    line = one_error_line(done)
    assert line.startswith("tabmail: error: the disk is full: the database could not be written")
    assert "INSERT" not in line


def test_a_full_disk_under_the_output_is_one_line(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "tabmail", "--db", str(tmp_path / "t.sqlite3"), "config", "show"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=BASE_ENV,
            timeout=60,
            check=False,
        )
    line = one_error_line(done)
    assert "the disk is full" in line


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path: Path) -> None:
    """``tabmail config show | head -0``: the reader is gone before the output is written."""
    db = str(tmp_path / "t.sqlite3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", db, "config", "show"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=BASE_ENV,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE
    assert stderr == ""
