"""Changes other tabmail processes made, as PostgreSQL announces them (LISTEN/NOTIFY).

The triggers of migration 0007 NOTIFY ``tabmail_changes`` in the transaction of each change.
``ChangeListener`` keeps one connection of its own in a background thread, LISTENs, and hands
every notification written by another process to ``on_change``; its own process's are skipped
(the writer's ``application_name`` is in the payload: ``Database.origin``). It also says
whether the server can be reached (``on_link``): a lost connection is noticed at once when the
server closes it, and within a few seconds otherwise (a heartbeat query and TCP keepalives);
then it connects again every ``retry_every`` seconds until ``stop()``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tabmail.store.db import Database

log = logging.getLogger(__name__)

CHANNEL = "tabmail_changes"
KINDS = frozenset("msfptr")  # see migration 0007_live_changes
HEARTBEAT_S = 3.0
WAIT_S = 0.5  # how long one wait for notifications lasts (stop() is noticed within it)


@dataclass(frozen=True, slots=True)
class Change:
    """One notification: ``kind`` (one letter, migration 0007) and its ids."""

    kind: str
    items: tuple[Any, ...]


def parse(payload: str, own_origin: str) -> Change | None:
    """The change in a notification's payload; None for our own, or for one we cannot read."""
    try:
        data = json.loads(payload)
        kind, origin, items = data["k"], data.get("o", ""), data.get("i") or []
    except (ValueError, TypeError, KeyError):
        log.warning("ignoring an unreadable change notification (%d bytes)", len(payload))
        return None
    if origin == own_origin or kind not in KINDS or not isinstance(items, list):
        return None
    return Change(str(kind), tuple(tuple(i) if isinstance(i, list) else i for i in items))


class ChangeListener:
    def __init__(
        self,
        db: Database,
        on_change: Callable[[Change], None],
        on_link: Callable[[bool, str], None],
        retry_every: float = 2.0,
    ) -> None:
        if db.is_sqlite:
            raise ValueError("SQLite has no LISTEN: its changes go through the in-process bus")
        self._db = db
        self._on_change = on_change
        self._on_link = on_link
        self.retry_every = retry_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self.online: bool | None = None  # None until the first connection was tried

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tabmail-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _link(self, online: bool, detail: str) -> None:
        if online == self.online:
            return
        self.online = online
        try:
            self._on_link(online, detail)
        except Exception:
            log.exception("the database link handler failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # psycopg.OperationalError mostly: the server went away
                detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                if self.online is not False:
                    log.warning(
                        "database server unreachable: %s; reconnecting every %.0f s", detail, self.retry_every
                    )
                self._link(False, detail)
            finally:
                self._close()
            self._stop.wait(self.retry_every)

    def _listen(self) -> None:
        conn = self._conn = self._db.connect_listener(timeout=max(2.0, self.retry_every))
        conn.execute(f"LISTEN {CHANNEL}")
        self._link(True, "")
        beat = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=WAIT_S):
                change = parse(note.payload, self._db.origin)
                if change is not None:
                    try:
                        self._on_change(change)
                    except Exception:
                        log.exception("a live change handler failed on %r", change.kind)
            if time.monotonic() - beat >= HEARTBEAT_S:
                conn.execute("SELECT 1")
                beat = time.monotonic()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
