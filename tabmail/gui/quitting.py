"""Quitting while mail is still waiting: the question asked before the window closes."""

from __future__ import annotations

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
