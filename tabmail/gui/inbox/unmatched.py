"""Mail from the tab room's mailbox that matched none of our messages: replies, auto-replies,
bounces and spam reports. Kept, never dropped, and listed here: who sent it, when, what it is,
its text with quoted history folded away and the whole message as plain text (nothing in it is
rendered or fetched). A reply or auto-reply can be attached to one of our messages by hand
(with who and when; Edit → Undo takes it back)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.errors import TabmailError
from tabmail.domain.inbox import InboxEntry
from tabmail.gui.bridge import EventBridge
from tabmail.gui.inbox.attach import AttachDialog, where
from tabmail.gui.message.replies import whole_message
from tabmail.gui.rounds.words import local_time
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.undo import DoneCommand
from tabmail.gui.widgets import muted_label
from tabmail.services import replies
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

ACTION_WORDS = {
    "failed": "Bounce",
    "delayed": "Delay warning",
    "delivered": "Delivery report",
    "relayed": "Delivery report",
    "expanded": "Delivery report",
    "complained": "Spam report",
    "reported": "Report",
}
HEADERS = ("Received", "From", "Subject", "Kind")
LIMIT = 1000  # listed at most (newest first)


def kind_words(e: InboxEntry) -> str:
    """What an inbox message is, in the director's words."""
    if e.kind == "reply":
        return "Reply"
    if e.kind == "auto_reply":
        return "Auto-reply"
    actions = [str(r.get("action") or "") for r in e.detail.get("recipients") or [] if isinstance(r, dict)]
    words = [ACTION_WORDS[a] for a in dict.fromkeys(actions) if a in ACTION_WORDS]
    if e.kind == "feedback":
        kind = str(e.detail.get("feedback_type") or "")
        return "Spam report" if "Spam report" in words or not words else f"Report ({kind or 'other'})"
    return " / ".join(words) if words else "Bounce"


def folded_text(e: InboxEntry) -> str:
    """A reply's text without its quoted history; a report's recipients, one a line."""
    if e.kind in replies.ATTACHABLE_KINDS:
        return e.reply_text or "(no text)"
    lines = []
    for r in e.detail.get("recipients") or []:
        if not isinstance(r, dict):
            continue
        words = ACTION_WORDS.get(str(r.get("action") or ""), str(r.get("action") or ""))
        reason = " ".join(str(x) for x in (r.get("status"), r.get("diagnostic")) if x)
        lines.append(f"{r.get('address')}: {words}" + (f" — {reason}" if reason else ""))
    return "\n".join(lines) or "(the report names no recipient)"


def why_unmatched(e: InboxEntry) -> str:
    note = e.detail.get("attribution")
    if isinstance(note, str) and note:
        return note[0].upper() + note[1:] + "."
    if e.kind in replies.ATTACHABLE_KINDS:
        return "It references none of our messages, and its sender got nothing from us recently."
    return "It returns none of our messages (no Message-ID or X-Tabmail-Id of ours) and names no address we sent to."


class UnmatchedMailDialog(QDialog):
    """Not modal: it follows the mailbox while open (new unmatched mail, attachments undone)."""

    def __init__(
        self,
        ctx: AppContext,
        theme: Theme,
        bridge: EventBridge | None = None,
        undo_stack: QUndoStack | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("unmatched-mail")
        self.setWindowTitle("Unmatched Mail")
        self.resize(980, 620)
        self._ctx = ctx
        self._theme = theme
        self.undo_stack = undo_stack
        self.entries: list[InboxEntry] = []
        self.current: InboxEntry | None = None
        self.attach_dialog_factory: Callable[[InboxEntry], AttachDialog] = lambda e: AttachDialog(
            ctx, e, self
        )

        self.note = muted_label("", self)
        self.note.setWordWrap(True)
        self.model = QStandardItemModel(0, len(HEADERS), self)
        self.model.setHorizontalHeaderLabels(list(HEADERS))
        self.list = QTreeView(self)
        self.list.setObjectName("unmatched-mail-list")
        self.list.setModel(self.model)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.selectionModel().currentRowChanged.connect(self._on_current_changed)
        for col, width in ((0, 140), (1, 260), (2, 380)):
            self.list.setColumnWidth(col, width)

        self.why = QLabel(self)
        self.why.setObjectName("unmatched-why")
        self.why.setWordWrap(True)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("unmatched-text")
        self.text.setReadOnly(True)
        self.raw_button = QPushButton("Show Whole Message", self)
        self.raw_button.setObjectName("unmatched-show-raw")
        self.raw_button.setCheckable(True)
        self.raw_button.setToolTip("The message as received, headers and quoted history included (as text)")
        self.raw_button.toggled.connect(self._on_raw_toggled)
        self.attach_button = QPushButton("Attach to Message…", self)
        self.attach_button.setObjectName("unmatched-attach")
        self.attach_button.clicked.connect(self.attach_current)
        self.result = QLabel(self)
        self.result.setObjectName("unmatched-result")
        self.result.setWordWrap(True)

        detail = QWidget(self)
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.why)
        dl.addWidget(self.text, 1)
        row = QHBoxLayout()
        row.addWidget(self.result, 1)
        row.addWidget(self.raw_button)
        row.addWidget(self.attach_button)
        dl.addLayout(row)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(detail)
        split.setSizes([260, 320])
        split.setChildrenCollapsible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        layout.addWidget(buttons)
        if bridge is not None:  # bound methods: disconnected when the window is deleted
            bridge.replies_changed.connect(self._on_bridge_changed)
            bridge.replies_received.connect(self._on_bridge_changed)
            bridge.statuses_changed.connect(self._on_bridge_changed)
            bridge.unmatched_events_received.connect(self._on_bridge_changed)
        self.reload()

    def _on_bridge_changed(self, *_: object) -> None:
        self.reload()

    # -- listing ------------------------------------------------------------------------------
    def reload(self) -> int:
        """Read the unmatched mail again, keeping the selected one when it is still unmatched."""
        keep = self.current.id if self.current is not None else None
        try:
            self.entries = replies.unmatched(self._ctx, limit=LIMIT)
        except TabmailError as exc:
            log.warning("could not read the unmatched mail: %s", exc)
            self.entries = []
        self.model.removeRows(0, self.model.rowCount())
        for e in self.entries:
            when = QStandardItem(local_time(e.received_at) if e.received_at else "-")
            who = QStandardItem(
                f"{e.from_name} <{e.from_address}>" if e.from_name else (e.from_address or "-")
            )
            subject = QStandardItem(e.subject or "(no subject)")
            subject.setToolTip(e.subject)
            kind = QStandardItem(kind_words(e))
            if kind.text() in ("Bounce", "Spam report"):
                kind.setForeground(self._theme.accent(Tone.BAD))
            self.model.appendRow([when, who, subject, kind])
        n = len(self.entries)
        self.note.setText(
            (f"The newest {n} messages" if n >= LIMIT else f"{n} message{'s' if n != 1 else ''}")
            + " from the tab room's mailbox matched none of the messages "
            "tabmail sent. They are kept, never dropped: a reply from an address we never wrote to, "
            "a bounce or spam report that does not return our message, or mail about another tool's "
            "sending. Attach a reply to the message it answers by hand."
            if n
            else self._nothing_unmatched()
        )
        rows = [i for i, e in enumerate(self.entries) if e.id == keep]
        if n:
            self.list.setCurrentIndex(self.model.index(rows[0] if rows else 0, 0))
        else:
            self.current = None
            self._show_current()
        return n

    def _nothing_unmatched(self) -> str:
        """Why the list is empty, truly: no mailbox set up, nothing read yet, or all matched."""
        try:
            read = sum(self._ctx.inbox.counts().values())
        except TabmailError as exc:
            log.warning("could not count the mailbox's messages: %s", exc)
            read = 0
        if read:
            return "Every message read from the tab room's mailbox matched one of ours: nothing to show."
        if not str(self._ctx.settings.get("imap.host") or "").strip():
            return (
                "No mailbox is set up (Settings → Inbox), so nothing has been read from the tab "
                "room's mailbox: bounces and replies that arrive there are not seen."
            )
        return "Nothing has been read from the tab room's mailbox yet."

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = current.row()
        self.current = self.entries[row] if 0 <= row < len(self.entries) else None
        self.raw_button.setChecked(False)
        self._show_current()

    def _show_current(self) -> None:
        e = self.current
        for widget in (self.why, self.text, self.raw_button, self.attach_button):
            widget.setEnabled(e is not None)
        if e is None:
            self.why.setText("")
            self.text.setPlainText("")
            return
        self.why.setText(why_unmatched(e))
        self.text.setPlainText(folded_text(e))
        can = e.kind in replies.ATTACHABLE_KINDS and not self._ctx.read_only
        self.attach_button.setEnabled(can)
        self.attach_button.setToolTip(
            "Attach this reply to the message it answers"
            if can
            else "Only a reply or an auto-reply can be attached by hand: a bounce would change a "
            "message's status on a guess"
            if e.kind not in replies.ATTACHABLE_KINDS
            else "The database is opened read-only"
        )

    def _on_raw_toggled(self, on: bool) -> None:
        e = self.current
        if e is None:
            return
        self.text.setPlainText(whole_message(self._ctx, e.id) if on else folded_text(e))

    def select_entry(self, entry_id: int) -> bool:
        for row, e in enumerate(self.entries):
            if e.id == entry_id:
                self.list.setCurrentIndex(self.model.index(row, 0))
                return True
        return False

    # -- attaching ------------------------------------------------------------------------------
    def attach_current(self) -> bool:
        """Ask which message the current reply answers, and attach it there."""
        e = self.current
        if e is None or e.kind not in replies.ATTACHABLE_KINDS:
            return False
        dialog = self.attach_dialog_factory(e)
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.chosen() is None:
            return False
        choice = dialog.chosen()
        assert choice is not None
        return self.attach(e, choice.id, f"{choice.recipient_name}'s message ({where(choice)})")

    def attach(self, e: InboxEntry, message_id: str, target: str) -> bool:
        try:
            stored = replies.attach(self._ctx, e, message_id)
        except TabmailError as exc:
            self._say(f"Not attached: {exc}", Tone.BAD)
            return False
        sender = e.from_address or "unknown sender"
        if self.undo_stack is not None:
            self.undo_stack.push(
                DoneCommand(
                    f"Attach the reply from {sender}",
                    lambda: replies.attach(self._ctx, e, message_id),
                    lambda: replies.detach(self._ctx, stored),
                    on_error=lambda why: self._say(why, Tone.BAD),
                )
            )
        self._say(
            f"Attached the {kind_words(e).lower()} from {sender} to {target}."
            + (" Edit → Undo takes it back." if self.undo_stack is not None else ""),
            Tone.GOOD,
        )
        self.reload()
        return True

    def _say(self, text: str, tone: Tone) -> None:
        self.result.setText(text)
        self.result.setStyleSheet(self._theme.text_style(tone))
