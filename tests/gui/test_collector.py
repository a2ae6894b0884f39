"""Qt objects caught in reference cycles are freed on the GUI thread, never in a worker thread
that happened to allocate when Python's collector decided to run (gui/collector.py).

Each case runs in a fresh interpreter: a Qt object freed off its thread leaves its timer
registered with the GUI thread, which would crash whatever test runs when it fires."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

SCRIPT = textwrap.dedent(
    """
    import gc, sys, threading, time, weakref
    from PySide6.QtCore import QObject, QTimer
    from PySide6.QtWidgets import QApplication
    from tabmail.gui.collector import GuiThreadCollector

    app = QApplication(sys.argv[:1])
    collector = GuiThreadCollector(interval_ms=50) if sys.argv[1] == "collector" else None

    class SelfKeeping(QObject):  # a running timer, kept only by a cycle through itself
        def __init__(self):
            super().__init__()
            self.timer = QTimer(self)
            self.timer.start(60_000)
            self.me = self

    freed_on = []
    obj = SelfKeeping()
    ref = weakref.ref(obj, lambda _ref: freed_on.append(threading.current_thread().name))
    del obj
    kept = []  # allocations that stay: the youngest generation's count passes its threshold

    def churn():
        kept.extend([] for _ in range(gc.get_threshold()[0] * 5))

    worker = threading.Thread(target=churn, name="worker")
    worker.start()
    worker.join()
    print("after the worker:", freed_on, flush=True)
    deadline = time.monotonic() + 10
    while not freed_on and time.monotonic() < deadline:
        app.processEvents()
    print("freed on:", freed_on, flush=True)
    if collector is not None:
        collector.stop()
        print("collection back to Python:", gc.isenabled(), flush=True)
    """
)


def run(mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=50,
        check=False,
    )


def test_without_the_collector_a_worker_thread_frees_qt_objects() -> None:
    """The hazard the collector removes (the interpreter's automatic collection)."""
    done = run("automatic")
    assert "after the worker: ['worker']" in done.stdout
    assert "Timers cannot be stopped from another thread" in done.stderr


def test_with_the_collector_the_gui_thread_frees_them() -> None:
    done = run("collector")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "after the worker: []" in done.stdout  # the worker left it alone
    assert "freed on: ['MainThread']" in done.stdout
    assert "collection back to Python: True" in done.stdout
    assert "Timers cannot be stopped" not in done.stderr


def test_the_oldest_generation_waits_for_a_quiet_moment(qapp: object) -> None:
    """Collecting the oldest generation blocks the GUI thread (~100 ms on a season's database),
    so it is not done while the app is busy making objects, only once a look finds it quiet (or
    after MAX_DEFER_S)."""
    import gc

    from tabmail.gui import collector as module

    oldest: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            oldest.append(1)

    collector = module.GuiThreadCollector(interval_ms=60_000)  # looked at by hand below
    gc.callbacks.append(seen)
    try:
        import time

        collector.oldest_due_since = time.monotonic()  # as when it passed its threshold
        kept: list[list[int]] = []
        for _ in range(5):  # busy: many new objects at every look
            kept.extend([] for _ in range(collector.threshold[0] * 2))
            collector.check()
        assert oldest == [] and collector.oldest_due_since is not None  # not collected while busy
        collector.check()  # a look that finds nothing new: quiet
        assert oldest == [1] and collector.oldest_due_since is None
        collector.oldest_due_since = time.monotonic() - module.MAX_DEFER_S - 1  # waited too long
        kept.extend([] for _ in range(collector.threshold[0] * 2))
        collector.check()  # busy, but it has waited long enough
        assert oldest == [1, 1]
    finally:
        gc.callbacks.remove(seen)
        collector.stop()
