"""The compose dialog's recipient list: one row per planned recipient, with a tick box.

Who is ticked by default is the plan's decision (``Plan.default_selection``: everyone new).
Already-sent and flagged recipients are marked and unticked but can be ticked; people with no
or an invalid address are marked and cannot be ticked at all (there is nothing to send to).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QPushButton, QWidget

from tabmail.compose.changes import Change
from tabmail.gui.collation import compare
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.words import ROLE_NAMES
from tabmail.gui.theme import Look, Theme, Tone, address_look, flag_look
from tabmail.services.notify import Mark, PlannedRecipient

AnyIndex = QModelIndex | QPersistentModelIndex


class RecipientColumn(enum.IntEnum):
    NAME = 0
    ROLE = 1
    ADDRESS = 2
    NOTE = 3


HEADERS = {
    RecipientColumn.NAME: "Recipient",
    RecipientColumn.ROLE: "Role",
    RecipientColumn.ADDRESS: "Address",
    RecipientColumn.NOTE: "Note",
}
MARK_LOOKS: dict[Mark, Look] = {
    Mark.ALREADY_SENT: Look(
        Tone.NEUTRAL,
        "Already sent",
        "Already received this notification for this round: unticked, tick to send it again.",
        "double_check",
    ),
    Mark.FLAGGED: Look(
        Tone.BAD, "Bouncing", "Mail to this address bounced before: unticked, tick to try anyway.", "cross"
    ),
    Mark.NO_ADDRESS: address_look("missing"),
    Mark.INVALID: address_look("invalid"),
    Mark.NO_KEY: Look(
        Tone.WARNING,
        "No private URL",
        "This person has no private URL on the site: nothing to send.",
        "slash",
    ),
}
# Changes-only re-release of a draw: what happened to each recipient since their last email.
CHANGE_LOOKS: dict[Change, Look] = {
    Change.CHANGED: Look(
        Tone.WARNING, "Changed", "The assignment changed since the previous email.", "arrow"
    ),
    Change.UNCHANGED: Look(
        Tone.NEUTRAL, "Unchanged", "Same assignment as in the previous email: unticked.", "double_check"
    ),
    Change.NEW: Look(Tone.GOOD, "New", "Not in an earlier email of this round's draw.", "dot"),
    Change.REMOVED: Look(
        Tone.WARNING, "Removed", "No longer in this round's draw: gets a notice saying so.", "minus"
    ),
}
# A ticked-by-default rule of the kind (motions: adjudicators unticked) left this row unticked.
UNTICKED_LOOK = Look(Tone.NEUTRAL, "Unticked by default", "", "minus")
# Marks that need a look from the director, first when sorting by the note column.
MARK_ORDER = {
    Mark.INVALID: 0,
    Mark.NO_ADDRESS: 1,
    Mark.NO_KEY: 2,
    Mark.FLAGGED: 3,
    Mark.ALREADY_SENT: 4,
    Mark.OK: 5,
    Mark.UNCHANGED: 6,
}


def mark_look(r: PlannedRecipient) -> Look | None:
    """A recipient's mark; a flagged address in the one vocabulary (a block or a spam report is
    not "bouncing")."""
    if r.mark is Mark.FLAGGED and r.flag is not None:
        kind = flag_look(r.flag.kind)
        return Look(kind.tone, kind.label, f"{kind.description} Unticked: tick to try anyway.", kind.glyph)
    if r.change is not None and r.mark in (Mark.OK, Mark.UNCHANGED):
        look = CHANGE_LOOKS[r.change]
        lines = r.recipient.context.get("CHANGES") or []
        description = look.description + ("\n" + "\n".join(str(x) for x in lines) if lines else "")
        return Look(look.tone, look.label, description, look.glyph)
    if r.mark is Mark.OK and r.note:
        return Look(
            UNTICKED_LOOK.tone, UNTICKED_LOOK.label, f"{r.note}: tick to include.", UNTICKED_LOOK.glyph
        )
    return MARK_LOOKS.get(r.mark)


class RecipientsModel(QAbstractTableModel):
    selection_changed = Signal()

    def __init__(self, theme: Theme, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._theme = theme
        self._rows: list[PlannedRecipient] = []
        self._selected: set[str] = set()

    # -- contents -----------------------------------------------------------------------------
    def set_recipients(self, recipients: Iterable[PlannedRecipient], selected: Iterable[str]) -> None:
        self.beginResetModel()
        self._rows = list(recipients)
        sendable = {r.key for r in self._rows if r.mark.sendable}
        self._selected = set(selected) & sendable
        self.endResetModel()
        self.selection_changed.emit()

    def recipient(self, row: int) -> PlannedRecipient:
        return self._rows[row]

    @property
    def recipients(self) -> list[PlannedRecipient]:
        return list(self._rows)

    def row_of(self, key: str) -> int | None:
        return next((i for i, r in enumerate(self._rows) if r.key == key), None)

    # -- the selection --------------------------------------------------------------------------
    def selected_keys(self) -> set[str]:
        return set(self._selected)

    def selected_recipients(self) -> list[PlannedRecipient]:
        return [r for r in self._rows if r.key in self._selected]

    def selected_count(self) -> int:
        return len(self._selected)

    def count(self, mark: Mark) -> int:
        return sum(1 for r in self._rows if r.mark is mark)

    def select(self, *, on: bool, role: str | None = None, marks: Iterable[Mark] | None = None) -> None:
        """Tick (or untick) every sendable recipient, of ``role`` and with ``marks`` when given."""
        wanted = set(marks) if marks is not None else None
        for r in self._rows:
            if not r.mark.sendable:
                continue
            if role is not None and r.recipient.role != role:
                continue
            if wanted is not None and r.mark not in wanted:
                continue
            (self._selected.add if on else self._selected.discard)(r.key)
        self._checks_changed()

    def select_default(self) -> None:
        self._selected = {r.key for r in self._rows if r.selected_by_default}
        self._checks_changed()

    def _checks_changed(self) -> None:
        if self._rows:
            self.dataChanged.emit(
                self.index(0, RecipientColumn.NAME),
                self.index(len(self._rows) - 1, RecipientColumn.NAME),
                [Qt.ItemDataRole.CheckStateRole],
            )
        self.selection_changed.emit()

    # -- Qt model API -------------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(RecipientColumn)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(RecipientColumn):
            return HEADERS[RecipientColumn(section)]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
        if index.column() == RecipientColumn.NAME and self._rows[index.row()].mark.sendable:
            base |= Qt.ItemFlag.ItemIsUserCheckable
        return base

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not index.isValid():
            return False
        r = self._rows[index.row()]
        if not r.mark.sendable:
            return False
        on = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        (self._selected.add if on else self._selected.discard)(r.key)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        self.selection_changed.emit()
        return True

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        r = self._rows[index.row()]
        column = RecipientColumn(index.column())
        look = mark_look(r)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, column)
        if role == Qt.ItemDataRole.CheckStateRole and column == RecipientColumn.NAME:
            return Qt.CheckState.Checked if r.key in self._selected else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole and column == RecipientColumn.NOTE and look is not None:
            return self._theme.icon(look)
        if role == Qt.ItemDataRole.ForegroundRole:
            if not r.mark.sendable:
                return self._theme.foreground(Tone.NEUTRAL)
            if column == RecipientColumn.NOTE and look is not None:
                return self._theme.foreground(look.tone)
            return None
        if role == Qt.ItemDataRole.BackgroundRole and r.mark in (Mark.FLAGGED, Mark.INVALID) and look:
            return (
                self._theme.background(look.tone)
                if column in (RecipientColumn.ADDRESS, RecipientColumn.NOTE)
                else None
            )
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r)
        if role == Roles.STATUS:
            return r.mark.value
        if role == Roles.PROBLEM:
            return r.mark in (Mark.FLAGGED, Mark.INVALID, Mark.NO_ADDRESS, Mark.NO_KEY)
        if role == Roles.ID:
            return r.key
        if role == Roles.OBJECT:
            return r
        if role == Roles.SORT:
            if column == RecipientColumn.NOTE:
                return f"{MARK_ORDER[r.mark]} {r.recipient.name.casefold()}"
            return f"{self._text(r, column).casefold()} {r.recipient.name.casefold()}"
        return None

    def _text(self, r: PlannedRecipient, column: RecipientColumn) -> str:
        if column == RecipientColumn.NAME:
            return r.recipient.name
        if column == RecipientColumn.ROLE:
            return ROLE_NAMES.get(r.recipient.role, r.recipient.role.capitalize())
        if column == RecipientColumn.ADDRESS:
            return r.recipient.address or "—"
        look = mark_look(r)
        return look.label if look else ""

    def _tooltip(self, r: PlannedRecipient) -> str:
        lines = [f"{r.recipient.name} <{r.recipient.address or 'no address'}>"]
        look = mark_look(r)
        if look is not None:
            lines.append(look.description)
        if r.recipient.problem or r.problem:
            lines.append(f"Problem: {r.recipient.problem or r.problem}")
        if r.flag is not None:
            lines.append(f"Flagged ({r.flag.kind.value}): {r.flag.diagnostic}")
        if r.recipient.reasons:
            lines.append("Why: " + "; ".join(r.recipient.reasons))
        return "\n".join(lines)


class RecipientsProxy(QSortFilterProxyModel):
    """Search by name, role or address."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.setSortRole(Roles.SORT)

    def lessThan(self, source_left: AnyIndex, source_right: AnyIndex) -> bool:
        """Names sort by locale collation ("Céline" before "Chiara"), not by code point."""
        left, right = source_left.data(Roles.SORT), source_right.data(Roles.SORT)
        if isinstance(left, str) and isinstance(right, str):
            return compare(left, right) < 0
        return bool(super().lessThan(source_left, source_right))


def selection_button(model: RecipientsModel, parent: QWidget) -> QPushButton:
    """A "Select" button whose menu ticks or unticks everyone, or one role, or one mark."""
    button = QPushButton("Select", parent)
    button.setObjectName("compose-select")
    menu = QMenu(button)
    m = Mark

    def add(text: str, **kw: Any) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda: model.select(**kw))
        return action

    add("All", on=True, marks=(m.OK, m.ALREADY_SENT))
    add("None", on=False)
    menu.addAction("Default (everyone new)", model.select_default)
    menu.addSeparator()
    add("All Adjudicators", on=True, role="adjudicator", marks=(m.OK, m.ALREADY_SENT))
    add("No Adjudicators", on=False, role="adjudicator")
    add("All Speakers", on=True, role="speaker", marks=(m.OK, m.ALREADY_SENT))
    add("No Speakers", on=False, role="speaker")
    menu.addSeparator()
    add("Include Those Already Sent", on=True, marks=(m.ALREADY_SENT,))
    add("Include Flagged Addresses", on=True, marks=(m.FLAGGED,))
    button.setMenu(menu)
    return button
