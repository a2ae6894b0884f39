"""The round view: the round's notifications grouped by batch, with a detail panel underneath.

Selecting a message shows it as sent (``MessageView``); selecting a batch shows the batch
(``BatchPanel``). Problem rows are corrected in place (double-click or F2 on the address) and
resent with Ctrl+R, the detail panel's button or the context menu. Everything updates in place
from the bridge; the view's expansion, selection and scroll position are kept.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, MessageState
from tabmail.domain.problems import PROBLEM_CATEGORIES
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.message import MessageView
from tabmail.gui.navigator import round_summary
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.batch_panel import BatchPanel
from tabmail.gui.rounds.delegate import AddressDelegate, RoundTree, StatusDelegate
from tabmail.gui.rounds.empty import RoundEmptyPage
from tabmail.gui.rounds.model import BATCH, MESSAGE, Column, RoundMessagesModel
from tabmail.gui.rounds.proxy import RoundMessagesProxy
from tabmail.gui.rounds.resending import Resender
from tabmail.gui.rounds.unmatched import UnmatchedEventsDialog
from tabmail.gui.rounds.words import RESOLVED, counts_text, row_look
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.undo import DoneCommand
from tabmail.gui.widgets import MessageStrip, SearchField, heading_label, muted_label
from tabmail.services import problems as problem_service
from tabmail.services import schedule as schedule_service
from tabmail.services.context import AppContext

COLUMN_WIDTHS = {Column.RECIPIENT: 280, Column.ROLE: 100, Column.STATUS: 390, Column.WHEN: 150}


class RoundMessagesPage(QWidget):
    message_selected = Signal(str)  # message id ("" when a batch or nothing is selected)
    unmatched_mail_requested = Signal()  # the unmatched events' "Unmatched Mail…" button

    def __init__(
        self,
        ctx: AppContext,
        bridge: EventBridge,
        theme: Theme | None = None,
        worker: BackgroundWorker | None = None,
        compose_action: QAction | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("round-messages-page")
        self._ctx = ctx
        self._theme = theme or Theme()
        self.worker = worker
        self.tournament: Tournament | None = None
        self.round: Round | None = None
        self._collapsed: set[int] = set()
        self._placeholder_round: int | None = None  # the round the empty-round page shows
        self._unmatched = 0

        self.model = RoundMessagesModel(ctx, self._theme, bridge, self)
        self.proxy = RoundMessagesProxy(self)
        self.proxy.setSourceModel(self.model)
        self.resender = Resender(ctx, worker, self)
        self.resender.category_of = self.model.category_of
        self.resender.queued.connect(self._on_resender_queued)
        self.undo_stack: QUndoStack | None = None  # the main window's (Edit → Undo)

        self._build_actions()
        self.title = heading_label("", 1.45, self)
        self.subtitle = muted_label("", self)
        self.compose_button = QToolButton(self)
        if compose_action is not None:
            self.compose_button.setDefaultAction(compose_action)
            self.compose_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        else:
            self.compose_button.hide()
        self.search = SearchField("Search names, addresses, message ids  (Ctrl+F)", self, self._theme)
        self.search.textChanged.connect(self.proxy.set_search)
        self.problems_only = QCheckBox("Problems only", self)
        self.problems_only.setToolTip(
            "Only unresolved problems: bounced, invalid, blocked, dropped, failed, spam reports, "
            "unsubscribed, uncertain and skipped messages"
        )
        self.problems_only.toggled.connect(self.proxy.set_problems_only)
        self.summary = muted_label("", self)
        self.unmatched_button = QPushButton("Show unmatched…", self)
        self.unmatched_button.setFlat(True)
        self.unmatched_button.setObjectName("unmatched-events")
        self.unmatched_button.setToolTip("Provider events that matched no message tabmail sent: show them")
        self.unmatched_button.clicked.connect(self.show_unmatched)
        self.unmatched_button.hide()
        self.summary.setObjectName("round-summary")
        self.notice = MessageStrip(self, self._theme)
        self.notice.setObjectName("round-notice")

        self.tree = self._build_tree()
        self.message_view = MessageView(ctx, self._theme, self)
        self.message_view.resend_requested.connect(self._on_message_view_resend_requested)
        self.message_view.address_edited.connect(self._on_message_view_address_edited)
        self.message_view.message_link_activated.connect(self.select_message)
        self.message_view.replies.replies_read.connect(lambda _mid: self.model.refresh_replies())
        self.message_view.retry_requested.connect(self.retry_now)
        self.message_view.cancel_requested.connect(self.cancel_message)
        self.message_view.resolve_requested.connect(self.ask_resolve)
        self.message_view.unresolve_requested.connect(self.unresolve)
        self.batch_panel = BatchPanel(self._theme, self)
        self.batch_panel.resend_corrected_requested.connect(self.confirm_resend_corrected)
        self.batch_panel.cancel_schedule_requested.connect(self.cancel_scheduled)
        self.detail = QStackedWidget(self)
        self.detail.setObjectName("round-detail")
        self.detail.addWidget(self.message_view)
        self.detail.addWidget(self.batch_panel)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("round-splitter")
        self.splitter.setChildrenCollapsible(False)
        self.no_matches = QLabel("No matches", self.tree.viewport())
        self.no_matches.setObjectName("no-matches")
        self.no_matches.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_matches.hide()
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([430, 370])

        # An empty round shows its draw summary and a Compose button; a round with batches
        # shows the list page below.
        self.placeholder = RoundEmptyPage(ctx, compose_action, self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.placeholder)
        list_page = QWidget(self)
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
        lp = QVBoxLayout(list_page)
        lp.setContentsMargins(20, 16, 20, 12)
        lp.setSpacing(8)
        lp.addLayout(head)
        lp.addSpacing(2)
        lp.addLayout(bar)
        lp.addWidget(self.notice)
        lp.addWidget(self.splitter, 1)
        self.stack.addWidget(list_page)
        self.list_page = list_page
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack, 1)

        self.model.modelReset.connect(self._update_summary)
        self.model.replies_changed.connect(self._update_summary)
        self.model.messages_refreshed.connect(self._on_model_messages_refreshed)
        self.model.rows_added.connect(self._on_model_rows_added)
        self.model.rows_restyled.connect(lambda: self.tree.viewport().update())
        self.model.draft_rejected.connect(self._on_model_draft_rejected)
        self.model.draft_changed.connect(lambda mid: self._refresh_detail([mid]))
        self.proxy.rowsInserted.connect(self._on_proxy_rows_inserted)
        self.proxy.modelReset.connect(self._expand_batches)
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            signal.connect(self._update_no_matches)
        self.model.draft_edited.connect(self._on_model_draft_edited)
        bridge.unmatched_events_received.connect(self._on_bridge_unmatched_events_received)
        bridge.poll_finished.connect(lambda *_: self._refresh_unmatched())

    # -- building -------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        def action(text: str, shortcut: str | None, slot: object, tip: str) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.setToolTip(tip)
            a.triggered.connect(slot)  # type: ignore[arg-type]
            self.addAction(a)
            return a

        self.resend_action = action("&Resend", "Ctrl+R", self.resend_current, "Resend this message")
        self.edit_address_action = action(
            "&Correct Address…", "F2", self.edit_current_address, "Correct the address"
        )
        self.resend_all_action = action(
            "Resend &All Corrected",
            None,
            self._on_resend_all_triggered,
            "Resend every corrected message of the batch",
        )
        self.retry_action = action(
            "Retry &Now", None, self._on_retry_triggered, "Send this message again now"
        )
        self.cancel_action = action(
            "&Cancel Sending",
            None,
            self._on_cancel_triggered,
            "Do not send this message (it becomes skipped)",
        )
        self.resolve_action = action(
            "&Mark Resolved…", None, self._on_resolve_triggered, "This problem needs nothing more (say why)"
        )
        self.copy_address_action = action("Copy &Address", None, self._copy_address, "Copy the address")
        self.copy_id_action = action("Copy Message &Id", None, self._copy_id, "Copy tabmail's message id")
        self.resend_action.setEnabled(False)
        self.edit_address_action.setEnabled(False)

    def _build_tree(self) -> QTreeView:
        tree = RoundTree(self)
        tree.setObjectName("round-tree")
        tree.setModel(self.proxy)
        tree.setItemDelegateForColumn(Column.STATUS, StatusDelegate(self._theme, tree))
        tree.setItemDelegateForColumn(Column.ADDRESS, AddressDelegate(tree))
        tree.setUniformRowHeights(True)
        tree.setAlternatingRowColors(True)
        tree.setSortingEnabled(True)
        tree.sortByColumn(Column.STATUS, Qt.SortOrder.AscendingOrder)
        tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._on_tree_context_menu_requested)
        tree.setAllColumnsShowFocus(True)
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(Column.ADDRESS, QHeaderView.ResizeMode.Stretch)
        for column, width in COLUMN_WIDTHS.items():
            header.resizeSection(column, width)
        tree.selectionModel().currentRowChanged.connect(self._on_tree_current_row_changed)
        tree.collapsed.connect(lambda index: self._collapsed.add(index.data(Roles.ID)))
        tree.expanded.connect(lambda index: self._collapsed.discard(index.data(Roles.ID)))
        tree.activated.connect(self._on_tree_activated)
        return tree

    # -- the round view protocol ------------------------------------------------------------------
    def show_round(self, tournament: Tournament, rnd: Round) -> None:
        same = self.round is not None and self.round.id == rnd.id and self.model.round_id == rnd.id
        self.tournament, self.round = tournament, rnd
        if same:  # the navigator was rebuilt (a check, an import): keep rows, selection and scroll
            self.title.setText(rnd.name)
            self.subtitle.setText(f"{tournament.name} · {round_summary(rnd)}")
            self._placeholder_round = None  # redrawn if it is shown
            self._update_stack()
            return
        self.title.setText(rnd.name)
        self.subtitle.setText(f"{tournament.name} · {round_summary(rnd)}")
        self._collapsed.clear()
        self.notice.clear_message()
        self.model.load(rnd.id)
        self._placeholder_round = None  # the draw summary is read only if the round has no batch
        self._refresh_unmatched()
        self._show_detail(QModelIndex())
        self._update_stack()

    def show_tournament_wide(self, tournament: Tournament) -> None:
        """The tournament's batches that have no round (private URLs, registration)."""
        same = self.round is None and self.model.tournament_wide == tournament.id
        self.tournament, self.round = tournament, None
        self.title.setText(TOURNAMENT_WIDE_NAME)
        self.subtitle.setText(f"{tournament.name} · private URLs and registration, sent for no round")
        if same:
            self._update_stack()
            return
        self._collapsed.clear()
        self.notice.clear_message()
        self.model.load_tournament_wide(tournament.id)
        self._placeholder_round = None
        self._refresh_unmatched()
        self._show_detail(QModelIndex())
        self._update_stack()

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    # -- selection and detail ---------------------------------------------------------------------
    def current_source_index(self) -> QModelIndex:
        return self.proxy.mapToSource(self.tree.currentIndex())

    def current_message_id(self) -> str | None:
        index = self.current_source_index()
        return index.data(Roles.ID) if index.isValid() and index.data(Roles.KIND) == MESSAGE else None

    def current_batch_id(self) -> int | None:
        index = self.current_source_index()
        if not index.isValid():
            return None
        if index.data(Roles.KIND) == BATCH:
            return int(index.data(Roles.ID))
        return int(index.parent().data(Roles.ID))

    def select_message(self, message_id: str) -> bool:
        source = self.model.index_of_message(message_id)
        index = self.proxy.mapFromSource(source)
        if not index.isValid():
            if source.isValid() and self.proxy.filtering:  # hidden by a filter: clear it
                self.search.clear()
                self.problems_only.setChecked(False)
                index = self.proxy.mapFromSource(source)
            if not index.isValid():
                return False
        self.tree.expand(index.parent())
        self.tree.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.tree.scrollTo(index)
        return True

    def select_batch(self, batch_id: int) -> bool:
        index = self.proxy.mapFromSource(self.model.index_of_batch(batch_id))
        if not index.isValid():
            return False
        self.tree.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        return True

    def _on_tree_current_row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self._show_detail(self.proxy.mapToSource(current))

    def _show_detail(self, index: QModelIndex) -> None:
        kind = index.data(Roles.KIND) if index.isValid() else None
        mid = index.data(Roles.ID) if kind == MESSAGE else None
        self.resend_action.setEnabled(bool(mid and self.model.is_resendable(mid)))
        self.edit_address_action.setEnabled(self.resend_action.isEnabled())
        writable = not self._ctx.read_only
        self.resend_all_action.setEnabled(kind is not None and writable)
        m = self.model.message(mid) if mid else None
        self.retry_action.setEnabled(writable and m is not None and m.state.value in ("retrying", "failed"))
        self.cancel_action.setEnabled(writable and m is not None and m.state.value in ("queued", "retrying"))
        self.resolve_action.setEnabled(writable and bool(mid and self.model.is_problem(mid)))
        if kind == BATCH:
            bid = int(index.data(Roles.ID))
            batch = self.model.batch(bid)
            if batch is not None:
                waiting = sum(
                    1
                    for mid_ in self.model.message_ids(bid)
                    if (m_ := self.model.message(mid_)) is not None and m_.state is MessageState.SCHEDULED
                )
                self.batch_panel.show_batch(
                    batch, self.model.batch_counts(bid), len(self.model.drafts(bid)), waiting
                )
                self.detail.setCurrentWidget(self.batch_panel)
        elif mid:
            self._show_message(mid)
        else:
            self.message_view.clear()
            self.detail.setCurrentWidget(self.message_view)
        self.message_selected.emit(mid or "")

    def _show_message(self, mid: str) -> None:
        m = self.model.message(mid)
        if m is None:
            return
        original = self.model.message(m.resend_of) if m.resend_of else None
        self.message_view.show_message(
            m,
            status=self.model.status_of(mid) or m.state.value,
            category=self.model.category_of(mid),
            resolution=self.model.resolution(mid),
            draft=self.model.draft(mid),
            resendable=self.model.is_resendable(mid),
            resent_as=[(n, *self._address_and_label(n)) for n in self.model.resent_as(mid)],
            resend_of=self._address_and_label(original.id) if original else None,
            flag=self.model.flag_of(m.address),
        )
        self.detail.setCurrentWidget(self.message_view)

    def _address_and_label(self, message_id: str) -> tuple[str, str]:
        m = self.model.message(message_id)
        category = self.model.category_of(message_id)
        if m is None or category is None:
            return ("another address", "")
        label = row_look(self.model.status_of(message_id) or m.state.value, category).label
        if self.model.resolution(message_id) is not None:
            label += " · resolved"
        return (m.address, label)

    def _on_tree_activated(self, index: QModelIndex) -> None:
        """Enter / double-click on a row that is not being edited: look at it in the panel."""
        if index.data(Roles.KIND) == MESSAGE and self.current_message_id():
            self.detail.show()
            if self.model.is_resendable(self.current_message_id() or ""):
                self.message_view.focus_address()

    def _refresh_detail(self, ids: list[str]) -> None:
        current = self.current_source_index()
        if not current.isValid():
            return
        if current.data(Roles.KIND) == BATCH:
            self._show_detail(current)
            return
        mid = current.data(Roles.ID)
        related = {mid, *self.model.resent_as(mid)}
        m = self.model.message(mid)
        if m is not None and m.resend_of:
            related.add(m.resend_of)
        if related & set(ids):
            self._show_detail(current)

    # -- model updates --------------------------------------------------------------------------
    def _on_model_messages_refreshed(self, ids: list[str]) -> None:
        self._refresh_detail(ids)
        self._update_summary()

    def _on_model_rows_added(self, ids: list[str]) -> None:
        self._update_stack()
        self._refresh_detail(ids)
        self._update_summary()

    def _on_proxy_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            return
        for row in range(first, last + 1):
            index = self.proxy.index(row, 0)
            if index.data(Roles.ID) not in self._collapsed:
                self.tree.expand(index)

    def _expand_batches(self) -> None:
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(Roles.ID) not in self._collapsed:
                self.tree.expand(index)

    def _update_stack(self) -> None:
        if self.model.rowCount():
            self.stack.setCurrentWidget(self.list_page)
            return
        if (
            self.round is not None
            and self.tournament is not None
            and self._placeholder_round != self.round.id
        ):
            self.placeholder.show_round(self.tournament, self.round)
            self._placeholder_round = self.round.id
        elif self.round is None and self.tournament is not None:
            self.placeholder.show_tournament_wide(self.tournament)
            self._placeholder_round = None
        self.stack.setCurrentWidget(self.placeholder)

    def _refresh_unmatched(self) -> None:
        try:
            self._unmatched = self._ctx.tracking.unmatched_count()
        except Exception:  # the tracking store is optional for this view
            self._unmatched = 0
        self._update_summary()

    def _on_bridge_unmatched_events_received(self, count: int) -> None:
        self._refresh_unmatched()

    def retheme(self) -> None:
        """Light/dark changed: redraw what was coloured once."""
        self._update_summary()
        self.tree.viewport().update()

    def _update_summary(self) -> None:
        totals = self.model.totals()
        n_batches = self.model.rowCount()
        n = self.model.message_count()
        parts = [f"{n_batches} batch{'es' if n_batches != 1 else ''}", f"{n} message{'s' if n != 1 else ''}"]
        problem_counts = {c: totals[c] for c in PROBLEM_CATEGORIES if totals.get(c)}
        if problem_counts:
            parts.append(counts_text(problem_counts))
        if totals.get(RESOLVED):
            parts.append(f"{totals[RESOLVED]} resolved")
        if self._unmatched:
            parts.append(f"{self._unmatched} unmatched event{'s' if self._unmatched != 1 else ''}")
        replies, unread = self.model.reply_totals()
        if replies:
            parts.append(f"{replies} repl{'y' if replies == 1 else 'ies'} ({unread} unread)")
        self.unmatched_button.setVisible(bool(self._unmatched))
        self.summary.setText(" · ".join(parts))
        self.summary.setToolTip(
            "Unmatched events are provider events that tabmail could not match to any message it sent "
            "(in any tournament). They are kept: see `tabmail events --unmatched`."
            if self._unmatched
            else ""
        )
        self.summary.setStyleSheet(self._theme.text_style(Tone.BAD) if problem_counts else "")

    def _update_no_matches(self, *_: object) -> None:
        empty = self.proxy.filtering and self.proxy.rowCount() == 0 and self.model.rowCount() > 0
        if empty:
            what = (
                "No unresolved problems"
                if self.proxy.problems_only and not self.proxy.needle
                else "No matches"
            )
            self.no_matches.setText(what)
            self.no_matches.setGeometry(self.tree.viewport().rect())
        self.no_matches.setVisible(empty)

    def show_unmatched(self) -> UnmatchedEventsDialog:
        dialog = UnmatchedEventsDialog(
            self._ctx.tracking.unmatched(limit=1000), self._ctx.tracking.unmatched_count(), self._theme, self
        )
        dialog.mail_button.clicked.connect(self.unmatched_mail_requested)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    # -- editing and resending --------------------------------------------------------------------
    def edit_current_address(self) -> None:
        mid = self.current_message_id()
        if not mid or not self.model.is_resendable(mid):
            return
        index = self.proxy.mapFromSource(self.model.index_of_message(mid, Column.ADDRESS))
        self.tree.setCurrentIndex(index)
        self.tree.edit(index, QAbstractItemView.EditTrigger.AllEditTriggers, None)

    def resend_current(self) -> None:
        mid = self.current_message_id()
        if mid and self.model.is_resendable(mid):
            self.resend(mid)

    def resend(self, message_id: str) -> None:
        self.resender.resend(message_id, self.model.draft(message_id), action=self.resend_action)

    def resend_corrected(self, batch_id: int) -> None:
        self.resender.resend_corrected(batch_id, self.model.drafts(batch_id), action=self.resend_all_action)

    def _on_resend_all_triggered(self) -> None:
        batch_id = self.current_batch_id()
        if batch_id is not None:
            self.confirm_resend_corrected(batch_id)

    def cancel_scheduled(self, batch_id: int) -> QMessageBox:
        """Ask, then cancel a scheduled batch before its time (its messages become skipped)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Cancel scheduled send",
            "Cancel this scheduled batch? Its waiting messages will not be sent (they are kept, "
            "marked skipped).",
            QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("confirm-cancel-scheduled")
        go = box.addButton("Cancel the Batch", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_code: int) -> None:
            if box.clickedButton() is not go:
                return
            try:
                n = schedule_service.cancel(self._ctx, batch_id)
            except TabmailError as exc:  # it started meanwhile
                self.notice.show_message(str(exc), Tone.WARNING)
                return
            self.notice.show_message(f"Cancelled: {n} message(s) will not be sent.", Tone.NEUTRAL)
            if self.model.scoped:
                self.model.reload()
                self.select_batch(batch_id)

        box.finished.connect(answered)
        box.open()
        return box

    def confirm_resend_corrected(self, batch_id: int) -> QMessageBox:
        """Ask before resending a whole batch's corrected messages (a window-modal box)."""
        drafts = self.model.drafts(batch_id)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Resend all corrected",
            f"Resend every message of this batch whose address was corrected "
            f"({len(drafts)} here, plus any corrected in Participants)?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("confirm-resend-corrected")
        if drafts:
            box.setInformativeText("\n".join(f"{self._recipient(mid)} → {a}" for mid, a in drafts.items()))
        go = box.addButton("Resend", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(go)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(
            lambda _code: self.resend_corrected(batch_id) if box.clickedButton() is go else None
        )
        box.open()
        return box

    def _recipient(self, message_id: str) -> str:
        m = self.model.message(message_id)
        return m.recipient_name if m else message_id

    def _on_message_view_resend_requested(self, message_id: str) -> None:
        if self.model.is_resendable(message_id):
            self.resend(message_id)

    def _on_message_view_address_edited(self, message_id: str, text: str) -> None:
        before = self.model.draft(message_id)
        problem = self.model.set_draft(message_id, text)
        if problem:
            self.notice.show_message(problem, Tone.BAD)
        elif self.model.draft(message_id) != before:
            self._on_model_draft_edited(message_id, before or "", self.model.draft(message_id) or "")

    def _on_model_draft_edited(self, message_id: str, old: str, new: str) -> None:
        """A corrected address typed in: undoable (Edit → Undo)."""
        if self.undo_stack is None:
            return
        name = self._recipient(message_id)
        what = f"correct {name}'s address to {new}" if new else f"clear {name}'s corrected address"
        self.undo_stack.push(
            DoneCommand(
                what,
                lambda: self.model.set_draft(message_id, new or None),
                lambda: self.model.set_draft(message_id, old or None),
            )
        )

    def _on_model_draft_rejected(self, message_id: str, problem: str) -> None:
        self.notice.show_message(problem, Tone.BAD)

    def _on_resender_queued(self, words: str, new_ids: list[str]) -> None:
        self.model.flush()  # show the new rows now, not at the next timer tick
        for mid in new_ids:
            m = self.model.message(mid)
            if m is not None and m.resend_of:
                self.model.clear_draft(m.resend_of)
        self.notice.show_message(words, Tone.GOOD if new_ids else Tone.NEUTRAL)
        self._refresh_detail(new_ids)

    # -- per message: retry now, cancel, mark resolved ------------------------------------------
    def _on_retry_triggered(self) -> None:
        if (mid := self.current_message_id()) is not None:
            self.retry_now(mid)

    def _on_cancel_triggered(self) -> None:
        if (mid := self.current_message_id()) is not None:
            self.cancel_message(mid)

    def _on_resolve_triggered(self) -> None:
        if (mid := self.current_message_id()) is not None:
            self.ask_resolve(mid)

    def retry_now(self, message_id: str) -> None:
        try:
            m = problem_service.retry_now(self._ctx, message_id)
        except TabmailError as exc:
            self.notice.show_message(str(exc), Tone.BAD)
            return
        if self.worker is not None:
            self.worker.run_outbox(m.batch_id)
        self.notice.show_message(f"Sending the message to {m.address} again now.", Tone.GOOD)

    def cancel_message(self, message_id: str) -> None:
        try:
            m = problem_service.cancel(self._ctx, message_id)
        except TabmailError as exc:
            self.notice.show_message(str(exc), Tone.BAD)
            return
        self.notice.show_message(
            f"Cancelled: the message to {m.address} will not be sent (skipped).", Tone.NEUTRAL
        )

    def ask_resolve(self, message_id: str) -> QInputDialog:
        """Ask why the problem is resolved (window-modal), then mark it (undoable)."""
        dialog = QInputDialog(self)
        dialog.setObjectName("resolve-reason")
        dialog.setWindowTitle("Mark resolved")
        dialog.setLabelText(
            f"Why does the problem with {self._recipient(message_id)}'s message need nothing more?"
        )
        dialog.setTextValue("")
        dialog.setOkButtonText("Mark Resolved")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda reason: self.resolve(message_id, reason))
        dialog.open()
        return dialog

    def resolve(self, message_id: str, reason: str) -> bool:
        try:
            problem_service.mark_resolved(self._ctx, message_id, reason)
        except TabmailError as exc:
            self.notice.show_message(str(exc), Tone.BAD)
            return False
        self.model.flush()
        if self.undo_stack is not None:
            self.undo_stack.push(
                DoneCommand(
                    f"mark {self._recipient(message_id)}'s problem resolved",
                    lambda: problem_service.mark_resolved(self._ctx, message_id, reason),
                    lambda: problem_service.unmark_resolved(self._ctx, message_id),
                    lambda text: self.notice.show_message(text, Tone.BAD),
                )
            )
        self.notice.show_message(f"Marked resolved: {reason}", Tone.GOOD)
        return True

    def unresolve(self, message_id: str) -> None:
        resolution = self.model.resolution(message_id)
        try:
            problem_service.unmark_resolved(self._ctx, message_id)
        except TabmailError as exc:
            self.notice.show_message(str(exc), Tone.BAD)
            return
        self.model.flush()
        if self.undo_stack is not None and resolution is not None:
            reason = resolution.reason
            self.undo_stack.push(
                DoneCommand(
                    f"unmark {self._recipient(message_id)}'s problem as resolved",
                    lambda: problem_service.unmark_resolved(self._ctx, message_id),
                    lambda: problem_service.mark_resolved(self._ctx, message_id, reason),
                    lambda text: self.notice.show_message(text, Tone.BAD),
                )
            )

    # -- context menu and clipboard ---------------------------------------------------------------
    def _on_tree_context_menu_requested(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        if index.isValid():
            self.tree.setCurrentIndex(index)
            self.context_menu(index).popup(self.tree.viewport().mapToGlobal(pos))

    def context_menu(self, index: QModelIndex) -> QMenu:
        """The row's actions (they act on the current row)."""
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if index.data(Roles.KIND) == MESSAGE:
            for a in (self.resend_action, self.edit_address_action):
                menu.addAction(a)
            for a in (self.retry_action, self.cancel_action, self.resolve_action):
                if a.isEnabled():
                    menu.addAction(a)
            menu.addSeparator()
            menu.addAction(self.copy_address_action)
            menu.addAction(self.copy_id_action)
            menu.addSeparator()
        menu.addAction(self.resend_all_action)
        return menu

    def _copy_address(self) -> None:
        mid = self.current_message_id()
        m = self.model.message(mid) if mid else None
        if m is not None:
            QGuiApplication.clipboard().setText(self.model.draft(m.id) or m.address)

    def _copy_id(self) -> None:
        mid = self.current_message_id()
        if mid:
            QGuiApplication.clipboard().setText(mid)
