"""One place for every problem: the unresolved problems of a tournament, or of every tournament.

Each row says where (tournament, round), who, which address, what happened (the one
vocabulary), why and how long ago. Fix it here: correct the address in place (double-click or
F2) and Resend (Ctrl+R), or Mark Resolved with a reason (undoable); "Go to Round" opens the
message in its round (a private URL or registration message: in its tournament's "Tournament
messages"). The list follows the problems hub, which re-reads every problem in the
background after each change.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShowEvent, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.addresses import address_key
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import TOURNAMENT_WIDE_NAME
from tabmail.domain.problems import counts_text
from tabmail.domain.tournament import Tournament
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.columns import ColumnFitter, ColumnPlan
from tabmail.gui.problems.hub import ProblemsHub
from tabmail.gui.problems.model import Column, ProblemsModel
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.resending import Resender
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.undo import DoneCommand
from tabmail.gui.widgets import MessageStrip, SearchField, heading_label, muted_label
from tabmail.services import problems as service
from tabmail.services.context import AppContext

# The reason takes the room left over. In a narrow window (the first start on a laptop: the table
# is ~900 px) the tournament gives way first, then the reason, the recipient and the problem; the
# address keeps 180 px at least and the round its whole name. Every header stays readable.
COLUMN_WIDTHS = {
    Column.TOURNAMENT: 150,
    Column.ROUND: 90,
    Column.RECIPIENT: 170,
    Column.ADDRESS: 230,
    Column.PROBLEM: 140,
    Column.REASON: 220,
    Column.AGE: 70,
}
GIVE_WAY = (
    (Column.TOURNAMENT, 100),
    (Column.REASON, 150),
    (Column.RECIPIENT, 130),
    (Column.PROBLEM, 120),
    (Column.ADDRESS, 180),
)


class ProblemsProxy(QSortFilterProxyModel):
    """Search across every column; sorting is the model's own (``ProblemsModel.sort``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if source is not None and column >= 0:
            source.sort(column, order)


class ProblemsPage(QWidget):
    round_requested = Signal(int, str)  # round id, message id: show it in its round
    # tournament id, message id: show it under the tournament's "Tournament messages" (no round)
    tournament_wide_requested = Signal(int, str)

    def __init__(
        self,
        ctx: AppContext,
        hub: ProblemsHub,
        theme: Theme | None = None,
        worker: BackgroundWorker | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("problems-page")
        self._hub = hub
        self._ctx = ctx
        self._theme = theme or Theme()
        self.tournament: Tournament | None = None
        self.shown_for: int | None = None  # tournament id, 0 for every tournament, None: not yet
        self.undo_stack: QUndoStack | None = None  # the main window's (Edit → Undo)
        self._dirty = False

        self.model = ProblemsModel(self._theme, self)
        self.model.read_only = ctx.read_only
        self.proxy = ProblemsProxy(self)
        self.proxy.setSourceModel(self.model)
        self.resender = Resender(ctx, worker, self)
        self.resender.category_of = self._category_of
        self.resender.queued.connect(self._on_resender_queued)

        self.title = heading_label("Problems", 1.45, self)
        self.summary = muted_label("", self)
        self.summary.setObjectName("problems-summary")
        self.summary.setWordWrap(True)
        self.search = SearchField("Search names, addresses, rounds, reasons  (Ctrl+F)", self, self._theme)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.notice = MessageStrip(self, self._theme)
        self.notice.setObjectName("problems-notice")

        self.table = QTableView(self)
        self.table.setObjectName("problems-table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.AGE, Qt.SortOrder.AscendingOrder)  # newest first
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        # A problem of no round is under "Tournament messages": the whole name, not "Tournamen…".
        needed = self.table.fontMetrics().horizontalAdvance(TOURNAMENT_WIDE_NAME) + 16
        preferred = {**COLUMN_WIDTHS, Column.ROUND: max(COLUMN_WIDTHS[Column.ROUND], needed)}
        plan = ColumnPlan(preferred, GIVE_WAY, fill=Column.REASON)
        self.columns = ColumnFitter(self.table, plan)  # widths fitted to the table's width
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._update_actions())
        self.table.doubleClicked.connect(self._on_table_double_clicked)
        self.empty = QLabel("No unresolved problems.", self.table.viewport())
        self.empty.setObjectName("problems-empty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.resend_action = self._action("&Resend", "Ctrl+R", self.resend_current)
        self.resolve_action = self._action("&Mark Resolved…", None, self.ask_resolve_current)
        self.go_action = self._action("&Go to Round", "Ctrl+G", self.go_to_current)
        buttons = QHBoxLayout()
        self.resend_button = self._button(self.resend_action, "problems-resend")
        self.resolve_button = self._button(self.resolve_action, "problems-resolve")
        self.go_button = self._button(self.go_action, "problems-go")
        buttons.addWidget(self.search, 1)
        for button in (self.resend_button, self.resolve_button, self.go_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 12)
        layout.setSpacing(8)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(self.notice)
        layout.addWidget(self.table, 1)

        # The hub re-reads every problem in the background after each change; this page shows
        # its list (filtered to the tournament) whenever it is shown or the list changes.
        hub.problems_changed.connect(self._on_hub_problems_changed)
        self.model.draft_rejected.connect(lambda _mid, why: self.notice.show_message(why, Tone.BAD))
        self.model.draft_edited.connect(self._on_model_draft_edited)
        for signal in (self.proxy.modelReset, self.proxy.rowsInserted, self.proxy.rowsRemoved):
            signal.connect(self._update_empty)
        self._update_actions()

    def _action(self, text: str, shortcut: str | None, slot: object) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        a.triggered.connect(slot)  # type: ignore[arg-type]
        self.addAction(a)
        return a

    def _button(self, action: QAction, name: str) -> QPushButton:
        button = QPushButton(action.text().replace("&", ""), self)
        button.setObjectName(name)
        button.clicked.connect(action.trigger)
        return button

    # -- showing ---------------------------------------------------------------------------------
    def show_problems(self, tournament: Tournament | None) -> None:
        """The unresolved problems of ``tournament``, or of every tournament (None)."""
        self.tournament = tournament
        self.shown_for = tournament.id if tournament is not None else 0
        self.title.setText(f"Problems — {tournament.name}" if tournament else "Problems in every tournament")
        self.table.setColumnHidden(Column.TOURNAMENT, tournament is not None)
        self.notice.clear_message()
        if not self._show_from_hub():  # the hub's list is current: no need to read it again
            self.reload()

    def reload(self) -> None:
        """Read the problems now (on this thread) and show them."""
        if self.shown_for is None:
            return
        self._dirty = False
        tournament_id = self.tournament.id if self.tournament else None
        self._show(service.unresolved(self._ctx, tournament_id=tournament_id))

    def _show_from_hub(self) -> bool:
        problems = self._hub.problems
        if problems is None or not self._hub.fresh:
            return False
        self._dirty = False
        if self.tournament is not None:
            tid = self.tournament.id
            problems = [p for p in problems if p.sent.tournament_id == tid]
        self._show(problems)
        return True

    def _show(self, problems: list[service.Problem]) -> None:
        selected = self.current_message_id()
        self.model.set_problems(problems, self._corrected_in_participants(problems))
        counts = Counter(p.category for p in problems)
        n = len(problems)
        self.summary.setText(
            f"{n} unresolved problem{'s' if n != 1 else ''}: {counts_text(counts)}"
            if n
            else "Nothing needs your attention: every problem is resolved."
        )
        self.summary.setStyleSheet(self._theme.text_style(Tone.BAD) if n else "")
        if selected is not None:
            self.select_message(selected)
        self._update_actions()
        self._update_empty()

    def _corrected_in_participants(self, problems: list[service.Problem]) -> dict[str, str]:
        """Message id -> its person's address today, for messages sent to another address (an
        address corrected in Participants, or by an import, since): what Resend sends to."""
        people = {p.message.person_id for p in problems if p.message.person_id}
        if not people:
            return {}
        current = self._ctx.problems.current_addresses(sorted(people))
        corrected = {}
        for p in problems:
            address, key = current.get(p.message.person_id or 0, ("", None))
            if address and key != address_key(p.message.address):
                corrected[p.message.id] = address
        return corrected

    def on_person_changed(self, person_id: int) -> None:
        """An address edited in Participants, here or on another laptop, while this view holds
        problems of that person: their rows show, and Resend goes to, the address as it is now
        (it went to the old, bouncing one until the view was read again)."""
        problems = self.model.problems
        if any(p.message.person_id == person_id for p in problems):
            self.model.set_corrected(self._corrected_in_participants(problems))

    def _on_hub_problems_changed(self) -> None:
        if self.shown_for is None:
            return
        if self.isVisible():
            self._show_from_hub()
        else:
            self._dirty = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty and not self._show_from_hub():
            self.reload()

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def _update_empty(self, *_: object) -> None:
        empty = self.proxy.rowCount() == 0
        if empty:
            self.empty.setText(
                "No matches" if self.search.text() and self.model.rowCount() else "No unresolved problems."
            )
            self.empty.setGeometry(self.table.viewport().rect())
        self.empty.setVisible(empty)

    # -- selection --------------------------------------------------------------------------------
    def current_message_id(self) -> str | None:
        index = self.table.currentIndex()
        return index.data(Roles.ID) if index.isValid() else None

    def select_message(self, message_id: str) -> bool:
        row = self.model.row_of(message_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, Column.RECIPIENT))
        if not index.isValid():
            return False
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        return True

    def _update_actions(self) -> None:
        has = self.current_message_id() is not None
        for action in (self.resend_action, self.resolve_action):
            action.setEnabled(has and not self._ctx.read_only)
        self.go_action.setEnabled(has)
        index = self.table.currentIndex()
        problem = index.data(Roles.OBJECT) if has and index.isValid() else None
        wide = problem is not None and problem.sent.round_id is None  # private URLs, registration
        self.go_action.setText("&Go to Tournament Messages" if wide else "&Go to Round")
        self.go_button.setText(self.go_action.text().replace("&", ""))
        for button, action in (
            (self.resend_button, self.resend_action),
            (self.resolve_button, self.resolve_action),
            (self.go_button, self.go_action),
        ):
            button.setEnabled(action.isEnabled())

    def _category_of(self, message_id: str) -> object:
        row = self.model.row_of(message_id)
        return self.model.problem_at(row).category if row is not None else None

    def _recipient(self, message_id: str) -> str:
        row = self.model.row_of(message_id)
        return self.model.problem_at(row).message.recipient_name if row is not None else "this person"

    # -- fixing -----------------------------------------------------------------------------------
    def resend_current(self) -> None:
        mid = self.current_message_id()
        if mid is not None:
            self.resender.resend(mid, self.model.draft(mid), action=self.resend_action)

    def _on_resender_queued(self, words: str, new_ids: list[str]) -> None:
        self.notice.show_message(words, Tone.GOOD if new_ids else Tone.NEUTRAL)
        self.reload()

    def ask_resolve_current(self) -> QInputDialog | None:
        mid = self.current_message_id()
        if mid is None:
            return None
        dialog = QInputDialog(self)
        dialog.setObjectName("resolve-reason")
        dialog.setWindowTitle("Mark resolved")
        dialog.setLabelText(f"Why does the problem with {self._recipient(mid)}'s message need nothing more?")
        dialog.setOkButtonText("Mark Resolved")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(lambda reason: self.resolve(mid, reason))
        dialog.open()
        return dialog

    def resolve(self, message_id: str, reason: str) -> bool:
        name = self._recipient(message_id)
        try:
            service.mark_resolved(self._ctx, message_id, reason)
        except TabmailError as exc:
            self.notice.show_message(str(exc), Tone.BAD)
            return False
        if self.undo_stack is not None:
            self.undo_stack.push(
                DoneCommand(
                    f"mark {name}'s problem resolved",
                    lambda: service.mark_resolved(self._ctx, message_id, reason),
                    lambda: service.unmark_resolved(self._ctx, message_id),
                    lambda text: self.notice.show_message(text, Tone.BAD),
                )
            )
        self.notice.show_message(
            f"Marked {name}'s problem resolved: {reason.strip()} (Ctrl+Z undoes it)", Tone.GOOD
        )
        self.reload()
        return True

    def _on_model_draft_edited(self, message_id: str, old: str, new: str) -> None:
        if self.undo_stack is None:
            return
        name = self._recipient(message_id)
        self.undo_stack.push(
            DoneCommand(
                f"correct {name}'s address to {new}" if new else f"clear {name}'s corrected address",
                lambda: self.model.set_draft(message_id, new or None),
                lambda: self.model.set_draft(message_id, old or None),
            )
        )

    def go_to_current(self) -> None:
        index = self.table.currentIndex()
        if not index.isValid():
            return
        problem = index.data(Roles.OBJECT)
        if problem.sent.round_id is not None:
            self.round_requested.emit(problem.sent.round_id, problem.message.id)
        else:  # private URLs, registration: a batch of the whole tournament
            self.tournament_wide_requested.emit(problem.sent.tournament_id, problem.message.id)

    def _on_table_double_clicked(self, index: QModelIndex) -> None:
        if index.column() != Column.ADDRESS:
            self.go_to_current()
