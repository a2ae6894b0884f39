"""The participants page: search, filter and correct every address of one tournament."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from html import escape

from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QShowEvent, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tabmail.domain.inbox import InboxEntry
from tabmail.domain.tournament import Role, Tournament
from tabmail.gui.bridge import EventBridge
from tabmail.gui.columns import ColumnFitter, ColumnPlan
from tabmail.gui.participants.model import Column, ParticipantsModel
from tabmail.gui.participants.person_panel import PersonPanel
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Theme, Tone
from tabmail.gui.undo import DoneCommand
from tabmail.gui.widgets import MessageStrip, SearchField, heading_label, muted_label
from tabmail.services.context import AppContext

# The address, which is what is read and fixed here, takes the room left over; in a narrow window
# (the table beside the person panel is ~650 px at the first start) the institution, team, name
# and role give way first, and the address and its status stay readable and in view.
COLUMNS = ColumnPlan(
    preferred={
        Column.NAME: 160,
        Column.ROLE: 90,
        Column.TEAM: 105,
        Column.INSTITUTION: 150,
        Column.EMAIL: 240,
        Column.STATUS: 125,
    },
    give_way=(
        (Column.INSTITUTION, 70),
        (Column.TEAM, 80),
        (Column.NAME, 130),
        (Column.ROLE, 80),
        (Column.EMAIL, 180),
        (Column.STATUS, 110),
    ),
    fill=Column.EMAIL,
)


class ParticipantsFilterProxy(QSortFilterProxyModel):
    """Text search over every column, plus a role filter and a "problems only" switch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role: Role | None = None
        self.problems_only = False
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.setSortRole(Roles.SORT)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_role(self, role: Role | None) -> None:
        self._change_filter(lambda: setattr(self, "role", role))

    def set_problems_only(self, on: bool) -> None:
        self._change_filter(lambda: setattr(self, "problems_only", on))

    def _change_filter(self, change: Callable[[], None]) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.9; invalidateFilter() is deprecated there
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateFilter()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is the model's own (``ParticipantsModel.sort``: locale collation, "Céline"
        before "Chiara"); this proxy only filters."""
        source = self.sourceModel()
        if source is not None and column >= 0:
            source.sort(column, order)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        index = model.index(source_row, 0, source_parent)
        if self.problems_only and not index.data(Roles.PROBLEM):
            return False
        if self.role is not None and index.data(Roles.OBJECT).role != self.role:
            return False
        return super().filterAcceptsRow(source_row, source_parent)


class ParticipantsPage(QWidget):
    person_selected = Signal(int)  # person id; -1 when the selection is cleared

    def __init__(
        self, ctx: AppContext, bridge: EventBridge, theme: Theme | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("participants-page")
        self._ctx = ctx
        self._theme = theme or Theme()
        self._dirty = False
        self.tournament: Tournament | None = None

        self.model = ParticipantsModel(ctx, self._theme, self)
        self.proxy = ParticipantsFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.title = heading_label("Participants", 1.45, self)
        self.title.setWordWrap(True)
        self.summary = muted_label("", self)
        self.summary.setWordWrap(True)
        self.search = SearchField("Search names, teams, institutions, addresses  (Ctrl+F)", self, self._theme)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.role_filter = QComboBox(self)
        self.role_filter.addItem("Everyone", None)
        self.role_filter.addItem("Speakers", Role.SPEAKER)
        self.role_filter.addItem("Adjudicators", Role.ADJUDICATOR)
        self.role_filter.currentIndexChanged.connect(
            lambda _: self.proxy.set_role(self.role_filter.currentData())
        )
        self.problems_only = QCheckBox("Problems only", self)
        self.problems_only.setToolTip("Show only people whose address is missing, invalid or bouncing")
        self.problems_only.toggled.connect(self.proxy.set_problems_only)

        self.table = QTableView(self)
        self.table.setObjectName("participants-table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.table.horizontalHeader().setHighlightSections(False)
        self.columns = ColumnFitter(self.table, COLUMNS)  # widths fitted to the table's width
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)

        self.message = MessageStrip(self, self._theme)
        self.panel = PersonPanel(self._theme, self)
        self.panel.edit_requested.connect(self.edit_address)
        self.replies = QLabel(self.panel)
        self.replies.setObjectName("person-replies")
        self.replies.setWordWrap(True)
        self.panel.add_section("Replies", self.replies)
        self.model.address_edited.connect(self._on_model_address_edited)
        self.model.address_changed.connect(self._on_model_address_changed)
        self.undo_stack: QUndoStack | None = None  # the main window's (Edit → Undo)
        self.model.edit_failed.connect(lambda text: self.message.show_message(text, Tone.BAD))
        self.model.modelReset.connect(self._update_summary)
        self.model.dataChanged.connect(lambda *_: self._update_summary())

        filters = QHBoxLayout()
        filters.setSpacing(8)
        filters.addWidget(self.search, 1)
        filters.addWidget(self.role_filter)
        filters.addWidget(self.problems_only)

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(8)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.message)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left)
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([960, 250])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 12)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addSpacing(6)
        layout.addWidget(splitter, 1)

        bridge.person_changed.connect(self._on_bridge_person_changed)
        bridge.tournament_imported.connect(self._on_bridge_tournament_imported)
        bridge.flags_changed.connect(self._on_bridge_flags_changed)

    # -- public -----------------------------------------------------------------------
    def set_tournament(self, tournament: Tournament | None) -> None:
        self.tournament = tournament
        self.title.setText("Participants" if tournament is None else f"Participants — {tournament.name}")
        self.message.clear_message()
        self.reload()

    def reload(self) -> None:
        self._dirty = False
        selected = self.selected_person_id()
        self.model.load(self.tournament.id if self.tournament else None)
        if selected is not None:
            self.select_person(selected)
        else:
            self.panel.show_person(None)

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def selected_person_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(Roles.ID) if rows else None

    def select_person(self, person_id: int) -> bool:
        row = self.model.row_of(person_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, Column.NAME))
        if not index.isValid():
            return False
        self.table.selectRow(index.row())
        self.table.scrollTo(index)
        return True

    def edit_address(self, person_id: int) -> None:
        """Select the person and open their address cell for editing."""
        if not self.select_person(person_id):
            return
        row = self.model.row_of(person_id)
        assert row is not None
        index = self.proxy.mapFromSource(self.model.index(row, Column.EMAIL))
        self.table.setCurrentIndex(index)
        self.table.edit(index)

    # -- slots ------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty:
            self.reload()

    def _on_bridge_tournament_imported(self, tournament_id: int) -> None:
        if self.tournament is None or self.tournament.id != tournament_id:
            return
        if self.isVisible():
            self.reload()
        else:
            self._dirty = True

    def _on_bridge_flags_changed(self, _keys: list[str]) -> None:
        if self.tournament is not None:
            self.model.reload_flags()
            self._show_selected()

    def _on_bridge_person_changed(self, person_id: int) -> None:
        if self.model.refresh_person(person_id) and person_id == self.selected_person_id():
            self._show_selected()

    def _on_model_address_edited(self, person_id: int, valid: bool, problem: str) -> None:
        row = self.model.row_of(person_id)
        if row is None:
            return
        person = self.model.person_at(row)
        if valid:
            self.message.show_message(f"Saved {person.name}'s address: {person.email}", Tone.GOOD)
        else:
            self.message.show_message(
                f"Saved {person.name}'s address, but it cannot be used yet. {problem}", Tone.BAD
            )
        if person_id == self.selected_person_id():
            self._show_selected()

    def _on_model_address_changed(self, person_id: int, old: str, new: str) -> None:
        """Every address edit is undoable: Edit → Undo names it."""
        if self.undo_stack is None:
            return
        row = self.model.row_of(person_id)
        name = self.model.person_at(row).name if row is not None else "this person"
        self.undo_stack.push(
            DoneCommand(
                f"change {name}'s address to {new}" if new else f"clear {name}'s address",
                lambda: self.model.apply_address(person_id, new or None),
                lambda: self.model.apply_address(person_id, old or None),
            )
        )

    def _on_table_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._show_selected()
        pid = self.selected_person_id()
        self.person_selected.emit(-1 if pid is None else pid)

    def _show_selected(self) -> None:
        pid = self.selected_person_id()
        row = None if pid is None else self.model.row_of(pid)
        if pid is None or row is None:
            self.panel.show_person(None)
            return
        person = self.model.person_at(row)
        history = self._ctx.tournaments.address_history(pid)
        self.panel.show_person(person, history, self.model.status_of(person), self.model.problem_text(person))
        sent = self._ctx.notifications.messages(person_id=pid)
        batches = {b: self._ctx.notifications.get_batch(b) for b in {m.batch_id for m in sent}}
        self.panel.show_messages(sent, batches)
        self.replies.setText(
            replies_html(self._ctx.inbox.entries(kinds=("reply", "auto_reply"), person_id=pid))
        )

    def _update_summary(self) -> None:
        people = self.model.people
        if not people:
            self.summary.setText("No participants imported." if self.tournament else "")
            return
        statuses = [self.model.status_of(p) for p in people]
        speakers = sum(1 for p in people if p.role == Role.SPEAKER)
        parts = [f"{len(people)} people ({speakers} speakers, {len(people) - speakers} adjudicators)"]
        for status, words in (
            ("missing", "without an address"),
            ("invalid", "with an invalid address"),
        ):
            count = statuses.count(status)
            if count:
                parts.append(f"{count} {words}")
        # Flagged addresses in the rows' words: a spam report or a block is not "bouncing".
        flagged = Counter(
            self.model.look_of(p).label.lower()
            for p, s in zip(people, statuses, strict=True)
            if s == "flagged"
        )
        parts += [f"{n} {label}" for label, n in flagged.items()]
        self.summary.setText(" · ".join(parts))


def replies_html(entries: Sequence[InboxEntry]) -> str:
    """What this person wrote back (read from the tab room's mailbox), newest first; a reply from
    another address than the one we wrote to says so (it never changes the address)."""
    if not entries:
        return "<span style='color: gray'>No replies.</span>"
    lines = []
    for e in entries:
        stamp = f"{e.received_at.astimezone():%d %b, %H:%M}" if e.received_at else ""
        kind = "Auto-reply" if e.kind == "auto_reply" else "Reply"
        text = " ".join((e.reply_text or "").split())
        text = text[:160] + ("…" if len(text) > 160 else "")
        other = (
            f" from {escape(e.from_address or '')}, not {escape(e.sent_to or '')}"
            if e.different_sender
            else ""
        )
        lines.append(
            f"<span style='color: gray'>{escape(stamp)}</span> {kind}{other}: {escape(text)}"
            + (" <b>(new)</b>" if e.read_at is None and e.kind == "reply" else "")
        )
    return "<br>".join(lines)
