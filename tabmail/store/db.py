"""The database: where it lives, how it is opened, and how its schema is kept current."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from tabmail.domain.errors import TabmailError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
APP_NAME = "tabmail"


class DatabaseError(TabmailError):
    """The database cannot be opened or upgraded; the message says why in plain words."""


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "tabmail.sqlite3"


def resolve_url(target: str | os.PathLike[str] | None) -> str:
    """A path or any SQLAlchemy URL; None means the per-user SQLite database."""
    if target is None or str(target) == "":
        env = os.environ.get("TABMAIL_DB")
        target = env if env else default_database_path()
    text = str(target)
    if text == ":memory:":
        return "sqlite://"
    if "://" in text:
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
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Database:
    """Owns the engine and hands out short sessions. Call ``migrate()`` once at start-up."""

    def __init__(self, target: str | os.PathLike[str] | None = None, *, echo: bool = False) -> None:
        self.url = resolve_url(target)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.path: Path | None = None
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            self.path = Path(parsed.database)
            try:
                _create_private_file(self.path)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database at {self.path}: {exc.strerror}") from exc
        connect_args: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if self.is_sqlite:
            connect_args = {"timeout": 30, "check_same_thread": False}
            if self.path is None:  # in memory: one connection, or every session sees its own database
                extra["poolclass"] = StaticPool
        self.engine: Engine = create_engine(self.url, echo=echo, connect_args=connect_args, **extra)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def describe(self) -> str:
        """Where the database is, safe to show (no password)."""
        return str(self.path) if self.path else make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on any exception."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # -- schema -----------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str:
        head = ScriptDirectory.from_config(_alembic_config(self.url)).get_current_head()
        assert head is not None
        return head

    def migrate(self) -> Path | None:
        """Bring the schema to the code's version. Returns the backup made, if any.

        Refuses (DatabaseError) a database written by a newer tabmail. Before upgrading an
        existing SQLite database, copies it next to itself so a failed upgrade loses nothing.
        """
        cfg = _alembic_config(self.url)
        script = ScriptDirectory.from_config(cfg)
        current = self.current_revision()
        head = script.get_current_head()
        if current == head:
            return None
        if current is not None:
            try:
                script.get_revision(current)
            except Exception as exc:
                raise DatabaseError(
                    f"the database {self.describe()} was written by a newer tabmail "
                    f"(schema {current}); this version knows up to {head}. Upgrade tabmail."
                ) from exc
        backup = None
        if current is not None and self.path is not None and self.path.exists():
            backup = self._backup(current)
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except Exception as exc:
            kept = f"; the database before the upgrade is kept at {backup}" if backup else ""
            raise DatabaseError(
                f"upgrading the database {self.describe()} from schema {current} to {head} failed "
                f"({type(exc).__name__}: {exc}){kept}"
            ) from exc
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
        self.engine.dispose()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
