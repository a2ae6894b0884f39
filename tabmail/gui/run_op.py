"""The one way the GUI runs work that takes time (Anki's CollectionOp/QueryOp idea).

``run_op`` starts a coroutine as an asyncio task on the qasync loop (one thread runs Qt and
asyncio), disables the triggering action while it runs, shows a progress dialog with Cancel
when asked to, and reports failures in a message box: a ``TabmailError`` by its message (it is
written for the director), anything else by type and message, logged with its traceback.
Blocking service calls go through ``asyncio.to_thread`` (see ``in_thread``) so the window never
freezes. Every op is a child of its parent widget: ``cancel_ops(window)`` cancels all of a
window's ops (the main window does so when it closes), and an op whose parent is destroyed is
cancelled too.

Cancelling a task that awaits ``asyncio.to_thread`` stops waiting at once; the blocking call
itself finishes in its thread and its result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from tabmail.domain.errors import TabmailError

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[str, int, int], None]  # (what, done, total); total 0 means unknown
CoroFactory = Callable[..., Awaitable[Any]]

# Ops quicker than this never flash a progress dialog.
PROGRESS_DELAY_MS = 400


def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Callable[[], Awaitable[T]]:
    """A coroutine factory running the blocking ``fn(*args, **kwargs)`` in a worker thread."""
    return functools.partial(asyncio.to_thread, fn, *args, **kwargs)


class Op(QObject):
    """A running operation. Signals are always emitted on the GUI thread.

    Exactly one of ``succeeded``/``failed``/``cancelled`` is emitted, then ``finished``.
    """

    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    cancelled = Signal()
    finished = Signal()
    progressed = Signal(str, int, int)
    _reported = Signal(str, int, int)  # from any thread; relayed on the GUI thread

    def __init__(self, parent: QWidget, title: str) -> None:
        super().__init__(parent)
        self.title = title
        self.task: asyncio.Task[Any] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._reported.connect(self._on_reported, Qt.ConnectionType.QueuedConnection)

    def report(self, what: str, done: int, total: int) -> None:
        """Thread-safe progress callback: hand it to blocking code as ``progress=``."""
        if shiboken6.isValid(self):
            self._reported.emit(what, done, total)

    @Slot(str, int, int)
    def _on_reported(self, what: str, done: int, total: int) -> None:
        self.progressed.emit(what, done, total)

    def cancel(self) -> bool:
        """Ask the task to stop; True when it was still running."""
        if self.task is None or self.task.done():
            return False
        self.task.cancel()
        return True

    def is_running(self) -> bool:
        return self.task is not None and not self.task.done()


def report_failure(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """Show ``exc`` in a window-modal message box (non-blocking) and return the box."""
    if isinstance(exc, TabmailError):
        icon, text, detail = QMessageBox.Icon.Warning, str(exc) or type(exc).__name__, ""
    else:
        log.error("%s failed", title, exc_info=(type(exc), exc, exc.__traceback__))
        icon = QMessageBox.Icon.Critical
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        detail = "This looks like a bug in tabmail. The details are in the log (run with --debug)."
    box = QMessageBox(icon, f"{title} failed", text, QMessageBox.StandardButton.Ok, parent)
    if detail:
        box.setInformativeText(detail)
    box.setObjectName("op-failure")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


def run_op(
    parent: QWidget,
    coro_factory: CoroFactory,
    *,
    on_success: Callable[[Any], None] | None = None,
    action: QAction | QWidget | None = None,
    progress_label: str | None = None,
    cancellable: bool = True,
    reports_progress: bool = False,
    title: str | None = None,
) -> Op:
    """Run ``coro_factory()`` as a task owned by ``parent``; never raises, never blocks.

    - ``on_success(result)`` runs on the GUI thread; if it raises, that is reported too.
    - ``action`` is disabled while the op runs and re-enabled afterwards (if it was enabled).
    - ``progress_label``: show a window-modal progress dialog (after a short delay) with that
      text, and a Cancel button unless ``cancellable`` is False.
    - ``reports_progress``: call ``coro_factory(progress)`` instead, ``progress(what, done,
      total)`` being safe to call from any thread (``services.importing.Progress`` shape).
    - ``title`` names the op in the failure dialog (defaults to the progress label or the
      action's text).
    Must be called with the qasync loop running (any Qt slot in the app qualifies).
    """
    name = title or progress_label or _action_text(action) or "The operation"
    op = Op(parent, name.rstrip(".…"))
    was_enabled = action.isEnabled() if action is not None else False
    if action is not None:
        action.setEnabled(False)

    dialog = _progress_dialog(parent, op, progress_label, cancellable) if progress_label else None

    def settle() -> None:
        if dialog is not None and shiboken6.isValid(dialog):
            dialog.close()  # emits canceled; op.cancel() on a finished task is a no-op
            dialog.deleteLater()
        if action is not None and shiboken6.isValid(action) and was_enabled:
            action.setEnabled(True)

    def done(task: asyncio.Task[Any]) -> None:
        settle()
        if not shiboken6.isValid(op):
            # The parent went away first; there is no one left to tell.
            if not task.cancelled() and task.exception() is not None:
                log.warning("%s failed after its window closed: %r", op.title, task.exception())
            return
        if task.cancelled():
            op.cancelled.emit()
        elif (exc := task.exception()) is not None:
            op.error = exc
            report_failure(_alive(parent), op.title, exc)
            op.failed.emit(exc)
        else:
            op.result = task.result()
            try:
                if on_success is not None:
                    on_success(op.result)
            except Exception as exc:  # the result handler is part of the op
                op.error = exc
                report_failure(_alive(parent), op.title, exc)
                op.failed.emit(exc)
            else:
                op.succeeded.emit(op.result)
        op.finished.emit()
        op.deleteLater()

    try:
        coro = coro_factory(op.report) if reports_progress else coro_factory()
        op.task = asyncio.ensure_future(coro)
    except Exception as exc:  # building the coroutine failed: same path as a failing op
        failed: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
        failed.set_exception(exc)
        op.task = failed  # type: ignore[assignment]
    op.task.add_done_callback(done)
    # If the owner is destroyed without closing cleanly, do not leave the task running.
    task = op.task
    op.destroyed.connect(lambda *_: task.cancel())
    return op


def _alive(widget: QWidget | None) -> QWidget | None:
    return widget if widget is not None and shiboken6.isValid(widget) else None


def _action_text(action: QAction | QWidget | None) -> str:
    if isinstance(action, QAction):
        return action.text().replace("&", "")
    text = getattr(action, "text", None)
    return text().replace("&", "") if callable(text) else ""


def _progress_dialog(parent: QWidget, op: Op, label: str, cancellable: bool) -> QProgressDialog:
    dialog = QProgressDialog(label, "Cancel" if cancellable else None, 0, 0, parent)
    dialog.setObjectName("op-progress")
    dialog.setWindowTitle(op.title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(PROGRESS_DELAY_MS)
    dialog.setMinimumWidth(380)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setValue(0)
    if cancellable:
        dialog.canceled.connect(op.cancel)

    def on_progress(what: str, done: int, total: int) -> None:
        if not shiboken6.isValid(dialog):
            return
        dialog.setLabelText(f"{label}\n{what}" if what else label)
        if total > 0:
            dialog.setMaximum(total)
            dialog.setValue(min(done, total))
        else:
            dialog.setMaximum(0)

    op.progressed.connect(on_progress)
    return dialog


def running_ops(widget: QWidget) -> list[Op]:
    """The ops still running under ``widget`` (its own and its child dialogs')."""
    return [op for op in widget.findChildren(Op) if op.is_running()]


def cancel_ops(widget: QWidget) -> int:
    """Cancel every running op under ``widget``; returns how many were asked to stop."""
    return sum(1 for op in running_ops(widget) if op.cancel())
