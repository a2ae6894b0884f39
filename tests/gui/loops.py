"""The GUI tests' qasync loop: opened on the running QApplication, closed by hand.

``already_running`` makes asyncio treat the loop as running while Qt's own nested loops (pytest-qt's
waitSignal/waitUntil) process its callbacks; the loop is never stopped (stopping would call
QApplication.exit() on the shared test application), so closing unwinds it by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import qasync
import shiboken6
from PySide6.QtWidgets import QApplication


def open_loop(app: QApplication) -> qasync.QEventLoop:
    loop = qasync.QEventLoop(app, already_running=True)
    asyncio.set_event_loop(loop)
    return loop


def close_loop(loop: qasync.QEventLoop, wait_until: Callable[[Callable[[], bool]], None]) -> None:
    """Cancel what still runs (``wait_until(condition)`` spins Qt until it holds), close the loop
    and destroy its Qt objects here, on the GUI thread.

    qasync's timer object keeps a Qt timer for every ``call_later`` not yet due (a cancelled
    ``wait_for`` timeout, a retry delay) even after ``close()``. Left to Python, the closed loop
    is freed by the cyclic collector in whichever thread allocates next; a timer object destroyed
    off its thread leaves its timers registered ("Timers cannot be stopped from another thread")
    and the next processEvents delivers one to freed memory: the segfault seen in pytest-qt's
    ``_process_events``."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        wait_until(lambda: all(task.done() for task in pending))
    asyncio.events._set_running_loop(None)
    loop._QEventLoop__is_running = False  # type: ignore[attr-defined]  # qasync keeps it private
    loop.close()
    asyncio.set_event_loop(None)
    for qt_object in (loop._timer, loop._QEventLoop__call_soon_signaller):  # type: ignore[attr-defined]
        if shiboken6.isValid(qt_object):
            shiboken6.delete(qt_object)
