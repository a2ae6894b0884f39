"""Quitting while mail is still waiting: the question asked before the window closes."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from tabmail.services.context import AppContext


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def unsent_question(parent: QWidget, ctx: AppContext, *, outbox_running: bool) -> QMessageBox | None:
    """A question when mail is still waiting to be sent; None when nothing is."""
    waiting = ctx.notifications.pending_by_state()
    total = sum(waiting.values())
    if not total and not outbox_running:
        return None
    parts = [f"{n} {state}" for state, n in sorted(waiting.items())]
    box = QMessageBox(
        QMessageBox.Icon.Warning, "Mail not sent yet", "", QMessageBox.StandardButton.NoButton, parent
    )
    box.setObjectName("quit-question")
    box.setText(
        f"{plural(total, 'message')} {'is' if total == 1 else 'are'} not sent yet"
        + (f" ({', '.join(parts)})." if parts else ".")
        if total
        else "tabmail is handing messages to the server right now."
    )
    box.setInformativeText(
        "If you quit, they stay in the outbox and are sent when tabmail next starts. "
        "Keep tabmail open to send them now."
    )
    keep = box.addButton("Keep tabmail Open", QMessageBox.ButtonRole.RejectRole)
    box.addButton("Quit, Send Later", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    return box


class QuitGuard:
    """Closing the window while mail waits asks first (``unsent_question``): "Keep tabmail Open"
    or "Quit, Send Later". Owned by the main window (``window.quitting``), which asks it in its
    ``closeEvent``; ``box`` is the question while it is asked."""

    def __init__(self, window: QWidget, ctx: AppContext, outbox_running: Callable[[], bool]) -> None:
        self._window = window
        self._ctx = ctx
        self._outbox_running = outbox_running
        self.box: QMessageBox | None = None
        self.confirmed = False

    def allows_close(self) -> bool:
        """True: close now. False: a question is open (asked now, or raised again); the window
        closes itself if the answer is to quit."""
        if self.confirmed:
            return True
        if self.box is not None:
            self.box.raise_()
            return False
        box = unsent_question(self._window, self._ctx, outbox_running=self._outbox_running())
        if box is None:
            return True
        self.box = box
        box.finished.connect(lambda _result: self._on_question_finished(box))
        box.open()
        return False

    def _on_question_finished(self, box: QMessageBox) -> None:
        self.box = None
        if box.buttonRole(box.clickedButton()) == QMessageBox.ButtonRole.AcceptRole:
            self.confirmed = True
            self._window.close()
        box.deleteLater()
