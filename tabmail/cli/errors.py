"""Turning what escaped a command into the one line the director reads.

Driver errors arrive wrapped (SQLAlchemy keeps the sqlite3 error in ``.orig``, with the SQL in
its text); the useful part is the error code, said in plain words. Nothing here imports the
database layer: the chain of causes is walked by attribute.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator

SQLITE_FULL = 13
SQLITE_READONLY = 8
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        orig = getattr(item, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, item.__cause__, item.__context__]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


DB_PASSWORD_HINT = "the password comes from `tabmail secret set db-password` or TABMAIL_DB_PASSWORD"


def explain(exc: BaseException) -> str | None:
    """One sentence for a failure we recognise (full disk, read-only or unreadable database)."""
    for item in _chain(exc):
        if isinstance(item, sqlite3.Error):
            code = getattr(item, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary == SQLITE_FULL:
                return (
                    "the disk is full: the database could not be written (SQLite: database or disk "
                    "is full); free some space and run the command again — nothing was half-written"
                )
            if primary == SQLITE_READONLY:
                return "the database is read-only: this command would change it (open a writable copy)"
            if primary in (SQLITE_CANTOPEN, SQLITE_NOTADB):
                return f"the database cannot be opened: {_first_line(item)}"
            return f"database error: {_first_line(item)}"
        if _is_driver_error(item, "psycopg", "OperationalError"):
            # A PostgreSQL server that is down, unreachable or refusing us: the driver's first
            # line says which (connection refused, password authentication failed, ...).
            line = _first_line(item)
            if "no password supplied" in line or "password authentication failed" in line:
                line += f"; {DB_PASSWORD_HINT}"
            return f"the database server could not be used: {line}"
        if isinstance(item, OSError) and item.errno == errno.ENOSPC:
            where = f" {item.filename}" if item.filename else " the output"
            return f"the disk is full:{where} could not be written; free some space and run the command again"
    return None


def _is_driver_error(item: BaseException, package: str, name: str) -> bool:
    """Recognised by name, so naming a driver's error never imports the driver."""
    return any(cls.__name__ == name and cls.__module__.split(".")[0] == package for cls in type(item).__mro__)
