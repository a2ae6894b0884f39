"""run_op: the one helper for async work in the GUI."""

from __future__ import annotations

import asyncio
import threading

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from tabmail.domain.errors import TabmailError
from tabmail.gui.run_op import cancel_ops, in_thread, run_op, running_ops

pytestmark = pytest.mark.gui


@pytest.fixture
def parent(qtbot: QtBot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def _failure_box(parent: QWidget) -> QMessageBox:
    boxes = parent.findChildren(QMessageBox, "op-failure")
    assert len(boxes) == 1
    return boxes[0]


def test_success_disables_the_action_while_running(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    action = QAction("Do it", parent)
    release = asyncio.Event()
    results: list[int] = []

    async def work() -> int:
        await release.wait()
        return 42

    op = run_op(parent, work, action=action, on_success=results.append)
    assert not action.isEnabled()
    assert running_ops(parent) == [op]
    with qtbot.waitSignal(op.succeeded, timeout=5000) as blocker:
        release.set()
    assert blocker.args == [42]
    assert results == [42]
    assert action.isEnabled()
    assert not parent.findChildren(QMessageBox)


def test_action_disabled_before_stays_disabled(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    action = QAction("Do it", parent)
    action.setEnabled(False)

    async def work() -> None:
        return None

    op = run_op(parent, work, action=action)
    with qtbot.waitSignal(op.finished, timeout=5000):
        pass
    assert not action.isEnabled()


def test_tabmail_error_is_reported_by_its_message(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    async def work() -> None:
        raise TabmailError("the Tabbycat site answered 403: the token lacks admin rights")

    op = run_op(parent, work, title="Import")
    with qtbot.waitSignal(op.failed, timeout=5000) as blocker:
        pass
    assert isinstance(blocker.args[0], TabmailError)
    box = _failure_box(parent)
    assert box.text() == "the Tabbycat site answered 403: the token lacks admin rights"
    assert box.windowTitle() == "Import failed"
    assert box.icon() == QMessageBox.Icon.Warning


def test_unexpected_error_shows_type_and_is_logged(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget, caplog: pytest.LogCaptureFixture
) -> None:
    async def work() -> None:
        raise KeyError("boom")

    op = run_op(parent, work, title="Refresh")
    with qtbot.waitSignal(op.failed, timeout=5000):
        pass
    box = _failure_box(parent)
    assert box.text().startswith("KeyError")
    assert box.icon() == QMessageBox.Icon.Critical
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_failing_success_handler_is_reported(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    async def work() -> int:
        return 1

    def explode(_result: int) -> None:
        raise TabmailError("could not show the result")

    op = run_op(parent, work, on_success=explode)
    with qtbot.waitSignal(op.failed, timeout=5000):
        pass
    assert _failure_box(parent).text() == "could not show the result"


def test_cancel_from_the_progress_dialog(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    action = QAction("Long", parent)
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()  # forever, until cancelled

    op = run_op(parent, work, action=action, progress_label="Working…")
    qtbot.waitUntil(started.is_set, timeout=5000)
    dialog = parent.findChild(QProgressDialog, "op-progress")
    assert dialog is not None
    cancel_button = dialog.findChild(QPushButton)
    assert cancel_button is not None and cancel_button.text() == "Cancel"
    with qtbot.waitSignal(op.cancelled, timeout=5000):
        cancel_button.click()
    assert action.isEnabled()
    assert not parent.findChildren(QMessageBox)  # a cancel is not a failure


def test_cancel_ops_stops_everything_under_a_window(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    ops = [run_op(parent, forever), run_op(parent, forever)]
    assert len(running_ops(parent)) == 2
    with qtbot.waitSignals([op.cancelled for op in ops], timeout=5000):
        assert cancel_ops(parent) == 2
    assert running_ops(parent) == []


def test_blocking_work_runs_in_a_thread_with_progress(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, parent: QWidget
) -> None:
    main = threading.get_ident()
    seen: list[tuple[str, int, int, bool]] = []

    def blocking(progress) -> int:
        progress("step", 1, 2)
        progress("step", 2, 2)
        return threading.get_ident()

    op = run_op(
        parent, lambda progress: in_thread(blocking, progress)(), reports_progress=True, progress_label="Busy"
    )
    op.progressed.connect(
        lambda what, done, total: seen.append((what, done, total, threading.get_ident() == main))
    )
    with qtbot.waitSignal(op.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args[0] != main
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    assert seen == [("step", 1, 2, True), ("step", 2, 2, True)]
