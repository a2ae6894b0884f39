"""What a page exports: one table with a title, read from the page's own (filtered, sorted) model,
so a file holds exactly the rows the director sees, in the same words.

- ``round_table``: the round view's messages, one row each, with its batch and the provider's
  reason (what a chief adjudicator needs next to "Bounced").
- ``problems_table``: the Problems view's rows.
- ``person_table``: one person's history: every message sent to them and every change of address,
  newest first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt

from tabmail.domain.actor import AddressChange, describe
from tabmail.domain.notification import BulkNotification, Message
from tabmail.domain.problems import PROBLEM_CATEGORIES, category_of, effective_status
from tabmail.domain.tournament import Person
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.words import aware, batch_title, row_look

_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(slots=True)
class ExportTable:
    title: str
    headers: list[str]
    rows: list[list[str]]
    subtitle: str = ""
    file_stem: str = "tabmail-export"  # a suggested file name, without extension
    marked: list[bool] = field(default_factory=list)  # per row: an unresolved problem
    # A column whose value groups the rows (the round view's batch): a CSV keeps it in every
    # row; a printout shows it once as a heading above its rows.
    group_column: int | None = None

    def __post_init__(self) -> None:
        if not self.marked:
            self.marked = [False] * len(self.rows)


def safe_stem(*parts: str) -> str:
    """A file name from titles: "round-1-demo-open" (no path separators, no spaces)."""
    text = "-".join(p for p in parts if p).strip().lower()
    return _UNSAFE.sub("-", text).strip("-")[:80] or "tabmail-export"


def exported_at(now: datetime | None = None) -> str:
    local = (now or datetime.now(UTC)).astimezone()
    return f"Exported {local:%d %b %Y, %H:%M}"


def _text(model: QAbstractItemModel, row: int, column: int, parent: QModelIndex) -> str:
    value = model.index(row, column, parent).data()
    return "" if value is None else str(value)


def round_table(
    model: QAbstractItemModel, title: str, *, filters: str = "", now: datetime | None = None
) -> ExportTable:
    """Every message row of the round view's ``model`` (its proxy: what is shown) under its
    batch, in the view's order."""
    columns = model.columnCount()
    headers = ["Batch"] + [str(model.headerData(c, Qt.Orientation.Horizontal)) for c in range(columns)]
    headers.insert(5, "Reason")  # after Status
    rows: list[list[str]] = []
    marked: list[bool] = []
    for b in range(model.rowCount()):
        batch = model.index(b, 0)
        name = "" if batch.data() is None else str(batch.data())
        for r in range(model.rowCount(batch)):
            cells = [_text(model, r, c, batch) for c in range(columns)]
            message: Any = model.index(r, 0, batch).data(Roles.OBJECT)
            reason = (message.status_reason or message.last_error or "") if message is not None else ""
            row = [name, *cells]
            row.insert(5, reason)
            rows.append(row)
            marked.append(bool(model.index(r, 0, batch).data(Roles.PROBLEM)))
    subtitle = " · ".join(x for x in (exported_at(now), filters) if x)
    return ExportTable(title, headers, rows, subtitle, safe_stem(title), marked, group_column=0)


def problems_table(
    model: QAbstractItemModel, title: str, *, hidden: set[int] | None = None, now: datetime | None = None
) -> ExportTable:
    """The Problems view's rows as shown (``hidden``: columns the view hides)."""
    shown = [c for c in range(model.columnCount()) if c not in (hidden or set())]
    headers = [str(model.headerData(c, Qt.Orientation.Horizontal)) for c in shown]
    rows = [[_text(model, r, c, QModelIndex()) for c in shown] for r in range(model.rowCount())]
    return ExportTable(title, headers, rows, exported_at(now), safe_stem(title))  # all problems: no emphasis


PERSON_HEADERS = ["When", "What", "Round", "Address", "Status", "Detail"]
EVENT_NAMES = {"draw": "Draw release", "ballot": "Ballot receipt", "custom": "Custom message"}
SOURCE_NAMES = {
    "import": "Address imported",
    "director": "Address edited in tabmail",
    "resend": "Address corrected for a resend",
    "tabbycat": "Address written back to Tabbycat",
}


def person_table(
    person: Person,
    messages: list[Message],
    batches: dict[int, BulkNotification],
    round_names: dict[int, str],
    history: list[AddressChange],
    *,
    tournament: str = "",
    now: datetime | None = None,
) -> ExportTable:
    """One person's history, newest first: messages (what, round, address, status, reason) and
    address changes (old → new)."""
    entries: list[tuple[datetime, list[str], bool]] = []
    for m in messages:
        batch = batches.get(m.batch_id)
        when = aware(m.sent_at or m.created_at) or datetime.min.replace(tzinfo=UTC)
        what = EVENT_NAMES.get(batch.event.value, batch.event.value) if batch else "Message"
        if m.resend_of:
            what += " (a resend)"
        category = category_of(m)
        look = row_look(effective_status(m), category)
        round_name = round_names.get(batch.round_id, "") if batch and batch.round_id else ""
        if batch and not round_name:
            round_name = batch_title(batch) if batch.round_id is None else ""
        detail = m.status_reason or m.last_error or ""
        entries.append(
            (
                when,
                [_stamp(when), what, round_name, m.address, look.label, detail],
                category in PROBLEM_CATEGORIES,
            )
        )
    for when, old, new, source, by, machine in history:
        at = aware(when) or datetime.min.replace(tzinfo=UTC)
        change = f"{old} → {new}" if old and new else (f"removed (was {old})" if old else f"set to {new}")
        made = describe(by, machine)
        change += f" (by {made})" if made else ""
        entries.append(
            (
                at,
                [_stamp(at), SOURCE_NAMES.get(source, source.capitalize()), "", new or "", "", change],
                False,
            )
        )
    entries.sort(key=lambda e: e[0], reverse=True)
    title = f"{person.name} — history"
    subtitle = " · ".join(x for x in (tournament, person.email or "no address", exported_at(now)) if x)
    return ExportTable(
        title,
        list(PERSON_HEADERS),
        [e[1] for e in entries],
        subtitle,
        safe_stem(person.name, "history"),
        [e[2] for e in entries],
    )


def _stamp(when: datetime) -> str:
    if when == datetime.min.replace(tzinfo=UTC):
        return ""
    return f"{when.astimezone():%d %b %Y, %H:%M}"
