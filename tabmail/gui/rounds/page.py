"""The round view: the round's notifications grouped by batch, with a detail panel underneath.

Selecting a message shows it as sent (``MessageView``); selecting a batch shows the batch
(``BatchPanel``). Problem rows are corrected in place (double-click or F2 on the address) and
resent with Ctrl+R, the detail panel's button or the context menu. Everything updates in place
from the bridge; the view's expansion, selection and scroll position are kept.

The page owns its parts: the head and filter bar (``RoundHeader``, header.py), what can be
done to a row (``RoundActions``, actions.py: resend, correct, retry, cancel, resolve, the
context menu), the tree's model and proxy, and the detail panel.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, MessageState
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.columns import ColumnFitter, ColumnPlan
from tabmail.gui.message import MessageView
from tabmail.gui.navigator import round_summary
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.actions import RoundActions
from tabmail.gui.rounds.batch_panel import BatchPanel
from tabmail.gui.rounds.delegate import AddressDelegate, RoundTree, StatusDelegate
from tabmail.gui.rounds.empty import RoundEmptyPage
from tabmail.gui.rounds.header import RoundHeader
from tabmail.gui.rounds.model import BATCH, MESSAGE, Column, RoundMessagesModel
from tabmail.gui.rounds.proxy import RoundMessagesProxy
from tabmail.gui.rounds.unmatched import UnmatchedEventsDialog
from tabmail.gui.rounds.words import row_look
from tabmail.gui.theme import Theme
from tabmail.gui.widgets import MessageStrip
from tabmail.services.context import AppContext

# The address, which is read and corrected here, takes the room left over. In a narrow window
# (the first start on a laptop: the tree is ~900 px) the status gives way first (a batch's counts
# in words are also in the round's summary above), then the recipient, the time and the role; the
# address keeps 180 px at least. Every header stays readable.
COLUMNS = ColumnPlan(
    preferred={
        Column.RECIPIENT: 280,
        Column.ROLE: 100,
        Column.ADDRESS: 260,
        Column.STATUS: 390,
        Column.WHEN: 150,
    },
    give_way=(
        (Column.STATUS, 220),
        (Column.RECIPIENT, 190),
        (Column.WHEN, 115),
        (Column.ROLE, 90),
        (Column.ADDRESS, 180),
    ),
    fill=Column.ADDRESS,
)


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
        self.undo_stack: QUndoStack | None = None  # the main window's (Edit → Undo)
        self.notice = MessageStrip(self, self._theme)
        self.notice.setObjectName("round-notice")
        self.row_actions = RoundActions(ctx, worker, self)

        self.header = RoundHeader(self._theme, compose_action, self)
        # The page's filter fields and title, as every page names them (session memory, export).
        self.search = self.header.search
        self.problems_only = self.header.problems_only
        self.title = self.header.title
        self.summary = self.header.summary
        self.search.textChanged.connect(self.proxy.set_search)
        self.problems_only.toggled.connect(self.proxy.set_problems_only)
        self.header.unmatched_button.clicked.connect(self.show_unmatched)

        self.tree = self._build_tree()
        self.message_view = MessageView(ctx, self._theme, self)
        actions = self.row_actions
        self.message_view.resend_requested.connect(actions.resend_if_resendable)
        self.message_view.address_edited.connect(actions.correct_address)
        self.message_view.message_link_activated.connect(self.select_message)
        self.message_view.replies.replies_read.connect(lambda _mid: self.model.refresh_replies())
        self.message_view.retry_requested.connect(actions.retry_now)
        self.message_view.cancel_requested.connect(actions.cancel_message)
        self.message_view.resolve_requested.connect(actions.ask_resolve)
        self.message_view.unresolve_requested.connect(actions.unresolve)
        self.batch_panel = BatchPanel(self._theme, self)
        self.batch_panel.resend_corrected_requested.connect(actions.confirm_resend_corrected)
        self.batch_panel.cancel_schedule_requested.connect(actions.cancel_scheduled)
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
        lp = QVBoxLayout(list_page)
        lp.setContentsMargins(20, 16, 20, 12)
        lp.setSpacing(8)
        lp.addWidget(self.header)
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
        bridge.unmatched_events_received.connect(self._on_bridge_unmatched_events_received)
        bridge.poll_finished.connect(lambda *_: self._refresh_unmatched())

    # -- building -------------------------------------------------------------------------------
    def _build_tree(self) -> QTreeView:
        tree = RoundTree(self)
        tree.setObjectName("round-tree")
        tree.setModel(self.proxy)
        tree.setItemDelegateForColumn(Column.STATUS, StatusDelegate(self._theme, tree))
        tree.setItemDelegateForColumn(Column.ADDRESS, AddressDelegate(tree))
        tree.setUniformRowHeights(True)
        # Always there: a search that narrows the round to a few rows (or clears back to
        # thousands) then neither hides nor shows the scroll bar, so the columns keep their
        # widths while typing and the tree is painted once per keystroke, not twice (the
        # viewport resized by the scroll bar is painted again).
        tree.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        tree.setAlternatingRowColors(True)
        tree.setSortingEnabled(True)
        tree.sortByColumn(Column.STATUS, Qt.SortOrder.AscendingOrder)
        tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self.row_actions.show_context_menu)
        tree.setAllColumnsShowFocus(True)
        self.columns = ColumnFitter(tree, COLUMNS)  # widths fitted to the tree's width
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
            self.header.set_titles(rnd.name, f"{tournament.name} · {round_summary(rnd)}")
            self._placeholder_round = None  # redrawn if it is shown
            self._update_stack()
            return
        self.header.set_titles(rnd.name, f"{tournament.name} · {round_summary(rnd)}")
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
        self.header.set_titles(
            TOURNAMENT_WIDE_NAME, f"{tournament.name} · private URLs and registration, sent for no round"
        )
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
        self.row_actions.update_for(kind, self.model.message(mid) if mid else None)
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
        self.header.update_summary(self.model, self._unmatched)

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
