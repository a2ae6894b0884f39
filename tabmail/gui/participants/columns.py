"""The participants table's column widths, fitted to the table's width.

With room enough, each column has the width typical data needs and the address takes what is
left. In a narrow window (the first start on a laptop: the table beside the person panel is
~650 px) the columns the director needs least give way first, down to a smallest width each, so
the address, which is what is read and fixed here, and its status stay readable and in view.
Once the director resizes a column by hand, the widths are theirs.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QHeaderView, QTableView

from tabmail.gui.participants.model import Column

PREFERRED = {
    Column.NAME: 160,
    Column.ROLE: 90,
    Column.TEAM: 105,
    Column.INSTITUTION: 150,
    Column.EMAIL: 240,
    Column.STATUS: 125,
}
# Who gives way first, and down to what.
GIVE_WAY = (
    (Column.INSTITUTION, 70),
    (Column.TEAM, 80),
    (Column.NAME, 130),
    (Column.ROLE, 80),
    (Column.EMAIL, 180),
    (Column.STATUS, 110),
)


def fitted_widths(available: int) -> dict[Column, int]:
    """Each column's width in a table ``available`` pixels wide."""
    widths = dict(PREFERRED)
    short = sum(widths.values()) - available
    if short <= 0:
        widths[Column.EMAIL] -= short  # the room left over
        return widths
    for column, smallest in GIVE_WAY:
        give = min(short, widths[column] - smallest)
        widths[column] -= give
        short -= give
        if short == 0:
            break
    return widths


class ColumnFitter(QObject):
    """Fits ``table``'s columns whenever its viewport changes width, until one is resized by hand."""

    def __init__(self, table: QTableView) -> None:
        super().__init__(table)
        self._table = table
        self._fitting = False
        self.by_hand = False
        header = table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setMinimumSectionSize(60)
        header.sectionResized.connect(self._on_section_resized)
        table.viewport().installEventFilter(self)
        self.fit()

    def fit(self) -> None:
        self._fitting = True
        try:
            for column, width in fitted_widths(self._table.viewport().width()).items():
                self._table.setColumnWidth(column, width)
        finally:
            self._fitting = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and not self.by_hand:
            self.fit()
        return False

    def _on_section_resized(self, *_args: object) -> None:
        if not self._fitting:
            self.by_hand = True
