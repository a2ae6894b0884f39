"""EventBridge: bus events become typed Qt signals, always on the GUI thread."""

from __future__ import annotations

import threading

import pytest
from pytestqt.qtbot import QtBot

from tabmail.domain.events import (
    AddressFlagsChanged,
    BatchQueued,
    MessageStateChanged,
    OutboxProgressed,
    PersonChanged,
    PollFinished,
    StatusesChanged,
    TournamentImported,
)
from tabmail.domain.notification import MessageState
from tabmail.gui.bridge import NO_BATCH, EventBridge
from tabmail.services.bus import EventBus

pytestmark = pytest.mark.gui


@pytest.mark.parametrize(
    ("event", "signal", "args"),
    [
        (TournamentImported(3), "tournament_imported", [3]),
        (BatchQueued(7, 40), "batch_queued", [7, 40]),
        (MessageStateChanged("m-1", 7, MessageState.SENT), "message_state_changed", ["m-1", 7, "sent"]),
        (StatusesChanged(("m-1", "m-2")), "statuses_changed", [["m-1", "m-2"]]),
        (StatusesChanged((), unmatched=4), "unmatched_events_received", [4]),
        (AddressFlagsChanged(("a@example.org",)), "flags_changed", [["a@example.org"]]),
        (PollFinished(True, True, "3 new events"), "poll_finished", [True, True, "3 new events"]),
        (OutboxProgressed(None, 5, 10), "outbox_progressed", [NO_BATCH, 5, 10]),
        (PersonChanged(11), "person_changed", [11]),
    ],
)
def test_each_event_becomes_its_signal(qtbot: QtBot, event: object, signal: str, args: list[object]) -> None:
    bus = EventBus()
    bridge = EventBridge(bus)
    with qtbot.waitSignal(getattr(bridge, signal), timeout=1000) as blocker:
        bus.publish(event)
    assert blocker.args == args


def test_events_from_a_worker_thread_arrive_on_the_gui_thread(qtbot: QtBot) -> None:
    bus = EventBus()
    bridge = EventBridge(bus)
    gui_thread = threading.get_ident()
    received: list[tuple[int, int]] = []
    bridge.tournament_imported.connect(lambda tid: received.append((tid, threading.get_ident())))
    worker = threading.Thread(target=bus.publish, args=(TournamentImported(9),))
    with qtbot.waitSignal(bridge.tournament_imported, timeout=2000):
        worker.start()
    worker.join()
    assert received == [(9, gui_thread)]


def test_a_detached_bridge_stays_quiet(qtbot: QtBot) -> None:
    bus = EventBus()
    bridge = EventBridge(bus)
    with qtbot.assertNotEmitted(bridge.person_changed):
        bridge.detach()
        bus.publish(PersonChanged(1))
