"""Plugging the dashboard into the main window: round view, composer, background work.

``install_dashboard(window)`` uses only the main window's extension points
(``set_round_view_factory``, ``set_poll_handler``, ``compose_action``, ``settings_dialog_opened``)
and returns the ``Dashboard`` holding the app's one ``BackgroundWorker``. ``start()`` resumes the
outbox and starts polling (the qasync loop must be the current loop); closing the window stops
both.
"""

from __future__ import annotations

import logging
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

from tabmail.gui.background import BackgroundWorker
from tabmail.gui.composer import ComposeDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.rounds.page import RoundMessagesPage

log = logging.getLogger(__name__)


class Dashboard(QObject):
    def __init__(self, window: MainWindow, worker: BackgroundWorker | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.worker = worker or BackgroundWorker(window.ctx, window.status, parent=self)
        self.composer: ComposeDialog | None = None
        window.set_round_view_factory(self._build_round_view)
        window.set_poll_handler(self.worker.poll_now)
        window.compose_action.triggered.connect(self.open_composer)
        nav = window.navigator
        nav.tournament_selected.connect(self._update_compose_action)
        nav.round_selected.connect(self._update_compose_action)
        nav.nothing_selected.connect(self._update_compose_action)
        window.settings_dialog_opened.connect(self._on_window_settings_dialog_opened)
        self.worker.outbox_failed.connect(self._on_worker_outbox_failed)
        window.installEventFilter(self)
        self._update_compose_action()

    def start(self) -> None:
        self.worker.start()

    @property
    def round_view(self) -> RoundMessagesPage | None:
        view = self.window.round_view
        return view if isinstance(view, RoundMessagesPage) else None

    def _build_round_view(self, parent: QWidget) -> QWidget:
        w = self.window
        return RoundMessagesPage(w.ctx, w.bridge, w.theme, self.worker, w.compose_action, parent)

    def _update_compose_action(self, *_: Any) -> None:
        self.window.compose_action.setEnabled(self.window.current_tournament is not None)

    # -- composer --------------------------------------------------------------------------------
    def open_composer(self) -> ComposeDialog | None:
        w = self.window
        if self.composer is not None and shiboken6.isValid(self.composer) and self.composer.isVisible():
            self.composer.raise_()
            self.composer.activateWindow()
            return self.composer
        tournament = w.current_tournament
        if tournament is None:
            return None
        dialog = ComposeDialog(
            w.ctx, w.bridge, self.worker, tournament, w.current_round, theme=w.theme, parent=w
        )
        dialog.batch_queued.connect(self._on_composer_batch_queued)
        self.composer = dialog
        dialog.show()  # not modal: the round view behind it updates while it sends
        return dialog

    def _on_composer_batch_queued(self, batch_id: int) -> None:
        w = self.window
        batch = w.ctx.notifications.get_batch(batch_id)
        if batch.round_id is None:
            return
        if w.current_round is None or w.current_round.id != batch.round_id:
            w.select_round(batch.round_id)
        view = self.round_view
        if view is not None:
            view.model.add_batch(batch_id)
            view.select_batch(batch_id)

    # -- the rest ----------------------------------------------------------------------------------
    def _on_window_settings_dialog_opened(self, dialog: Any) -> None:
        saved = getattr(dialog, "saved", None)
        if saved is not None:
            saved.connect(self.worker.settings_changed)

    def _on_worker_outbox_failed(self, why: str) -> None:
        self.window.statusBar().showMessage(f"Sending stopped: {why}", 15000)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.worker.stop()
        return False


def install_dashboard(
    window: MainWindow, *, worker: BackgroundWorker | None = None, start: bool = True
) -> Dashboard:
    dashboard = Dashboard(window, worker)
    if start:
        dashboard.start()
    return dashboard
