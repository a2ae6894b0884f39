"""The main window: tournaments and rounds on the left, the selected page in the centre.

The window owns everything it shows and runs: the participants page, the round view
(``RoundMessagesPage``), the composer (Ctrl+N) and the app's one ``BackgroundWorker`` (outbox
and poller). ``start_background()`` resumes the outbox and starts polling once the qasync loop
is the current loop; closing the window stops both. Settings saved anywhere reach the status
bar and the worker through the bridge's ``settings_changed``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QGuiApplication, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, Audience, Event
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.about import HelpCommands
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
from tabmail.gui.overdue import OverdueQuestion
from tabmail.gui.participants import ParticipantsPage
from tabmail.gui.problems import ProblemsHub, ProblemsPage
from tabmail.gui.quitting import QuitGuard, plural
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.run_op import cancel_ops, run_op
from tabmail.gui.session import SessionMemory
from tabmail.gui.status_bar import StatusWidgets
from tabmail.gui.status_feed import StatusFeed
from tabmail.gui.theme import Theme
from tabmail.gui.unread_replies import UnreadRepliesHub
from tabmail.gui.widgets import heading_label, muted_label
from tabmail.gui.window_menus import WindowMenus
from tabmail.services.context import AppContext
from tabmail.services.practice import forget_practice_flags

if TYPE_CHECKING:  # the dialogs (templates, importers, backend probes) load when first opened
    from tabmail.gui.composer import ComposeDialog
    from tabmail.gui.importer import ImportDialog
    from tabmail.gui.inbox import UnmatchedMailDialog
    from tabmail.gui.settings import SettingsDialog

log = logging.getLogger(__name__)

GEOMETRY_KEY = "main_window/geometry"
RESUMED_MESSAGE_MS = 30_000


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
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        self.appearance = appearance_for(app)
        self.appearance.apply(str(ctx.settings.get("appearance")))
        self.quitting = QuitGuard(self, ctx, lambda: self.worker.outbox_running)
        self.current_tournament: Tournament | None = None
        self.current_round: Round | None = None
        self._title_base = "tabmail"
        self.undo_stack = QUndoStack(self)  # every address edit and "marked resolved" (Edit → Undo)
        self.setWindowTitle("tabmail")

        self.help = HelpCommands(ctx, self)
        self.menus = WindowMenus(self)

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
            ctx, self.bridge, self.theme, self.worker, self.menus.compose_action, self
        )
        self.problems_hub = ProblemsHub(ctx, self.bridge, self.navigator, self, self)
        self.problems_hub.counts_changed.connect(lambda _n: self._apply_title())
        self.replies_hub = UnreadRepliesHub(ctx, self.bridge, self.navigator, self)
        self.replies_hub.counts_changed.connect(lambda _n: self._apply_title())
        self.round_view.unmatched_mail_requested.connect(self.open_unmatched_mail)
        self.problems_page = ProblemsPage(ctx, self.problems_hub, self.theme, self.worker, self)
        self.problems_page.round_requested.connect(self._on_problems_page_round_requested)
        self.bridge.person_changed.connect(self.problems_page.on_person_changed)
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
        self.status_feed = StatusFeed(ctx, self.bridge, self.worker, self.status, self.statusBar(), self)
        self.bridge.tournament_imported.connect(self._on_bridge_tournament_imported)
        self.bridge.settings_changed.connect(self._on_bridge_settings_changed)
        self.db_link = DatabaseLink(self)  # the PostgreSQL server lost and found again
        self.overdue = OverdueQuestion(self, ctx, self.worker, self.refresh)
        if ctx.read_only:
            self.status.set_read_only(ctx.db.describe())
            self.menus.disable_for_read_only()

        self.exporter = ExportActions(self, self.menus.file_menu, before=self.menus.quit_action)
        self._restore_geometry()
        self.refresh()
        self.session = SessionMemory(self, self._qsettings)
        self.session.restore()  # the page, filters and selection of the last session
        self.problems_hub.recount_in_background()  # badges and the title's count follow
        self.replies_hub.recount()

    # -- building -------------------------------------------------------------------------
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
        button.setDefaultAction(self.menus.import_action)
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
        self.menus.compose_action.setEnabled(not self.ctx.read_only)
        self._set_title(f"{tournament.name} — tabmail")
        if self.participants_page.tournament != tournament:
            self.participants_page.set_tournament(tournament)
        self.stack.setCurrentWidget(self.participants_page)

    def _on_navigator_round_selected(self, tournament: Tournament, rnd: Round) -> None:
        self.current_tournament, self.current_round = tournament, rnd
        self.menus.compose_action.setEnabled(not self.ctx.read_only)
        self._set_title(f"{rnd.name} · {tournament.name} — tabmail")
        self._show_round(tournament, rnd)

    def _on_navigator_tournament_wide_selected(self, tournament: Tournament) -> None:
        self.current_tournament, self.current_round = tournament, None
        self.menus.compose_action.setEnabled(not self.ctx.read_only)
        self._set_title(f"{TOURNAMENT_WIDE_NAME} · {tournament.name} — tabmail")
        self.round_view.show_tournament_wide(tournament)
        self.stack.setCurrentWidget(self.round_view)

    def _on_navigator_problems_selected(self, tournament: Tournament | None) -> None:
        self.current_tournament, self.current_round = tournament, None
        self.menus.compose_action.setEnabled(tournament is not None and not self.ctx.read_only)
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
        self.menus.compose_action.setEnabled(False)
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
        """The composer for the selected tournament and round (one at a time, not modal: the
        round view behind it updates while it sends); ``kind`` picks the notification. From
        "Tournament messages", which lists what belongs to no round, it opens on private URLs
        (it opened on a round's draw, a batch that node never lists)."""
        from tabmail.gui.composer import ComposeDialog

        selected = self.navigator.selected_key()
        if kind is None and selected is not None and selected[0] == TOURNAMENT_WIDE:
            kind = (Event.URLS, None)
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
            action=self.menus.poll_action,
            title="Checking delivery statuses",
            on_success=lambda _result: self.refresh(),
        )

    def _on_import_dialog_imported(self, tournament_id: int) -> None:
        self.refresh()
        self.select_tournament(tournament_id)

    def _on_bridge_settings_changed(self, keys: list[str]) -> None:
        """Saved settings take effect at once: status bar, outbox and poller."""
        self.status_feed.settings_changed(keys)
        if "appearance" in keys:
            self.appearance.apply(str(self.ctx.settings.get("appearance")))
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

    def _on_bridge_tournament_imported(self, tournament_id: int) -> None:
        self.refresh()

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
        self.quitting.confirmed = True
        self.close()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._retheme()
        super().changeEvent(event)

    def _retheme(self) -> None:
        """Light/dark changed: what was drawn once with the old colours is drawn again."""
        self.menus.retheme()
        self.status.retheme()
        self.round_view.retheme()
        self.refresh()  # the tree's icons and muted columns

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.quitting.allows_close():  # mail waits: asked first
            event.ignore()
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
