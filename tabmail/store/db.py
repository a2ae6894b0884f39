"""The database: where it lives, how it is opened, and how its schema is kept current.

Opening is cheap: the file is checked with sqlite3 alone (``dbfile``), and Alembic is imported
only when the stored revision is not the scripts' head. A file that is not tabmail's is refused
before anything changes it; a file this process cannot write is opened read-only.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabmail.domain.actor import Actor, local_actor
from tabmail.store.dbfile import (
    APPLICATION_ID,
    DatabaseError,
    FileState,
    Revisions,
    connect_readonly,
    default_database_path,
    inspect_file,
    read_revision,
    scan_revisions,
)
from tabmail.store.reading import sqlite_file
from tabmail.store.sql import (
    LOCK_POLL_MS,
    SQLITE_BUSY_TIMEOUT_MS,
    DatabaseBusy,
    DatabaseLocked,
    SessionSql,
    Sql,
    SqliteConnections,
    begin_immediate,
    holds_nul,
    is_lock_error,
    without_nul,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import InstrumentedAttribute, Session
    from sqlalchemy.sql import ColumnElement

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

__all__ = [
    "LOCK_POLL_MS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Database",
    "DatabaseBusy",
    "DatabaseError",
    "DatabaseLocked",
    "DatabaseUnreachable",
    "default_database_path",
    "is_lock_error",
    "resolve_url",
]


class DatabaseUnreachable(DatabaseError):
    """The PostgreSQL server cannot be reached (stopped, restarted, network gone); nothing was
    written. The window keeps what it read and reconnects (services/live.py)."""


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused server connection, as SQLAlchemy tells it (psycopg's OperationalError
    with the connection gone, or any error SQLAlchemy marks as a disconnect)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    if not any(c.__name__ == "OperationalError" and c.__module__ == "psycopg" for c in type(orig).__mro__):
        return False
    # No SQLSTATE: the connection could not be made. 08: connection exception; 57P0x: the
    # server is shutting down or restarting. (A lock timeout is an OperationalError too: not this.)
    state = getattr(orig, "sqlstate", None)
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


# How long a write waits for another process's write lock (seconds), saying so while it waits.
DEFAULT_LOCK_WAIT = 60.0
LOCK_WAIT_ENV = "TABMAIL_LOCK_WAIT"
WAITING_FOR_LOCK = "waiting for the database: another tabmail process is writing…"


def lock_wait_from_env() -> float:
    text = os.environ.get(LOCK_WAIT_ENV, "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_LOCK_WAIT
    except ValueError:
        return DEFAULT_LOCK_WAIT


def resolve_url(target: str | os.PathLike[str] | None) -> str:
    """A path or any SQLAlchemy URL; None means the per-user SQLite database."""
    if target is None or str(target) == "":
        env = os.environ.get("TABMAIL_DB")
        target = env if env else default_database_path()
    text = str(target)
    if text == ":memory:":
        return "sqlite://"
    if "://" in text:
        if sqlite_file(text) is not None:  # a plain SQLite file's URL: nothing to check
            return text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(text)
        except ArgumentError as exc:
            raise DatabaseError(f"not a database URL or path: {text!r}") from exc
        return text
    return "sqlite:///" + str(Path(text).expanduser().absolute())


def _create_private_file(path: Path) -> None:
    """Create the SQLite file owner-only before SQLite does (it would use the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)
    else:
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _driver_missing(url: str, exc: ImportError) -> DatabaseError:
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    module = exc.name or str(exc)
    return DatabaseError(
        f"the {backend} database URL needs the Python driver {module!r}, which is not installed "
        f"(install it into tabmail's environment, e.g. pip install {module})"
    )


def _no_nul_in_text(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    """PostgreSQL's text cannot hold a NUL character: psycopg refuses the whole statement, so one
    address or provider reason with a NUL in it (from a Tabbycat site, a SendGrid event, a mail)
    would fail that import or poll every time it is tried. SQLite's text can. On both engines a
    NUL in a string written is stored as U+FFFD, so both keep the same values (bytes, such as a
    message's raw body, are untouched). Parameters come as one row or many, dicts or tuples."""
    if holds_nul(parameters):
        return statement, without_nul(parameters)
    return statement, parameters


class Database:
    """Owns the engine and hands out short sessions. Call ``migrate()`` once at start-up.

    On a SQLite file, SQLAlchemy's engine is made (and SQLAlchemy imported) only when a session
    is first asked for: the statements a send runs are plain SQL (``sql()``, store/sql.py) on
    connections of the database's own.

    ``read_only``: open without writing even when the file could be written (offline review).
    A file this process cannot write is opened read-only whatever is asked; see ``read_only``.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        echo: bool = False,
        read_only: bool = False,
        password: str | None = None,
    ) -> None:
        self.url = resolve_url(target)
        self.origin = f"tabmail {socket.gethostname()[:30]} {os.getpid()} {secrets.token_hex(3)}"
        self.path: Path | None = sqlite_file(self.url)
        self.is_sqlite = self.path is not None
        self.read_only = read_only
        self._state: FileState | None = None
        self._echo = echo
        self._engine: Engine | None = None
        self._sessions: Any = None
        self._connect_args: dict[str, Any] = {}
        # A write waits this long for another process's lock, calling on_lock_wait once first.
        self.lock_wait: float = lock_wait_from_env()
        self.on_lock_wait: Callable[[str], None] | None = None
        # Who this process acts for, and on which machine: stamped on each batch, resend,
        # address change and setting change (the context sets it from the user.name setting).
        self.actor: Actor = local_actor()
        self._files: SqliteConnections | None = None
        if self.path is None:
            database = self._check_url(password)
            if not self.is_sqlite or database in (None, "", ":memory:"):
                self._make_engine()
                return
            self.path = Path(database)  # a sqlite URL with options
        self._state = inspect_file(self.path, self._revisions().known)
        self.read_only = read_only or not self._state.writable
        if self.read_only and not self._state.exists:
            raise DatabaseError(
                f"there is no database at {self.path} to open read-only"
                if read_only
                else f"cannot create the database at {self.path}: the folder is read-only"
            )
        if not self.read_only:
            try:
                _create_private_file(self.path)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database at {self.path}: {exc.strerror}") from exc
        self._files = SqliteConnections(
            self.path,
            read_only=self.read_only,
            lock_wait=lambda: self.lock_wait,
            waiting=self.waiting,
            busy=self.busy,
        )

    def _check_url(self, password: str | None) -> str | None:
        """Check a URL that is not a plain SQLite file; the database it names."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise DatabaseError(f"not a database URL or path: {self.url!r}") from exc
        if parsed.password is not None:
            # The URL is shown, logged and kept in settings: a password in it would leak.
            shown = parsed.render_as_string(hide_password=True)
            raise DatabaseError(
                f"the database URL {shown} contains a password; remove it from the URL and "
                "store it with: tabmail secret set db-password (or set TABMAIL_DB_PASSWORD)"
            )
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            return parsed.database
        # Who wrote a change, as the live-change triggers put it in their notifications: this
        # process ignores its own (store/live.py). Never a secret: host and process id.
        self._connect_args = {"application_name": self.origin}
        if password:  # handed to the driver only, never part of self.url
            self._connect_args["password"] = password
        return parsed.database

    def _make_engine(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.orm import sessionmaker
        from sqlalchemy.pool import QueuePool, StaticPool

        extra: dict[str, Any] = {}
        connect_args = dict(self._connect_args)
        if self.is_sqlite:
            connect_args = {"timeout": 30, "check_same_thread": False}
            if self.path is None:  # in memory: one connection, or every session sees its own database
                extra["poolclass"] = StaticPool
            elif self.read_only:
                path = self.path
                extra["creator"] = lambda: connect_readonly(path, check_same_thread=False)
                extra["poolclass"] = QueuePool
        else:
            extra["pool_pre_ping"] = True  # a server restarted meanwhile: a fresh connection
        try:
            engine = create_engine(self.url, echo=self._echo, connect_args=connect_args, **extra)
        except ImportError as exc:
            raise _driver_missing(self.url, exc) from exc
        if self.is_sqlite:
            event.listen(
                engine, "connect", _sqlite_readonly_on_connect if self.read_only else _sqlite_on_connect
            )
        event.listen(engine, "before_cursor_execute", _no_nul_in_text, retval=True)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._engine = engine
        return engine

    @property
    def engine(self) -> Engine:
        """SQLAlchemy's engine, made on first use."""
        return self._engine if self._engine is not None else self._make_engine()

    @contextmanager
    def sql(self, *, write: bool = False) -> Iterator[Sql]:
        """One unit of work in plain SQL (store/sql.py): committed on success, rolled back on
        any exception. ``write``: it writes (on a SQLite file the write lock is taken first,
        waiting visibly for another process's as ``write_session`` does)."""
        if self._files is not None:
            with self._files.unit(write=write) as q:
                yield q
            return
        with self.write_session() if write else self.session() as s:
            yield SessionSql(s)

    def busy(self, waited: float) -> DatabaseBusy:
        return DatabaseBusy(
            f"the database {self.describe()} stayed locked by another process for {waited:.0f} s; "
            "nothing was lost. Try again when the other tabmail has finished."
        )

    def unreachable(self, exc: BaseException) -> DatabaseUnreachable:
        """One line: the server is gone and nothing was written. The driver's reason, shortened
        to its last clause ("Connection refused"), is enough; the whole of it goes to the log."""
        orig = getattr(exc, "orig", None) or exc
        detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        log.warning("the database server %s cannot be reached: %s", self.describe(), detail)
        reason = detail.rsplit(": ", 1)[-1].strip() or detail
        return DatabaseUnreachable(
            f"the database server cannot be reached ({reason}); nothing was changed. "
            "Try again when it is back."
        )

    def connect_listener(self, timeout: float) -> Any:
        """A new psycopg connection of its own (autocommit), for LISTEN: PostgreSQL only.
        TCP keepalives notice a server that vanished without closing the connection."""
        import psycopg

        _args, params = self.engine.dialect.create_connect_args(self.engine.url)
        params.pop("context", None)
        params.update(self._connect_args)
        params.update(connect_timeout=max(1, round(timeout)), keepalives=1, keepalives_idle=5)
        params.update(keepalives_interval=2, keepalives_count=2)
        return psycopg.connect(autocommit=True, **params)

    def waiting(self) -> None:
        """Say once that a write waits for another process (the CLI prints it, the GUI shows it)."""
        log.warning(WAITING_FOR_LOCK)
        if self.on_lock_wait is not None:
            self.on_lock_wait(WAITING_FOR_LOCK)

    def describe(self) -> str:
        """Where the database is, safe to show (no password)."""
        if self.path is not None:
            return str(self.path)
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def one_of(self, column: InstrumentedAttribute[Any], values: Sequence[Any]) -> ColumnElement[bool]:
        """``column IN (values)``. On PostgreSQL, ``column = ANY(:array)``: the values travel as one
        array parameter instead of one parameter each (2,000 address keys of a round view cost
        their SQL text, its parsing by psycopg and 2,000 binds at every read)."""
        if self.is_sqlite:
            return column.in_(list(values))
        from sqlalchemy import ARRAY, any_, bindparam

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any exception. A lock another
        process held beyond busy_timeout is one plain DatabaseBusy, never the SQL it stopped."""
        from sqlalchemy.exc import OperationalError

        if self._sessions is None:
            self._make_engine()
        session = self._sessions()
        session.info["actor"] = self.actor
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            if is_lock_error(exc):
                raise self.busy(SQLITE_BUSY_TIMEOUT_MS / 1000) from None
            if not self.is_sqlite and is_connection_error(exc):
                raise self.unreachable(exc) from None
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A unit of work that writes. On a SQLite file it takes the write lock first (BEGIN
        IMMEDIATE): while another process holds it, this says so (``on_lock_wait``) and waits up
        to ``lock_wait`` seconds, then raises DatabaseBusy with nothing written."""
        with self.session() as session:
            if self.path is not None:
                self._begin_immediate(session)
            yield session

    def _begin_immediate(self, session: Session) -> None:
        raw = session.connection().connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        begin_immediate(raw, self.lock_wait, self.waiting, self.busy)

    # -- schema -----------------------------------------------------------------
    @staticmethod
    def _revisions() -> Revisions:
        return scan_revisions(MIGRATIONS_DIR / "versions")

    def current_revision(self) -> str | None:
        if self.path is not None:
            return read_revision(self.path)
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        head = self._revisions().head
        if head is None:  # not one plain chain of scripts: Alembic decides
            from alembic.script import ScriptDirectory

            head = ScriptDirectory.from_config(_alembic_config(self.url)).get_current_head()
        assert head is not None
        return head

    def migrate(self) -> Path | None:
        """Bring the schema to the code's version. Returns the backup made, if any.

        Refuses (DatabaseError) a database written by a newer tabmail, and a read-only database
        whose schema is behind. Before upgrading an existing SQLite database, copies it next to
        itself so a failed upgrade loses nothing. The whole upgrade is one transaction: a
        process killed half-way leaves the database as it was.
        """
        revisions = self._revisions()
        current = self.current_revision()
        if current is not None and current == revisions.head:
            self._mark()
            return None
        if current is not None and current not in revisions.known and revisions.head is not None:
            raise self._newer(current, revisions.head)
        if self.read_only:
            raise DatabaseError(
                f"the database {self.describe()} is read-only and its schema "
                f"({current or 'none yet'}) is older than this tabmail's ({self.head_revision()}); "
                "open a writable copy once to upgrade it"
            )
        return self._upgrade(current)

    def _newer(self, current: str, head: str) -> DatabaseError:
        return DatabaseError(
            f"the database {self.describe()} was written by a newer tabmail "
            f"(schema {current}); this version knows up to {head}. Upgrade tabmail."
        )

    def _mark(self) -> None:
        """Databases written before tabmail marked its files get the mark on their next start."""
        if self.read_only or self._state is None or self._state.marked or self.path is None:
            return
        try:
            conn = sqlite3.connect(str(self.path), timeout=1)
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.commit()
            finally:
                conn.close()
        except sqlite3.Error as exc:  # another process is writing: the mark waits for the next start
            log.info("could not mark %s as tabmail's database yet: %s", self.path, exc)
            return
        self._state = None

    def _upgrade(self, current: str | None) -> Path | None:
        from alembic import command
        from alembic.script import ScriptDirectory

        cfg = _alembic_config(self.url)
        script = ScriptDirectory.from_config(cfg)
        head = script.get_current_head()
        if current == head:
            self._mark()
            return None
        if current is not None:
            try:
                script.get_revision(current)
            except Exception as exc:
                raise self._newer(current, str(head)) from exc
        backup = None
        if current is not None and self.path is not None and self.path.exists():
            backup = self._backup(current)
        try:
            with self.engine.connect() as conn, _transactional_ddl(conn, self.is_sqlite):
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if self.is_sqlite:
                    conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
        except Exception as exc:
            kept = f"; the database before the upgrade is kept at {backup}" if backup else ""
            raise DatabaseError(
                f"upgrading the database {self.describe()} from schema {current} to {head} failed "
                f"({type(exc).__name__}: {exc}){kept}"
            ) from exc
        self._state = None
        log.info("database %s upgraded %s -> %s", self.describe(), current, head)
        return backup

    def _backup(self, revision: str) -> Path:
        assert self.path is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = self.path.with_name(f"{self.path.name}.{revision}.{stamp}.bak")
        # sqlite3's backup API copies a consistent snapshot even with a WAL in use.
        src = sqlite3.connect(str(self.path))
        try:
            fd = os.open(backup, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            os.close(fd)
            dst = sqlite3.connect(str(backup))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        return backup

    def dispose(self) -> None:
        if self._files is not None:
            self._files.close()
        if self._engine is not None:
            self._engine.dispose()


@contextmanager
def _transactional_ddl(conn: Connection, is_sqlite: bool) -> Iterator[None]:
    """One real transaction around the whole upgrade, DDL included, committed at the end.

    Python's sqlite3 driver (in its default mode) sends no BEGIN before CREATE TABLE, so each
    statement would commit on its own and a killed first start would leave half a schema. As
    SQLAlchemy's pysqlite notes advise, the driver's own transaction handling is switched off on
    this connection and BEGIN is sent explicitly. Foreign keys are off during the upgrade (a
    batch migration copies and drops tables; with them on, dropping cascades) and checked before
    the commit.
    """
    if not is_sqlite:
        with conn.begin():
            yield
        return
    dbapi = conn.connection.driver_connection
    assert isinstance(dbapi, sqlite3.Connection)
    if conn.in_transaction():
        conn.commit()
    saved = dbapi.isolation_level
    dbapi.isolation_level = None
    try:
        dbapi.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: set before BEGIN
        # SQLAlchemy's transaction: Alembic sees it as the caller's and opens none of its own;
        # its commit (or rollback) ends the BEGIN sent here.
        with conn.begin():
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield
            problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise DatabaseError(f"the upgrade would break {len(problems)} foreign-key references")
    finally:
        dbapi.isolation_level = saved
        dbapi.execute("PRAGMA foreign_keys=ON")


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_readonly_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA query_only=ON")
    cur.close()
