"""Search, "problems only" and sorting within groups for the round tree.

Filtering is recursive: a batch row stays while any of its messages matches. Batches are not
matched themselves when a filter is on, so "problems only" shows exactly the batches that have
a problem, each with just its problem rows. Sorting orders messages within each batch; batches
always stay newest first, whichever column or direction is chosen.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt

from tabmail.gui.roles import Roles
from tabmail.gui.rounds.model import RoundRoles

AnyIndex = QModelIndex | QPersistentModelIndex


class RoundMessagesProxy(QSortFilterProxyModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.needle = ""
        self.problems_only = False
        self.setRecursiveFilteringEnabled(True)
        self.setSortRole(Roles.SORT)
        self.setDynamicSortFilter(True)

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
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.9; invalidateFilter() is deprecated there
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if not source_parent.isValid():
            return not self.filtering  # a batch shows when one of its messages matches
        index = self.sourceModel().index(source_row, 0, source_parent)
        if self.problems_only and not index.data(Roles.PROBLEM):
            return False
        return not self.needle or self.needle in (index.data(RoundRoles.SEARCH) or "")

    def lessThan(self, left: AnyIndex, right: AnyIndex) -> bool:
        if not left.parent().isValid():
            lkey = (left.data(RoundRoles.CREATED) or 0.0, left.data(Roles.ID) or 0)
            rkey = (right.data(RoundRoles.CREATED) or 0.0, right.data(Roles.ID) or 0)
            newer_first = lkey > rkey
            return newer_first if self.sortOrder() == Qt.SortOrder.AscendingOrder else lkey < rkey
        return super().lessThan(left, right)
