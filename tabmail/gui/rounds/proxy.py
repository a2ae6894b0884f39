"""Search, "problems only" and sorting within groups for the round tree.

A batch row stays while any of its messages matches. Batches are not matched themselves when a
filter is on, so "problems only" shows exactly the batches that have a problem, each with just
its problem rows. The proxy decides that itself, from the round model's row objects in one pass
over the batch, rather than with Qt's recursive filtering (which asks the model for an index
and a child count of every message row that does not match: thousands of Python calls per
keystroke). A hidden batch is looked at again when it changes: the model reports a batch row
changed whenever its counts change or messages are added to it.

Sorting orders messages within each batch; batches always stay newest first, whichever column
or direction is chosen. The proxy hands sorting to
the source model (``RoundMessagesModel.sort``), which sorts with key functions: a Python
``lessThan`` would be called tens of thousands of times for a 2,000-message round.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from tabmail.gui.roles import Roles
from tabmail.gui.rounds.model import MESSAGE_FLAGS, RoundMessagesModel
from tabmail.gui.rounds.nodes import Column, MessageNode

AnyIndex = QModelIndex | QPersistentModelIndex
_ADDRESS = int(Column.ADDRESS)


class RoundMessagesProxy(QSortFilterProxyModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.needle = ""
        self.problems_only = False
        self.setSortRole(Roles.SORT)
        # Filters follow data changes (a row that stops matching "problems only" leaves). On from
        # the start, while there are no rows: turning it on later re-sorts, which is a layout
        # change (the whole tree laid out again) at the first keystroke of a search.
        # Unfiltered, a changed range costs one quick ``filterAcceptsRow`` call per row.
        self.setDynamicSortFilter(True)
        # While a new filter is applied (one pass of Qt over every row), each batch's messages
        # are matched once, in one Python loop, and each row's question is a list look-up.
        self._matched: dict[int, list[bool]] | None = None

    @property
    def filtering(self) -> bool:
        return bool(self.needle) or self.problems_only

    def set_search(self, text: str) -> None:
        needle = text.strip().casefold()
        if needle != self.needle:
            self._change_filter(lambda: setattr(self, "needle", needle))

    def set_problems_only(self, on: bool) -> None:
        if on != self.problems_only:
            self._change_filter(lambda: setattr(self, "problems_only", on))

    def _change_filter(self, change: Callable[[], None]) -> None:
        self._matched = {}  # valid only inside: the rows cannot change while Qt re-filters
        try:
            if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.9; invalidateFilter() is deprecated there
                self.beginFilterChange()
                change()
                self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
            else:  # pragma: no cover - older Qt
                change()
                self.invalidateFilter()
        finally:
            self._matched = None

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if not self.filtering:
            return True
        model = self.sourceModel()
        if not isinstance(model, RoundMessagesModel):
            raise TypeError("RoundMessagesProxy filters a RoundMessagesModel")
        if not source_parent.isValid():  # a batch shows when one of its messages matches
            return any(self._batch_matches(model, source_row))
        if self._matched is not None:
            matches = self._batch_matches(model, source_parent.row())
            return source_row < len(matches) and matches[source_row]
        node = model.node_at(source_row, source_parent)  # a row that changed: asked afresh
        return node is not None and self._matches(node)

    def _batch_matches(self, model: RoundMessagesModel, row: int) -> list[bool]:
        """Whether each message of the batch row ``row`` matches (remembered while a new filter
        is applied)."""
        memo = self._matched
        if memo is not None and (known := memo.get(row)) is not None:
            return known
        needle, problems_only = self.needle, self.problems_only
        matches = [
            (not problems_only or node.problem) and (not needle or needle in node.search)
            for node in model.batch_children(row)
        ]
        if memo is not None:
            memo[row] = matches
        return matches

    def _matches(self, node: MessageNode) -> bool:
        if self.problems_only and not node.problem:
            return False
        return not self.needle or self.needle in node.search

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        # The view asks every row's first cell whether it can have children (twice per row at
        # each relayout, e.g. when a search is cleared); through the source that is two Python
        # calls (index and flags) per question, and ``index.parent()`` would be one too. A
        # message row's cells are never editable except its address, so those are answered
        # here. A top-level row is told apart without the source: the proxy's indexes carry
        # the mapping of their parent, and every top-level row shares the first row's.
        if (
            index.column() != _ADDRESS
            and index.isValid()
            and index.internalId() != self.index(0, 0).internalId()
        ):
            return MESSAGE_FLAGS
        return super().flags(index)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)
