"""A message's provider events, oldest first, as a small table model."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from tabmail.domain.notification import StatusEvent
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.words import full_time, local_time
from tabmail.gui.theme import Theme, delivery_status_look

AnyIndex = QModelIndex | QPersistentModelIndex


class TimelineColumn(enum.IntEnum):
    TIME = 0
    STATUS = 1
    EVENT = 2
    REASON = 3


HEADERS = {
    TimelineColumn.TIME: "Time",
    TimelineColumn.STATUS: "Status",
    TimelineColumn.EVENT: "Provider event",
    TimelineColumn.REASON: "Reason",
}


class TimelineModel(QAbstractTableModel):
    def __init__(self, theme: Theme, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._theme = theme
        self._events: list[StatusEvent] = []

    def set_events(self, events: Sequence[StatusEvent]) -> None:
        self.beginResetModel()
        self._events = list(events)
        self.endResetModel()

    @property
    def events(self) -> list[StatusEvent]:
        return list(self._events)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._events)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(TimelineColumn)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(TimelineColumn):
            return HEADERS[TimelineColumn(section)]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._events):
            return None
        ev = self._events[index.row()]
        column = TimelineColumn(index.column())
        look = delivery_status_look(ev.status)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == TimelineColumn.TIME:
                return local_time(ev.event_time, seconds=True)
            if column == TimelineColumn.STATUS:
                return look.label
            if column == TimelineColumn.EVENT:
                return f"{ev.event} ({ev.provider})"
            return ev.reason or ""
        if role == Qt.ItemDataRole.DecorationRole and column == TimelineColumn.STATUS:
            return self._theme.icon(look)
        if role == Qt.ItemDataRole.ForegroundRole and column == TimelineColumn.STATUS:
            return self._theme.foreground(look.tone)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == TimelineColumn.TIME:
                return f"Provider time {full_time(ev.event_time)}\nReceived {full_time(ev.received_at)}"
            if column == TimelineColumn.STATUS:
                return look.description
            return ev.reason or None
        if role == Roles.STATUS:
            return ev.status.value
        if role == Roles.OBJECT:
            return ev
        return None
