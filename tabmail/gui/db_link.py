"""The window while the database server cannot be reached (PostgreSQL), and when it is back.

``services.live.LiveChanges`` publishes ``DatabaseLinkChanged``; the bridge hands it here. While
the server is away the status bar says so ("Database unreachable — showing what was last read
at HH:MM; reconnecting…"), the pages keep what they show, and what would write is refused: the
window's actions are disabled with the reason, and a write started anyway fails with one line
(``store.db.DatabaseUnreachable``), so nothing is queued silently. When the server answers
again, everything shown is read again (changes made meanwhile were never announced here) and
the outbox resumes what was waiting.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from tabmail.store.db import DatabaseUnreachable

if TYPE_CHECKING:
    from tabmail.gui.main_window import MainWindow

log = logging.getLogger(__name__)

UNREACHABLE_TIP = "the database server cannot be reached; tabmail is reconnecting"
RECONNECTED_MS = 10_000
UNREACHABLE_MESSAGE_MS = 15_000


class DatabaseLink(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.online = True
        self._tips: dict[QAction, str] = {}
        window.bridge.database_link_changed.connect(self._on_bridge_database_link_changed)
        # Selecting a tournament enables composing: not while the server is away.
        window.menus.compose_action.changed.connect(self._keep_disabled)

    def _keep_disabled(self) -> None:
        if not self.online and self._window.menus.compose_action.isEnabled():
            self._window.menus.compose_action.setEnabled(False)

    def _actions(self) -> list[QAction]:
        w = self._window
        return [
            w.menus.import_action,
            w.menus.compose_action,
            w.menus.send_urls_action,
            w.menus.poll_action,
            w.menus.settings_action,
        ]

    def _on_bridge_database_link_changed(self, online: bool, detail: str, since: str) -> None:
        if online == self.online:
            return
        self.online = online
        if online:
            self._reconnected()
        else:
            self._lost(detail, datetime.fromisoformat(since))

    def _lost(self, detail: str, since: datetime) -> None:
        w = self._window
        w.status.set_database_unreachable(since, detail)
        # Another page would have to be read from the server: the one shown stays.
        w.navigator.setEnabled(False)
        w.navigator.setToolTip("Other pages open again once the database server can be reached")
        for action in self._actions():
            self._tips[action] = action.toolTip()
            action.setEnabled(False)
            action.setToolTip(f"{action.toolTip()} — {UNREACHABLE_TIP}")
            action.setStatusTip(action.toolTip())

    def _reconnected(self) -> None:
        w = self._window
        w.status.set_database_unreachable(None)
        w.navigator.setEnabled(True)
        w.navigator.setToolTip("")
        for action, tip in self._tips.items():
            action.setToolTip(tip)
            action.setStatusTip(tip)
        self._tips.clear()
        if not w.ctx.read_only:
            for action in (w.menus.import_action, w.menus.poll_action, w.menus.settings_action):
                action.setEnabled(True)
            w.menus.compose_action.setEnabled(w.current_tournament is not None)
        try:
            self.catch_up()
        except Exception as exc:  # the server went away again at once: the next change says so
            log.warning("reading again after reconnecting failed: %s", exc)
            return
        w.statusBar().showMessage(
            "Database reachable again: everything shown was read again.", RECONNECTED_MS
        )
        if not w.ctx.read_only:
            w.worker.run_outbox()  # what was waiting when the server went away

    def catch_up(self) -> None:
        """Read again everything shown: changes made while away were never announced here."""
        w = self._window
        w.refresh()
        if w.round_view.model.scoped:
            w.round_view.model.reload()
        if w.participants_page.tournament is not None:
            w.participants_page.reload()
        if w.problems_page.shown_for is not None:
            w.problems_page.reload()
        w.problems_hub.schedule_recount()


def say_unreachable_in_status_bar(window: MainWindow) -> None:
    """A read or write the window started while the server is away (a person's history, an
    address edit) ends in ``DatabaseUnreachable``: its one line goes to the status bar and the
    log, not a traceback to stderr; any other exception goes where it went before."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, DatabaseUnreachable) and shiboken6.isValid(window):
            log.warning("%s", exc)
            window.statusBar().showMessage(str(exc), UNREACHABLE_MESSAGE_MS)
            return
        previous(kind, exc, tb)

    sys.excepthook = hook
