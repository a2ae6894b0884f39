"""The GUI tests' qasync loop leaves no live Qt timer behind once closed (tests/gui/loops.py):
a closed loop freed later by a worker thread's garbage collection crashed the next test's
processEvents. Run in a fresh interpreter, since the failure is a segfault."""

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
    import asyncio, gc, sys, threading, time
    from PySide6.QtWidgets import QApplication
    from tests.gui.loops import close_loop, open_loop

    app = QApplication(sys.argv[:1])
    gc.disable()  # the collection below is the worker thread's, as when its threshold is crossed

    def wait_until(condition):
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, "the loop's tasks did not finish"
            app.processEvents()

    loop = open_loop(app)

    async def waits():
        await asyncio.Event().wait()

    task = loop.create_task(waits())  # still running at the end of the test: cancelled
    loop.call_later(60, print, "never")  # a delayed call nobody cancels: a running Qt timer
    close_loop(loop, wait_until)
    del loop, task
    worker = threading.Thread(target=gc.collect)
    worker.start()
    worker.join()
    for _ in range(3):
        app.processEvents()
    print("processEvents after the collection: fine")
    """
)


def test_a_closed_loop_collected_by_another_thread_leaves_no_timer_behind() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Timers cannot be stopped from another thread" not in done.stderr
    assert "processEvents after the collection: fine" in done.stdout
