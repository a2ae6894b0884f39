"""The compose dialog: choose what and to whom, edit and preview the template, send, watch.

Every template is checked as the director types (syntax and a render for the previewed
recipient after a short pause), and for every ticked recipient before the confirmation; the
enqueue itself re-validates (``notify.enqueue`` queues nothing when any recipient fails). The
blocking steps (planning, previewing, rendering everyone, enqueueing) run in a worker thread
through ``run_op``, each render with the per-message time budget of tabmail.compose.templates;
sending is the background worker's outbox, whose progress this dialog follows until it is done
or cancelled. Closing the dialog never stops a send.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tabmail.compose.templates import (
    RENDER_SECONDS,
    TemplateProblem,
    TemplateRenderError,
    render_all,
)
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer.editor import describe_problems
from tabmail.gui.composer.options import KindBar, ScheduleOptions
from tabmail.gui.composer.preview import PreviewPane, render_preview
from tabmail.gui.composer.recipient_panel import RecipientPanel
from tabmail.gui.composer.sending import SendProgress, confirm_send_box
from tabmail.gui.composer.template_panel import TemplatePanel, gets_removal
from tabmail.gui.run_op import Op, run_op
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.widgets import MessageStrip
from tabmail.services import notify
from tabmail.services.context import AppContext

PREVIEW_DELAY_MS = 300


class ComposeDialog(QDialog):
    """Owns its parts: the kind bar (what, which round, changes only), the recipient panel, the
    template panel (editor, restore and keep), the preview, the schedule options and the send
    progress; this class plans, previews and sends."""

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

        self.rounds = ctx.tournaments.rounds(tournament.id)
        self.kind_bar = KindBar(self.rounds, rnd, kind, self._settings, self._theme, self)
        self.event, self.round = self.kind_bar.event, self.kind_bar.round
        self.changes_only, self.banner = self.kind_bar.changes_only, self.kind_bar.banner
        self.practice_banner = self.kind_bar.practice_banner

        self.recipient_panel = RecipientPanel(self._theme, self)
        self.recipients, self.recipients_proxy = self.recipient_panel.model, self.recipient_panel.proxy
        self.table, self.count_label = self.recipient_panel.table, self.recipient_panel.count_label

        self.template_panel = TemplatePanel(ctx, tournament, self._theme, self)
        self.editor = self.template_panel.editor
        self.restore_button = self.template_panel.restore_button
        self.preview = PreviewPane(self)
        self.problems_strip = MessageStrip(self, self._theme)
        self.problems_strip.setObjectName("compose-problems")
        self.notice = MessageStrip(self, self._theme)
        self.notice.setObjectName("compose-notice")
        self.template_panel.notice.connect(self.notice.show_message)

        self.send_progress = SendProgress(ctx, bridge, worker, self)
        self.send_progress.notice.connect(self.notice.show_message)
        self.send_progress.finished.connect(lambda: self.close_button.setDefault(True))

        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        self.schedule = ScheduleOptions(self)
        self.send_later, self.send_at = self.schedule.send_later, self.schedule.send_at
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
        self.template_panel.changed.connect(self._preview_timer.start)
        self.template_panel.switched.connect(self._on_template_switched)
        self.recipients.selection_changed.connect(self._update_counts)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.update_preview())
        self.kind_bar.changed.connect(self.replan)
        self.resize(1280, 800)
        self.replan()

    # -- building -------------------------------------------------------------------------------
    def _layout(self) -> None:
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.setChildrenCollapsible(False)
        right.addWidget(self.template_panel)
        right.addWidget(self.preview)
        right.setSizes([360, 300])

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self.recipient_panel)
        split.addWidget(right)
        split.setSizes([620, 640])

        buttons = QHBoxLayout()
        buttons.addWidget(self.restore_button)
        buttons.addWidget(self.template_panel.save_button)
        buttons.addStretch(1)
        buttons.addWidget(self.schedule)
        buttons.addSpacing(12)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.send_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        layout.addWidget(self.kind_bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.problems_strip)
        layout.addWidget(self.notice)
        layout.addWidget(self.send_progress)
        layout.addLayout(buttons)

    # -- planning --------------------------------------------------------------------------------
    def current_event(self) -> tuple[Event, Audience | None]:
        return self.kind_bar.current_event()

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
        changes_only = self.kind_bar.changes_only_wanted()
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
        # the tournament's own templates when the director kept some, else the shipped ones
        self.template_panel.load(*self.current_event(), result.templates, result.removal_templates)
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
            self.event.setCurrentIndex(self.kind_bar.kind_index(event, audience))

    def ask_restore_defaults(self) -> QMessageBox:
        return self.template_panel.ask_restore_defaults()

    def save_templates_for_tournament(self) -> None:
        self.template_panel.save_for_tournament()

    # -- preview and problems ---------------------------------------------------------------------
    def preview_recipient(self) -> notify.PlannedRecipient | None:
        return self.recipient_panel.current()

    def _on_template_switched(self, removal: bool) -> None:
        """The editor shows the other template (changes-only): preview someone who gets it."""
        who = self.preview_recipient()
        if who is None or gets_removal(who) != removal:
            rows = self.recipients.recipients
            row = next((i for i, p in enumerate(rows) if gets_removal(p) == removal), None)
            if row is not None:
                # currentRowChanged previews them
                self.table.setCurrentIndex(self.recipients_proxy.mapFromSource(self.recipients.index(row, 0)))
                return
        self.update_preview()

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
        who = self.preview_recipient()
        panel = self.template_panel
        other: notify.PlannedRecipient | None = None  # gets the other template (changes-only)
        if panel.removal() is not None and who is not None and gets_removal(who) != panel.removal_shown:
            other, who = who, None
        templates = panel.for_removed(panel.removal_shown if who is None else gets_removal(who))
        recipient = who.recipient if who is not None and self.plan is not None else None
        name = self.plan.tournament.name if self.plan is not None else ""
        limit = self.preview_time_limit

        async def work() -> Any:
            return await asyncio.to_thread(render_preview, templates, recipient, name, limit)

        self._preview_op = run_op(
            self,
            work,
            title="Previewing",
            on_success=lambda result: self._on_preview(result, templates, who, other),
        )

    def _on_preview(
        self,
        result: Any,
        templates: Templates,
        who: notify.PlannedRecipient | None,
        other: notify.PlannedRecipient | None = None,
    ) -> None:
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
            self.preview.show_unavailable(
                "", self.template_panel.why_no_preview(other, self.recipients.recipients)
            )
        self.show_problems(problems, templates)
        if problems:
            self.preview.show_unavailable(
                who.recipient.name if who else "", "Fix the template problems below to see the preview."
            )
        self._update_send_button()
        self.preview_updated.emit()

    def show_problems(self, problems: list[Any], templates: Templates) -> None:
        """Problems of ``templates``: marked in the editor when it shows them."""
        self.problems = list(problems)
        shown = templates == self.editor.templates()
        self.editor.mark_problems(self.problems if shown else [])
        if not problems:
            self.problems_strip.clear_message()
            return
        lines = describe_problems(self.problems, templates)
        n = len(self.problems)
        head = f"{n} template problem{'s' if n != 1 else ''}: nothing can be sent until {'they are' if n != 1 else 'it is'} fixed."
        if not shown:
            head += " They are in the other template (choose it under Template:)."
        self.problems_strip.show_message(head + "\n• " + "\n• ".join(lines), Tone.BAD)

    def _update_counts(self) -> None:
        self.recipient_panel.update_counts()
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
        templates, removal = self.template_panel.templates(), self.template_panel.removal()
        chosen = self.recipients.selected_recipients()
        # Changes-only: those no longer in the draw get the removal notice.
        groups = [
            (False, templates, [p.recipient for p in chosen if not gets_removal(p)]),
            (True, removal or templates, [p.recipient for p in chosen if gets_removal(p)]),
        ]

        def check_all() -> list[tuple[bool, Templates, list[TemplateProblem]]]:
            found = []
            for which, tpl, recipients in groups:
                if recipients:
                    _rendered, problems = render_all(tpl, recipients, tournament_name=plan.tournament.name)
                    found.append((which, tpl, problems))
            return found

        async def validate() -> Any:
            return await asyncio.to_thread(check_all)

        def checked(result: Any) -> None:
            for which, tpl, problems in result:
                if problems:
                    if removal is not None and which != self.template_panel.removal_shown:
                        self.template_panel.show_removal(which)  # show the template to fix
                    self.show_problems(problems, tpl)
                    self._update_send_button()
                    return
            self._confirm(len(chosen), templates, removal)

        run_op(self, validate, action=self.send_button, title="Checking the templates", on_success=checked)

    def _confirm(self, count: int, templates: Templates, removal: Templates | None) -> None:
        what = f"{self.event.currentText()} · {self.kind_bar.scope()} · {self.tournament.name}"
        box, go = confirm_send_box(self, count, self._settings, what)
        box.finished.connect(lambda _code: self._on_confirmed(box.clickedButton() is go, templates, removal))
        self.confirm_box = box
        box.open()

    def _on_confirmed(self, yes: bool, templates: Templates, removal: Templates | None) -> None:
        self.confirm_box = None
        if yes:
            self._enqueue(templates, removal)

    def scheduled_at(self) -> datetime | None:
        """The chosen release time, or None to send now."""
        return self.schedule.scheduled_at()

    def _enqueue(self, templates: Templates, removal: Templates | None = None) -> None:
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
                    notify.enqueue,
                    self._ctx,
                    plan,
                    selected=keys,
                    templates=templates,
                    removal=removal,
                    scheduled_at=at,
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
        self.kind_bar.set_enabled(False)
        self.recipient_panel.set_enabled(False)
        self.template_panel.set_read_only(True)
        self.send_button.hide()
        self.schedule.freeze()
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
