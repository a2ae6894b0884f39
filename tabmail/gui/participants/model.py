"""The participants of one tournament as a table model, with editable, validated addresses."""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from tabmail.domain.addresses import unusual_domain, validate_address
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import PersonChanged
from tabmail.domain.notification import AddressFlag
from tabmail.domain.tournament import Person, Role
from tabmail.gui.collation import sort_key
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Look, Theme, Tone, address_look, flag_look
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    NAME = 0
    ROLE = 1
    TEAM = 2
    INSTITUTION = 3
    EMAIL = 4
    STATUS = 5


HEADERS = {
    Column.NAME: "Name",
    Column.ROLE: "Role",
    Column.TEAM: "Team",
    Column.INSTITUTION: "Institution",
    Column.EMAIL: "Email address",
    Column.STATUS: "Address status",
}
ROLE_NAMES = {Role.SPEAKER: "Speaker", Role.ADJUDICATOR: "Adjudicator"}
# Worst first: the sort order of the status column.
STATUS_SEVERITY = {"flagged": 0, "invalid": 1, "missing": 2, "inactive": 3, "ok": 4}
PROBLEM_STATUSES = frozenset({"flagged", "invalid", "missing"})
EDIT_SOURCE = "director"


def address_status(person: Person, flags: Mapping[str, AddressFlag] | None = None) -> str:
    """One of ``STATUS_SEVERITY``'s keys for a person's address."""
    if flags and person.email_key and person.email_key in flags:
        return "flagged"
    if not person.email:
        return "missing"
    if not person.email_valid:
        return "invalid"
    if not person.active:
        return "inactive"
    return "ok"


class ParticipantsModel(QAbstractTableModel):
    """One row per person. Editing the address column writes through the repository.

    ``Roles.STATUS`` on any cell is the row's address status; ``Roles.PROBLEM`` is True for
    rows needing attention. An invalid address typed in is stored and shown as invalid (the
    director may be mid-correction), never silently dropped.
    """

    address_edited = Signal(int, bool, str)  # person id, valid, problem ("" when valid)
    edit_failed = Signal(str)  # a TabmailError's message
    address_changed = Signal(int, str, str)  # person id, old, new: an edit made here (for undo)

    def __init__(self, ctx: AppContext, theme: Theme | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._theme = theme or Theme()
        self._people: list[Person] = []
        self._rows: dict[int, int] = {}
        self._flags: dict[str, AddressFlag] = {}
        self._problems: dict[int, str] = {}
        self.tournament_id: int | None = None
        self._sort: tuple[Column, Qt.SortOrder] = (Column.NAME, Qt.SortOrder.AscendingOrder)

    # -- loading ----------------------------------------------------------------------
    def load(self, tournament_id: int | None) -> None:
        self.beginResetModel()
        self.tournament_id = tournament_id
        self._people = [] if tournament_id is None else self._ctx.tournaments.people(tournament_id)
        self._flags = self._active_flags()
        self._order_rows()
        self._problems.clear()
        self.endResetModel()

    def reload_flags(self) -> None:
        """Re-read the bounce flags of this tournament's addresses (after a poll)."""
        self.set_address_flags(self._active_flags())

    def _active_flags(self) -> dict[str, AddressFlag]:
        keys = [p.email_key for p in self._people if p.email_key]
        return self._ctx.flags.active(keys) if keys else {}

    def refresh_person(self, person_id: int) -> bool:
        """Re-read one person and update their row in place; False when not in this model."""
        row = self._rows.get(person_id)
        if row is None:
            return False
        fresh = self._ctx.tournaments.get_person(person_id)
        if fresh.email_key and fresh.email_key not in self._flags:
            self._flags.update(self._ctx.flags.active([fresh.email_key]))
        self._replace(row, fresh)
        return True

    def set_address_flags(self, flags: Mapping[str, AddressFlag]) -> None:
        """Bounce flags by address key; flagged rows are highlighted."""
        self._flags = dict(flags)
        if self._people:
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(Column) - 1))

    def _replace(self, row: int, fresh: Person) -> None:
        old = self._people[row]
        # get_person() does not denormalise names; the team and institution did not change.
        self._people[row] = dataclasses.replace(
            fresh, team_name=old.team_name, institution_name=old.institution_name
        )
        self._problems.pop(fresh.id, None)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    # -- sorting ----------------------------------------------------------------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting happens here, once per click, with key functions (the proxy hands it over):
        a Python lessThan was called some 15,000 times for 2,000 people at every start."""
        self._sort = (Column(column), order)
        if not self._people:
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        ids = [self._people[p.row()].id if p.row() < len(self._people) else None for p in before]
        self._order_rows()
        after = [
            self.index(self._rows[pid], p.column()) if pid in self._rows else QModelIndex()
            for p, pid in zip(before, ids, strict=True)
        ]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _order_rows(self) -> None:
        column, order = self._sort
        names = {p.id: sort_key(p.name) for p in self._people}
        if column == Column.STATUS:
            key: Any = lambda p: (STATUS_SEVERITY[self.status_of(p)], names[p.id])  # noqa: E731
        elif column == Column.NAME:
            key = lambda p: names[p.id]  # noqa: E731
        else:
            key = lambda p: (sort_key(self._display(p, column)), names[p.id])  # noqa: E731
        self._people.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)
        self._rows = {p.id: i for i, p in enumerate(self._people)}

    # -- reading ----------------------------------------------------------------------
    def person_at(self, row: int) -> Person:
        return self._people[row]

    def row_of(self, person_id: int) -> int | None:
        return self._rows.get(person_id)

    @property
    def people(self) -> list[Person]:
        return list(self._people)

    def status_of(self, person: Person) -> str:
        return address_status(person, self._flags)

    def look_of(self, person: Person) -> Look:
        """The address's look; a flagged one in the one vocabulary (bouncing, blocked, invalid
        address, spam report, unsubscribed), never "bouncing" for every kind."""
        status = self.status_of(person)
        if status == "flagged":
            return flag_look(self._flags[person.email_key or ""].kind)
        return address_look(status)

    def problem_text(self, person: Person) -> str:
        """Why the address is a problem, in words ("" when it is fine)."""
        status = self.status_of(person)
        if status == "flagged":
            flag = self._flags[person.email_key or ""]
            return f"{flag_look(flag.kind).description} {flag.diagnostic}".strip()
        if status == "missing":
            return "No email address is known for this person."
        if status == "invalid":
            if person.id not in self._problems:
                self._problems[person.id] = validate_address(person.email)[2] or "not a valid address"
            return f"Not a valid address: {self._problems[person.id]}"
        return ""

    # -- Qt model API -----------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._people)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(Column):
            return HEADERS[Column(section)]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
        if index.column() == Column.EMAIL and not self._ctx.read_only:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._people):
            return None
        person = self._people[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(person, column)
        if role == Qt.ItemDataRole.EditRole:
            return (person.email or "") if column == Column.EMAIL else self._display(person, column)
        if role == Roles.STATUS:
            return self.status_of(person)
        if role == Roles.PROBLEM:
            return self.status_of(person) in PROBLEM_STATUSES
        if role == Roles.ID:
            return person.id
        if role == Roles.OBJECT:
            return person
        if role == Roles.SORT:
            if column == Column.STATUS:
                return STATUS_SEVERITY[self.status_of(person)]
            return (self._display(person, column) or "").casefold()
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            return self._colour(person, column, role)
        if role == Qt.ItemDataRole.DecorationRole and column == Column.STATUS:
            return self._theme.icon(self.look_of(person))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(person, column)
        return None

    def _display(self, person: Person, column: Column) -> str:
        if column == Column.NAME:
            return person.name
        if column == Column.ROLE:
            return ROLE_NAMES.get(person.role, str(person.role))
        if column == Column.TEAM:
            return person.team_name or ""
        if column == Column.INSTITUTION:
            return person.institution_name or ""
        if column == Column.EMAIL:
            return person.email or "—"
        return self.look_of(person).label

    def _colour(self, person: Person, column: Column, role: int) -> Any:
        status = self.status_of(person)
        look = self.look_of(person)
        if status == "inactive":
            if role == Qt.ItemDataRole.ForegroundRole:
                return self._theme.foreground(Tone.NEUTRAL)
            return None
        if status not in PROBLEM_STATUSES or column not in (Column.EMAIL, Column.STATUS):
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._theme.background(look.tone)
        return self._theme.foreground(look.tone)

    def _tooltip(self, person: Person, column: Column) -> str | None:
        if column in (Column.EMAIL, Column.STATUS):
            problem = self.problem_text(person)
            if problem:
                return f"{problem}\nDouble-click the address to correct it."
            note = unusual_domain(person.email) if person.email_valid else None
            unusual = f"Unusual domain: {note}.\n" if note else ""
            if column == Column.STATUS:
                return unusual + self.look_of(person).description
            return unusual + "Double-click to edit"
        if column == Column.NAME and not person.active:
            return f"{person.name}: {address_look('inactive').description.lower()}"
        text = self._display(person, column)
        return text or None  # the full text of a cell the column may elide

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != Column.EMAIL:
            return False
        person = self._people[index.row()]
        text = str(value or "").strip()
        if text == (person.email or ""):
            return False
        if text:
            valid, _normalised, why = validate_address(text)
            if not valid:  # refused before anything is stored: the working address stays
                kept = f"{person.name}'s address is still {person.email}." if person.email else ""
                self.edit_failed.emit(f"Not saved: {text!r} is not a usable address: {why}. {kept}".strip())
                return False
        old = person.email
        if not self.apply_address(person.id, text or None):
            return False
        self.address_changed.emit(person.id, old or "", text)
        return True

    def apply_address(self, person_id: int, email: str | None) -> bool:
        """Store a person's address (an edit, or its undo) and tell every screen."""
        row = self.row_of(person_id)
        try:
            fresh = self._ctx.tournaments.set_person_email(person_id, email, source=EDIT_SOURCE)
        except TabmailError as exc:
            self.edit_failed.emit(str(exc))
            return False
        if row is not None:
            self._replace(row, fresh)
            problem = "" if fresh.email_valid else self.problem_text(self._people[row])
            self.address_edited.emit(person_id, fresh.email_valid, problem)
        self._ctx.bus.publish(PersonChanged(person_id))
        return True
