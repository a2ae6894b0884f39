"""Qt objects caught in reference cycles are freed on the GUI thread, never in a worker thread
that happened to allocate when Python's collector decided to run (gui/collector.py)."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.logging import _QtMessageCapture
from pytestqt.qtbot import QtBot

from tabmail.gui.collector import GuiThreadCollector

pytestmark = pytest.mark.gui


class SelfKeeping(QObject):
    """A Python-owned QObject with a running timer, kept only by a cycle through itself."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.start(60_000)
        self.me = self


def garbage_in_a_cycle(freed_on: list[str]) -> weakref.ref[SelfKeeping]:
    obj = SelfKeeping()
    return weakref.ref(obj, lambda _ref: freed_on.append(threading.current_thread().name))


def allocate_in_a_worker() -> list[list[object]]:
    """Container allocations in a worker thread, enough to pass the youngest generation's
    threshold several times; returned, so the allocation count stays up afterwards."""
    kept: list[list[object]] = []

    def churn() -> None:
        kept.extend([] for _ in range(gc.get_threshold()[0] * 5))

    worker = threading.Thread(target=churn, name="worker")
    worker.start()
    worker.join(30)
    return kept


@pytest.mark.qt_log_ignore("QObject::.*Timers cannot be stopped from another thread")
def test_cycles_are_collected_on_the_gui_thread_not_by_a_worker(
    qapp: QApplication, qtbot: QtBot, qtlog: _QtMessageCapture
) -> None:
    gc.collect()

    def off_thread_warnings() -> int:
        return sum("another thread" in record.message for record in qtlog.records)

    # Without the collector (what the app did before): the worker thread frees the Qt object.
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        freed_on: list[str] = []
        ref = garbage_in_a_cycle(freed_on)
        allocate_in_a_worker()
        assert freed_on == ["worker"] and ref() is None
        assert off_thread_warnings() > 0  # Qt saw its timer destroyed off its thread
    finally:
        if not was_enabled:
            gc.disable()

    collector = GuiThreadCollector(interval_ms=50)
    try:
        freed_on = []
        ref = garbage_in_a_cycle(freed_on)
        kept = allocate_in_a_worker()
        assert freed_on == [] and ref() is not None  # the worker left it alone
        assert len(kept) > gc.get_threshold()[0]
        warned = off_thread_warnings()
        qtbot.waitUntil(lambda: freed_on == [threading.main_thread().name], timeout=5000)
        assert off_thread_warnings() == warned
    finally:
        collector.stop()
    assert gc.isenabled() == was_enabled


def test_stopping_collects_what_is_left_and_hands_collection_back(qapp: QApplication) -> None:
    was_enabled = gc.isenabled()
    collector = GuiThreadCollector(interval_ms=60_000)
    assert not gc.isenabled()
    freed_on: list[str] = []
    ref = garbage_in_a_cycle(freed_on)
    collector.stop()
    assert freed_on == [threading.main_thread().name] and ref() is None
    assert gc.isenabled() == was_enabled
