"""The provider events that matched no message: kept, counted, and listed here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QTableView, QVBoxLayout, QWidget

from tabmail.domain.notification import StatusEvent
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Theme, delivery_status_look
from tabmail.gui.widgets import muted_label

AnyIndex = QModelIndex | QPersistentModelIndex
HEADERS = ("Time", "Event", "Address", "Reason", "Source")


class UnmatchedEventsModel(QAbstractTableModel):
    def __init__(self, events: Sequence[StatusEvent], theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._events = list(events)
        self._theme = theme

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._events)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and section < len(HEADERS)
        ):
            return HEADERS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._events):
            return None
        ev = self._events[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Roles.SORT):
            if col == 0:
                local = ev.event_time.astimezone()
                return local.isoformat() if role == Roles.SORT else f"{local:%d %b %H:%M:%S}"
            if col == 1:
                return f"{delivery_status_look(ev.status).label} ({ev.event})"
            if col == 2:
                return ev.address or "—"
            if col == 3:
                return " ".join((ev.reason or "").split())
            if col == 4:
                return ev.provider
        if role == Qt.ItemDataRole.DecorationRole and col == 1:
            return self._theme.icon(delivery_status_look(ev.status))
        if role == Qt.ItemDataRole.ToolTipRole and col == 3:
            return ev.reason or None
        if role == Roles.STATUS and col == 1:
            return ev.status.value
        return None


class UnmatchedEventsDialog(QDialog):
    """Lists unmatched events (newest first). They are never dropped; most are late bounces of
    addresses tabmail never wrote to, or messages sent by another tool on the same account."""

    def __init__(
        self, events: Sequence[StatusEvent], total: int, theme: Theme, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Unmatched delivery events")
        self.resize(900, 480)
        self.model = UnmatchedEventsModel(events, theme, self)
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self.model)
        proxy.setSortRole(Roles.SORT)
        self.table = QTableView(self)
        self.table.setModel(proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        for col, width in ((0, 130), (1, 170), (2, 240), (4, 80)):
            self.table.setColumnWidth(col, width)
        shown = len(events)
        note = muted_label(
            f"{total} event{'s' if total != 1 else ''} from the provider matched no message tabmail sent"
            + (f" (the newest {shown} shown)" if shown < total else "")
            + ". They are kept, never dropped: often a late bounce for an address tabmail never wrote to, "
            "or mail sent by another tool on the same account.",
            self,
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        # the mailbox's unmatched mail (replies too), with each message's text: another window
        self.mail_button = buttons.addButton("Unmatched Mail…", QDialogButtonBox.ButtonRole.ActionRole)
        self.mail_button.setObjectName("show-unmatched-mail")
        self.mail_button.setToolTip("Replies, bounces and spam reports from the mailbox that matched nothing")
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
