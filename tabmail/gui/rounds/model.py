"""One round's notifications as a tree: send batches (newest first), each with its messages.

Loading costs three queries whatever the size of the round (batches with counts, all their
messages, the bounce flags of their addresses); every ``data()`` call is O(1). After that the
model only changes in place: bridge signals mark messages dirty, and a short coalescing timer
re-reads just those (one query per message, or one per batch when many changed at once) and
emits ``dataChanged`` for exactly the rows that changed, or inserts the rows that are new (a
resend, a batch queued for this round). The view's expansion and selection survive.

Index layout: batch rows have internal id 0; message rows carry their batch's id, which is
how ``parent()`` finds the batch row in O(1).
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont

from tabmail.domain.addresses import address_key, validate_address
from tabmail.domain.notification import AddressFlag, BulkNotification, Message
from tabmail.gui.bridge import EventBridge
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.words import (
    BUCKET_SEVERITY,
    BUCKET_WORDS,
    PROBLEM_STATUSES,
    ROLE_NAMES,
    SEVERITY,
    Bucket,
    aware,
    backend_words,
    batch_title,
    bucket_of,
    counts_text,
    effective_status,
    full_time,
    local_time,
    status_look,
)
from tabmail.gui.theme import Look, Theme, Tone, address_look
from tabmail.services.context import AppContext
from tabmail.store.notifications import MessageNotFound

log = logging.getLogger(__name__)

AnyIndex = QModelIndex | QPersistentModelIndex

# More dirty messages than this in one batch: re-read the batch in one query instead.
RELOAD_BATCH_THRESHOLD = 25
FLUSH_DELAY_MS = 40


class Column(enum.IntEnum):
    RECIPIENT = 0
    ROLE = 1
    ADDRESS = 2
    STATUS = 3
    WHEN = 4


HEADERS = {
    Column.RECIPIENT: "Recipient",
    Column.ROLE: "Role",
    Column.ADDRESS: "Address",
    Column.STATUS: "Status",
    Column.WHEN: "Last event",
}


class RoundRoles(enum.IntEnum):
    COUNTS = Qt.ItemDataRole.UserRole + 20  # batch rows: dict[Bucket, int]
    BUCKET = Qt.ItemDataRole.UserRole + 21  # message rows: the Bucket the message counts in
    SEARCH = Qt.ItemDataRole.UserRole + 22  # message rows: case-folded text the search matches
    CREATED = Qt.ItemDataRole.UserRole + 23  # batch rows: (created timestamp, id) for ordering
    DRAFT = Qt.ItemDataRole.UserRole + 24  # message rows: the corrected address typed in, or None


BATCH = "batch"
MESSAGE = "message"

RESEND_LOOK = Look(Tone.PENDING, "Resend", "This message is a resend of an earlier one.", "retry")
DRAFT_LOOK = Look(
    Tone.PENDING, "Corrected", "Corrected address: press Resend (Ctrl+R) to send it there.", "arrow"
)
BATCH_LOOKS = {
    Bucket.BOUNCED: Look(Tone.BAD, "Bounces", "Some messages bounced.", "cross"),
    Bucket.FAILED: Look(Tone.BAD, "Failures", "Some messages could not be sent.", "cross"),
    Bucket.UNCERTAIN: Look(Tone.WARNING, "Uncertain", "Some messages may not have gone out.", "warning"),
    Bucket.PENDING: Look(Tone.PENDING, "Sending", "Some messages are still being sent.", "clock"),
    Bucket.SKIPPED: Look(Tone.NEUTRAL, "Skipped", "Some messages were not sent.", "minus"),
    Bucket.SENT: Look(Tone.GOOD, "Sent", "Every message was accepted.", "check"),
    Bucket.DELIVERED: Look(Tone.GOOD, "Delivered", "Every message was delivered.", "double_check"),
}
PROBLEM_BUCKETS = frozenset({Bucket.BOUNCED, Bucket.FAILED, Bucket.UNCERTAIN, Bucket.SKIPPED})


@dataclass(slots=True, eq=False)
class MessageNode:
    message: Message
    batch_id: int
    row: int
    status: str = ""
    bucket: Bucket = Bucket.PENDING
    key: str = ""
    search: str = ""
    draft: str | None = None

    def update(self, message: Message) -> None:
        self.message = message
        self.status = effective_status(message)
        self.bucket = bucket_of(self.status)
        self.key = address_key(message.address) or ""
        self.search = " ".join(
            (message.recipient_name, message.address, message.id, message.role or "", self.draft or "")
        ).casefold()

    @property
    def problem(self) -> bool:
        return self.status in PROBLEM_STATUSES

    @property
    def resendable(self) -> bool:
        return self.problem and not self.message.state.pending


@dataclass(slots=True, eq=False)
class BatchNode:
    batch: BulkNotification
    row: int
    children: list[MessageNode] = field(default_factory=list)
    counts: Counter[Bucket] = field(default_factory=Counter)

    @property
    def worst(self) -> Bucket:
        for bucket in BUCKET_SEVERITY:
            if self.counts.get(bucket):
                return bucket
        return Bucket.SENT

    @property
    def problem(self) -> bool:
        return any(self.counts.get(b) for b in PROBLEM_BUCKETS)

    @property
    def highlighted(self) -> bool:
        return bool(self.counts.get(Bucket.BOUNCED) or self.counts.get(Bucket.FAILED))


class RoundMessagesModel(QAbstractItemModel):
    """The batches and messages of one round. See the module docstring for the update rules."""

    draft_rejected = Signal(str, str)  # message id, why the typed address cannot be used
    messages_refreshed = Signal(list)  # message ids re-read in place (the detail panel listens)
    rows_added = Signal(list)  # message ids inserted after loading (resends, new batches)

    def __init__(
        self,
        ctx: AppContext,
        theme: Theme | None = None,
        bridge: EventBridge | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._theme = theme or Theme()
        self.round_id: int | None = None
        self._order: list[BatchNode] = []
        self._batches: dict[int, BatchNode] = {}
        self._messages: dict[str, MessageNode] = {}
        self._by_key: dict[str, list[MessageNode]] = {}
        self._resent_as: dict[str, list[str]] = {}
        self._flags: dict[str, AddressFlag] = {}
        self._foreign_batches: set[int] = set()
        self._dirty: dict[str, int] = {}
        self._new_batches: set[int] = set()
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_DELAY_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._bold = QFont()
        self._bold.setWeight(QFont.Weight.DemiBold)
        self._italic = QFont()
        self._italic.setItalic(True)
        if bridge is not None:
            bridge.message_state_changed.connect(self._on_bridge_message_state_changed)
            bridge.statuses_changed.connect(self._on_bridge_statuses_changed)
            bridge.flags_changed.connect(self._on_bridge_flags_changed)
            bridge.batch_queued.connect(self._on_bridge_batch_queued)

    # -- loading ----------------------------------------------------------------------------
    def load(self, round_id: int | None) -> None:
        """Show ``round_id``'s batches (None: nothing). Three queries, whatever the size."""
        self.beginResetModel()
        self.round_id = round_id
        self._order, self._batches, self._messages = [], {}, {}
        self._by_key, self._resent_as, self._flags = {}, {}, {}
        self._foreign_batches.clear()
        self._dirty.clear()
        self._new_batches.clear()
        if round_id is not None:
            summaries = self._ctx.notifications.batches(round_id=round_id)
            messages = (
                self._ctx.notifications.messages(batch_ids=[s.batch.id for s in summaries])
                if summaries
                else []
            )
            for summary in summaries:
                self._append_batch(summary.batch)
            for m in messages:
                self._attach(m)
            self._flags = self._ctx.flags.active(list(self._by_key)) if self._by_key else {}
        self.endResetModel()

    def reload(self) -> None:
        self.load(self.round_id)

    def _append_batch(self, batch: BulkNotification) -> BatchNode:
        node = BatchNode(batch, len(self._order))
        self._order.append(node)
        self._batches[batch.id] = node
        return node

    def _attach(self, m: Message) -> MessageNode:
        parent = self._batches[m.batch_id]
        node = MessageNode(m, m.batch_id, len(parent.children))
        node.update(m)
        parent.children.append(node)
        parent.counts[node.bucket] += 1
        self._messages[m.id] = node
        if node.key:
            self._by_key.setdefault(node.key, []).append(node)
        if m.resend_of:
            self._resent_as.setdefault(m.resend_of, []).append(m.id)
        return node

    # -- lookups ------------------------------------------------------------------------------
    def batch_ids(self) -> list[int]:
        return [b.batch.id for b in self._order]

    def batch(self, batch_id: int) -> BulkNotification | None:
        node = self._batches.get(batch_id)
        return node.batch if node else None

    def batch_counts(self, batch_id: int) -> dict[Bucket, int]:
        node = self._batches.get(batch_id)
        return dict(node.counts) if node else {}

    def message(self, message_id: str) -> Message | None:
        node = self._messages.get(message_id)
        return node.message if node else None

    def message_ids(self, batch_id: int) -> list[str]:
        node = self._batches.get(batch_id)
        return [c.message.id for c in node.children] if node else []

    def message_count(self) -> int:
        return len(self._messages)

    def totals(self) -> Counter[Bucket]:
        total: Counter[Bucket] = Counter()
        for b in self._order:
            total.update(b.counts)
        return total

    def status_of(self, message_id: str) -> str | None:
        node = self._messages.get(message_id)
        return node.status if node else None

    def is_resendable(self, message_id: str) -> bool:
        node = self._messages.get(message_id)
        return node is not None and node.resendable

    def resent_as(self, message_id: str) -> list[str]:
        return list(self._resent_as.get(message_id, ()))

    def flag_of(self, address: str) -> AddressFlag | None:
        return self._flags.get(address_key(address) or "")

    def index_of_batch(self, batch_id: int, column: int = 0) -> QModelIndex:
        node = self._batches.get(batch_id)
        return self.createIndex(node.row, column, 0) if node else QModelIndex()

    def index_of_message(self, message_id: str, column: int = 0) -> QModelIndex:
        node = self._messages.get(message_id)
        return self.createIndex(node.row, column, node.batch_id) if node else QModelIndex()

    # -- corrected addresses ------------------------------------------------------------------
    def draft(self, message_id: str) -> str | None:
        node = self._messages.get(message_id)
        return node.draft if node else None

    def drafts(self, batch_id: int) -> dict[str, str]:
        node = self._batches.get(batch_id)
        if node is None:
            return {}
        return {c.message.id: c.draft for c in node.children if c.draft and c.resendable}

    def set_draft(self, message_id: str, text: str | None) -> str | None:
        """Remember a corrected address for a resend. Returns why it cannot be used, or None."""
        node = self._messages.get(message_id)
        if node is None:
            return "this message is not in the round shown"
        value = (text or "").strip()
        if not value or value.casefold() == node.message.address.casefold():
            draft = None
        else:
            valid, normalised, problem = validate_address(value)
            if not valid or normalised is None:
                return f"{value!r} is not a usable address: {problem}"
            draft = normalised
        if draft != node.draft:
            node.draft = draft
            node.update(node.message)
            self._emit_row(node)
        return None

    def clear_draft(self, message_id: str) -> None:
        self.set_draft(message_id, None)

    # -- Qt model API ------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= len(Column) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row < len(self._order) else QModelIndex()
        if parent.internalId() != 0 or parent.column() != 0 or parent.row() >= len(self._order):
            return QModelIndex()
        batch = self._order[parent.row()]
        if row >= len(batch.children):
            return QModelIndex()
        return self.createIndex(row, column, batch.batch.id)

    def parent(self, child: AnyIndex | None = None) -> Any:  # type: ignore[override]
        if child is None:  # QObject.parent()
            return super().parent()
        if not child.isValid() or child.internalId() == 0:
            return QModelIndex()
        node = self._batches.get(child.internalId())
        return self.createIndex(node.row, 0, 0) if node else QModelIndex()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._order)
        if parent.internalId() != 0 or parent.column() != 0 or parent.row() >= len(self._order):
            return 0
        return len(self._order[parent.row()].children)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return len(Column)

    def hasChildren(self, parent: AnyIndex = QModelIndex()) -> bool:
        return self.rowCount(parent) > 0

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(Column):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[Column(section)]
            if role == Qt.ItemDataRole.ToolTipRole and section == Column.WHEN:
                return "Batches: when they were created. Messages: the provider's latest event, or when sent."
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.internalId() == 0:
            return base
        base |= Qt.ItemFlag.ItemNeverHasChildren
        if index.column() == Column.ADDRESS:
            node = self._message_node(index)
            if node is not None and node.resendable:
                base |= Qt.ItemFlag.ItemIsEditable
        return base

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != Column.ADDRESS:
            return False
        node = self._message_node(index)
        if node is None or not node.resendable:
            return False
        problem = self.set_draft(node.message.id, str(value or ""))
        if problem is not None:
            self.draft_rejected.emit(node.message.id, problem)
            return False
        return True

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if index.internalId() == 0:
            if index.row() >= len(self._order):
                return None
            return self._batch_data(self._order[index.row()], Column(index.column()), role)
        node = self._message_node(index)
        return None if node is None else self._message_data(node, Column(index.column()), role)

    def _message_node(self, index: AnyIndex) -> MessageNode | None:
        batch = self._batches.get(index.internalId())
        if batch is None or index.row() >= len(batch.children):
            return None
        return batch.children[index.row()]

    # -- message rows ---------------------------------------------------------------------------
    def _message_data(self, node: MessageNode, column: Column, role: int) -> Any:
        m = node.message
        if role == Qt.ItemDataRole.DisplayRole:
            return self._message_text(node, column)
        if role == Qt.ItemDataRole.EditRole:
            return (node.draft or m.address) if column == Column.ADDRESS else self._message_text(node, column)
        if role == Roles.STATUS:
            return node.status
        if role == Roles.PROBLEM:
            return node.problem
        if role == Roles.ID:
            return m.id
        if role == Roles.OBJECT:
            return m
        if role == Roles.KIND:
            return MESSAGE
        if role == Roles.SORT:
            return self._message_sort(node, column)
        if role == RoundRoles.BUCKET:
            return node.bucket.value
        if role == RoundRoles.SEARCH:
            return node.search
        if role == RoundRoles.DRAFT:
            return node.draft
        if role == Qt.ItemDataRole.DecorationRole:
            return self._message_icon(node, column)
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._theme.background(status_look(node.status).tone) if node.problem else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == Column.STATUS or (node.problem and column == Column.ADDRESS):
                return self._theme.foreground(status_look(node.status).tone)
            return None
        if role == Qt.ItemDataRole.FontRole:
            if column == Column.ADDRESS and node.draft:
                return self._italic
            if node.problem and column in (Column.RECIPIENT, Column.STATUS):
                return self._bold
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._message_tooltip(node, column)
        if role == Qt.ItemDataRole.AccessibleTextRole and column == Column.STATUS:
            return status_look(node.status).description
        return None

    def _message_text(self, node: MessageNode, column: Column) -> str:
        m = node.message
        if column == Column.RECIPIENT:
            return m.recipient_name
        if column == Column.ROLE:
            return ROLE_NAMES.get(m.role or "", (m.role or "").capitalize())
        if column == Column.ADDRESS:
            return node.draft or m.address
        if column == Column.STATUS:
            label = status_look(node.status).label
            if m.id in self._resent_as:
                label += " · resent"
            elif node.draft:
                label += " · corrected"
            return label
        return local_time(m.status_at or m.sent_at or m.created_at)

    def _message_sort(self, node: MessageNode, column: Column) -> Any:
        m = node.message
        if column == Column.STATUS:
            return f"{SEVERITY.get(node.status, 99):02d} {m.recipient_name.casefold()}"
        if column == Column.WHEN:
            at = aware(m.status_at or m.sent_at or m.created_at)
            return at.timestamp() if at else 0.0
        if column == Column.ADDRESS:
            return (node.draft or m.address).casefold()
        return f"{self._message_text(node, column).casefold()} {m.recipient_name.casefold()}"

    def _message_icon(self, node: MessageNode, column: Column) -> Any:
        if column == Column.STATUS:
            return self._theme.icon(status_look(node.status))
        if column == Column.ADDRESS:
            if node.draft:
                return self._theme.icon(DRAFT_LOOK)
            if node.key in self._flags:
                return self._theme.icon(address_look("flagged"))
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
            flag = self._flags.get(node.key)
            if flag is not None:
                lines.append(
                    f"This address is flagged ({flag.kind.value}) since {local_time(flag.since)}: {flag.diagnostic}"
                )
            return "\n".join(lines)
        if column in (Column.STATUS, Column.RECIPIENT, Column.WHEN):
            look = status_look(node.status)
            lines = [f"{look.label}: {look.description}"]
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
                lines.append(f"Resend of {m.resend_of}")
            for new in self._resent_as.get(m.id, ()):
                lines.append(f"Resent as {new}")
            lines.append(f"Message {m.id}")
            return "\n".join(lines)
        return None

    # -- batch rows -----------------------------------------------------------------------------
    def _batch_data(self, node: BatchNode, column: Column, role: int) -> Any:
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
        lines.append(", ".join(f"{n} {BUCKET_WORDS[k]}" for k, n in sorted(node.counts.items()) if n))
        if node.highlighted:
            lines.append("Some messages bounced or failed: correct the addresses and resend.")
        return "\n".join(lines)

    # -- in-place updates -------------------------------------------------------------------------
    def _emit_row(self, node: MessageNode) -> None:
        parent = self.createIndex(self._batches[node.batch_id].row, 0, 0)
        self.dataChanged.emit(
            self.index(node.row, 0, parent), self.index(node.row, len(Column) - 1, parent), []
        )

    def _emit_batch(self, node: BatchNode) -> None:
        self.dataChanged.emit(
            self.createIndex(node.row, 0, 0), self.createIndex(node.row, len(Column) - 1, 0), []
        )

    def _on_bridge_message_state_changed(self, message_id: str, batch_id: int, state: str) -> None:
        if batch_id in self._batches:
            self._dirty[message_id] = batch_id
        elif self.round_id is not None and batch_id not in self._foreign_batches:
            self._new_batches.add(batch_id)
        else:
            return
        self._flush_timer.start()

    def _on_bridge_statuses_changed(self, message_ids: list[str]) -> None:
        marked = False
        for mid in message_ids:
            node = self._messages.get(mid)
            if node is not None:
                self._dirty[mid] = node.batch_id
                marked = True
        if marked:
            self._flush_timer.start()

    def _on_bridge_batch_queued(self, batch_id: int, count: int) -> None:
        if (
            self.round_id is not None
            and batch_id not in self._batches
            and batch_id not in self._foreign_batches
        ):
            self._new_batches.add(batch_id)
            self._flush_timer.start()

    def add_batch(self, batch_id: int) -> None:
        """Show a batch just queued for this round now (the bridge's signal may come later)."""
        self._on_bridge_batch_queued(batch_id, 0)
        self.flush()

    def _on_bridge_flags_changed(self, keys: list[str]) -> None:
        mine = [k for k in keys if k in self._by_key]
        if not mine:
            return
        fresh = self._ctx.flags.active(mine)
        for key in mine:
            if key in fresh:
                self._flags[key] = fresh[key]
            else:
                self._flags.pop(key, None)
            for node in self._by_key[key]:
                parent = self.createIndex(self._batches[node.batch_id].row, 0, 0)
                address = self.index(node.row, Column.ADDRESS, parent)
                self.dataChanged.emit(address, address, [])

    def flush(self) -> None:
        """Apply what the bridge reported since the last flush (normally run by a short timer)."""
        self._flush_timer.stop()
        new_batches, self._new_batches = self._new_batches, set()
        dirty, self._dirty = self._dirty, {}
        if new_batches:
            self._insert_batches(new_batches)
        by_batch: dict[int, list[str]] = {}
        for mid, bid in dirty.items():
            by_batch.setdefault(bid, []).append(mid)
        refreshed: list[str] = []
        for bid, ids in by_batch.items():
            if bid in self._batches:
                refreshed += self._refresh_batch_messages(self._batches[bid], ids)
        if refreshed:
            self.messages_refreshed.emit(refreshed)

    def _refresh_batch_messages(self, batch: BatchNode, ids: list[str]) -> list[str]:
        fresh: dict[str, Message] = {}
        if len(ids) > RELOAD_BATCH_THRESHOLD:
            wanted = set(ids)
            fresh = {
                m.id: m for m in self._ctx.notifications.messages(batch_id=batch.batch.id) if m.id in wanted
            }
        else:
            for mid in ids:
                try:
                    fresh[mid] = self._ctx.notifications.get(mid)
                except MessageNotFound:
                    log.debug("message %s vanished before it could be shown", mid)
        counts_before = Counter(batch.counts)
        updated: list[str] = []
        added: list[Message] = []
        for mid, m in fresh.items():
            node = self._messages.get(mid)
            if node is None:
                added.append(m)
                continue
            batch.counts[node.bucket] -= 1
            node.update(m)
            batch.counts[node.bucket] += 1
            self._emit_row(node)
            updated.append(mid)
        if added:
            self._append_messages(batch, added)
        batch.counts = +batch.counts
        if added or batch.counts != counts_before:
            self._emit_batch(batch)
        return updated

    def _append_messages(self, batch: BatchNode, messages: list[Message]) -> None:
        parent = self.createIndex(batch.row, 0, 0)
        first = len(batch.children)
        self.beginInsertRows(parent, first, first + len(messages) - 1)
        for m in messages:
            self._attach(m)
        self.endInsertRows()
        originals = [m.resend_of for m in messages if m.resend_of and m.resend_of in self._messages]
        for mid in originals:
            self._emit_row(self._messages[mid])
        self._refresh_flags(self._messages[m.id].key for m in messages)
        self.rows_added.emit([m.id for m in messages])

    def _insert_batches(self, batch_ids: Iterable[int]) -> None:
        wanted = set(batch_ids)
        summaries = [
            s for s in self._ctx.notifications.batches(round_id=self.round_id) if s.batch.id in wanted
        ]
        self._foreign_batches |= wanted - {s.batch.id for s in summaries}
        if not summaries:
            return
        messages = self._ctx.notifications.messages(batch_ids=[s.batch.id for s in summaries])
        by_batch: dict[int, list[Message]] = {}
        for m in messages:
            by_batch.setdefault(m.batch_id, []).append(m)
        # Newest first, like load(): new batches go on top.
        self.beginInsertRows(QModelIndex(), 0, len(summaries) - 1)
        nodes = [BatchNode(s.batch, i) for i, s in enumerate(summaries)]
        for node in nodes:
            self._batches[node.batch.id] = node
        self._order = nodes + self._order
        for row, node in enumerate(self._order):
            node.row = row
        for node in nodes:
            for m in by_batch.get(node.batch.id, ()):
                self._attach(m)
        self.endInsertRows()
        self._refresh_flags(self._messages[m.id].key for m in messages)
        self.rows_added.emit([m.id for m in messages])

    def _refresh_flags(self, keys: Iterable[str]) -> None:
        unknown = {k for k in keys if k and k not in self._flags}
        if unknown:
            self._flags.update(self._ctx.flags.active(list(unknown)))
