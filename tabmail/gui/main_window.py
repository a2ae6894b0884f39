"""The main window: tournaments and rounds on the left, the selected page in the centre.

The window owns everything it shows and runs: the participants page, the round view
(``RoundMessagesPage``), the composer (Ctrl+N) and the app's one ``BackgroundWorker`` (outbox
and poller). ``start_background()`` resumes the outbox and starts polling once the qasync loop
is the current loop; closing the window stops both. Settings saved anywhere reach the status
bar and the worker through the bridge's ``settings_changed``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QGuiApplication, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tabmail import __version__
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, Audience, Event
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.appearance import appearance_for
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.db_link import DatabaseLink
from tabmail.gui.export import ExportActions
from tabmail.gui.navigator import (
    ALL_TOURNAMENTS,
    PARTICIPANTS,
    PROBLEMS,
    ROUND,
    TOURNAMENT,
    TOURNAMENT_WIDE,
    NavigatorPanel,
)
from tabmail.gui.participants import ParticipantsPage
from tabmail.gui.problems import ProblemsHub, ProblemsPage
from tabmail.gui.quitting import plural, unsent_question
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.run_op import cancel_ops, run_op
from tabmail.gui.session import SessionMemory
from tabmail.gui.status_bar import StatusWidgets
from tabmail.gui.theme import Theme
from tabmail.gui.unread_replies import UnreadRepliesHub
from tabmail.gui.widgets import heading_label, muted_label
from tabmail.logs import log_dir
from tabmail.services import poll_state as tracking  # the SendGrid client loads with the first check
from tabmail.services.context import AppContext
from tabmail.services.election import SENDGRID, LastCheck
from tabmail.services.machine import machine_name
from tabmail.services.practice import forget_practice_flags

if TYPE_CHECKING:  # the dialogs (templates, importers, backend probes) load when first opened
    from tabmail.gui.composer import ComposeDialog
    from tabmail.gui.importer import ImportDialog
    from tabmail.gui.inbox import UnmatchedMailDialog
    from tabmail.gui.settings import SettingsDialog

log = logging.getLogger(__name__)

GEOMETRY_KEY = "main_window/geometry"
RESUMED_MESSAGE_MS = 30_000
AGE_TICK_MS = 5_000  # how often "12 s ago" in the status bar is brought up to date


class MainWindow(QMainWindow):
    def __init__(
        self,
        ctx: AppContext,
        bridge: EventBridge | None = None,
        qsettings: QSettings | None = None,
        theme: Theme | None = None,
        worker: BackgroundWorker | None = None,
    ) -> None:
        """``worker``: a BackgroundWorker built elsewhere (tests inject clocks); by default the
        window builds the app's one worker itself."""
        super().__init__()
        self.setObjectName("main-window")
        self.ctx = ctx
        self.theme = theme or Theme()
        self.bridge = bridge or EventBridge(ctx.bus, self)
        self._owns_bridge = bridge is None
        self._qsettings = qsettings if qsettings is not None else QSettings()
        self.worker = worker or BackgroundWorker(ctx, parent=self)
        self.composer: ComposeDialog | None = None
        self.unmatched_mail: UnmatchedMailDialog | None = None
        self._glyphs: dict[QAction, str] = {}
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        self.appearance = appearance_for(app)
        self.appearance.apply(str(ctx.settings.get("appearance")))
        self.quit_box: QMessageBox | None = None  # "send later or keep open?", while it is asked
        self._quit_confirmed = False
        self.current_tournament: Tournament | None = None
        self.current_round: Round | None = None
        self._title_base = "tabmail"
        self.undo_stack = QUndoStack(self)  # every address edit and "marked resolved" (Edit → Undo)
        self.setWindowTitle("tabmail")

        self._build_actions()
        self._build_menus_and_toolbar()

        self.navigator = NavigatorPanel(self.theme, self)  # its minimum width fits its node names
        self.navigator.tournament_selected.connect(self._on_navigator_tournament_selected)
        self.navigator.round_selected.connect(self._on_navigator_round_selected)
        self.navigator.tournament_wide_selected.connect(self._on_navigator_tournament_wide_selected)
        self.navigator.problems_selected.connect(self._on_navigator_problems_selected)
        self.navigator.nothing_selected.connect(self._on_navigator_nothing_selected)
        self.navigator.send_urls_requested.connect(self.send_private_urls)
        self.navigator.can_send = not self.ctx.read_only

        self.stack = QStackedWidget(self)
        self.welcome_page = self._build_welcome_page()
        self.participants_page = ParticipantsPage(ctx, self.bridge, self.theme, self)
        self.round_view = RoundMessagesPage(
            ctx, self.bridge, self.theme, self.worker, self.compose_action, self
        )
        self.problems_hub = ProblemsHub(ctx, self.bridge, self.navigator, self, self)
        self.problems_hub.counts_changed.connect(lambda _n: self._apply_title())
        self.replies_hub = UnreadRepliesHub(ctx, self.bridge, self.navigator, self)
        self.replies_hub.counts_changed.connect(lambda _n: self._apply_title())
        self.round_view.unmatched_mail_requested.connect(self.open_unmatched_mail)
        self.problems_page = ProblemsPage(ctx, self.problems_hub, self.theme, self.worker, self)
        self.problems_page.round_requested.connect(self._on_problems_page_round_requested)
        self.problems_page.tournament_wide_requested.connect(self._on_problems_page_tournament_wide_requested)
        for page in (self.welcome_page, self.participants_page, self.round_view, self.problems_page):
            self.stack.addWidget(page)
        for page in (self.participants_page, self.round_view, self.problems_page):
            page.undo_stack = self.undo_stack

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setObjectName("main-splitter")
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.navigator)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([280, 1160])  # room for a round's name and its two badges
        self.setCentralWidget(splitter)

        self.status = StatusWidgets(self.statusBar(), self.theme)
        self.status.update_from_settings(ctx.settings.all())
        self._show_last_poll()
        self.bridge.tournament_imported.connect(self._on_bridge_tournament_imported)
        self.bridge.poll_finished.connect(self._on_bridge_poll_finished)
        self.bridge.settings_changed.connect(self._on_bridge_settings_changed)
        self.bridge.sending_connection_changed.connect(self.status.set_sending)
        self.db_link = DatabaseLink(self)  # the PostgreSQL server lost and found again
        self.worker.poll_started.connect(self._on_worker_poll_started)
        self.worker.inbox_completed.connect(self._on_worker_inbox_completed)
        self.worker.room_checked.connect(self._on_worker_room_checked)
        self._age_timer = QTimer(self)  # "last checked by tabroom-2, 12 s ago" stays current
        self._age_timer.setInterval(AGE_TICK_MS)
        self._age_timer.timeout.connect(self.status.tick)
        self._age_timer.start()
        self.worker.outbox_failed.connect(self._on_worker_outbox_failed)
        self.worker.outbox_waiting.connect(self._on_worker_outbox_waiting)
        self.worker.schedule_overdue.connect(self.ask_overdue)
        self.overdue_box: QMessageBox | None = None
        if ctx.read_only:
            self._enter_read_only()

        self.exporter = ExportActions(self, self.file_menu, before=self.quit_action)
        self._restore_geometry()
        self.refresh()
        self.session = SessionMemory(self, self._qsettings)
        self.session.restore()  # the page, filters and selection of the last session
        self.problems_hub.recount_in_background()  # badges and the title's count follow
        self.replies_hub.recount()

    # -- building -------------------------------------------------------------------------
    def _action(
        self, text: str, shortcut: QKeySequence | str | None, tip: str, glyph: str | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            keys = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)
            tip = f"{tip} ({keys})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        if glyph:
            action.setIcon(self.theme.action_icon(glyph))
            self._glyphs[action] = glyph
        return action

    def _build_actions(self) -> None:
        self.import_action = self._action("&Import…", "Ctrl+I", "Import a tournament", "import")
        self.import_action.triggered.connect(self.open_import_dialog)
        self.compose_action = self._action(
            "&Compose…", "Ctrl+N", "Compose a notification for the selected round", "compose"
        )
        self.compose_action.setEnabled(False)  # until a tournament is selected
        self.compose_action.triggered.connect(lambda: self.open_composer())
        self.send_urls_action = self._action(
            "Send &Private URLs…", None, "Send each participant of the selected tournament their private URL"
        )
        self.send_urls_action.setObjectName("send-private-urls-action")
        self.send_urls_action.setEnabled(False)
        # Available exactly when composing is (a tournament selected, a writable database).
        self.compose_action.changed.connect(
            lambda: self.send_urls_action.setEnabled(self.compose_action.isEnabled())
        )
        self.send_urls_action.triggered.connect(lambda: self.open_composer(kind=(Event.URLS, None)))
        self.unmatched_mail_action = self._action(
            "&Unmatched Mail…",
            None,
            "Replies, bounces and spam reports from the mailbox that matched none of our messages",
        )
        self.unmatched_mail_action.setObjectName("unmatched-mail-action")
        self.unmatched_mail_action.triggered.connect(self.open_unmatched_mail)
        self.poll_action = self._action("&Check Delivery Now", "F5", "Check delivery statuses now", "refresh")
        self.poll_action.setIconText("Check now")
        self.poll_action.triggered.connect(self.poll_now)
        self.settings_action = self._action(
            "&Settings…", "Ctrl+,", "Sending, tracking and test mode", "settings"
        )
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(self.open_settings_dialog)
        self.find_action = self._action("&Find", QKeySequence.StandardKey.Find, "Search the current page")
        self.find_action.triggered.connect(self.focus_search)
        self.quit_action = self._action("&Quit", "Ctrl+Q", "Quit tabmail")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)
        self.about_action = QAction("&About tabmail", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self._on_about_triggered)
        self.open_log_folder_action = QAction("Open &Log Folder", self)
        self.open_log_folder_action.setStatusTip("Show tabmail's log files in the file manager")
        self.open_log_folder_action.triggered.connect(self.open_log_folder)

    def _build_menus_and_toolbar(self) -> None:
        bar = self.menuBar()
        file_menu = self.file_menu = bar.addMenu("&File")
        file_menu.addAction(self.import_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.find_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.settings_action)
        self.notifications_menu = bar.addMenu("&Notifications")
        self.notifications_menu.addAction(self.compose_action)
        self.notifications_menu.addAction(self.send_urls_action)
        self.notifications_menu.addAction(self.poll_action)
        self.notifications_menu.addAction(self.unmatched_mail_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.open_log_folder_action)
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

        self.toolbar = self.addToolBar("Main")
        self.toolbar.setObjectName("main-toolbar")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.import_action, self.compose_action, self.poll_action):
            self.toolbar.addAction(action)
        spacer = QWidget(self.toolbar)
        spacer.setSizePolicy(spacer.sizePolicy().Policy.Expanding, spacer.sizePolicy().Policy.Preferred)
        self.toolbar.addWidget(spacer)
        self.toolbar.addAction(self.settings_action)

    def _build_welcome_page(self) -> QWidget:
        page = QWidget(self)
        page.setObjectName("welcome-page")
        title = heading_label("Welcome to tabmail", 1.6, page)
        text = muted_label(
            "Pick a tournament or a round on the left, or import a tournament from Tabbycat or "
            "from CSV files to get started.",
            page,
        )
        text.setWordWrap(True)
        button = QToolButton(page)
        button.setDefaultAction(self.import_action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(40, 40, 40, 40)
        layout.addStretch(1)
        for widget in (title, text):
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(widget)
        layout.addSpacing(12)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        return page

    # -- background work -----------------------------------------------------------------
    def start_background(self, *, resume: bool = True, poll: bool = True) -> None:
        """Resume the outbox and start polling (the qasync loop must be the current loop); say
        so when mail left unsent by the last session is being sent now. A read-only database
        sends nothing and records no delivery events: neither starts."""
        if self.ctx.read_only:
            return
        waiting = self.ctx.notifications.pending_count() if resume else 0
        self.worker.start(resume=resume, poll=poll)
        if waiting:
            text = f"Resumed {plural(waiting, 'message')} left unsent when tabmail last closed: sending now."
            log.info("%s", text)
            self.statusBar().showMessage(text, RESUMED_MESSAGE_MS)

    def _enter_read_only(self) -> None:
        """Everything can be looked at; nothing that sends or writes can be started."""
        self.status.set_read_only(self.ctx.db.describe())
        why = "The database is opened read-only"
        for action in (self.import_action, self.compose_action, self.poll_action, self.settings_action):
            action.setEnabled(False)
            action.setToolTip(f"{action.toolTip()} — {why.lower()}")
            action.setStatusTip(action.toolTip())

    # -- navigation -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the tournaments and their rounds, keeping the selection."""
        tournaments = self.ctx.tournaments.list_all()
        rounds = self.ctx.tournaments.rounds_by_tournament()  # one query, not one per tournament
        self.navigator.populate([(t, rounds.get(t.id, [])) for t in tournaments])
        if self.navigator.selected_key() is None and tournaments:
            self.navigator.select((TOURNAMENT, tournaments[0].id))
        self.problems_hub.reapply()
        self.replies_hub.reapply()

    def select_tournament(self, tournament_id: int) -> bool:
        return self.navigator.select((TOURNAMENT, tournament_id))

    def select_participants(self, tournament_id: int) -> bool:
        return self.navigator.select((PARTICIPANTS, tournament_id))

    def select_round(self, round_id: int) -> bool:
        return self.navigator.select((ROUND, round_id))

    def select_tournament_wide(self, tournament_id: int) -> bool:
        """The tournament's batches that have no round (private URLs, registration)."""
        return self.navigator.select((TOURNAMENT_WIDE, tournament_id))

    def focus_search(self) -> None:
        page = self.stack.currentWidget()
        focus = getattr(page, "focus_search", None)
        if callable(focus):
            focus()

    def _on_navigator_tournament_selected(self, tournament: Tournament) -> None:
        self.current_tournament, self.current_round = tournament, None
        self.compose_action.setEnabled(not self.ctx.read_only)
        self._set_title(f"{tournament.name} — tabmail")
        if self.participants_page.tournament != tournament:
            self.participants_page.set_tournament(tournament)
        self.stack.setCurrentWidget(self.participants_page)

    def _on_navigator_round_selected(self, tournament: Tournament, rnd: Round) -> None:
        self.current_tournament, self.current_round = tournament, rnd
        self.compose_action.setEnabled(not self.ctx.read_only)
        self._set_title(f"{rnd.name} · {tournament.name} — tabmail")
        self._show_round(tournament, rnd)

    def _on_navigator_tournament_wide_selected(self, tournament: Tournament) -> None:
        self.current_tournament, self.current_round = tournament, None
        self.compose_action.setEnabled(not self.ctx.read_only)
        self._set_title(f"{TOURNAMENT_WIDE_NAME} · {tournament.name} — tabmail")
        self.round_view.show_tournament_wide(tournament)
        self.stack.setCurrentWidget(self.round_view)

    def _on_navigator_problems_selected(self, tournament: Tournament | None) -> None:
        self.current_tournament, self.current_round = tournament, None
        self.compose_action.setEnabled(tournament is not None and not self.ctx.read_only)
        self._set_title(f"Problems · {tournament.name} — tabmail" if tournament else "Problems — tabmail")
        if self.problems_page.tournament != tournament or self.problems_page.shown_for is None:
            self.problems_page.show_problems(tournament)
        self.stack.setCurrentWidget(self.problems_page)

    def select_problems(self, tournament_id: int | None = None) -> bool:
        """The Problems view of one tournament, or of every tournament (None)."""
        return self.navigator.select((PROBLEMS, tournament_id or ALL_TOURNAMENTS))

    def _on_problems_page_round_requested(self, round_id: int, message_id: str) -> None:
        if self.select_round(round_id):
            self.round_view.select_message(message_id)

    def _on_problems_page_tournament_wide_requested(self, tournament_id: int, message_id: str) -> None:
        if self.select_tournament_wide(tournament_id):
            self.round_view.select_message(message_id)

    def _set_title(self, base: str) -> None:
        self._title_base = base
        self._apply_title()

    def _apply_title(self) -> None:
        """The page's title, with the unresolved problems and unread replies of every tournament
        counted in front."""
        n, unread = self.problems_hub.total, self.replies_hub.total
        counts = [f"{n} problem{'s' if n != 1 else ''}"] if n else []
        if unread:
            counts.append(f"{unread} unread repl{'ies' if unread != 1 else 'y'}")
        prefix = f"({', '.join(counts)}) " if counts else ""
        self.setWindowTitle(prefix + self._title_base)

    def _on_navigator_nothing_selected(self) -> None:
        self.current_tournament = self.current_round = None
        self.compose_action.setEnabled(False)
        self._set_title("tabmail")
        self.stack.setCurrentWidget(self.welcome_page)

    def _show_round(self, tournament: Tournament, rnd: Round) -> None:
        self.round_view.show_round(tournament, rnd)
        self.stack.setCurrentWidget(self.round_view)

    # -- actions --------------------------------------------------------------------------
    def open_import_dialog(self) -> ImportDialog:
        from tabmail.gui.importer import ImportDialog

        dialog = ImportDialog(self.ctx, self, theme=self.theme)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.imported.connect(self._on_import_dialog_imported)
        dialog.open()
        return dialog

    def open_settings_dialog(self) -> SettingsDialog:
        from tabmail.gui.settings import SettingsDialog

        dialog = SettingsDialog(self.ctx, self, theme=self.theme)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def open_unmatched_mail(self) -> UnmatchedMailDialog:
        """The mailbox's unmatched mail (one window; raised when already open)."""
        from tabmail.gui.inbox import UnmatchedMailDialog

        dialog = self.unmatched_mail
        if dialog is not None and shiboken6.isValid(dialog) and dialog.isVisible():
            dialog.raise_()
            dialog.activateWindow()
            return dialog
        dialog = UnmatchedMailDialog(self.ctx, self.theme, self.bridge, self.undo_stack, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.unmatched_mail = dialog
        dialog.show()
        return dialog

    def send_private_urls(self, tournament: Tournament) -> ComposeDialog | None:
        """The navigator's "Send Private URLs…": that tournament's composer, on private URLs."""
        if self.ctx.read_only:
            return None
        if self.current_tournament is None or self.current_tournament.id != tournament.id:
            self.select_tournament(tournament.id)
        return self.open_composer(kind=(Event.URLS, None))

    def open_composer(self, kind: tuple[Event, Audience | None] | None = None) -> ComposeDialog | None:
        from tabmail.gui.composer import ComposeDialog

        """The composer for the selected tournament and round (one at a time, not modal: the
        round view behind it updates while it sends); ``kind`` picks the notification."""
        composer = self.composer
        if composer is not None and shiboken6.isValid(composer) and composer.isVisible():
            if (
                kind is not None
                and composer.tournament.id == (self.current_tournament or composer.tournament).id
            ):
                composer.select_kind(*kind)
            composer.raise_()
            composer.activateWindow()
            return composer
        tournament = self.current_tournament
        if tournament is None:
            return None
        dialog = ComposeDialog(
            self.ctx,
            self.bridge,
            self.worker,
            tournament,
            self.current_round,
            kind=kind,
            theme=self.theme,
            parent=self,
        )
        dialog.batch_queued.connect(self._on_composer_batch_queued)
        self.composer = dialog
        dialog.show()
        return dialog

    def poll_now(self) -> None:
        run_op(
            self,
            self.worker.poll_now,
            action=self.poll_action,
            title="Checking delivery statuses",
            on_success=lambda _result: self.refresh(),
        )

    def _on_import_dialog_imported(self, tournament_id: int) -> None:
        self.refresh()
        self.select_tournament(tournament_id)

    def _on_bridge_settings_changed(self, keys: list[str]) -> None:
        """Saved settings take effect at once: status bar, outbox and poller."""
        self.status.update_from_settings(self.ctx.settings.all())
        if "appearance" in keys:
            self.appearance.apply(str(self.ctx.settings.get("appearance")))
        if tracking.CONNECTION_KEYS.intersection(keys) or "smtp.port" in keys:
            self.status.reset_connection()
        self.worker.settings_changed(keys)
        if "backend" in keys:
            forget_practice_flags(self.ctx)  # pretend bounces must not stop a real send

    def _on_composer_batch_queued(self, batch_id: int) -> None:
        batch = self.ctx.notifications.get_batch(batch_id)
        if batch.round_id is None:
            return
        if self.current_round is None or self.current_round.id != batch.round_id:
            self.select_round(batch.round_id)
        self.round_view.model.add_batch(batch_id)
        self.round_view.select_batch(batch_id)

    def _on_worker_poll_started(self) -> None:
        self.status.last_poll.setText("Checking delivery statuses…")

    def _on_worker_outbox_failed(self, why: str) -> None:
        self.statusBar().showMessage(f"Sending stopped: {why}", 15000)

    def ask_overdue(self, batches: list[Any]) -> QMessageBox | None:
        """Scheduled batches whose time passed while tabmail was not running: never sent
        without a yes. One box for all of them; "Later" asks again at the next start."""
        from tabmail.services import schedule

        if not batches:
            return None
        lines = "\n".join(f"• {b.tournament_slug}: {schedule.describe(b)}" for b in batches)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Scheduled sends missed their time",
            "These batches were scheduled, and their time passed while tabmail was not running. "
            "Send them now?",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("confirm-overdue-scheduled")
        box.setInformativeText(lines)
        send = box.addButton("Send Now", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel Them", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_code: int) -> None:
            self.overdue_box = None
            clicked = box.clickedButton()
            for b in batches:
                try:
                    if clicked is send:
                        schedule.release(self.ctx, b.batch_id)
                    elif clicked is cancel:
                        schedule.cancel(self.ctx, b.batch_id)
                except TabmailError as exc:  # released or cancelled elsewhere meanwhile
                    self.statusBar().showMessage(str(exc), 15000)
            if clicked is send:
                self.worker.run_outbox()
            if clicked in (send, cancel):
                self.refresh()

        box.finished.connect(answered)
        self.overdue_box = box
        box.open()
        return box

    def _on_worker_outbox_waiting(self, what: str) -> None:
        self.statusBar().showMessage(what.rstrip(".…") + "…", 15000)

    def _on_bridge_tournament_imported(self, tournament_id: int) -> None:
        self.refresh()

    def _on_worker_inbox_completed(self, report: Any) -> None:
        if report.enabled:
            by = machine_name() if self.worker.inbox_duty.elected else None
            self.status.set_inbox_result(report.started_at, report.ok, report.online, report.summary(), by)

    def _on_bridge_poll_finished(self, ok: bool, online: bool, summary: str) -> None:
        by = machine_name() if self.worker.sendgrid_duty.elected else None
        self.status.set_poll_result(datetime.now(UTC), ok, summary, by)
        self.status.set_online(online)

    def _on_worker_room_checked(self, last: LastCheck) -> None:
        """Another laptop of the tab room holds a duty: show its last check, and by whom."""
        by = last.by or "another laptop"
        if last.duty == SENDGRID:
            self.status.set_poll_result(last.at, last.ok, last.summary, by)
        else:
            self.status.set_inbox_result(last.at, last.ok, last.online, last.summary, by)

    def _on_about_triggered(self) -> None:
        box = self.about_box()
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def about_box(self) -> QMessageBox:
        """The About box, not yet shown: version, licence, the app icon, database and log folder."""
        logs = log_dir()
        box = QMessageBox(self)
        box.setObjectName("about-box")
        box.setWindowTitle("About tabmail")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<h3>tabmail {escape(__version__)}</h3><p>The tab room's notification dashboard: draw "
            "and ballot emails, delivery tracking and one-click resends.</p>"
            "<p>Licence: <a href='https://www.gnu.org/licenses/agpl-3.0.html'>GNU Affero General "
            "Public License v3.0 or later</a> (AGPL-3.0-or-later).</p>"
            f"<p>Database: {escape(self.ctx.db.describe())}<br>"
            f"Logs: <a href='{QUrl.fromLocalFile(str(logs)).toString()}'>{escape(str(logs))}</a></p>"
        )
        icon = self.windowIcon()
        if not icon.isNull():
            box.setIconPixmap(icon.pixmap(64, 64))
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        for label in box.findChildren(QLabel):
            label.setOpenExternalLinks(True)  # the licence in a browser, the logs in a file manager
        return box

    def open_log_folder(self) -> bool:
        """Show the log folder in the platform's file manager; say so in the status bar if not."""
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not opened:
            self.statusBar().showMessage(f"Could not open the log folder {folder}", 8000)
        return bool(opened)

    def _show_last_poll(self) -> None:
        """The previous session's last check, so the status bar is not blank after a restart;
        in a tab room sharing one database, the room's last checks and who made them."""
        if self.worker.sendgrid_duty.elected:
            for checked in self.worker.last_checks().values():
                self._on_worker_room_checked(checked)
            return
        last = tracking.last_poll(self.ctx)
        if not last:
            return
        try:
            when = datetime.fromisoformat(str(last["at"]))
            self.status.set_poll_result(when, bool(last["ok"]), str(last.get("summary") or ""))
        except (KeyError, ValueError):
            log.warning("ignoring an unreadable last-poll record: %r", last)

    # -- window state ---------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = self._qsettings.value(GEOMETRY_KEY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty() and self.restoreGeometry(geometry):
            return
        # First start: most of the screen (a laptop's 1366x768 included), at most 1600x1000.
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(1280, 800)
            return
        area = screen.availableGeometry()
        self.resize(min(1600, int(area.width() * 0.92)), min(1000, int(area.height() * 0.92)))

    def quit_without_asking(self) -> None:
        """Close even with mail waiting (Ctrl+C in the terminal): it is sent at the next start."""
        self._quit_confirmed = True
        self.close()

    def _on_quit_question_finished(self, box: QMessageBox) -> None:
        self.quit_box = None
        if box.buttonRole(box.clickedButton()) == QMessageBox.ButtonRole.AcceptRole:
            self.quit_without_asking()
        box.deleteLater()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._retheme()
        super().changeEvent(event)

    def _retheme(self) -> None:
        """Light/dark changed: what was drawn once with the old colours is drawn again."""
        for action, glyph in self._glyphs.items():
            action.setIcon(self.theme.action_icon(glyph))
        self.status.retheme()
        self.round_view.retheme()
        self.refresh()  # the tree's icons and muted columns

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._quit_confirmed:
            if self.quit_box is not None:
                event.ignore()
                self.quit_box.raise_()
                return
            box = unsent_question(self, self.ctx, outbox_running=self.worker.outbox_running)
            if box is not None:
                event.ignore()
                self.quit_box = box
                box.finished.connect(lambda _result: self._on_quit_question_finished(box))
                box.open()
                return
        self.worker.stop()
        self.problems_hub.stop()
        self.replies_hub.stop()
        cancelled = cancel_ops(self)
        if cancelled:
            log.info("cancelled %d running operation(s) on close", cancelled)
        self._qsettings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self._qsettings.sync()
        if self._owns_bridge:
            self.bridge.detach()
        super().closeEvent(event)
