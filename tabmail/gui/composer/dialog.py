"""The compose dialog: choose what and to whom, edit and preview the template, send, watch.

Every template is checked as the director types (syntax and a render for the previewed
recipient after a short pause), and for every ticked recipient before the confirmation; the
enqueue itself re-validates (``notify.enqueue`` queues nothing when any recipient fails). The
blocking steps (planning, previewing, rendering everyone, enqueueing) run in a worker thread
through ``run_op``, each render with the per-message time budget of tabmail.compose.templates; sending is the background worker's outbox, whose progress this dialog follows until
it is done or cancelled. Closing the dialog never stops a send.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QDateTime, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tabmail.compose.recipients import Recipient
from tabmail.compose.templates import (
    RENDER_SECONDS,
    CompiledTemplates,
    RenderedParts,
    TemplateProblem,
    TemplateRenderError,
    default_templates,
    preview_variables,
    render_all,
)
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer.editor import TemplateEditor, describe_problems
from tabmail.gui.composer.preview import PreviewPane
from tabmail.gui.composer.recipients import (
    RecipientColumn,
    RecipientsModel,
    RecipientsProxy,
    selection_button,
)
from tabmail.gui.composer.sending import SendProgress, confirm_send_box, practice_label
from tabmail.gui.run_op import Op, run_op
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip, SearchField, muted_label
from tabmail.services import notify
from tabmail.services.context import AppContext

EVENTS: list[tuple[str, Event, Audience | None]] = [
    ("Draw release: adjudicators and teams", Event.DRAW, Audience.ALL),
    ("Draw release: adjudicators", Event.DRAW, Audience.ADJUDICATORS),
    ("Draw release: teams", Event.DRAW, Audience.TEAMS),
    ("Ballot receipts", Event.BALLOT, None),
    ("Private URLs", Event.URLS, None),
    ("Motion release", Event.MOTIONS, None),
    ("Team points / wins", Event.POINTS, None),
    ("Registration: teams", Event.REGISTRATION, Audience.TEAMS),
    ("Registration: adjudicators", Event.REGISTRATION, Audience.ADJUDICATORS),
    ("Custom message", Event.CUSTOM, Audience.ALL),
]
PREVIEW_DELAY_MS = 300


def _preview(
    templates: Templates, recipient: Recipient | None, tournament_name: str, time_limit: float
) -> tuple[RenderedParts | None, list[TemplateProblem]]:
    """In a worker thread: the syntax problems, else the render for ``recipient`` (if any)."""
    try:
        compiled = CompiledTemplates(templates, time_limit=time_limit)
        if recipient is None:
            return None, []
        return compiled.render(recipient, tournament_name=tournament_name), []
    except TemplateRenderError as exc:
        return None, exc.problems


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
        kind: tuple[Event, Audience | None] | None = None,
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
        self.sending = False
        self.confirm_box: QMessageBox | None = None
        self._settings = ctx.settings.all()
        self.preview_time_limit = RENDER_SECONDS
        self._preview_op: Op | None = None
        self._preview_stale = False
        self._scheduled: datetime | None = None
        self.unreleased_ok: int | None = None  # the round whose unreleased motions may go out
        self.unreleased_box: QMessageBox | None = None

        self.event = QComboBox(self)
        self.event.setObjectName("compose-event")
        for label, event, audience in EVENTS:
            self.event.addItem(label, (event, audience))
        if kind is not None:
            self.event.setCurrentIndex(self._kind_index(*kind))
        self.changes_only = QCheckBox("Only people whose assignment changed", self)
        self.changes_only.setObjectName("compose-changes-only")
        self.changes_only.setToolTip(
            "After a corrected draw: only those whose room, side, panel, opponents or position changed "
            "since their last email of this round's draw, and a notice to those no longer in it"
        )
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
        self.practice_banner = practice_label(self._settings, self._theme, self)

        self.recipients = RecipientsModel(self._theme, self)
        self.recipients_proxy = RecipientsProxy(self)
        self.recipients_proxy.setSourceModel(self.recipients)
        self.table = self._build_table()
        self.search = SearchField("Search recipients", self, self._theme)
        self.search.textChanged.connect(self.recipients_proxy.setFilterFixedString)
        self.select_button = selection_button(self.recipients, self)
        self.select_menu = self.select_button.menu()
        self.count_label = muted_label("", self)
        self.count_label.setObjectName("compose-count")
        self.count_label.setWordWrap(True)

        self.editor = TemplateEditor(self._theme, self)
        self.preview = PreviewPane(self)
        self.problems_strip = MessageStrip(self, self._theme)
        self.problems_strip.setObjectName("compose-problems")
        self.notice = MessageStrip(self, self._theme)
        self.notice.setObjectName("compose-notice")

        self.send_progress = SendProgress(ctx, bridge, worker, self)
        self.send_progress.notice.connect(self.notice.show_message)
        self.send_progress.finished.connect(lambda: self.close_button.setDefault(True))

        self.restore_button = QPushButton("Restore Default Template", self)
        self.restore_button.clicked.connect(self.ask_restore_defaults)
        self.save_template_button = QPushButton("Keep for This Tournament", self)
        self.save_template_button.setToolTip(
            "Use these templates for every later message of this kind in this tournament"
        )
        self.save_template_button.clicked.connect(self.save_templates_for_tournament)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        self.send_later = QCheckBox("Send at", self)
        self.send_later.setObjectName("compose-send-later")
        self.send_later.setToolTip(
            "Queue now, send at this time (the open tabmail sends it; cancel it from the batch until then)"
        )
        self.send_at = QDateTimeEdit(self)
        self.send_at.setObjectName("compose-send-at")
        self.send_at.setCalendarPopup(True)
        self.send_at.setDisplayFormat("ddd d MMM HH:mm")
        self.send_at.setDateTime(QDateTime.currentDateTime().addSecs(3600))
        self.send_at.setEnabled(False)
        self.send_later.toggled.connect(self.send_at.setEnabled)
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
        self.changes_only.toggled.connect(lambda _: self.replan())
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

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Notification:", self))
        top.addWidget(self.event)
        top.addSpacing(12)
        top.addWidget(QLabel("Round:", self))
        top.addWidget(self.round)
        top.addSpacing(12)
        top.addWidget(self.changes_only)
        top.addStretch(1)
        top.addWidget(self.banner)
        top.addWidget(self.practice_banner)

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
        buttons.addWidget(self.save_template_button)
        buttons.addStretch(1)
        buttons.addWidget(self.send_later)
        buttons.addWidget(self.send_at)
        buttons.addSpacing(12)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.send_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.problems_strip)
        layout.addWidget(self.notice)
        layout.addWidget(self.send_progress)
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
        per_round = event.per_round or event is Event.CUSTOM
        self.round.setEnabled(per_round)  # private URLs and registrations are tournament-wide
        round_seq = self.round.currentData() if per_round else None
        allow_unreleased = round_seq is not None and self.unreleased_ok == round_seq
        self.changes_only.setEnabled(event is Event.DRAW)
        changes_only = event is Event.DRAW and self.changes_only.isChecked()
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
                    allow_unreleased=allow_unreleased,
                    changes_only=changes_only,
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
            if isinstance(result, notify.UnreleasedMotions):
                self.ask_unreleased(self.round.currentData())
            self.plan_loaded.emit()
            return
        self.plan = result
        self.notice.clear_message()
        self.recipients.set_recipients(result.recipients, result.default_selection())
        event, audience = self.current_event()
        self.editor.set_variables(preview_variables(event))
        if not self.editor.edited:
            # the tournament's own templates when the director kept some, else the shipped ones
            self.editor.set_templates(result.templates)
        self.restore_button.setEnabled(
            self.editor.edited or result.templates != default_templates(event, audience)
        )
        self.update_preview()
        self.plan_loaded.emit()

    def hideEvent(self, event: QHideEvent) -> None:
        self._preview_timer.stop()  # no preview of a closed composer
        super().hideEvent(event)

    def ask_unreleased(self, round_seq: int) -> QMessageBox:
        """The site has not released this round's motions: sending them needs a clear yes."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Motions not released",
            f"The motions of {self.round.currentText()} are not released on the site yet. "
            "Show them to the recipients anyway? Everyone ticked will read them as soon as they are sent.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("confirm-unreleased-motions")
        go = box.addButton("Show the Motions", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_code: int) -> None:
            self.unreleased_box = None
            if box.clickedButton() is go:
                self.unreleased_ok = round_seq
                self.replan()

        box.finished.connect(answered)
        self.unreleased_box = box
        box.open()
        return box

    def select_kind(self, event: Event, audience: Audience | None) -> None:
        """Choose the kind of notification (e.g. from "Send Private URLs…")."""
        if not self.sending:
            self.event.setCurrentIndex(self._kind_index(event, audience))

    def _kind_index(self, event: Event, audience: Audience | None) -> int:
        for i in range(self.event.count()):
            if self.event.itemData(i) == (event, audience):
                return i
        return max(0, next((i for i in range(self.event.count()) if self.event.itemData(i)[0] is event), 0))

    def ask_restore_defaults(self) -> QMessageBox:
        """Restoring throws away the edited templates (and the tournament's kept ones): ask first."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Restore default template",
            "Replace these templates with the shipped ones? Your edits here, and the templates kept "
            f"for {self.tournament.name} for this kind of message, are discarded.",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("confirm-restore-defaults")
        restore = box.addButton("Restore Default", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(
            lambda _code: self._restore_defaults() if box.clickedButton() is restore else None
        )
        box.open()
        return box

    def _restore_defaults(self) -> None:
        """Back to the shipped templates, here and for the tournament's later messages."""
        event, audience = self.current_event()
        notify.save_templates(self._ctx, self.tournament.id, event, audience, None)
        self.editor.set_templates(default_templates(event, audience))
        self.restore_button.setEnabled(False)
        self.notice.show_message("The shipped templates are used again for this kind of message.", Tone.GOOD)

    def save_templates_for_tournament(self) -> None:
        event, audience = self.current_event()
        try:
            notify.save_templates(self._ctx, self.tournament.id, event, audience, self.editor.templates())
        except TemplateRenderError as exc:
            self.editor.mark_problems(exc.problems)
            self.notice.show_message(str(exc), Tone.BAD)
            return
        self.notice.show_message(
            f"These templates are now {self.tournament.name}'s default for this kind of message.", Tone.GOOD
        )

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
        """Check the syntax and render for the previewed recipient in a worker thread (with the
        same time budget as sending), then show the message or the problems inline.

        One preview renders at a time: a change while one runs marks it stale, and when it
        finishes its result is dropped and the latest templates are previewed instead."""
        self._preview_timer.stop()
        if not self.isVisible():  # closed: nothing to preview (a pending edit's timer may fire late)
            return
        if self._preview_op is not None and self._preview_op.is_running():
            self._preview_stale = True
            return
        self._preview_stale = False
        templates = self.editor.templates()
        who = self.preview_recipient()
        recipient = who.recipient if who is not None and self.plan is not None else None
        name = self.plan.tournament.name if self.plan is not None else ""
        limit = self.preview_time_limit

        async def work() -> Any:
            return await asyncio.to_thread(_preview, templates, recipient, name, limit)

        self._preview_op = run_op(
            self, work, title="Previewing", on_success=lambda result: self._on_preview(result, templates, who)
        )

    def _on_preview(self, result: Any, templates: Templates, who: notify.PlannedRecipient | None) -> None:
        self._preview_op = None
        if self._preview_stale:  # the templates or the recipient changed meanwhile
            self.update_preview()
            return
        if self._preview_timer.isActive():  # edited meanwhile: the timer previews the new text
            return
        parts, problems = result
        if parts is not None and who is not None:
            self.preview.show_parts(f"{who.recipient.name} <{who.recipient.address or 'no address'}>", parts)
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
            (m.NO_KEY, "without a private URL"),
            (m.UNCHANGED, "unchanged since the previous email"),
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
        scope = self.round.currentText() if self.round.isEnabled() else "whole tournament"
        what = f"{self.event.currentText()} · {scope} · {self.tournament.name}"
        box, go = confirm_send_box(self, count, self._settings, what)
        box.finished.connect(lambda _code: self._on_confirmed(box.clickedButton() is go, templates))
        self.confirm_box = box
        box.open()

    def _on_confirmed(self, yes: bool, templates: Templates) -> None:
        self.confirm_box = None
        if yes:
            self._enqueue(templates)

    def scheduled_at(self) -> datetime | None:
        """The chosen release time, or None to send now."""
        if not self.send_later.isChecked():
            return None
        return self.send_at.dateTime().toPython().astimezone(UTC)  # type: ignore[union-attr]

    def _enqueue(self, templates: Templates) -> None:
        plan, keys = self.plan, self.recipients.selected_keys()
        assert plan is not None
        at = self.scheduled_at()
        if at is not None and at <= datetime.now(UTC):
            self.notice.show_message("The chosen sending time has passed: choose a later one.", Tone.BAD)
            return
        self._scheduled = at

        async def work() -> Any:
            try:
                return await asyncio.to_thread(
                    notify.enqueue, self._ctx, plan, selected=keys, templates=templates, scheduled_at=at
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
        self.sending = True
        for w in (
            self.event,
            self.round,
            self.changes_only,
            self.table,
            self.select_button,
            self.restore_button,
            self.save_template_button,
            self.search,
        ):
            w.setEnabled(False)
        self.editor.set_read_only(True)
        self.send_button.hide()
        self.send_later.setEnabled(False)
        self.send_at.setEnabled(False)
        if self._scheduled is not None:
            local = self._scheduled.astimezone().strftime("%H:%M on %a %d %b")
            self.notice.show_message(
                f"Scheduled {result.queued} message{'s' if result.queued != 1 else ''} for {local}. "
                "The open tabmail sends them then (or `tabmail outbox run --wait`); until then you "
                "can cancel the batch from its panel in the round view.",
                Tone.NEUTRAL,
            )
            for batch_id in result.batch_ids or (result.batch_id,):
                self.batch_queued.emit(batch_id)
            return
        note = f"Queued {result.queued} message{'s' if result.queued != 1 else ''}."
        if result.not_sendable:
            note += f" Not sent (no usable address): {', '.join(result.not_sendable)}."
        note += " Sending continues in the background if you close this window."
        self.notice.show_message(note, Tone.NEUTRAL)
        self.batch_queued.emit(result.batch_id)
        self.send_progress.start(result.batch_id, result.queued)
