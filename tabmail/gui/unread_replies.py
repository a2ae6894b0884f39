"""Unread replies at a glance: the navigator's blue "✉ n" badges per round and tournament, and
the count in the window title.

``UnreadRepliesHub`` re-reads the counts (one grouped query) a moment after replies arrive from
the mailbox (``replies_received``) or are read, attached or detached (``replies_changed``), so
the badges always equal the unread rows of the round view.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from tabmail.domain.errors import TabmailError
from tabmail.gui.bridge import EventBridge
from tabmail.gui.navigator import NavigatorPanel
from tabmail.services import replies as service
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

RECOUNT_DELAY_MS = 100  # replies are read one by one, and arrive in bursts: one count per burst


class UnreadRepliesHub(QObject):
    counts_changed = Signal(int)  # unread replies in every tournament

    def __init__(
        self, ctx: AppContext, bridge: EventBridge, navigator: NavigatorPanel, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._navigator = navigator
        self.counts = service.UnreadReplies()
        self.total = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RECOUNT_DELAY_MS)
        self._timer.timeout.connect(self.recount)
        bridge.replies_received.connect(self.schedule_recount)
        bridge.replies_changed.connect(self.schedule_recount)
        bridge.tournament_imported.connect(self.schedule_recount)
        bridge.database_link_changed.connect(self.schedule_recount)  # back: read everything again

    def schedule_recount(self, *_: object) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def recount(self) -> int:
        """Count now; returns the unread replies in every tournament."""
        self._timer.stop()
        try:
            self.counts = service.unread_counts(self._ctx)
        except TabmailError as exc:  # the tree still works without its reply badges
            log.warning("could not count the unread replies: %s", exc)
            return self.total
        self.reapply()
        if self.counts.total != self.total:
            self.total = self.counts.total
            self.counts_changed.emit(self.total)
        return self.total

    def reapply(self) -> None:
        """Put the last counts back on the navigator (after it was rebuilt)."""
        self._navigator.model.set_reply_counts(
            self.counts.by_round, self.counts.by_tournament, self.counts.without_round
        )

    def stop(self) -> None:
        self._timer.stop()
