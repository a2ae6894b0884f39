"""Service events from ``ctx.bus`` re-emitted as typed Qt signals (Electrum's bridge idea).

Screens connect to these signals and decide for themselves what to redraw. The bus calls its
subscribers synchronously in the publisher's thread; services sometimes publish from a worker
thread (an import inside ``asyncio.to_thread``), so events from other threads are handed to
the GUI thread first. Every signal is therefore emitted on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThread, Signal, Slot

from tabmail.domain.events import (
    AddressFlagsChanged,
    BatchQueued,
    DatabaseLinkChanged,
    MessageStateChanged,
    OutboxProgressed,
    PersonChanged,
    PollFinished,
    RepliesChanged,
    RepliesReceived,
    SendingConnectionChanged,
    SettingsChanged,
    StatusesChanged,
    TournamentImported,
)
from tabmail.services.bus import EventBus

log = logging.getLogger(__name__)

NO_BATCH = -1  # outbox_progressed's batch id when the progress is not about one batch


class EventBridge(QObject):
    tournament_imported = Signal(int)  # tournament id
    batch_queued = Signal(int, int)  # batch id, message count
    message_state_changed = Signal(str, int, str)  # message id, batch id, MessageState value
    statuses_changed = Signal(list)  # message ids whose delivery status changed
    unmatched_events_received = Signal(int)  # provider events no message could be matched to
    flags_changed = Signal(list)  # address keys whose bounce flag changed
    poll_finished = Signal(bool, bool, str)  # ok, online, one-line summary
    outbox_progressed = Signal(int, int, int)  # batch id (NO_BATCH: all), done, total
    person_changed = Signal(int)  # person id
    settings_changed = Signal(list)  # setting keys and secret names just saved
    sending_connection_changed = Signal(bool, str)  # the outbox reached the provider; why not
    replies_received = Signal(list)  # message ids that got a reply (read from the mailbox)
    database_link_changed = Signal(bool, str, str)  # server reachable; why not; last read (ISO)
    replies_changed = Signal(list)  # message ids whose replies were read, attached or detached

    _received = Signal(object)  # an event from another thread, queued to the GUI thread

    def __init__(self, bus: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bus = bus
        self._detached = False
        self._emitters: dict[type, Callable[[Any], None]] = {
            TournamentImported: lambda e: self.tournament_imported.emit(e.tournament_id),
            BatchQueued: lambda e: self.batch_queued.emit(e.batch_id, e.message_count),
            MessageStateChanged: lambda e: self.message_state_changed.emit(
                e.message_id, e.batch_id, str(e.state)
            ),
            StatusesChanged: self._emit_statuses,
            AddressFlagsChanged: lambda e: self.flags_changed.emit(list(e.address_keys)),
            PollFinished: lambda e: self.poll_finished.emit(e.ok, e.online, e.summary),
            OutboxProgressed: lambda e: self.outbox_progressed.emit(
                NO_BATCH if e.batch_id is None else e.batch_id, e.done, e.total
            ),
            PersonChanged: lambda e: self.person_changed.emit(e.person_id),
            SettingsChanged: lambda e: self.settings_changed.emit(list(e.keys)),
            SendingConnectionChanged: lambda e: self.sending_connection_changed.emit(e.online, e.detail),
            RepliesReceived: lambda e: self.replies_received.emit(list(e.message_ids)),
            DatabaseLinkChanged: lambda e: self.database_link_changed.emit(e.online, e.detail, e.since),
            RepliesChanged: lambda e: self.replies_changed.emit(list(e.message_ids)),
        }
        self._received.connect(self._dispatch)  # auto connection: queued across threads
        for event_type in self._emitters:
            bus.subscribe(event_type, self._on_bus_event)

    def detach(self) -> None:
        """Stop re-emitting (the bus has no unsubscribe; this makes the handler inert)."""
        self._detached = True

    def _on_bus_event(self, event: object) -> None:
        if self._detached or not shiboken6.isValid(self):
            return
        if QThread.currentThread() == self.thread():
            self._dispatch(event)
        else:
            self._received.emit(event)

    @Slot(object)
    def _dispatch(self, event: object) -> None:
        if self._detached:
            return
        emit = self._emitters.get(type(event))
        if emit is not None:
            emit(event)

    def _emit_statuses(self, event: StatusesChanged) -> None:
        if event.message_ids:
            self.statuses_changed.emit(list(event.message_ids))
        if event.unmatched:
            self.unmatched_events_received.emit(event.unmatched)
