"""The Problems view's rows: every unresolved problem with where, who, what, why and how long ago.

One row per problem (``services.problems.Problem``); the address cell takes a corrected
address (validated before it is kept), which the page's Resend uses. An address corrected in
Participants since the message was sent shows the same way (as the round view does), so Resend
goes to it rather than to the address that failed.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont

from tabmail.domain.addresses import validate_address
from tabmail.domain.problems import SEVERITY
from tabmail.gui.collation import sort_key
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.words import aware, full_time, local_time
from tabmail.gui.theme import Theme, category_look
from tabmail.services.problems import Problem

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    TOURNAMENT = 0
    ROUND = 1
    RECIPIENT = 2
    ADDRESS = 3
    PROBLEM = 4
    REASON = 5
    AGE = 6


HEADERS = {
    Column.TOURNAMENT: "Tournament",
    Column.ROUND: "Round",
    Column.RECIPIENT: "Recipient",
    Column.ADDRESS: "Address",
    Column.PROBLEM: "Problem",
    Column.REASON: "Reason",
    Column.AGE: "Age",
}


def _stamp(at: datetime | None) -> float:
    value = aware(at)
    return value.timestamp() if value else 0.0


def age_text(since: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest unit that fits: "just now", "12 min", "3 h", "2 days"."""
    at = aware(since)
    if at is None:
        return ""
    seconds = max(0.0, ((now or datetime.now(UTC)) - at).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    days = int(seconds // 86400)
    return f"{days} day{'s' if days != 1 else ''}"


class ProblemsModel(QAbstractTableModel):
    draft_rejected = Signal(str, str)  # message id, why the typed address cannot be used
    draft_edited = Signal(str, str, str)  # message id, old, new (for undo)

    def __init__(self, theme: Theme, parent: Any = None) -> None:
        super().__init__(parent)
        self._theme = theme
        self._italic = QFont()
        self._italic.setItalic(True)
        self._rows: list[Problem] = []
        self._drafts: dict[str, str] = {}  # typed here
        self._corrected: dict[str, str] = {}  # the person's address in Participants, where it differs
        self.read_only = False  # a read-only database: addresses cannot be corrected
        self._sort: tuple[Column, Qt.SortOrder] = (Column.AGE, Qt.SortOrder.AscendingOrder)

    def set_problems(self, problems: list[Problem], corrected: dict[str, str] | None = None) -> None:
        """Show ``problems``; ``corrected``: message id -> its person's address in Participants,
        for the messages sent to another address."""
        self.beginResetModel()
        self._rows = list(problems)
        ids = {p.message.id for p in problems}
        self._drafts = {k: v for k, v in self._drafts.items() if k in ids}
        self._corrected = {k: v for k, v in (corrected or {}).items() if k in ids}
        self._order_rows()
        self.endResetModel()

    def set_corrected(self, corrected: dict[str, str]) -> None:
        """New addresses in Participants (message id -> the person's address where it differs):
        the Address column shows them, and Resend goes to them, unless one was typed here."""
        ids = {p.message.id for p in self._rows}
        self._corrected = {k: v for k, v in corrected.items() if k in ids}
        if self._rows:
            self.dataChanged.emit(
                self.index(0, Column.ADDRESS), self.index(len(self._rows) - 1, Column.ADDRESS), []
            )

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting happens here with key functions (the proxy hands it over): a Python lessThan
        would be called tens of thousands of times for a season's problems."""
        self._sort = (Column(column), order)
        if not self._rows:
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        ids = [self._rows[p.row()].message.id if p.row() < len(self._rows) else None for p in before]
        self._order_rows()
        rows = {p.message.id: i for i, p in enumerate(self._rows)}
        after = [
            self.index(rows[mid], p.column()) if mid in rows else QModelIndex()
            for p, mid in zip(before, ids, strict=True)
        ]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _order_rows(self) -> None:
        column, order = self._sort
        key = self._key(column)
        self._rows.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)

    def _key(self, column: Column) -> Any:
        if column == Column.PROBLEM:
            return lambda p: (SEVERITY[p.category], sort_key(p.message.recipient_name))
        if column == Column.AGE:
            return lambda p: -_stamp(p.since)
        if column == Column.RECIPIENT:
            return lambda p: sort_key(p.message.recipient_name)
        if column == Column.TOURNAMENT:
            return lambda p: (sort_key(p.sent.tournament_name), p.sent.round_name, -_stamp(p.since))
        if column == Column.ROUND:
            return lambda p: (p.sent.round_name.casefold(), -_stamp(p.since))
        if column == Column.ADDRESS:
            return lambda p: p.message.address.casefold()
        return lambda p: p.reason.casefold()

    # -- lookups ---------------------------------------------------------------------------
    @property
    def problems(self) -> list[Problem]:
        return list(self._rows)

    def problem_at(self, row: int) -> Problem:
        return self._rows[row]

    def row_of(self, message_id: str) -> int | None:
        return next((i for i, p in enumerate(self._rows) if p.message.id == message_id), None)

    def draft(self, message_id: str) -> str | None:
        """The address a resend goes to: typed here, else corrected in Participants (None: the same)."""
        return self._drafts.get(message_id) or self._corrected.get(message_id)

    def set_draft(self, message_id: str, text: str | None) -> str | None:
        """Keep a corrected address for a resend. Returns why it cannot be used, or None."""
        row = self.row_of(message_id)
        if row is None:
            return "this problem is no longer listed"
        value = (text or "").strip()
        if not value or value.casefold() == self._rows[row].message.address.casefold():
            self._drafts.pop(message_id, None)
        else:
            valid, normalised, problem = validate_address(value)
            if not valid or normalised is None:
                return f"{value!r} is not a usable address: {problem}"
            self._drafts[message_id] = normalised
        index = self.index(row, Column.ADDRESS)
        self.dataChanged.emit(index, index, [])
        return None

    # -- Qt model API ------------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
        if index.isValid() and index.column() == Column.ADDRESS and not self.read_only:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != Column.ADDRESS:
            return False
        mid = self._rows[index.row()].message.id
        before = self._drafts.get(mid)
        problem = self.set_draft(mid, str(value or ""))
        if problem is not None:
            self.draft_rejected.emit(mid, problem)
            return False
        if self._drafts.get(mid) != before:
            self.draft_edited.emit(mid, before or "", self._drafts.get(mid) or "")
        return True

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        p = self._rows[index.row()]
        m = p.message
        column = Column(index.column())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if column == Column.TOURNAMENT:
                return p.sent.tournament_name
            if column == Column.ROUND:
                return p.sent.round_name
            if column == Column.RECIPIENT:
                return m.recipient_name
            if column == Column.ADDRESS:
                return self.draft(m.id) or m.address
            if column == Column.PROBLEM:
                return category_look(p.category).label
            if column == Column.REASON:
                return p.reason
            return age_text(p.since)
        if role == Roles.ID:
            return m.id
        if role == Roles.OBJECT:
            return p
        if role == Roles.STATUS:
            return p.category.value
        if role == Roles.PROBLEM:
            return True
        if role == Qt.ItemDataRole.DecorationRole and column == Column.PROBLEM:
            return self._theme.icon(category_look(p.category))
        if role == Qt.ItemDataRole.ForegroundRole and column in (Column.PROBLEM, Column.ADDRESS):
            return self._theme.foreground(category_look(p.category).tone)
        if role == Qt.ItemDataRole.FontRole and column == Column.ADDRESS and self.draft(m.id):
            return self._italic
        if role == Qt.ItemDataRole.ToolTipRole:
            look = category_look(p.category)
            lines = [f"{look.label}: {look.description}"]
            if p.reason:
                lines.append(f"Reason: {p.reason}")
            if (draft := self.draft(m.id)) is not None:
                lines.append(f"Corrected to {draft} (was {m.address}): press Resend.")
            else:
                lines.append("Double-click the address to correct it, then Resend.")
            if p.since:
                lines.append(f"Since {full_time(p.since)} ({local_time(p.since)})")
            return "\n".join(lines)
        return None
