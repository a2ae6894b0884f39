"""The detail panel for a batch row: what was sent, how it went, and "Resend all corrected"."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from tabmail.domain.notification import BulkNotification
from tabmail.domain.problems import ORDER, PROBLEM_CATEGORIES, Category
from tabmail.gui.rounds.model import BATCH_LOOKS
from tabmail.gui.rounds.words import (
    backend_words,
    batch_title,
    counts_text,
    full_time,
    problem_total,
)
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip, heading_label, muted_label


class BatchPanel(QWidget):
    resend_corrected_requested = Signal(int)  # batch id
    cancel_schedule_requested = Signal(int)  # batch id: a scheduled batch, before it starts

    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batch-panel")
        self._theme = theme
        self.batch: BulkNotification | None = None
        self.icon = QLabel(self)
        self.title = heading_label("", 1.15, self)
        self.meta = muted_label("", self)
        self.meta.setWordWrap(True)
        self.counts = QLabel(self)
        self.counts.setObjectName("batch-counts")
        self.counts.setWordWrap(True)
        self.advice = MessageStrip(self, theme)
        self.resend_button = QPushButton("Resend All Corrected", self)
        self.resend_button.setObjectName("resend-all-corrected")
        self.resend_button.setToolTip(
            "Resend every bounced message of this batch whose address was corrected, here "
            "(double-click an address) or in Participants"
        )
        self.resend_button.clicked.connect(self._on_resend_clicked)
        self.cancel_schedule_button = QPushButton("Cancel Scheduled Send", self)
        self.cancel_schedule_button.setObjectName("cancel-scheduled-send")
        self.cancel_schedule_button.setToolTip("Do not send this batch: its waiting messages become skipped")
        self.cancel_schedule_button.clicked.connect(
            lambda: self.batch is not None and self.cancel_schedule_requested.emit(self.batch.id)
        )
        self.cancel_schedule_button.hide()
        self.schedule = QLabel(self)
        self.schedule.setObjectName("batch-schedule")
        self.schedule.hide()
        self._waiting: int = 0
        self._tick = QTimer(self)
        self._tick.setInterval(15_000)  # the countdown, refreshed while a batch waits
        self._tick.timeout.connect(self._show_schedule)
        self.template = QPlainTextEdit(self)
        self.template.setReadOnly(True)
        self.template.setObjectName("batch-template")
        self.template.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel_schedule_button)
        top.addWidget(self.resend_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 8)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self.meta)
        layout.addWidget(self.schedule)
        layout.addWidget(self.counts)
        layout.addWidget(self.advice)
        layout.addWidget(muted_label("Templates as sent", self))
        layout.addWidget(self.template, 1)

    def show_batch(
        self, batch: BulkNotification, counts: dict[str, int], corrected: int, waiting: int = 0
    ) -> None:
        """``waiting``: how many of its messages still wait for the batch's scheduled time."""
        self.batch = batch
        self._waiting = waiting
        self._show_schedule()
        worst = next((c for c in ORDER if counts.get(c)), Category.SENT)
        self.icon.setPixmap(self._theme.icon(BATCH_LOOKS[worst]).pixmap(20, 20))
        self.title.setText(batch_title(batch))
        total = sum(counts.values())
        meta = [
            f"{total} message{'s' if total != 1 else ''}",
            f"created {full_time(batch.created_at)}",
            f"via {backend_words(batch.backend)}",
        ]
        if batch.triggered_by:
            meta.append(f"by {batch.triggered_by}")
        if batch.reroute_to:
            meta.append(f"test mode: everything went to {batch.reroute_to}")
        self.meta.setText(" · ".join(meta))
        self.counts.setText(counts_text(counts))
        problems = problem_total(counts)
        if problems:
            self.advice.show_message(
                # Not "did not reach their recipients": a spam report or an unsubscribe did.
                f"{problems} message{'s need' if problems != 1 else ' needs'} attention: "
                f"{counts_text({c: n for c, n in counts.items() if c in PROBLEM_CATEGORIES})}. Correct an address "
                "by double-clicking it in the list (or in Participants), then resend it with Ctrl+R, "
                f"or resend all corrected ones at once{f' ({corrected} corrected here)' if corrected else ''}.",
                Tone.BAD,
            )
        else:
            self.advice.clear_message()
        self.resend_button.setEnabled(bool(problems))
        t = batch.templates
        self.template.setPlainText(
            f"Subject: {t.subject}\n\n{t.text}" + (f"\n\n--- HTML ---\n{t.html}" if t.html else "")
        )

    def _show_schedule(self) -> None:
        batch = self.batch
        at = batch.scheduled_at if batch is not None else None
        if at is None:
            self.schedule.hide()
            self.cancel_schedule_button.hide()
            self._tick.stop()
            return
        local = at.astimezone().strftime("%H:%M on %a %d %b")
        if self._waiting:
            left = (at - datetime.now(UTC)).total_seconds()
            when = f"in {_span(left)}" if left > 0 else f"{_span(-left)} ago: waiting for your answer"
            text = f"Scheduled for {local} ({when}): {self._waiting} message(s) waiting"
            self._tick.start()
        else:
            text = f"Scheduled for {local}: released"
            self._tick.stop()
        self.schedule.setText(text)
        self.schedule.show()
        self.cancel_schedule_button.setVisible(bool(self._waiting))

    def _on_resend_clicked(self) -> None:
        if self.batch is not None:
            self.resend_corrected_requested.emit(self.batch.id)


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
