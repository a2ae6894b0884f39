"""The compose dialog: choose what and to whom, edit and preview the template, send, watch.

Every template is checked as the director types (syntax at once, a render for the previewed
recipient after a short pause), and for every ticked recipient before the confirmation; the
enqueue itself re-validates (``notify.enqueue`` queues nothing when any recipient fails). The
blocking steps (planning, rendering everyone, enqueueing) run in a worker thread through
``run_op``; sending is the background worker's outbox, whose progress this dialog follows until
it is done or cancelled. Closing the dialog never stops a send.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tabmail.compose.templates import (
    TemplateRenderError,
    check_syntax,
    default_templates,
    preview_variables,
    render_all,
    render_for,
)
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import MessageStateChanged
from tabmail.domain.notification import Audience, Event, MessageState, Templates
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer.editor import TemplateEditor, describe_problems
from tabmail.gui.composer.preview import PreviewPane
from tabmail.gui.composer.recipients import RecipientColumn, RecipientsModel, RecipientsProxy
from tabmail.gui.roles import Roles
from tabmail.gui.run_op import run_op
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip, SearchField, muted_label
from tabmail.services import notify
from tabmail.services.context import AppContext

EVENTS: list[tuple[str, Event, Audience | None]] = [
    ("Draw release: adjudicators and teams", Event.DRAW, Audience.ALL),
    ("Draw release: adjudicators", Event.DRAW, Audience.ADJUDICATORS),
    ("Draw release: teams", Event.DRAW, Audience.TEAMS),
    ("Ballot receipts", Event.BALLOT, None),
    ("Custom message", Event.CUSTOM, Audience.ALL),
]
PREVIEW_DELAY_MS = 300
FINAL = frozenset(
    {
        MessageState.SENT.value,
        MessageState.FAILED.value,
        MessageState.SKIPPED.value,
        MessageState.UNCERTAIN.value,
    }
)


def backend_phrase(settings: dict[str, Any]) -> str:
    """How the messages will leave, for the confirmation ("through smtp.example.org")."""
    backend = str(settings.get("backend") or "file")
    if backend == "smtp":
        return f"through {settings.get('smtp.host') or 'the SMTP server'}"
    if backend == "sendgrid":
        return "through SendGrid" + (
            " (sandbox mode: nothing is delivered)" if settings.get("sendgrid.sandbox") else ""
        )
    return "as .eml files (dry run: nothing is sent)"


class ComposeDialog(QDialog):
    batch_queued = Signal(int)  # the new batch's id
    plan_loaded = Signal()  # the recipient list is (re)filled, or the plan failed
    preview_updated = Signal()

    def __init__(
        self,
        ctx: AppContext,
        bridge: EventBridge,
        worker: BackgroundWorker | None,
        tournament: Tournament,
        rnd: Round | None = None,
        *,
        theme: Theme | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("compose-dialog")
        self.setWindowTitle(f"Compose — {tournament.name}")
        self._ctx = ctx
        self._theme = theme or Theme()
        self.worker = worker
        self.tournament = tournament
        self.plan: notify.Plan | None = None
        self.problems: list[Any] = []
        self.batch_id: int | None = None
        self.queued = 0
        self.final: dict[str, str] = {}
        self.retrying: set[str] = set()
        self.sending = False
        self.confirm_box: QMessageBox | None = None
        self.cancel_box: QMessageBox | None = None
        self._settings = ctx.settings.all()

        self.event = QComboBox(self)
        self.event.setObjectName("compose-event")
        for label, event, audience in EVENTS:
            self.event.addItem(label, (event, audience))
        self.round = QComboBox(self)
        self.round.setObjectName("compose-round")
        self.rounds = ctx.tournaments.rounds(tournament.id)
        for r in self.rounds:
            self.round.addItem(r.name, r.seq)
        if rnd is not None:
            self.round.setCurrentIndex(max(0, self.round.findData(rnd.seq)))
        self.banner = QLabel(self)
        self.banner.setObjectName("compose-test-mode-banner")
        self.banner.setStyleSheet(self._theme.banner_style())
        reroute = str(self._settings.get("test_mode.reroute_to") or "").strip()
        self.banner.setText(f"TEST MODE: every message goes to {reroute}")
        self.banner.setToolTip("Test mode is on (Settings): nothing reaches the real recipients.")
        self.banner.setVisible(bool(reroute))

        self.recipients = RecipientsModel(self._theme, self)
        self.recipients_proxy = RecipientsProxy(self)
        self.recipients_proxy.setSourceModel(self.recipients)
        self.table = self._build_table()
        self.search = SearchField("Search recipients", self, self._theme)
        self.search.textChanged.connect(self.recipients_proxy.setFilterFixedString)
        self.select_button = self._build_select_button()
        self.count_label = muted_label("", self)
        self.count_label.setObjectName("compose-count")
        self.count_label.setWordWrap(True)

        self.editor = TemplateEditor(self._theme, self)
        self.preview = PreviewPane(self)
        self.problems_strip = MessageStrip(self, self._theme)
        self.problems_strip.setObjectName("compose-problems")
        self.notice = MessageStrip(self, self._theme)
        self.notice.setObjectName("compose-notice")

        self.progress = QProgressBar(self)
        self.progress.setObjectName("compose-progress")
        self.progress_label = QLabel(self)
        self.progress_label.setObjectName("compose-progress-label")
        self.cancel_button = QPushButton("Cancel Sending", self)
        self.cancel_button.setObjectName("compose-cancel")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.progress_row = QWidget(self)
        pr = QHBoxLayout(self.progress_row)
        pr.setContentsMargins(0, 0, 0, 0)
        pr.addWidget(self.progress, 2)
        pr.addWidget(self.progress_label, 3)
        pr.addWidget(self.cancel_button)
        self.progress_row.hide()

        self.restore_button = QPushButton("Restore Default Template", self)
        self.restore_button.clicked.connect(self._restore_defaults)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        self.send_button = QPushButton("Send…", self)
        self.send_button.setObjectName("compose-send")
        self.send_button.setDefault(True)
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send)

        self._layout()
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.update_preview)
        self.editor.changed.connect(self._on_editor_changed)
        self.recipients.selection_changed.connect(self._update_counts)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.update_preview())
        self.event.currentIndexChanged.connect(lambda _: self.replan())
        self.round.currentIndexChanged.connect(lambda _: self.replan())
        bridge.outbox_progressed.connect(self._on_bridge_outbox_progressed)
        bridge.message_state_changed.connect(self._on_bridge_message_state_changed)
        if worker is not None:
            worker.outbox_finished.connect(self._on_worker_outbox_finished)
            worker.outbox_failed.connect(self._on_worker_outbox_failed)
        self.resize(1280, 800)
        self.replan()

    # -- building -------------------------------------------------------------------------------
    def _build_table(self) -> QTableView:
        table = QTableView(self)
        table.setObjectName("compose-recipients")
        table.setModel(self.recipients_proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(RecipientColumn.NOTE, Qt.SortOrder.AscendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(RecipientColumn.ADDRESS, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(RecipientColumn.NAME, 175)
        header.resizeSection(RecipientColumn.ROLE, 88)
        header.resizeSection(RecipientColumn.NOTE, 130)
        return table

    def _build_select_button(self) -> QPushButton:
        button = QPushButton("Select", self)
        button.setObjectName("compose-select")
        menu = QMenu(button)
        m = notify.Mark

        def add(text: str, **kw: Any) -> QAction:
            action = menu.addAction(text)
            action.triggered.connect(lambda: self.recipients.select(**kw))
            return action

        add("All", on=True, marks=(m.OK, m.ALREADY_SENT))
        add("None", on=False)
        menu.addAction("Default (everyone new)", self.recipients.select_default)
        menu.addSeparator()
        add("All Adjudicators", on=True, role="adjudicator", marks=(m.OK, m.ALREADY_SENT))
        add("No Adjudicators", on=False, role="adjudicator")
        add("All Speakers", on=True, role="speaker", marks=(m.OK, m.ALREADY_SENT))
        add("No Speakers", on=False, role="speaker")
        menu.addSeparator()
        add("Include Those Already Sent", on=True, marks=(m.ALREADY_SENT,))
        add("Include Flagged Addresses", on=True, marks=(m.FLAGGED,))
        button.setMenu(menu)
        self.select_menu = menu
        return button

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Notification:", self))
        top.addWidget(self.event)
        top.addSpacing(12)
        top.addWidget(QLabel("Round:", self))
        top.addWidget(self.round)
        top.addStretch(1)
        top.addWidget(self.banner)

        left = QWidget(self)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(6)
        tools = QHBoxLayout()
        tools.addWidget(self.search, 1)
        tools.addWidget(self.select_button)
        ll.addLayout(tools)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.count_label)

        right = QSplitter(Qt.Orientation.Vertical, self)
        right.setChildrenCollapsible(False)
        right.addWidget(self.editor)
        right.addWidget(self.preview)
        right.setSizes([360, 300])

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([620, 640])

        buttons = QHBoxLayout()
        buttons.addWidget(self.restore_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.send_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.problems_strip)
        layout.addWidget(self.notice)
        layout.addWidget(self.progress_row)
        layout.addLayout(buttons)

    # -- planning --------------------------------------------------------------------------------
    def current_event(self) -> tuple[Event, Audience | None]:
        data = self.event.currentData()
        return data if data else (Event.DRAW, Audience.ALL)

    def replan(self) -> None:
        """Recompute the recipients for the chosen event and round (in a worker thread)."""
        if self.sending:
            return
        event, audience = self.current_event()
        round_seq = self.round.currentData()
        self.plan = None
        self.send_button.setEnabled(False)
        self.count_label.setText("Finding the recipients…")

        async def work() -> Any:
            try:
                return await asyncio.to_thread(
                    notify.plan,
                    self._ctx,
                    self.tournament.slug,
                    event,
                    round_seq=round_seq,
                    audience=audience,
                )
            except TabmailError as exc:  # no draw yet, no ballots...: said inline, not in a dialog
                return exc

        run_op(self, work, title="Finding the recipients", on_success=self._on_plan_ready)

    def _on_plan_ready(self, result: Any) -> None:
        if isinstance(result, TabmailError):
            self.plan = None
            self.recipients.set_recipients([], [])
            self.notice.show_message(str(result), Tone.WARNING)
            self.preview.show_unavailable("", "Nothing to preview.")
            self._update_counts()
            self.plan_loaded.emit()
            return
        self.plan = result
        self.notice.clear_message()
        self.recipients.set_recipients(result.recipients, result.default_selection())
        event, audience = self.current_event()
        self.editor.set_variables(preview_variables(event))
        if not self.editor.edited:
            self.editor.set_templates(default_templates(event, audience))
        self.restore_button.setEnabled(self.editor.edited)
        self.update_preview()
        self.plan_loaded.emit()

    def _restore_defaults(self) -> None:
        self.editor.set_templates(default_templates(*self.current_event()))
        self.restore_button.setEnabled(False)

    # -- preview and problems ---------------------------------------------------------------------
    def _on_editor_changed(self) -> None:
        self.restore_button.setEnabled(self.editor.edited)
        self._preview_timer.start()

    def preview_recipient(self) -> notify.PlannedRecipient | None:
        current = self.recipients_proxy.mapToSource(self.table.currentIndex())
        if current.isValid():
            return self.recipients.recipient(current.row())
        chosen = self.recipients.selected_recipients()
        if chosen:
            return chosen[0]
        rows = self.recipients.recipients
        return rows[0] if rows else None

    def update_preview(self) -> None:
        """Check the syntax, then render for the previewed recipient; show problems inline."""
        self._preview_timer.stop()
        templates = self.editor.templates()
        problems = check_syntax(templates)
        who = self.preview_recipient()
        if not problems and who is not None and self.plan is not None:
            try:
                parts = render_for(templates, who.recipient, tournament_name=self.plan.tournament.name)
            except TemplateRenderError as exc:
                problems = exc.problems
            else:
                self.preview.show_parts(
                    f"{who.recipient.name} <{who.recipient.address or 'no address'}>", parts
                )
        elif who is None:
            self.preview.show_unavailable("", "No recipient to preview.")
        self.show_problems(problems, templates)
        if problems:
            self.preview.show_unavailable(
                who.recipient.name if who else "", "Fix the template problems below to see the preview."
            )
        self._update_send_button()
        self.preview_updated.emit()

    def show_problems(self, problems: list[Any], templates: Templates) -> None:
        self.problems = list(problems)
        self.editor.mark_problems(self.problems)
        if not problems:
            self.problems_strip.clear_message()
            return
        lines = describe_problems(self.problems, templates)
        n = len(self.problems)
        head = f"{n} template problem{'s' if n != 1 else ''}: nothing can be sent until {'they are' if n != 1 else 'it is'} fixed."
        self.problems_strip.show_message(head + "\n• " + "\n• ".join(lines), Tone.BAD)

    def _update_counts(self) -> None:
        m = notify.Mark
        r = self.recipients
        selected = r.selected_count()
        parts = [f"{selected} of {r.rowCount()} ticked"]
        for mark, words in (
            (m.ALREADY_SENT, "already sent"),
            (m.FLAGGED, "flagged as bouncing"),
            (m.NO_ADDRESS, "without an address"),
            (m.INVALID, "with an invalid address"),
        ):
            if n := r.count(mark):
                parts.append(f"{n} {words}")
        self.count_label.setText(" · ".join(parts))
        self._update_send_button()

    def _update_send_button(self) -> None:
        n = self.recipients.selected_count()
        self.send_button.setText(f"Send {n} Email{'s' if n != 1 else ''}…" if n else "Send…")
        self.send_button.setEnabled(
            not self.sending and self.plan is not None and n > 0 and not self.problems
        )

    # -- sending ---------------------------------------------------------------------------------
    def send(self) -> None:
        """Check every ticked recipient, then ask for confirmation (a window-modal box)."""
        if self.plan is None or self.sending:
            return
        plan = self.plan
        templates = self.editor.templates()
        chosen = [p.recipient for p in self.recipients.selected_recipients()]

        async def validate() -> Any:
            return await asyncio.to_thread(
                render_all, templates, chosen, tournament_name=plan.tournament.name
            )

        def checked(result: Any) -> None:
            _rendered, problems = result
            if problems:
                self.show_problems(problems, templates)
                self._update_send_button()
                return
            self._confirm(len(chosen), templates)

        run_op(self, validate, action=self.send_button, title="Checking the templates", on_success=checked)

    def _confirm(self, count: int, templates: Templates) -> None:
        phrase = backend_phrase(self._settings)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Send notifications",
            f"Send {count} email{'s' if count != 1 else ''} {phrase}?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("confirm-send")
        details = [f"{self.event.currentText()} · {self.round.currentText()} · {self.tournament.name}"]
        reroute = str(self._settings.get("test_mode.reroute_to") or "").strip()
        if reroute:
            details.append(f"TEST MODE: all {count} go to {reroute}, not to the recipients.")
        details.append("This cannot be undone once a message has been handed over.")
        box.setInformativeText("\n".join(details))
        go = box.addButton("Send", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(go)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _code: self._on_confirmed(box.clickedButton() is go, templates))
        self.confirm_box = box
        box.open()

    def _on_confirmed(self, yes: bool, templates: Templates) -> None:
        self.confirm_box = None
        if yes:
            self._enqueue(templates)

    def _enqueue(self, templates: Templates) -> None:
        plan, keys = self.plan, self.recipients.selected_keys()
        assert plan is not None

        async def work() -> Any:
            try:
                return await asyncio.to_thread(
                    notify.enqueue, self._ctx, plan, selected=keys, templates=templates
                )
            except TabmailError as exc:  # a render problem or nothing to send: inline, nothing queued
                return exc

        run_op(
            self, work, action=self.send_button, title="Queueing the messages", on_success=self._on_enqueued
        )

    def _on_enqueued(self, result: Any) -> None:
        if isinstance(result, TemplateRenderError):
            self.show_problems(result.problems, self.editor.templates())
            self._update_send_button()
            return
        if isinstance(result, TabmailError):
            self.notice.show_message(str(result), Tone.BAD)
            return
        self.batch_id, self.queued = result.batch_id, result.queued
        self.final.clear()
        self.retrying.clear()
        self.sending = True
        for w in (self.event, self.round, self.table, self.select_button, self.restore_button, self.search):
            w.setEnabled(False)
        self.editor.set_read_only(True)
        self.send_button.hide()
        self.progress.setRange(0, max(1, self.queued))
        self.progress.setValue(0)
        self.progress_row.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        note = f"Queued {self.queued} message{'s' if self.queued != 1 else ''}."
        if result.not_sendable:
            note += f" Not sent (no usable address): {', '.join(result.not_sendable)}."
        note += " Sending continues in the background if you close this window."
        self.notice.show_message(note, Tone.NEUTRAL)
        self._update_progress()
        self.batch_queued.emit(self.batch_id)
        if self.worker is not None:
            self.worker.run_outbox(self.batch_id)

    def _on_bridge_outbox_progressed(self, batch_id: int, done: int, total: int) -> None:
        if self.sending and batch_id == self.batch_id and total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))

    def _on_bridge_message_state_changed(self, message_id: str, batch_id: int, state: str) -> None:
        if batch_id != self.batch_id or self.batch_id is None:
            return
        if state in FINAL:
            self.final[message_id] = state
            self.retrying.discard(message_id)
        elif state == MessageState.RETRYING.value:
            self.retrying.add(message_id)
        self._update_progress()

    def _update_progress(self) -> None:
        outcome = Counter(self.final.values())
        done = len(self.final)
        self.progress.setValue(max(self.progress.value(), min(done, self.progress.maximum())))
        words = [f"{outcome[s]} {s}" for s in ("sent", "failed", "uncertain", "skipped") if outcome[s]]
        if self.retrying:
            words.append(f"{len(self.retrying)} waiting to retry")
        if done >= self.queued and self.queued:
            self._finish()
            return
        self.progress_label.setText(
            f"Sending: {done} of {self.queued} done" + (f" · {', '.join(words)}" if words else "")
        )

    def _finish(self, stopped: str | None = None) -> None:
        outcome = Counter(self.final.values())
        words = [f"{outcome[s]} {s}" for s in ("sent", "failed", "uncertain", "skipped") if outcome[s]]
        left = self.queued - len(self.final)
        if stopped:
            text = f"Stopped: {stopped}"
        elif left:
            text = f"{left} not sent yet" + (" (retrying in the background)" if self.retrying else "")
        else:
            text = "Done"
        self.progress_label.setText(text + (f" · {', '.join(words)}" if words else ""))
        self.progress.setValue(min(len(self.final), self.progress.maximum()))
        if not left or stopped:
            self.cancel_button.hide()
        bad = outcome["failed"] + outcome["uncertain"]
        if not left and bad:
            self.notice.show_message(
                f"{bad} message{'s' if bad != 1 else ''} did not go out cleanly: they are highlighted in "
                "the round view, where addresses can be corrected and resent.",
                Tone.BAD,
            )
        self.close_button.setDefault(True)

    def _on_worker_outbox_finished(self, report: Any) -> None:
        if self.sending and self.batch_id is not None and len(self.final) < self.queued:
            self._finish()

    def _on_worker_outbox_failed(self, why: str) -> None:
        if self.sending and self.batch_id is not None:
            self.notice.show_message(
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

    def current_recipient_index(self, key: str) -> QModelIndex:
        row = self.recipients.row_of(key)
        return (
            self.recipients_proxy.mapFromSource(self.recipients.index(row, 0))
            if row is not None
            else QModelIndex()
        )

    def recipient_keys_with_status(self, status: str) -> list[str]:
        return [
            self.recipients.index(i, 0).data(Roles.ID)
            for i in range(self.recipients.rowCount())
            if self.recipients.index(i, 0).data(Roles.STATUS) == status
        ]
