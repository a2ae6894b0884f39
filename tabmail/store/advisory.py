"""A duty only one process of a tab room does at a time, elected by a PostgreSQL advisory lock.

``DutyLock(db, "sendgrid")``: ``hold()`` takes ``pg_try_advisory_lock`` on a connection of its
own and keeps that connection (the lock is the session's) for as long as the process does the
duty; every later ``hold()`` checks the connection is still there. When the process ends, is
killed or loses the network, the server ends its session and releases the lock, and another
process's next ``hold()`` gets it. On SQLite (one laptop) there is no election: ``hold()`` is
always True, as before (each process that polls, polls), and SQLAlchemy is not imported:
`tabmail status` loads this module (through services/election.py) to say who last checked.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from tabmail.store.db import Database

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

_TRY = "SELECT pg_try_advisory_lock(:key)"
_ALIVE = "SELECT 1"


def lock_key(duty: str) -> int:
    """A stable signed 64-bit key for ``duty`` (the lock space is shared with anything else the
    database serves, so the key is a hash of a tabmail-specific name, not a small number)."""
    digest = hashlib.sha256(f"tabmail.duty.{duty}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class DutyLock:
    def __init__(self, db: Database, duty: str) -> None:
        self._db = db
        self.duty = duty
        self.key = lock_key(duty)
        self._conn: Connection | None = None

    @property
    def elected(self) -> bool:
        """Whether there is an election at all (a server database several laptops share)."""
        return not self._db.is_sqlite

    def hold(self) -> bool:
        """Whether this process does the duty now: keeps the lock it has, or takes it when free.
        Never raises for a database it cannot reach (then it does not hold the lock)."""
        if not self.elected:
            return True
        from sqlalchemy import text  # a server database: the engine has loaded it already
        from sqlalchemy.exc import DBAPIError

        if self._conn is not None:
            try:
                self._conn.execute(text(_ALIVE))
                return True
            except DBAPIError:
                log.info("lost the %s lock: the database connection ended", self.duty)
                self._drop()
        try:
            conn = self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError:
            return False
        try:
            got = bool(conn.execute(text(_TRY), {"key": self.key}).scalar())
        except DBAPIError:
            got = False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        """Give the duty up (the window closes, the command ends): the session ends, and with
        it the lock, so another process takes over at its next try."""
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        from sqlalchemy.exc import DBAPIError

        try:
            conn.invalidate()  # the DBAPI connection is closed, never handed back holding the lock
        except DBAPIError:
            pass
        finally:
            conn.close()
