"""The compose dialog's progress row: follows one batch through the outbox, with Cancel.

Progress comes from the bridge: ``outbox_progressed`` for the batch (the outbox's own count)
and ``message_state_changed`` for each message's outcome, so the numbers are right even when
the batch went out in a run that also sent other messages. Cancel stops the outbox (what is in
flight finishes and is recorded) and offers to mark the rest skipped (``cancel_pending``);
otherwise they stay queued for the next run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QWidget

from tabmail.domain.events import MessageStateChanged
from tabmail.domain.notification import MessageState
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.domain.practice import EXPLANATION as PRACTICE_EXPLANATION
from tabmail.domain.practice import LABEL as PRACTICE_LABEL
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.theme import Theme, Tone
from tabmail.services.context import AppContext

FINAL = frozenset(
    {
        MessageState.SENT.value,
        MessageState.FAILED.value,
        MessageState.SKIPPED.value,
        MessageState.UNCERTAIN.value,
    }
)
OUTCOMES = ("sent", "failed", "uncertain", "skipped")


def backend_phrase(settings: dict[str, Any]) -> str:
    """How the messages will leave, for the confirmation ("through smtp.example.org")."""
    backend = str(settings.get("backend") or "file")
    if backend == "smtp":
        return f"through {settings.get('smtp.host') or 'the SMTP server'}"
    if backend == "sendgrid":
        return "through SendGrid" + (
            " (sandbox mode: nothing is delivered)" if settings.get("sendgrid.sandbox") else ""
        )
    if backend == PRACTICE:
        return f"({PRACTICE_LABEL})"
    return "as .eml files (dry run: nothing is sent)"


def practice_label(settings: dict[str, Any], theme: Theme, parent: QWidget) -> QLabel:
    """The compose dialog's "Practice — nothing leaves this computer", shown only when the
    practice backend is selected."""
    label = QLabel(PRACTICE_LABEL, parent)
    label.setObjectName("compose-practice-banner")
    label.setStyleSheet(theme.banner_style())
    label.setToolTip(PRACTICE_EXPLANATION)
    label.setVisible(str(settings.get("backend") or "") == PRACTICE)
    return label


def confirm_send_box(
    parent: QWidget, count: int, settings: dict[str, Any], what: str
) -> tuple[QMessageBox, QPushButton]:
    """The last question before sending ("Send 38 emails through smtp.example.org?"): a
    window-modal box, not yet open, and its Send button."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Send notifications",
        f"Send {count} email{'s' if count != 1 else ''} {backend_phrase(settings)}?",
        QMessageBox.StandardButton.Cancel,
        parent,
    )
    box.setObjectName("confirm-send")
    details = [what]
    reroute = str(settings.get("test_mode.reroute_to") or "").strip()
    if reroute:
        details.append(f"TEST MODE: all {count} go to {reroute}, not to the recipients.")
    if str(settings.get("backend") or "") == PRACTICE:
        details.append("Each recipient gets a pretend fate over about a minute, as if it had been sent.")
    else:
        details.append("This cannot be undone once a message has been handed over.")
    box.setInformativeText("\n".join(details))
    go = box.addButton("Send", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(go)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box, go


class SendProgress(QWidget):
    notice = Signal(str, object)  # text, Tone: something the dialog should say in its strip
    finished = Signal()

    def __init__(
        self,
        ctx: AppContext,
        bridge: EventBridge,
        worker: BackgroundWorker | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self.worker = worker
        self.batch_id: int | None = None
        self.queued = 0
        self.final: dict[str, str] = {}
        self.retrying: set[str] = set()
        self.stopped: str | None = None  # why sending stopped early (cancelled, a failure)
        self.cancel_box: QMessageBox | None = None
        self.bar = QProgressBar(self)
        self.bar.setObjectName("compose-progress")
        self.label = QLabel(self)
        self.label.setObjectName("compose-progress-label")
        self.cancel_button = QPushButton("Cancel Sending", self)
        self.cancel_button.setObjectName("compose-cancel")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 2)
        row.addWidget(self.label, 3)
        row.addWidget(self.cancel_button)
        self.hide()
        bridge.outbox_progressed.connect(self._on_bridge_outbox_progressed)
        bridge.message_state_changed.connect(self._on_bridge_message_state_changed)
        if worker is not None:
            worker.outbox_finished.connect(self._on_worker_outbox_finished)
            worker.outbox_failed.connect(self._on_worker_outbox_failed)

    @property
    def active(self) -> bool:
        return self.batch_id is not None

    def start(self, batch_id: int, queued: int) -> None:
        """Follow ``batch_id`` (``queued`` messages) and ask the worker to send it."""
        self.batch_id, self.queued = batch_id, queued
        self.final.clear()
        self.retrying.clear()
        self.stopped = None
        self.bar.setRange(0, max(1, queued))
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.show()
        self._update()
        if self.worker is not None:
            self.worker.run_outbox(batch_id)

    def _on_bridge_outbox_progressed(self, batch_id: int, done: int, total: int) -> None:
        if self.active and batch_id == self.batch_id and total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))

    def _on_bridge_message_state_changed(self, message_id: str, batch_id: int, state: str) -> None:
        if batch_id != self.batch_id or self.batch_id is None:
            return
        if state in FINAL:
            self.final[message_id] = state
            self.retrying.discard(message_id)
        elif state == MessageState.RETRYING.value:
            self.retrying.add(message_id)
        self._update()

    def _update(self) -> None:
        outcome = Counter(self.final.values())
        done = len(self.final)
        self.bar.setValue(max(self.bar.value(), min(done, self.bar.maximum())))
        words = [f"{outcome[s]} {s}" for s in OUTCOMES if outcome[s]]
        if self.retrying:
            words.append(f"{len(self.retrying)} waiting to retry")
        if done >= self.queued and self.queued:
            self._finish()
            return
        self.label.setText(
            f"Sending: {done} of {self.queued} done" + (f" · {', '.join(words)}" if words else "")
        )

    def _finish(self, stopped: str | None = None) -> None:
        self.stopped = stopped = stopped or self.stopped
        outcome = Counter(self.final.values())
        words = [f"{outcome[s]} {s}" for s in OUTCOMES if outcome[s]]
        left = self.queued - len(self.final)
        if stopped:
            text = f"Stopped: {stopped}"
        elif left:
            text = f"{left} not sent yet" + (" (retrying in the background)" if self.retrying else "")
        else:
            text = "Done"
        self.label.setText(text + (f" · {', '.join(words)}" if words else ""))
        self.bar.setValue(min(len(self.final), self.bar.maximum()))
        if not left or stopped:
            self.cancel_button.hide()
        bad = outcome["failed"] + outcome["uncertain"]
        if not left and bad:
            self.notice.emit(
                f"{bad} message{'s' if bad != 1 else ''} did not go out cleanly: they are highlighted in "
                "the round view, where addresses can be corrected and resent.",
                Tone.BAD,
            )
        self.finished.emit()

    def _on_worker_outbox_finished(self, report: Any) -> None:
        if self.active and len(self.final) < self.queued:
            self._finish()

    def _on_worker_outbox_failed(self, why: str) -> None:
        if self.active:
            self.notice.emit(
                f"Sending stopped: {why} The messages not sent yet stay queued; they go out at the next "
                "send or when tabmail starts again.",
                Tone.BAD,
            )
            self._finish(stopped=why)

    def _on_cancel_clicked(self) -> None:
        if self.worker is not None:
            self.worker.cancel_outbox()
        self.cancel_button.setEnabled(False)
        left = self.queued - len(self.final)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Sending cancelled",
            f"Sending stopped. {left} message{'s have' if left != 1 else ' has'} not been sent.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("cancel-question")
        box.setInformativeText(
            "Mark them as skipped (kept and shown, never sent), or keep them queued: queued messages "
            "go out at the next send or when tabmail starts again."
        )
        skip = box.addButton("Mark as Skipped", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep Queued", QMessageBox.ButtonRole.RejectRole)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _code: self._on_cancel_answered(box.clickedButton() is skip))
        self.cancel_box = box
        box.open()

    def _on_cancel_answered(self, skip: bool) -> None:
        self.cancel_box = None
        if skip and self.batch_id is not None:
            self.skip_rest()
        self._finish(stopped="cancelled by you")

    def skip_rest(self) -> int:
        """Mark the batch's unsent messages skipped and tell the views which ones."""
        assert self.batch_id is not None
        pending = self._ctx.notifications.messages(
            batch_id=self.batch_id, states=[MessageState.QUEUED, MessageState.RETRYING]
        )
        n = self._ctx.notifications.cancel_pending(self.batch_id)
        for m in pending:
            self._ctx.bus.publish(MessageStateChanged(m.id, self.batch_id, MessageState.SKIPPED.value))
        return n
