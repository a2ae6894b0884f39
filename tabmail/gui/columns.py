"""A table's column widths, fitted to the table's width (the participants, round and problems views).

With room enough, each column has the width typical data needs and one column (the ``fill``:
the address, or the problem's reason) takes what is left. In a narrow window (the first start on
a laptop: a page beside the navigator is ~900 px) the columns the director needs least give way
first, each down to a smallest width, so what is read and fixed there stays readable and in view.
No column is narrower than its header's words (and its sort arrow, where shown). Below the sum of the smallest widths the
table scrolls sideways. Once the director resizes a column by hand, the widths are theirs.

A table is configured with a ``ColumnPlan``; ``ColumnFitter`` applies it to the view.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QHeaderView, QStyle, QTableView, QTreeView


@dataclass(frozen=True)
class ColumnPlan:
    """How a table's columns share its width.

    ``preferred``: every column's width with room enough (``fill``'s is its smallest share of a
    wide table: it takes the room left over). ``give_way``: (column, smallest width) in the order
    the columns give way when the table is too narrow; a column not listed keeps its width.
    """

    preferred: Mapping[int, int]
    give_way: Sequence[tuple[int, int]]
    fill: int

    def widths(
        self, available: int, hidden: Collection[int] = (), floors: Mapping[int, int] | None = None
    ) -> dict[int, int]:
        """Each shown column's width in a table ``available`` pixels wide. ``floors``: widths no
        column goes below (its header's words), whatever the plan says."""
        floors = floors or {}
        widths = {c: max(w, floors.get(c, 0)) for c, w in self.preferred.items() if c not in hidden}
        short = sum(widths.values()) - available
        if short <= 0:
            if self.fill in widths:
                widths[self.fill] -= short  # the room left over
            return widths
        for column, smallest in self.give_way:
            if column not in widths:
                continue
            give = max(0, min(short, widths[column] - max(smallest, floors.get(column, 0))))
            widths[column] -= give
            short -= give
            if short == 0:
                break
        return widths


def _header(view: QTableView | QTreeView) -> QHeaderView:
    return view.horizontalHeader() if isinstance(view, QTableView) else view.header()


def header_width(header: QHeaderView, column: int) -> int:
    """The width ``column``'s header needs for its words, and for the sort arrow if it has it."""
    if header.isSortIndicatorShown() and header.sortIndicatorSection() == column:
        return header.sectionSizeHint(column)
    model = header.model()
    text = str(model.headerData(column, Qt.Orientation.Horizontal) or "") if model is not None else ""
    margin = header.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
    return header.fontMetrics().horizontalAdvance(text) + 2 * margin + 2


class ColumnFitter(QObject):
    """Fits ``view``'s columns to ``plan`` whenever its viewport changes width or a column is
    shown or hidden, until the director resizes a column by hand (``by_hand``)."""

    def __init__(self, view: QTableView | QTreeView, plan: ColumnPlan) -> None:
        super().__init__(view)
        self._view = view
        self.plan = plan
        self._fitting = False
        self.by_hand = False
        self.header = _header(view)
        self.header.setStretchLastSection(False)
        self.header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.header.setMinimumSectionSize(60)
        self.header.sectionResized.connect(self._on_section_resized)
        self.header.sortIndicatorChanged.connect(lambda *_: self.fit())  # the arrow moved
        view.viewport().installEventFilter(self)
        self.fit()

    def fit(self) -> None:
        """Fits the columns to the viewport's width now (unless one was resized by hand)."""
        if self.by_hand:
            return
        header = self.header
        hidden = {c for c in self.plan.preferred if header.isSectionHidden(c)}
        floors = {c: header_width(header, c) for c in self.plan.preferred if c not in hidden}
        self._fitting = True
        try:
            for column, width in self.plan.widths(self._view.viewport().width(), hidden, floors).items():
                header.resizeSection(column, width)
        finally:
            self._fitting = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit()
        return False

    def _on_section_resized(self, _column: int, old: int, new: int) -> None:
        if self._fitting:
            return
        if old == 0 or new == 0:  # a column hidden or shown: the others share its room
            QTimer.singleShot(0, self, self.fit)
            return
        self.by_hand = True
