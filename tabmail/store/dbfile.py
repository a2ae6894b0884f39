"""The SQLite file itself, looked at with sqlite3 alone (no SQLAlchemy, no Alembic): is it
tabmail's, may this process write it, and which schema revision does it hold.

Everything here only reads: a file that is not tabmail's is refused before anything changes its
mode, its header or its tables.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tabmail.domain.errors import TabmailError

# PRAGMA application_id of every database tabmail creates: "TBML" in ASCII.
APPLICATION_ID = 0x54424D4C
SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_APPLICATION_ID_OFFSET = 68


class DatabaseError(TabmailError):
    """The database cannot be opened or upgraded; the message says why in plain words."""


@dataclass(frozen=True)
class FileState:
    """What ``inspect_file`` found. ``empty``: missing, 0 bytes, or an SQLite file with no tables."""

    empty: bool
    exists: bool
    writable: bool
    revision: str | None  # alembic_version's row, None when there is none
    marked: bool  # carries tabmail's application_id


def default_database_path() -> Path:
    """The per-user SQLite database (the platform's data folder)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("tabmail", appauthor=False)) / "tabmail.sqlite3"


def readonly_uri(path: Path, *, immutable: bool = False) -> str:
    return f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")


def connect_readonly(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that cannot write. In a folder this process cannot write, SQLite cannot make
    the WAL's shared-memory file; the file is then read as it is on disk (immutable)."""
    conn = sqlite3.connect(readonly_uri(path), uri=True, check_same_thread=check_same_thread)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK):
            raise
    conn = sqlite3.connect(readonly_uri(path, immutable=True), uri=True, check_same_thread=check_same_thread)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def _writable(path: Path, exists: bool) -> bool:
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK) if path.parent.exists() else True
    return folder_ok and (not exists or os.access(path, os.W_OK))


def inspect_file(path: Path, known_revisions: frozenset[str]) -> FileState:
    """Refuse (DatabaseError) anything that is not a tabmail database, changing nothing.

    Accepted: no file yet, an empty file or an SQLite file without tables (a new database), a
    file marked with tabmail's application_id, or an unmarked SQLite file whose alembic_version
    holds one of ``known_revisions`` (written by a tabmail from before the mark existed).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return FileState(
            empty=True, exists=False, writable=_writable(path, False), revision=None, marked=False
        )
    except OSError as exc:
        raise DatabaseError(f"cannot open the database {path}: {exc.strerror}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise DatabaseError(
            f"{path} is a folder, not a database file; give --db a file name, "
            f"for example {path / 'tabmail.sqlite3'}"
        )
    if not stat.S_ISREG(info.st_mode):
        raise DatabaseError(
            f"{path} is not a regular file (a device, pipe or socket), so it cannot be a tabmail "
            "database; nothing was changed"
        )
    writable = _writable(path, True)
    if info.st_size == 0:
        return FileState(empty=True, exists=True, writable=writable, revision=None, marked=False)
    try:
        with open(path, "rb") as fh:
            header = fh.read(_HEADER_SIZE)
    except OSError as exc:
        raise DatabaseError(f"cannot read the database {path}: {exc.strerror}") from exc
    if not header.startswith(SQLITE_MAGIC):
        raise DatabaseError(f"{path} is not a tabmail database (not an SQLite file); nothing was changed")
    stored_id = int.from_bytes(header[_APPLICATION_ID_OFFSET : _APPLICATION_ID_OFFSET + 4], "big")
    if stored_id not in (0, APPLICATION_ID):
        raise DatabaseError(
            f"{path} is another application's SQLite database (application id 0x{stored_id:08X}), "
            "not tabmail's; nothing was changed"
        )
    try:
        conn = connect_readonly(path)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read the database {path}: {exc}") from exc
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        revision = _revision(conn) if "alembic_version" in tables else None
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read the database {path}: {exc}") from exc
    finally:
        conn.close()
    if app_id == APPLICATION_ID:
        return FileState(empty=not tables, exists=True, writable=writable, revision=revision, marked=True)
    if app_id != 0:
        raise DatabaseError(
            f"{path} is another application's SQLite database (application id 0x{app_id:08X}), "
            "not tabmail's; nothing was changed"
        )
    if not tables:
        return FileState(empty=True, exists=True, writable=writable, revision=None, marked=False)
    if revision is not None and revision in known_revisions:
        return FileState(empty=False, exists=True, writable=writable, revision=revision, marked=False)
    shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
    raise DatabaseError(
        f"{path} is not a tabmail database (an SQLite database with the tables {shown}); nothing was changed"
    )


def _revision(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def read_revision(path: Path) -> str | None:
    """The schema revision stored in the file (None: no schema yet), read without writing."""
    try:
        conn = connect_readonly(path)
        try:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            return _revision(conn) if has_table else None
        finally:
            conn.close()
    except sqlite3.Error as exc:  # never "no schema yet" by mistake: that would skip the backup
        raise DatabaseError(f"cannot read the database {path}: {exc}") from exc


_REVISION = re.compile(r"""^revision\s*(?::\s*str\s*)?=\s*['"]([^'"]+)['"]""", re.M)
_DOWN = re.compile(r"""^down_revision\s*(?::[^=]*)?=\s*(None|['"]([^'"]+)['"])\s*$""", re.M)


@dataclass(frozen=True)
class Revisions:
    """The migration scripts' ids, read from the files' text (importing Alembic costs ~0.3 s)."""

    known: frozenset[str]
    head: str | None  # None: not one plain chain (a merge, two heads): ask Alembic


def scan_revisions(versions_dir: Path) -> Revisions:
    known: set[str] = set()
    parents: set[str] = set()
    plain = True
    for script in sorted(versions_dir.glob("*.py")):
        text = script.read_text(encoding="utf-8")
        rev, down = _REVISION.search(text), _DOWN.search(text)
        if rev is None or down is None:  # a merge (tuple down_revision) or an unusual file
            plain = False
            continue
        known.add(rev.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = known - parents
    head = next(iter(heads)) if plain and len(heads) == 1 else None
    return Revisions(known=frozenset(known), head=head)
