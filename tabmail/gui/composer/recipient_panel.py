"""The compose dialog's left side: the recipient table with its search, selection menu and
counts. The rows themselves are ``RecipientsModel``'s (composer.recipients)."""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QHeaderView, QTableView, QVBoxLayout, QWidget

from tabmail.gui.composer.recipients import (
    MARK_LOOKS,
    RecipientColumn,
    RecipientsModel,
    RecipientsProxy,
    mark_look,
    selection_button,
)
from tabmail.gui.theme import Theme
from tabmail.gui.widgets import SearchField, muted_label
from tabmail.services.notify import Mark, PlannedRecipient

COUNTED: tuple[tuple[Mark, str], ...] = (
    (Mark.ALREADY_SENT, "already sent"),
    (Mark.FLAGGED, "flagged"),
    (Mark.NO_ADDRESS, "without an address"),
    (Mark.INVALID, "with an invalid address"),
    (Mark.NO_KEY, "without a private URL"),
    (Mark.UNCHANGED, "unchanged since the previous email"),
)


class RecipientPanel(QWidget):
    def __init__(self, theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = RecipientsModel(theme, self)
        self.proxy = RecipientsProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = self._build_table()
        self.search = SearchField("Search recipients", self, theme)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.select_button = selection_button(self.model, self)
        self.count_label = muted_label("", self)
        self.count_label.setObjectName("compose-count")
        self.count_label.setWordWrap(True)

        ll = QVBoxLayout(self)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.setSpacing(6)
        tools = QHBoxLayout()
        tools.addWidget(self.search, 1)
        tools.addWidget(self.select_button)
        ll.addLayout(tools)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.count_label)

    def _build_table(self) -> QTableView:
        table = QTableView(self)
        table.setObjectName("compose-recipients")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(RecipientColumn.NOTE, Qt.SortOrder.AscendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(RecipientColumn.ADDRESS, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(RecipientColumn.NAME, 175)
        header.resizeSection(RecipientColumn.ROLE, 88)
        header.resizeSection(RecipientColumn.NOTE, 130)
        return table

    def current(self) -> PlannedRecipient | None:
        """The row to preview: the current one, else the first ticked, else the first."""
        current = self.proxy.mapToSource(self.table.currentIndex())
        if current.isValid():
            return self.model.recipient(current.row())
        chosen = self.model.selected_recipients()
        if chosen:
            return chosen[0]
        rows = self.model.recipients
        return rows[0] if rows else None

    def update_counts(self) -> None:
        m = self.model
        parts = [f"{m.selected_count()} of {m.rowCount()} ticked"]
        for mark, words in COUNTED:
            if not (n := m.count(mark)):
                continue
            if mark is Mark.FLAGGED:  # in the rows' words: a spam report or a block is not "bouncing"
                kinds = Counter(
                    (mark_look(r) or MARK_LOOKS[mark]).label.lower() for r in m.recipients if r.mark is mark
                )
                parts.append(f"{n} flagged: " + ", ".join(f"{k} {label}" for label, k in kinds.items()))
            else:
                parts.append(f"{n} {words}")
        self.count_label.setText(" · ".join(parts))

    def set_enabled(self, on: bool) -> None:
        for w in (self.table, self.select_button, self.search):
            w.setEnabled(on)
