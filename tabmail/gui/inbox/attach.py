"""Pick one of our sent messages to attach an unmatched reply to, by hand."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.inbox import InboxEntry, SentChoice
from tabmail.gui.rounds.words import local_time
from tabmail.gui.widgets import muted_label
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

CHOICE_ROLE = Qt.ItemDataRole.UserRole + 1
LIMIT = 200
SEARCH_DELAY_MS = 150


def where(choice: SentChoice) -> str:
    rnd = f"round {choice.round_seq}" if choice.round_seq is not None else "no round"
    return f"{choice.tournament_slug}, {rnd}"


class AttachDialog(QDialog):
    """Lists our sent messages (newest first) whose recipient's name or address contains what
    is typed; starts with the reply's sender, or everything when the sender got nothing."""

    def __init__(self, ctx: AppContext, entry: InboxEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attach-reply")
        self.setWindowTitle("Attach to One of Our Messages")
        self.resize(760, 460)
        self._ctx = ctx
        self.choices: list[SentChoice] = []
        sender = entry.from_address or "an unknown sender"
        intro = muted_label(
            f"Which message does this {('reply' if entry.kind == 'reply' else 'auto-reply')} from "
            f"{sender} answer? It is attached by hand, with your name and the time; Edit → Undo "
            "takes it back. The participant's address is not changed.",
            self,
        )
        intro.setWordWrap(True)
        self.search = QLineEdit(self)
        self.search.setObjectName("attach-search")
        self.search.setPlaceholderText("Recipient's name or address")
        self.search.setClearButtonEnabled(True)
        self.model = QStandardItemModel(0, 4, self)
        self.model.setHorizontalHeaderLabels(["Recipient", "Address", "Sent", "Tournament, round · Subject"])
        self.list = QTreeView(self)
        self.list.setObjectName("attach-list")
        self.list.setModel(self.model)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for col, width in ((0, 170), (1, 240), (2, 110)):
            self.list.setColumnWidth(col, width)
        self.list.doubleClicked.connect(lambda _i: self.accept() if self.chosen() else None)
        self.empty = muted_label("", self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Attach")
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.list.selectionModel().currentRowChanged.connect(
            lambda *_: self.ok.setEnabled(bool(self.chosen()))
        )
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty)
        layout.addWidget(self.buttons)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.reload)
        self.search.textChanged.connect(lambda _t: self._timer.start())
        self.search.setText(entry.from_address or "")
        self.reload()
        if not self.choices and self.search.text():
            self.search.setText("")  # the sender got nothing from us: show everything
            self.reload()

    def reload(self) -> int:
        self._timer.stop()
        try:
            self.choices = self._ctx.inbox.sent_choices(self.search.text(), limit=LIMIT)
        except Exception as exc:  # the dialog stays usable; say what happened
            log.warning("could not list the sent messages: %s", exc)
            self.choices = []
        self.model.removeRows(0, self.model.rowCount())
        for c in self.choices:
            row = [
                QStandardItem(c.recipient_name),
                QStandardItem(c.address),
                QStandardItem(local_time(c.sent_at)),
                QStandardItem(f"{where(c)} · {c.subject}"),
            ]
            row[0].setData(c.id, CHOICE_ROLE)
            self.model.appendRow(row)
        n = len(self.choices)
        self.empty.setText(
            "No sent message matches."
            if not n
            else (f"The newest {LIMIT} shown: type to narrow." if n >= LIMIT else "")
        )
        if n:
            self.list.setCurrentIndex(self.model.index(0, 0))
        self.ok.setEnabled(bool(self.chosen()))
        return n

    def chosen(self) -> SentChoice | None:
        row = self.list.currentIndex().row()
        return self.choices[row] if 0 <= row < len(self.choices) else None
