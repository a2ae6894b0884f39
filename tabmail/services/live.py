"""Live across laptops: another process's changes on the shared PostgreSQL reach this bus.

``LiveChanges`` turns the notifications ``store.live.ChangeListener`` receives into the same
events this process publishes for its own changes, so every screen already listening to the
bus redraws what another laptop changed, within a notification's round trip. It also
publishes ``DatabaseLinkChanged`` when the server becomes unreachable and when it is back
(screens then read everything again: notifications sent meanwhile were never received).
On SQLite there is nothing to listen to: each process has the in-process bus only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from tabmail.domain.events import (
    AddressFlagsChanged,
    DatabaseLinkChanged,
    MessageStateChanged,
    PersonChanged,
    RepliesReceived,
    StatusesChanged,
    TournamentImported,
)
from tabmail.services.context import AppContext
from tabmail.store.live import Change, ChangeListener

log = logging.getLogger(__name__)


def events_for(change: Change) -> list[object]:
    """The bus events one notification stands for (migration 0007 names the kinds)."""
    items = change.items
    if change.kind == "m":
        return [MessageStateChanged(str(m[0]), int(m[1]), str(m[2])) for m in items if len(m) == 3]
    if change.kind == "s":
        return [StatusesChanged(tuple(str(i) for i in items))]
    if change.kind == "f":
        return [AddressFlagsChanged(tuple(str(i) for i in items))]
    if change.kind == "p":
        return [PersonChanged(int(i)) for i in dict.fromkeys(items)]
    if change.kind == "t":
        return [TournamentImported(int(i)) for i in dict.fromkeys(items)]
    if change.kind == "r":
        return [RepliesReceived(tuple(str(i) for i in items))]
    return []


class LiveChanges:
    """Owns the listener; ``start()`` is a no-op on SQLite (returns False)."""

    def __init__(
        self, ctx: AppContext, retry_every: float = 2.0, clock: Callable[[], datetime] | None = None
    ):
        self._ctx = ctx
        self._clock = clock or (lambda: datetime.now(UTC))
        self.retry_every = retry_every
        self._listener: ChangeListener | None = None
        # Until when what the window shows is known current: the moment the server was lost
        # (every change before it was announced and read).
        self.last_read: datetime | None = None
        self.online: bool | None = None

    def start(self) -> bool:
        if self._ctx.db.is_sqlite or self._listener is not None:
            return self._listener is not None
        self._listener = ChangeListener(self._ctx.db, self._on_change, self._on_link, self.retry_every)
        self._listener.start()
        return True

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def _on_change(self, change: Change) -> None:
        for event in events_for(change):
            self._ctx.bus.publish(event)

    def _on_link(self, online: bool, detail: str) -> None:
        was = self.online
        self.online = online
        if online and was is None:  # the first connection: nothing was missed
            return
        if not online:
            self.last_read = self._clock()
        since = (self.last_read or self._clock()).isoformat()
        log.info("database server %s", "reachable again" if online else f"unreachable: {detail}")
        self._ctx.bus.publish(DatabaseLinkChanged(online, detail, since))
