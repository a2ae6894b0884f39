"""The replies to one message, read from the tab room's mailbox: who answered and when, the
answer with its quoted history folded away, the whole message one click away (as plain text:
nothing in it is rendered or fetched), and Reply, which opens the system mail client."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from PySide6.QtCore import QModelIndex, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.inbox import InboxEntry
from tabmail.gui.rounds.words import local_time
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import muted_label
from tabmail.services import replies
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

KIND_WORDS = {"reply": "Reply", "auto_reply": "Auto-reply"}
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1


def whole_message(ctx: AppContext, entry_id: int) -> str:
    """An inbox message as received, as plain text: nothing in it is rendered or fetched."""
    try:
        raw = ctx.inbox.raw(entry_id)
    except Exception as exc:
        return f"(the stored copy could not be read: {exc})"
    if raw is None:
        return "(no copy of this message was kept)"
    return raw.decode("utf-8", errors="replace")


def by_hand_time(note: dict[str, object]) -> str:
    try:
        return local_time(datetime.fromisoformat(str(note.get("at"))), seconds=False)
    except ValueError:
        return "at an unknown time"


class RepliesPanel(QWidget):
    """``show_for(message_id)`` lists that message's replies and auto-replies, newest first."""

    replies_read = Signal(str)  # message id: a reply to it was seen on screen (and is now read)

    def __init__(self, ctx: AppContext, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("message-replies")
        self._ctx = ctx
        self._theme = theme
        self.entries: list[InboxEntry] = []
        self.current: InboxEntry | None = None

        self.model = QStandardItemModel(0, 3, self)
        self.model.setHorizontalHeaderLabels(["Received", "From", "Kind"])
        self.list = QTreeView(self)
        self.list.setObjectName("replies-list")
        self.list.setModel(self.model)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setMaximumHeight(110)
        self.list.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.empty = muted_label(
            "No replies. Replies and auto-replies appear here once tabmail reads the tab room's "
            "mailbox (Settings → Inbox).",
            self,
        )
        self.empty.setWordWrap(True)
        self.note = QLabel(self)
        self.note.setObjectName("reply-note")
        self.note.setWordWrap(True)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("reply-text")
        self.text.setReadOnly(True)
        self.raw_button = QPushButton("Show Whole Message", self)
        self.raw_button.setObjectName("reply-show-raw")
        self.raw_button.setCheckable(True)
        self.raw_button.setToolTip("The message as received, quoted history and headers included (as text)")
        self.raw_button.toggled.connect(self._on_raw_toggled)
        self.reply_button = QPushButton("Reply…", self)
        self.reply_button.setObjectName("reply-button")
        self.reply_button.setToolTip("Answer in your own mail program, in the same thread")
        self.reply_button.clicked.connect(self.open_reply)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.raw_button)
        buttons.addWidget(self.reply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(self.empty)
        layout.addWidget(self.list)
        layout.addWidget(self.note)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)
        self.show_for(None)

    # -- showing ------------------------------------------------------------------------------
    def show_for(self, message_id: str | None) -> int:
        """List the replies to ``message_id``; returns how many there are."""
        entries: list[InboxEntry] = []
        if message_id is not None:
            try:
                entries = self._ctx.inbox.entries(kinds=tuple(KIND_WORDS), message_id=message_id)
            except Exception as exc:  # the rest of the message view still works
                log.warning("could not read the replies to %s: %s", message_id, exc)
        self.entries = entries
        self.model.removeRows(0, self.model.rowCount())
        for e in entries:
            when = QStandardItem(local_time(e.received_at, seconds=False) if e.received_at else "-")
            when.setData(e.id, ENTRY_ROLE)
            who = QStandardItem(
                f"{e.from_name} <{e.from_address}>" if e.from_name else (e.from_address or "")
            )
            unread = e.read_at is None and e.kind == "reply"
            kind = QStandardItem(KIND_WORDS.get(e.kind, e.kind) + (" · new" if unread else ""))
            self.model.appendRow([when, who, kind])
        has = bool(entries)
        for widget in (self.list, self.note, self.text, self.raw_button, self.reply_button):
            widget.setVisible(has)
        self.empty.setVisible(not has)
        if has:
            self.list.setCurrentIndex(self.model.index(0, 0))
        else:
            self.current = None
        return len(entries)

    def unread_count(self) -> int:
        return sum(1 for e in self.entries if e.kind == "reply" and e.read_at is None)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = current.row()
        self.current = self.entries[row] if 0 <= row < len(self.entries) else None
        self.raw_button.setChecked(False)
        self._show_current()
        self.mark_current_read()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.mark_current_read()  # the Replies tab was opened on an unread reply

    def mark_current_read(self) -> bool:
        """A reply is read once the director sees it: shown in this panel while the panel is on
        screen (selecting a message on another tab reads nothing). True when it was unread."""
        e = self.current
        if e is None or e.read_at is not None or e.kind != "reply" or not self.isVisible():
            return False
        try:
            replies.mark_read(self._ctx, [e])
        except Exception as exc:
            log.warning("could not mark reply %s read: %s", e.id, exc)
            return False
        row = next(i for i, x in enumerate(self.entries) if x is e)
        self.current = self.entries[row] = dataclasses.replace(e, read_at=datetime.now(UTC))
        self.model.setData(self.model.index(row, 2), KIND_WORDS.get(e.kind, e.kind))
        if e.message_id:
            self.replies_read.emit(e.message_id)
        return True

    def _show_current(self) -> None:
        e = self.current
        if e is None:
            return
        notes = []
        if e.different_sender:
            notes.append(f"Sent from {e.from_address}, not the address this message went to ({e.sent_to}).")
        if e.kind == "auto_reply":
            notes.append("An automatic answer (out of office or similar): not a bounce, the address is fine.")
        if e.matched_by == "address_time":
            notes.append("Linked by the sender's address and time only (no reference to this message).")
        by_hand = e.detail.get("by_hand")
        if e.matched_by == replies.BY_HAND and isinstance(by_hand, dict):
            notes.append(
                f"Attached by hand by {by_hand.get('by') or 'the director'}, {by_hand_time(by_hand)}."
            )
        self.note.setText(" ".join(notes))
        self.note.setStyleSheet(self._theme.text_style(Tone.WARNING) if e.different_sender else "")
        self.note.setVisible(bool(notes))
        self.text.setPlainText(e.reply_text or "(no text)")

    def _on_raw_toggled(self, on: bool) -> None:
        e = self.current
        if e is None:
            return
        if not on:
            self._show_current()
            return
        self.text.setPlainText(whole_message(self._ctx, e.id))

    # -- replying -------------------------------------------------------------------------------
    def reply_url(self) -> str | None:
        e = self.current
        if e is None or not e.from_address:
            return None
        from tabmail.services.inbox import reply_mailto  # the IMAP stack loads on first use

        return reply_mailto(e.from_address, e.subject, e.header_message_id)

    def open_reply(self) -> bool:
        url = self.reply_url()
        return bool(url) and QDesktopServices.openUrl(QUrl(url))
