"""The round view's head: the round's title and subtitle with the Compose button, then the
filter bar (search, "Problems only"), the round's summary in words and the "Show unmatched…"
button. ``RoundHeader`` is owned by ``RoundMessagesPage``; the summary is written here only
(``update_summary``), from the round model's totals.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QToolButton, QVBoxLayout, QWidget

from tabmail.domain.problems import PROBLEM_CATEGORIES
from tabmail.gui.rounds.model import RoundMessagesModel
from tabmail.gui.rounds.words import RESOLVED, counts_text
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import SearchField, heading_label, muted_label

UNMATCHED_TIP = (
    "Unmatched events are provider events that tabmail could not match to any message it sent "
    "(in any tournament). They are kept: see `tabmail events --unmatched`."
)


class RoundHeader(QWidget):
    def __init__(self, theme: Theme, compose_action: QAction | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._theme = theme
        self.title = heading_label("", 1.45, self)
        self.subtitle = muted_label("", self)
        self.compose_button = QToolButton(self)
        if compose_action is not None:
            self.compose_button.setDefaultAction(compose_action)
            self.compose_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        else:
            self.compose_button.hide()
        self.search = SearchField("Search names, addresses, message ids  (Ctrl+F)", self, theme)
        self.problems_only = QCheckBox("Problems only", self)
        self.problems_only.setToolTip(
            "Only unresolved problems: bounced, invalid, blocked, dropped, failed, spam reports, "
            "unsubscribed, uncertain and skipped messages"
        )
        self.summary = muted_label("", self)
        self.summary.setObjectName("round-summary")
        self.unmatched_button = QPushButton("Show unmatched…", self)
        self.unmatched_button.setFlat(True)
        self.unmatched_button.setObjectName("unmatched-events")
        self.unmatched_button.setToolTip("Provider events that matched no message tabmail sent: show them")
        self.unmatched_button.hide()

        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        head.addLayout(titles, 1)
        head.addWidget(self.compose_button, 0, Qt.AlignmentFlag.AlignTop)
        bar = QHBoxLayout()
        bar.addWidget(self.search, 2)
        bar.addWidget(self.problems_only)
        bar.addSpacing(12)
        bar.addWidget(self.summary, 3)
        bar.addWidget(self.unmatched_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addSpacing(2)
        layout.addLayout(bar)

    def set_titles(self, title: str, subtitle: str) -> None:
        self.title.setText(title)
        self.subtitle.setText(subtitle)

    def update_summary(self, model: RoundMessagesModel, unmatched: int) -> None:
        """ "2 batches · 2,000 messages · 3 bounced · 1 resolved · …": the round's rows counted."""
        totals = model.totals()
        n_batches = model.rowCount()
        n = model.message_count()
        parts = [f"{n_batches} batch{'es' if n_batches != 1 else ''}", f"{n} message{'s' if n != 1 else ''}"]
        problem_counts = {c: totals[c] for c in PROBLEM_CATEGORIES if totals.get(c)}
        if problem_counts:
            parts.append(counts_text(problem_counts))
        if totals.get(RESOLVED):
            parts.append(f"{totals[RESOLVED]} resolved")
        if unmatched:
            parts.append(f"{unmatched} unmatched event{'s' if unmatched != 1 else ''}")
        replies, unread = model.reply_totals()
        if replies:
            parts.append(f"{replies} repl{'y' if replies == 1 else 'ies'} ({unread} unread)")
        self.unmatched_button.setVisible(bool(unmatched))
        self.summary.setText(" · ".join(parts))
        self.summary.setToolTip(UNMATCHED_TIP if unmatched else "")
        self.summary.setStyleSheet(self._theme.text_style(Tone.BAD) if problem_counts else "")
