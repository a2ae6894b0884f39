"""The side panel of the participants page: one person, their address and its history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from tabmail.domain.actor import AddressChange, describe
from tabmail.domain.notification import BulkNotification, Message
from tabmail.domain.tournament import Person
from tabmail.gui.participants.model import ROLE_NAMES
from tabmail.gui.theme import Theme, address_look, delivery_status_look, message_state_look
from tabmail.gui.widgets import heading_label, muted_label

EVENT_NAMES = {"draw": "Draw release", "ballot": "Ballot receipt", "custom": "Custom message"}

SOURCE_NAMES = {
    "import": "Imported",
    "director": "Edited in tabmail",
    "resend": "Corrected for a resend",
    "tabbycat": "Written back to Tabbycat",
}

History = list[AddressChange]


def describe_change(
    when: datetime,
    old: str | None,
    new: str | None,
    source: str,
    by: str | None = None,
    machine: str | None = None,
) -> str:
    """One history line as HTML (every imported value escaped), with who made the change on
    which machine when that was recorded."""
    local = when.astimezone() if when.tzinfo else when
    who = SOURCE_NAMES.get(source, source.capitalize())
    if old is None:
        what = f"set to <b>{escape(new or '')}</b>"
    elif new is None:
        what = f"removed (was {escape(old)})"
    else:
        what = f"{escape(old)} → <b>{escape(new)}</b>"
    made = describe(by, machine)
    by_words = f"<span style='color: gray'> · by {escape(made)}</span>" if made else ""
    return f"<span style='color: gray'>{local:%d %b %Y, %H:%M}</span><br>{who}: {what}{by_words}"


class PersonPanel(QFrame):
    """Shows the selected person. Later layers add sections (e.g. messages sent) below."""

    edit_requested = Signal(int)  # person id: the page starts editing the address cell

    def __init__(self, theme: Theme | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("person-panel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(200)
        self._theme = theme or Theme()
        self.person: Person | None = None

        self.name = heading_label("", 1.2, self)
        self.name.setWordWrap(True)
        self.details = muted_label("", self)
        self.details.setWordWrap(True)
        self.address_title = QLabel("<b>Email address</b>", self)
        self.status_icon = QLabel(self)
        self.address = QLabel(self)
        self.address.setWordWrap(True)
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem = QLabel(self)
        self.problem.setWordWrap(True)
        self.edit_button = QPushButton("Correct address…", self)
        self.edit_button.clicked.connect(self._on_edit_button_clicked)
        self.history_title = QLabel("<b>Address history</b>", self)
        self.history = QLabel(self)
        self.history.setObjectName("address-history")
        self.history.setWordWrap(True)
        self.history.setTextFormat(Qt.TextFormat.RichText)
        self.history.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.sent_title = QLabel("<b>Messages sent</b>", self)
        self.sent = QLabel(self)
        self.sent.setObjectName("messages-sent")
        self.sent.setWordWrap(True)
        self.sent.setTextFormat(Qt.TextFormat.RichText)
        self.sent.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.empty = muted_label("Select a participant to see their address and its history.", self)
        self.empty.setWordWrap(True)

        address_row = QHBoxLayout()
        address_row.setSpacing(6)
        address_row.addWidget(self.status_icon, 0, Qt.AlignmentFlag.AlignTop)
        address_row.addWidget(self.address, 1)

        self._body = QWidget(self)
        body = QVBoxLayout(self._body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(6)
        body.addWidget(self.name)
        body.addWidget(self.details)
        body.addSpacing(10)
        body.addWidget(self.address_title)
        body.addLayout(address_row)
        body.addWidget(self.problem)
        body.addWidget(self.edit_button, 0, Qt.AlignmentFlag.AlignLeft)
        body.addSpacing(10)
        body.addWidget(self.history_title)
        body.addWidget(self.history)
        body.addSpacing(10)
        body.addWidget(self.sent_title)
        body.addWidget(self.sent)
        self._sections = QVBoxLayout()
        self._sections.setSpacing(6)
        body.addLayout(self._sections)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addWidget(self.empty)
        layout.addWidget(self._body)
        layout.addStretch(1)
        self.show_person(None)

    def add_section(self, title: str, widget: QWidget) -> None:
        """Extension point: another layer's section (e.g. "Messages sent") under the history."""
        self._sections.addSpacing(10)
        self._sections.addWidget(QLabel(f"<b>{escape(title)}</b>", self))
        self._sections.addWidget(widget)

    def show_person(
        self, person: Person | None, history: History | None = None, status: str = "ok", problem: str = ""
    ) -> None:
        self.person = person
        self.empty.setVisible(person is None)
        self._body.setVisible(person is not None)
        if person is None:
            return
        self.name.setText(person.name)
        parts = [ROLE_NAMES.get(person.role, str(person.role))]
        parts += [x for x in (person.team_name, person.institution_name) if x]
        if not person.active:
            parts.append("no longer in the latest import")
        self.details.setText(" · ".join(parts))
        look = address_look(status)
        self.status_icon.setPixmap(self._theme.icon(look).pixmap(16, 16))
        self.status_icon.setToolTip(look.label)
        self.address.setText(escape(person.email) if person.email else "<i>none</i>")
        if problem:
            self.problem.setText(problem)
            self.problem.setStyleSheet(self._theme.text_style(look.tone))
        self.problem.setVisible(bool(problem))
        self.edit_button.setText("Correct address…" if problem else "Edit address…")
        rows = list(reversed(history or []))  # newest first
        if rows:
            self.history.setText("<br><br>".join(describe_change(*row) for row in rows))
        else:
            self.history.setText("<span style='color: gray'>Unchanged since it was imported.</span>")

    def show_messages(self, messages: Sequence[Message], batches: Mapping[int, BulkNotification]) -> None:
        """What this person was sent, newest first: kind, round, when, where to, what happened."""
        if not messages:
            self.sent.setText("<span style='color: gray'>Nothing sent yet.</span>")
            return
        lines = []
        for m in sorted(
            messages, key=lambda x: x.created_at or datetime.min.replace(tzinfo=UTC), reverse=True
        ):
            batch = batches.get(m.batch_id)
            kind = EVENT_NAMES.get(batch.event.value, batch.event.value) if batch else "Message"
            when = m.sent_at or m.created_at
            stamp = f"{when.astimezone():%d %b, %H:%M}" if when else ""
            status = m.delivery_status.value if m.delivery_status.value != "unknown" else m.state.value
            look = (
                delivery_status_look(m.delivery_status)
                if m.delivery_status.value != "unknown"
                else (message_state_look(m.state))
            )
            colour = self._theme.foreground(look.tone).name()
            # Who sent it: the resend's own record, else the batch's.
            made = (
                describe(m.made_by, m.made_on)
                if m.resend_of
                else (describe(batch.triggered_by, batch.triggered_on) if batch else "")
            )
            lines.append(
                f"<span style='color: gray'>{escape(stamp)}</span> {escape(kind)}: "
                f"<span style='color: {colour}'><b>{escape(look.label or status)}</b></span>"
                f"<br><span style='color: gray'>to {escape(m.address)}"
                + (" (a resend)" if m.resend_of else "")
                + (f" · by {escape(made)}" if made else "")
                + "</span>"
            )
        self.sent.setText("<br>".join(lines))

    def _on_edit_button_clicked(self) -> None:
        if self.person is not None:
            self.edit_requested.emit(self.person.id)
