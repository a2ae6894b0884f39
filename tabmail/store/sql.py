"""Plain SQL on either engine, for the statements a send runs.

A statement here is written once, as portable SQL with named parameters (``:name``). On a SQLite
file it runs through the standard library's sqlite3 on a connection of ``SqliteConnections``
(no SQLAlchemy: importing it is 0.3 s of a fresh ``tabmail send``); on any other database through
SQLAlchemy's ``text()`` in the caller's session. Both store the same values as the ORM does:

- times: naive UTC (on SQLite the text SQLAlchemy writes, ``2026-12-03 16:45:19.000123``);
- JSON: ``Json(value)`` as a parameter, text on SQLite, the driver's JSON on PostgreSQL;
- a NUL in a string is stored as U+FFFD on both engines (PostgreSQL's text cannot hold one).

Nothing here imports SQLAlchemy at module level: the start-up test checks it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tabmail.store.dbfile import DatabaseError, connect_readonly

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

SQLITE_BUSY_TIMEOUT_MS = 30000  # SQLite's own wait for a lock, for statements outside the outbox
LOCK_POLL_MS = 250  # one try for the write lock while waiting with a visible message
NUL_STORED_AS = "\ufffd"  # U+FFFD REPLACEMENT CHARACTER
_IDLE_CONNECTIONS = 4  # kept open between units of work (the GUI's workers, the outbox's threads)
CHUNK = 2000  # ids per IN (...): far below SQLite's 32,766 bound variables
T = TypeVar("T")


class DatabaseLocked(DatabaseError):
    """Another connection holds SQLite's write lock right now; the caller may wait and retry."""


class DatabaseBusy(DatabaseError):
    """Another process kept the database locked for longer than tabmail waits."""


def is_lock_error(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED, raw or wrapped by SQLAlchemy (its ``orig``)."""
    orig = getattr(exc, "orig", None) or exc
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(orig)


# -- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Json:
    """A parameter for a JSON column."""

    value: Any


def sqlite_time(value: datetime | None) -> str | None:
    """A time as SQLAlchemy stores it in SQLite (naive UTC, microseconds)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use aware UTC")
    # isoformat writes the same text as strftime("%Y-%m-%d %H:%M:%S.%f") in half the time
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def as_time(value: datetime | str | None) -> datetime | None:
    """A stored time as aware UTC (SQLite: text; PostgreSQL: a naive datetime, naive UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_required_time(value: datetime | str | None) -> datetime:
    """A stored time of a NOT NULL column as aware UTC."""
    found = as_time(value)
    if found is None:
        raise ValueError("a time the schema requires is missing")
    return found


def holds_nul(value: Any) -> bool:
    # A loop over a stack, not recursion through generators: a 1,150-message batch is some
    # 30,000 values, looked at on every write.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, Json):
            stack.append(item.value)
    return False


def without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", NUL_STORED_AS)
    if isinstance(value, dict):
        return {k: without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_nul(v) for v in value)
    if isinstance(value, Json):
        return Json(without_nul(value.value))
    return value


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, Json):
        return json.dumps(value.value)
    return value


def _server_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Json):
        from psycopg.types.json import Json as PgJson

        return PgJson(value.value)
    return value


def _params(params: Mapping[str, Any] | None, convert: Callable[[Any], Any]) -> dict[str, Any]:
    if not params:
        return {}
    out = {k: convert(v) for k, v in params.items()}
    return without_nul(out) if holds_nul(out) else out


# -- running statements ---------------------------------------------------------------------------


class Sql:
    """One unit of work's statements. Rows come back as tuples, in the SELECT's column order."""

    sqlite: bool = True

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        raise NotImplementedError

    def stream(self, sql: str, params: Mapping[str, Any] | None, size: int) -> Iterator[list[Sequence[Any]]]:
        """A SELECT's rows ``size`` at a time, each chunk read from the database when it is asked
        for (a server-side cursor on PostgreSQL), so the caller can do other work in between."""
        raise NotImplementedError

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement that writes; how many rows it changed."""
        raise NotImplementedError

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        json_columns: Collection[str] = (),
        time_columns: Collection[str] = (),
    ) -> None:
        """One executemany INSERT of ``rows`` (each with the same keys); the values of
        ``json_columns`` are JSON, those of ``time_columns`` times."""
        if not rows:
            return
        names = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
        self.many(sql, [{k: Json(v) if k in json_columns else v for k, v in r.items()} for r in rows])

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def one_of(self, column: str, name: str, values: Sequence[Any], params: dict[str, Any]) -> str:
        """``column IN (…)``, the values put in ``params``. On PostgreSQL ``column = ANY(:name)``:
        the values travel as one array parameter instead of one parameter each."""
        if self.sqlite:
            return f"{column} {in_list(name, values, params)}"
        params[name] = list(values)
        return f"{column} = ANY(:{name})"

    def json(self, value: Any) -> Any:
        """A JSON column's value as read: text on SQLite, decoded by the PostgreSQL driver."""
        if self.sqlite and isinstance(value, str | bytes):
            return json.loads(value)
        return value

    def insert(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run an INSERT ending in ``RETURNING id``; the new row's id."""
        row = self.one(sql, params)
        assert row is not None
        return int(row[0])


class SqliteSql(Sql):
    sqlite = True

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        return self.conn.execute(sql, _params(params, _sqlite_value)).fetchall()

    def stream(self, sql: str, params: Mapping[str, Any] | None, size: int) -> Iterator[list[Sequence[Any]]]:
        cursor = self.conn.execute(sql, _params(params, _sqlite_value))
        try:
            while part := cursor.fetchmany(size):
                yield part
        finally:
            cursor.close()

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return int(self.conn.execute(sql, _params(params, _sqlite_value)).rowcount)

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            self.conn.executemany(sql, [_params(p, _sqlite_value) for p in params])

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        json_columns: Collection[str] = (),
        time_columns: Collection[str] = (),
    ) -> None:
        """Handed to sqlite3 as plain tuples: only the JSON and time columns are converted, and a
        value every row shares (a batch's time, its backend) only once. A 1,150-message batch is
        some 30,000 values."""
        if not rows:
            return
        names = list(rows[0])
        first = rows[0]
        converted: list[tuple[int, Callable[[Any], Any], Any, Any]] = []
        for i, name in enumerate(names):
            if name in json_columns:
                converted.append((i, json.dumps, first[name], json.dumps(first[name])))
            elif name in time_columns:
                converted.append((i, sqlite_time, first[name], sqlite_time(first[name])))
        params = []
        for row in rows:
            values = [row[name] for name in names]
            for i, convert, shared, done in converted:
                value = values[i]
                values[i] = done if value is shared else convert(value)
            params.append(tuple(values))
        if holds_nul(params):
            params = without_nul(params)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        self.conn.executemany(sql, params)


class SessionSql(Sql):
    """Through SQLAlchemy's session or connection (PostgreSQL, an in-memory SQLite database)."""

    def __init__(self, session: Session | Connection) -> None:
        from sqlalchemy import Connection, text

        self.session = session
        bind = session if isinstance(session, Connection) else session.get_bind()
        self.sqlite = bind.dialect.name == "sqlite"
        self._text = text
        self._convert = _sqlite_value if self.sqlite else _server_value

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        return [tuple(r) for r in self.session.execute(self._text(sql), _params(params, self._convert))]

    def stream(self, sql: str, params: Mapping[str, Any] | None, size: int) -> Iterator[list[Sequence[Any]]]:
        result = self.session.execute(
            self._text(sql), _params(params, self._convert), execution_options={"yield_per": size}
        )
        try:
            for part in result.partitions(size):
                yield [tuple(r) for r in part]
        finally:
            result.close()

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        result: Any = self.session.execute(self._text(sql), _params(params, self._convert))
        return int(result.rowcount)

    def many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            self.session.execute(self._text(sql), [_params(p, self._convert) for p in params])


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    """``items`` in slices of ``size``: one IN list each."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def in_list(name: str, values: Sequence[Any], params: dict[str, Any]) -> str:
    """``IN (:name_0, :name_1, …)`` with the values put in ``params``; ``IN (NULL)`` when empty."""
    if not values:
        return "IN (NULL)"
    keys = [f"{name}_{i}" for i in range(len(values))]
    params.update(zip(keys, values, strict=True))
    return "IN (" + ", ".join(f":{k}" for k in keys) + ")"


def begin_immediate(
    conn: sqlite3.Connection,
    lock_wait: float,
    waiting: Callable[[], None],
    busy: Callable[[float], DatabaseBusy],
) -> None:
    """Take SQLite's write lock (BEGIN IMMEDIATE). While another process holds it, say so once
    (``waiting``) and try again every LOCK_POLL_MS, up to ``lock_wait`` seconds; then raise
    ``busy(waited)`` with nothing written."""
    start = time.monotonic()
    said = False
    conn.execute(f"PRAGMA busy_timeout={LOCK_POLL_MS}")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_lock_error(exc):
                    raise
            waited = time.monotonic() - start
            if waited >= lock_wait:
                raise busy(waited)
            if not said:
                said = True
                waiting()
    finally:
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


class SqliteConnections:
    """A SQLite file's connections for plain SQL, a few kept open between units of work.

    Writes take the write lock first (``begin_immediate``).
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool,
        lock_wait: Callable[[], float],
        waiting: Callable[[], None],
        busy: Callable[[float], DatabaseBusy],
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._lock_wait = lock_wait
        self._waiting = waiting
        self._busy = busy
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = connect_readonly(self.path, check_same_thread=False)
            conn.isolation_level = None
            conn.execute("PRAGMA query_only=ON")
        else:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return conn

    @contextmanager
    def unit(self, *, write: bool = False) -> Iterator[SqliteSql]:
        """One transaction: committed on success, rolled back on any exception."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            if write:
                begin_immediate(conn, self._lock_wait(), self._waiting, self._busy)
            else:
                conn.execute("BEGIN")
            yield SqliteSql(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            healthy = not isinstance(exc, sqlite3.Error)
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                healthy = False
            self._release(conn, healthy)
            if isinstance(exc, sqlite3.OperationalError) and is_lock_error(exc):
                raise self._busy(SQLITE_BUSY_TIMEOUT_MS / 1000) from None
            raise
        self._release(conn, True)

    def _release(self, conn: sqlite3.Connection, healthy: bool) -> None:
        """Keep a connection for the next unit of work (a few at most), or close it."""
        if healthy:
            with self._lock:
                if len(self._idle) < _IDLE_CONNECTIONS:
                    self._idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
