"""One message as it was sent: headers, decoded body, HTML rendered safely, the exact source,
the provider's event timeline and the resend chain, with the resend controls for problem rows.
"""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.actor import describe
from tabmail.domain.notification import AddressFlag, Message, MessageState
from tabmail.domain.problems import PROBLEM_CATEGORIES, Category, Resolution
from tabmail.gui.message.browser import SafeTextBrowser
from tabmail.gui.message.replies import RepliesPanel
from tabmail.gui.message.timeline import TimelineColumn, TimelineModel
from tabmail.gui.rounds.words import ROLE_NAMES, full_time, local_time, row_look, status_look
from tabmail.gui.theme import RESOLVED_LOOK, Theme, Tone, flag_look
from tabmail.gui.widgets import MessageStrip, heading_label, muted_label
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

MESSAGE_LINK = "message:"


@dataclass(slots=True)
class ParsedMessage:
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    source: str = ""
    problem: str | None = None


def parse_raw(raw: bytes) -> ParsedMessage:
    """Headers (decoded), the text and HTML parts (decoded) and the exact source. Never raises."""
    parsed = ParsedMessage(source=raw.decode("utf-8", errors="replace"))
    if not raw:
        parsed.problem = "No stored copy of this message."
        return parsed
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parsed.headers = [(name, str(value)) for name, value in msg.items()]
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        parsed.text = str(text.get_content()) if text is not None else None  # type: ignore[attr-defined]
        parsed.html = str(html.get_content()) if html is not None else None  # type: ignore[attr-defined]
    except Exception as exc:  # a damaged stored copy is shown as source, never a crash
        log.warning("could not parse a stored message: %s", exc)
        parsed.problem = f"The stored copy could not be parsed ({exc}); the source is shown as stored."
    return parsed


def _plain_view(parent: QWidget, monospace: bool = False) -> QPlainTextEdit:
    view = QPlainTextEdit(parent)
    view.setReadOnly(True)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    if monospace:
        view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    return view


class MessageView(QWidget):
    """Shows one message (``show_message``) or a hint when nothing is selected (``clear``)."""

    resend_requested = Signal(str)  # message id
    message_link_activated = Signal(str)  # message id in the resend chain
    address_edited = Signal(str, str)  # message id, the corrected address as typed
    retry_requested = Signal(str)  # message id: retry now (retrying or failed)
    cancel_requested = Signal(str)  # message id: cancel (queued or retrying)
    resolve_requested = Signal(str)  # message id: mark the problem resolved (asks why)
    unresolve_requested = Signal(str)  # message id: undo "marked resolved"

    def __init__(self, ctx: AppContext, theme: Theme | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("message-view")
        self._ctx = ctx
        self._theme = theme or Theme()
        self.message: Message | None = None
        self.parsed = ParsedMessage()
        self._made_by: dict[str, str] = {}  # message id -> "alice on tabroom-2" (who sent it)

        self.status_icon = QLabel(self)
        self.subject = heading_label("", 1.15, self)
        self.subject.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("message-status")
        self.meta = muted_label("", self)
        self.meta.setWordWrap(True)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chain = QLabel(self)
        self.chain.setObjectName("resend-chain")
        self.chain.setTextFormat(Qt.TextFormat.RichText)
        self.chain.linkActivated.connect(self._on_chain_link_activated)
        self.problem = MessageStrip(self, self._theme)
        self.problem.setObjectName("message-problem")

        self.resend_row = QWidget(self)
        self.address = QLineEdit(self.resend_row)
        self.address.setObjectName("resend-address")
        self.address.setPlaceholderText("corrected address (leave as is to resend to the same one)")
        self.address.setClearButtonEnabled(True)
        self.address.editingFinished.connect(self._on_address_editing_finished)
        self.address.returnPressed.connect(self._on_resend_clicked)
        self.resend_button = QPushButton("Resend", self.resend_row)
        self.resend_button.setObjectName("resend-button")
        keys = QKeySequence("Ctrl+R").toString(QKeySequence.SequenceFormat.NativeText)
        self.resend_button.setToolTip(f"Queue this message again, to the address on the left ({keys})")
        self.resend_button.clicked.connect(self._on_resend_clicked)
        row = QHBoxLayout(self.resend_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Resend to:", self.resend_row))
        row.addWidget(self.address, 1)
        row.addWidget(self.resend_button)

        # Outbox actions for this one message, and the next retry time.
        self.outbox_row = QWidget(self)
        self.outbox_row.setObjectName("message-outbox-actions")
        self.next_retry = muted_label("", self.outbox_row)
        self.next_retry.setObjectName("next-retry")
        self.retry_button = QPushButton("Retry Now", self.outbox_row)
        self.retry_button.setObjectName("retry-now")
        self.retry_button.setToolTip("Send this message again now instead of waiting")
        self.retry_button.clicked.connect(lambda: self._emit_for(self.retry_requested))
        self.cancel_button = QPushButton("Cancel Sending", self.outbox_row)
        self.cancel_button.setObjectName("cancel-message")
        self.cancel_button.setToolTip("Do not send this message (it stays listed as skipped)")
        self.cancel_button.clicked.connect(lambda: self._emit_for(self.cancel_requested))
        self.resolve_button = QPushButton("Mark Resolved…", self.outbox_row)
        self.resolve_button.setObjectName("mark-resolved")
        self.resolve_button.setToolTip("This problem needs nothing more (you say why; Ctrl+Z undoes it)")
        self.resolve_button.clicked.connect(lambda: self._emit_for(self.resolve_requested))
        self.unresolve_button = QPushButton("Not Resolved", self.outbox_row)
        self.unresolve_button.setObjectName("unmark-resolved")
        self.unresolve_button.setToolTip("Undo marking this problem resolved")
        self.unresolve_button.clicked.connect(lambda: self._emit_for(self.unresolve_requested))
        orow = QHBoxLayout(self.outbox_row)
        orow.setContentsMargins(0, 0, 0, 0)
        orow.addWidget(self.next_retry, 1)
        for button in (self.retry_button, self.cancel_button, self.resolve_button, self.unresolve_button):
            orow.addWidget(button)

        self.blocked = MessageStrip(self, self._theme)
        self.blocked.setObjectName("remote-content-blocked")
        self.browser = SafeTextBrowser(self)
        self.browser.setObjectName("message-browser")
        self.text_view = _plain_view(self)
        self.headers_view = _plain_view(self)
        self.source_view = _plain_view(self, monospace=True)
        self.source_view.setObjectName("message-source")
        self.timeline_model = TimelineModel(self._theme, self)
        self.timeline = QTreeView(self)
        self.timeline.setObjectName("message-timeline")
        self.timeline.setModel(self.timeline_model)
        self.timeline.setRootIsDecorated(False)
        self.timeline.setUniformRowHeights(True)
        self.timeline.setAlternatingRowColors(True)
        self.timeline.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.timeline.header()
        header.setStretchLastSection(True)
        header.resizeSection(TimelineColumn.TIME, 150)
        header.resizeSection(TimelineColumn.STATUS, 140)
        header.resizeSection(TimelineColumn.EVENT, 180)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.timeline_empty = muted_label("", self)
        self.timeline_empty.setWordWrap(True)
        timeline_page = QWidget(self)
        tl = QVBoxLayout(timeline_page)
        tl.setContentsMargins(0, 6, 0, 0)
        tl.addWidget(self.timeline_empty)
        tl.addWidget(self.timeline, 1)

        message_page = QWidget(self)
        ml = QVBoxLayout(message_page)
        ml.setContentsMargins(0, 6, 0, 0)
        ml.addWidget(self.blocked)
        ml.addWidget(self.browser, 1)

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("message-tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(message_page, "Message")
        self.tabs.addTab(self.text_view, "Plain text")
        self.tabs.addTab(self.headers_view, "Headers")
        self.tabs.addTab(self.source_view, "Source")
        self.tabs.addTab(timeline_page, "Timeline")
        self.replies = RepliesPanel(ctx, self._theme, self)
        self.tabs.addTab(self.replies, "Replies")
        self.replies.replies_read.connect(self._title_replies)

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.status_icon, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.subject, 1)
        top.addWidget(self.status_label, 0, Qt.AlignmentFlag.AlignVCenter)

        self.empty = muted_label("Select a message to see it as it was sent, with its delivery events.", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.body = QWidget(self)
        layout = QVBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self.meta)
        layout.addWidget(self.chain)
        layout.addWidget(self.problem)
        layout.addWidget(self.resend_row)
        layout.addWidget(self.outbox_row)
        layout.addWidget(self.tabs, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 10, 12, 8)
        outer.addWidget(self.empty, 1)
        outer.addWidget(self.body, 1)
        self.clear()

    # -- showing -------------------------------------------------------------------------
    def clear(self) -> None:
        self.message = None
        self.body.hide()
        self.empty.show()

    def show_message(
        self,
        message: Message,
        *,
        status: str,
        category: Category | None = None,
        resolution: Resolution | None = None,
        draft: str | None = None,
        resendable: bool = False,
        resent_as: Sequence[tuple[str, str, str]] = (),
        resend_of: tuple[str, str] | None = None,
        flag: AddressFlag | None = None,
    ) -> None:
        """``resent_as``: (message id, address, row label) of each resend of this message;
        ``resend_of``: (address, row label) of the message this one resends."""
        same = self.message is not None and self.message.id == message.id
        self.message = message
        look = row_look(status, category) if category is not None else status_look(status)
        shown = RESOLVED_LOOK if resolution is not None else look
        self.status_icon.setPixmap(self._theme.icon(shown).pixmap(20, 20))
        self.status_label.setText(f"{look.label} · resolved" if resolution is not None else look.label)
        self.status_label.setToolTip(look.description)
        self.status_label.setStyleSheet(f"{self._theme.text_style(shown.tone)} font-weight: 600;")
        self.meta.setText(self._meta_text(message))
        self.chain.setText(self._chain_html(message, resent_as, resend_of))
        self.chain.setVisible(bool(message.resend_of or resent_as))
        self._show_problem(message, look.label, look.tone, flag, resolution, resent_as)
        self.resend_row.setVisible(resendable and not resent_as)
        self._show_outbox_actions(message, category, resolution)
        if not same or not self.address.hasFocus():
            self.address.setText(draft or message.address)
        if not same:
            self._load_content(message)
        else:
            self._load_timeline(message)
        self.empty.hide()
        self.body.show()

    def _show_outbox_actions(
        self, m: Message, category: Category | None, resolution: Resolution | None
    ) -> None:
        retry = m.state in (MessageState.RETRYING, MessageState.FAILED)
        cancel = m.state in (MessageState.QUEUED, MessageState.RETRYING)
        problem = category in PROBLEM_CATEGORIES
        self.retry_button.setVisible(retry)
        self.cancel_button.setVisible(cancel)
        self.resolve_button.setVisible(problem and resolution is None)
        self.unresolve_button.setVisible(resolution is not None and resolution.resend_id is None)
        if m.state is MessageState.RETRYING and m.next_attempt_at is not None:
            self.next_retry.setText(
                f"Next attempt {local_time(m.next_attempt_at, seconds=True)} (attempt {m.attempts + 1})"
            )
        elif m.state is MessageState.QUEUED:
            self.next_retry.setText("Waiting in the outbox to be sent")
        else:
            self.next_retry.setText("")
        self.outbox_row.setVisible(
            retry
            or cancel
            or self.resolve_button.isVisibleTo(self)
            or self.unresolve_button.isVisibleTo(self)
        )

    def _emit_for(self, signal: Signal) -> None:
        if self.message is not None:
            signal.emit(self.message.id)  # type: ignore[attr-defined]

    def _meta_text(self, m: Message) -> str:
        role = ROLE_NAMES.get(m.role or "", m.role or "")
        parts = [f"To {m.recipient_name} <{m.address}>" + (f" · {role}" if role else "")]
        if m.sent_at:
            parts.append(f"sent {local_time(m.sent_at, seconds=True)}")
        elif m.created_at:
            parts.append(f"queued {local_time(m.created_at, seconds=True)}")
        if m.attempts > 1:
            parts.append(f"{m.attempts} attempts")
        made = self.made_by(m)
        if made:
            parts.append(("resent by " if m.resend_of else "sent by ") + made)
        parts.append(f"id {m.id}")
        if m.provider_message_id:
            parts.append(f"provider id {m.provider_message_id}")
        return " · ".join(parts)

    def made_by(self, m: Message) -> str:
        """Who sent the message, on which machine: a resend's own record, else its batch's
        ("" when that was not recorded). Read once per message."""
        if m.id not in self._made_by:
            try:
                if m.resend_of:
                    full = m if m.made_by or m.made_on else self._ctx.notifications.get(m.id)
                    words = describe(full.made_by, full.made_on)
                else:
                    batch = self._ctx.notifications.get_batch(m.batch_id)
                    words = describe(batch.triggered_by, batch.triggered_on)
            except LookupError:  # deleted meanwhile: nothing to say
                words = ""
            self._made_by[m.id] = words
        return self._made_by[m.id]

    def _chain_html(
        self, m: Message, resent_as: Sequence[tuple[str, str, str]], resend_of: tuple[str, str] | None
    ) -> str:
        bits = []
        if m.resend_of:
            address, label = resend_of or ("an earlier message", "")
            what = f" ({escape(label)})" if label else ""
            bits.append(
                f"Resend of the message to <a href='{MESSAGE_LINK}{escape(m.resend_of)}'>{escape(address)}</a>{what}"
            )
        for mid, address, label in resent_as:
            bits.append(
                f"Resent to <a href='{MESSAGE_LINK}{escape(mid)}'>{escape(address)}</a> ({escape(label)})"
            )
        return " · ".join(bits)

    def _show_problem(
        self,
        m: Message,
        label: str,
        tone: Tone,
        flag: AddressFlag | None,
        resolution: Resolution | None,
        resent_as: Sequence[tuple[str, str, str]],
    ) -> None:
        reasons = [r for r in (m.status_reason, m.last_error) if r]
        if resolution is not None:
            if resolution.resend_id:
                where = next(
                    (a for mid, a, _ in resent_as if mid == resolution.resend_id), "a corrected address"
                )
                text = f"Resolved: the resend to {where} reached the recipient. Was: {label}"
            else:
                by = f" by {resolution.by}" if resolution.by else ""
                text = f"Marked resolved{by}: {resolution.reason}. Was: {label}"
            detail = "; ".join(dict.fromkeys(reasons))
            self.problem.show_message(text + (f" ({detail})" if detail else ""), Tone.GOOD, timeout_ms=0)
        elif tone in (Tone.BAD, Tone.WARNING):
            detail = "; ".join(dict.fromkeys(reasons))
            self.problem.show_message(f"{label}: {detail}" if detail else label, tone, timeout_ms=0)
        elif flag is not None:
            self.problem.show_message(
                f"{m.address} is flagged: {flag_look(flag.kind).label.lower()} since {full_time(flag.since)}: "
                f"{flag.diagnostic}",
                Tone.WARNING,
            )
        else:
            self.problem.clear_message()

    def _load_content(self, m: Message) -> None:
        try:
            raw = self._ctx.notifications.raw(m.id)
        except Exception as exc:  # the row may be gone (another process): say so, keep going
            raw = b""
            log.warning("could not read message %s: %s", m.id, exc)
        self.parsed = parse_raw(raw)
        p = self.parsed
        subject = next((value for name, value in p.headers if name.lower() == "subject"), "")
        self.subject.setText(subject or "(no subject)")
        self.subject.setToolTip(subject)
        if p.html is not None:
            self.browser.set_safe_html(p.html)
        else:
            self.browser.set_plain(p.text or p.problem or "")
        # Resources load as the document is laid out: lay it out now, so the strip is right.
        self.browser.document().size()
        if self.browser.blocked:
            n = len(self.browser.blocked)
            self.blocked.show_message(
                f"{n} remote image{'s' if n != 1 else ''} not loaded: tabmail never fetches remote "
                "content from a message.",
                Tone.NEUTRAL,
            )
        else:
            self.blocked.clear_message()
        self.text_view.setPlainText(p.text if p.text is not None else (p.problem or "(no plain-text part)"))
        self.headers_view.setPlainText("\n".join(f"{name}: {value}" for name, value in p.headers))
        self.source_view.setPlainText(p.source)
        self._load_timeline(m)
        self.show_replies(m.id)

    def show_replies(self, message_id: str) -> None:
        """(Re)load the Replies tab; its title counts them, and the unread ones."""
        self.replies.show_for(message_id)
        self._title_replies()

    def _title_replies(self, *_: object) -> None:
        n = len(self.replies.entries)
        unread = self.replies.unread_count()
        text = f"Replies ({n}, {unread} new)" if unread else (f"Replies ({n})" if n else "Replies")
        self.tabs.setTabText(self.tabs.indexOf(self.replies), text)

    def _load_timeline(self, m: Message) -> None:
        try:
            events = self._ctx.tracking.timeline(m.id)
        except Exception as exc:  # tracking store unavailable: the rest of the view still works
            log.warning("could not read the timeline of %s: %s", m.id, exc)
            events = []
        self.timeline_model.set_events(events)
        self.tabs.setTabText(4, f"Timeline ({len(events)})" if events else "Timeline")
        if events:
            self.timeline_empty.hide()
        else:
            self.timeline_empty.setText(
                "No delivery events for this message yet. They arrive when tabmail checks SendGrid "
                "(F5, or automatically while the app is open); plain SMTP reports nothing after "
                "accepting a message."
            )
            self.timeline_empty.show()
        self.timeline.setVisible(bool(events))

    # -- editing and resending -------------------------------------------------------------
    def focus_address(self) -> None:
        if self.resend_row.isVisible():
            self.address.setFocus()
            self.address.selectAll()

    def _on_address_editing_finished(self) -> None:
        if self.message is not None:
            self.address_edited.emit(self.message.id, self.address.text())

    def _on_resend_clicked(self) -> None:
        if self.message is not None and self.resend_row.isVisible():
            self.address_edited.emit(self.message.id, self.address.text())
            self.resend_requested.emit(self.message.id)

    def _on_chain_link_activated(self, link: str) -> None:
        if link.startswith(MESSAGE_LINK):
            self.message_link_activated.emit(link[len(MESSAGE_LINK) :])
