"""Scheduled batches whose time passed while tabmail was not running: the window asks before
any of them is sent (``MainWindow.overdue``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow, QMessageBox

from tabmail.domain.errors import TabmailError
from tabmail.gui.background import BackgroundWorker
from tabmail.services.context import AppContext


class OverdueQuestion:
    def __init__(
        self, window: QMainWindow, ctx: AppContext, worker: BackgroundWorker, refresh: Callable[[], None]
    ) -> None:
        self._window = window
        self._ctx = ctx
        self._worker = worker
        self._refresh = refresh
        self.box: QMessageBox | None = None  # while it is asked
        worker.schedule_overdue.connect(self.ask)

    def ask(self, batches: list[Any]) -> QMessageBox | None:
        """Never sent without a yes. One box for all of them; "Later" asks again at the next
        start."""
        from tabmail.services import schedule

        if not batches:
            return None
        lines = "\n".join(f"• {b.tournament_slug}: {schedule.describe(b)}" for b in batches)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Scheduled sends missed their time",
            "These batches were scheduled, and their time passed while tabmail was not running. "
            "Send them now?",
            QMessageBox.StandardButton.NoButton,
            self._window,
        )
        box.setObjectName("confirm-overdue-scheduled")
        box.setInformativeText(lines)
        send = box.addButton("Send Now", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel Them", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_code: int) -> None:
            self.box = None
            clicked = box.clickedButton()
            for b in batches:
                try:
                    if clicked is send:
                        schedule.release(self._ctx, b.batch_id)
                    elif clicked is cancel:
                        schedule.cancel(self._ctx, b.batch_id)
                except TabmailError as exc:  # released or cancelled elsewhere meanwhile
                    self._window.statusBar().showMessage(str(exc), 15000)
            if clicked is send:
                self._worker.run_outbox()
            if clicked in (send, cancel):
                self._refresh()

        box.finished.connect(answered)
        self.box = box
        box.open()
        return box
