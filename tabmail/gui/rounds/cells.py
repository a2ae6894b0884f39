"""How the round tree's rows look and read: text, icons, colours, fonts, tooltips, sort keys.

``RoundMessagesModel`` owns a ``CellFormatter`` and hands it every ``data()`` call; the
formatter reads the round's contents (flags, resend links) and never changes them. Every value
comes from the node in O(1); status colours and icons come from ``gui/theme.py`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from tabmail.domain.problems import HAPPENED, SEVERITY
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.nodes import (
    BATCH,
    BATCH_LOOKS,
    DRAFT_LOOK,
    MESSAGE,
    RESEND_LOOK,
    BatchNode,
    Column,
    MessageNode,
    RoundContents,
    RoundRoles,
)
from tabmail.gui.rounds.words import (
    ROLE_NAMES,
    aware,
    backend_words,
    batch_title,
    counts_text,
    full_time,
    local_time,
    row_look,
)
from tabmail.gui.theme import RESOLVED_LOOK, Theme, Tone, flag_look

AnyIndex = QModelIndex | QPersistentModelIndex


class CellFormatter:
    """``data()`` for message and batch rows (see the module docstring)."""

    def __init__(self, theme: Theme, contents: RoundContents) -> None:
        self._theme = theme
        self._contents = contents
        self._bold = QFont()
        self._bold.setWeight(QFont.Weight.DemiBold)
        self._italic = QFont()
        self._italic.setItalic(True)
        self._message_roles = {int(role): answer for role, answer in self._message_answers().items()}

    def message_data(self, node: MessageNode, column: Column, role: int) -> Any:
        # One dict look-up per call: the view asks about eight roles of every painted cell, most
        # of them roles no message cell answers.
        answer = self._message_roles.get(role)
        return None if answer is None else answer(node, column)

    def _message_answers(self) -> dict[int, Callable[[MessageNode, Column], Any]]:
        """``data()`` of a message cell, by role."""
        theme = self._theme
        return {
            Qt.ItemDataRole.DisplayRole: self._message_text,
            Qt.ItemDataRole.EditRole: lambda node, column: (
                (node.draft or node.message.address)
                if column == Column.ADDRESS
                else self._message_text(node, column)
            ),
            Roles.STATUS: lambda node, _column: node.status,
            Roles.PROBLEM: lambda node, _column: node.problem,
            Roles.ID: lambda node, _column: node.message.id,
            Roles.OBJECT: lambda node, _column: node.message,
            Roles.KIND: lambda _node, _column: MESSAGE,
            Roles.SORT: self._message_sort,
            RoundRoles.BUCKET: lambda node, _column: node.bucket,
            RoundRoles.SEARCH: lambda node, _column: node.search,
            RoundRoles.DRAFT: lambda node, _column: node.draft,
            Qt.ItemDataRole.DecorationRole: self._message_icon,
            Qt.ItemDataRole.BackgroundRole: lambda node, _column: (
                theme.background(row_look(node.status, node.category).tone) if node.problem else None
            ),
            Qt.ItemDataRole.ForegroundRole: self._message_foreground,
            Qt.ItemDataRole.FontRole: self._message_font,
            Qt.ItemDataRole.ToolTipRole: self._message_tooltip,
            Qt.ItemDataRole.AccessibleTextRole: lambda node, column: (
                row_look(node.status, node.category).description if column == Column.STATUS else None
            ),
        }

    def _message_foreground(self, node: MessageNode, column: Column) -> Any:
        if node.resolved:
            return self._theme.foreground(Tone.GOOD) if column == Column.STATUS else None
        if column == Column.STATUS or (node.problem and column == Column.ADDRESS):
            return self._theme.foreground(row_look(node.status, node.category).tone)
        return None

    def _message_font(self, node: MessageNode, column: Column) -> QFont | None:
        if column == Column.ADDRESS and node.draft:
            return self._italic
        if node.problem and column in (Column.RECIPIENT, Column.STATUS):
            return self._bold
        return None

    def _message_text(self, node: MessageNode, column: Column) -> str:
        m = node.message
        if column == Column.RECIPIENT:
            return m.recipient_name + reply_marker(node.replies)
        if column == Column.ROLE:
            return ROLE_NAMES.get(m.role or "", (m.role or "").capitalize())
        if column == Column.ADDRESS:
            return node.draft or m.address
        if column == Column.STATUS:
            label = row_look(node.status, node.category).label
            if node.resolved:
                label += " · resolved"
            elif m.id in self._contents.resent_as:
                label += " · resent"
            elif node.draft:
                label += " · corrected"
            return label
        return local_time(m.status_at or m.sent_at or m.created_at)

    def _message_sort(self, node: MessageNode, column: Column) -> Any:
        m = node.message
        if column == Column.STATUS:
            return (
                f"{SEVERITY[node.category] + (50 if node.resolved else 0):02d} {m.recipient_name.casefold()}"
            )
        if column == Column.WHEN:
            at = aware(m.status_at or m.sent_at or m.created_at)
            return at.timestamp() if at else 0.0
        if column == Column.ADDRESS:
            return (node.draft or m.address).casefold()
        return f"{self._message_text(node, column).casefold()} {m.recipient_name.casefold()}"

    def _message_icon(self, node: MessageNode, column: Column) -> Any:
        if column == Column.STATUS:
            return self._theme.icon(RESOLVED_LOOK if node.resolved else row_look(node.status, node.category))
        if column == Column.ADDRESS:
            if node.draft:
                return self._theme.icon(DRAFT_LOOK)
            if node.key in self._contents.flags:
                return self._theme.icon(flag_look(self._contents.flags[node.key].kind))
        if column == Column.RECIPIENT and node.message.resend_of:
            return self._theme.icon(RESEND_LOOK)
        return None

    def _message_tooltip(self, node: MessageNode, column: Column) -> str | None:
        m = node.message
        if column == Column.ADDRESS:
            lines = []
            if node.draft:
                lines.append(f"Corrected to {node.draft} (was {m.address}).")
                lines.append("Press Resend (Ctrl+R) to send it there.")
            elif node.resendable:
                lines.append(
                    f"{m.address}\nDouble-click (or F2) to correct the address, then Resend (Ctrl+R)."
                )
            else:
                lines.append(m.address)
            flag = self._contents.flags.get(node.key)
            if flag is not None:
                lines.append(
                    f"This address is flagged ({flag.kind.value}) since {local_time(flag.since)}: {flag.diagnostic}"
                )
            return "\n".join(lines)
        if column in (Column.STATUS, Column.RECIPIENT, Column.WHEN):
            look = row_look(node.status, node.category)
            lines = [f"{look.label}: {look.description}"]
            r = node.resolution if node.resolved else None
            if r is not None and r.resend_id:
                lines.append(
                    f"Resolved: the resend to {self._contents.address_of(r.resend_id)} reached the recipient."
                )
            elif r is not None:
                lines.append(f"Marked resolved{f' by {r.by}' if r.by else ''}: {r.reason}")
            if m.status_reason:
                lines.append(f"Reason: {m.status_reason}")
            if m.last_error:
                lines.append(f"Last error: {m.last_error}")
            if m.attempts > 1:
                lines.append(f"Attempts: {m.attempts}")
            if m.sent_at:
                lines.append(f"Sent {full_time(m.sent_at)}")
            if m.status_at:
                lines.append(f"Status since {full_time(m.status_at)}")
            if m.resend_of:
                lines.append(
                    f"A resend: the earlier message to {self._contents.address_of(m.resend_of)} {HAPPENED.get(self._contents.category(m.resend_of), 'had a problem')}"
                )
            for new in self._contents.resent_as.get(m.id, ()):
                lines.append(f"Resent to {self._contents.address_of(new)}")
            lines.append(f"Message id {m.id}")
            return "\n".join(lines)
        return None

    # -- batch rows -----------------------------------------------------------------------------
    def batch_data(self, node: BatchNode, column: Column, role: int) -> Any:
        b = node.batch
        if role == Qt.ItemDataRole.DisplayRole:
            return self._batch_text(node, column)
        if role == Roles.STATUS:
            return node.worst.value
        if role == Roles.PROBLEM:
            return node.problem
        if role == Roles.ID:
            return b.id
        if role == Roles.OBJECT:
            return b
        if role == Roles.KIND:
            return BATCH
        if role in (Roles.SORT, RoundRoles.CREATED):
            at = aware(b.created_at)
            return at.timestamp() if at else 0.0
        if role == RoundRoles.COUNTS:
            return dict(node.counts)
        if role == Qt.ItemDataRole.DecorationRole and column == Column.RECIPIENT:
            return self._theme.icon(BATCH_LOOKS[node.worst])
        if role == Qt.ItemDataRole.FontRole:
            return self._bold
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._theme.background(Tone.BAD if node.highlighted else Tone.NEUTRAL)
        if role == Qt.ItemDataRole.ForegroundRole and node.highlighted and column == Column.RECIPIENT:
            return self._theme.foreground(Tone.BAD)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._batch_tooltip(node)
        return None

    def _batch_text(self, node: BatchNode, column: Column) -> str:
        b = node.batch
        if column == Column.RECIPIENT:
            return batch_title(b)
        if column == Column.ROLE:
            n = len(node.children)
            return f"{n} message{'s' if n != 1 else ''}"
        if column == Column.ADDRESS:
            via = f"via {backend_words(b.backend)}"
            if b.reroute_to:
                return f"{via} · all to {b.reroute_to}"
            return f"{via} · by {b.triggered_by}" if b.triggered_by else via
        if column == Column.STATUS:
            return counts_text(node.counts)
        return local_time(b.created_at)

    def _batch_tooltip(self, node: BatchNode) -> str:
        b = node.batch
        lines = [
            batch_title(b),
            f"Created {full_time(b.created_at)} by {b.triggered_by or 'unknown'}, via {backend_words(b.backend)}",
            f"Subject template: {b.templates.subject}",
        ]
        if b.reroute_to:
            lines.append(f"Test mode: every message went to {b.reroute_to}")
        lines.append(counts_text(node.counts))
        if node.problem:
            lines.append("Some messages need attention: correct the addresses and resend.")
        return "\n".join(lines)


def reply_marker(replies: tuple[int, int]) -> str:
    """ "  ✉ 2 (1 new)" after a recipient who replied; "" otherwise (the envelope is not the
    only cue: the words say it)."""
    total, unread = replies
    if not total:
        return ""
    return f"  ✉ {total} repl{'y' if total == 1 else 'ies'}" + (f" ({unread} new)" if unread else "")
