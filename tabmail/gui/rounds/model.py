"""One round's notifications as a tree: send batches (newest first), each with its messages.

Loading costs three queries whatever the size of the round (batches with counts, all their
messages, the bounce flags of their addresses); every ``data()`` call is O(1).
After that the model only changes in place: bridge signals mark messages
dirty, a short timer re-reads just those and emits ``dataChanged`` for exactly the rows that
changed, or inserts the rows that are new (a resend, a batch queued for this round). The view's
expansion and selection survive.

The model is split by composition: it owns the round's ``RoundContents`` (``nodes.py``), a
``CellFormatter`` that answers ``data()`` from them (``cells.py``) and a ``RoundUpdater`` that
keeps them current (``updates.py``); it keeps Qt's model API, loading and the lookups.

Index layout: batch rows have internal id 0; message rows carry their batch's id, which is
how ``parent()`` finds the batch row in O(1).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from tabmail.domain.addresses import address_key, validate_address
from tabmail.domain.notification import AddressFlag, BulkNotification, Message
from tabmail.domain.problems import Category, Resolution
from tabmail.gui.bridge import EventBridge
from tabmail.gui.rounds.cells import CellFormatter
from tabmail.gui.rounds.nodes import (
    BATCH,
    BATCH_LOOKS,
    DRAFT_LOOK,
    HEADERS,
    MESSAGE,
    RESEND_LOOK,
    SORT_KEYS,
    BatchNode,
    Column,
    MessageNode,
    RoundContents,
    RoundRoles,
)
from tabmail.gui.rounds.updates import RoundUpdater
from tabmail.gui.theme import Theme
from tabmail.services.context import AppContext
from tabmail.store.notifications import BatchSummary

AnyIndex = QModelIndex | QPersistentModelIndex
log = logging.getLogger(__name__)
# Qt asks for indexes and data tens of thousands of times per filter keystroke: an enum's len()
# and Column(n) cost more than the rest of index() together.
COLUMNS = tuple(Column)
N_COLUMNS = len(COLUMNS)
_BATCH_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
MESSAGE_FLAGS = _BATCH_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_EDITABLE_FLAGS = MESSAGE_FLAGS | Qt.ItemFlag.ItemIsEditable
# Up to this many changed rows of a batch get one dataChanged each; more get one spanning range.
MAX_SINGLE_ROW_SIGNALS = 8

__all__ = [
    "BATCH",
    "BATCH_LOOKS",
    "DRAFT_LOOK",
    "MESSAGE",
    "RESEND_LOOK",
    "Column",
    "RoundMessagesModel",
    "RoundRoles",
]


class RoundMessagesModel(QAbstractItemModel):
    """The batches and messages of one round. See the module docstring for the update rules."""

    draft_rejected = Signal(str, str)  # message id, why the typed address cannot be used
    draft_changed = Signal(str)  # message id whose corrected address changed (or was cleared)
    draft_edited = Signal(str, str, str)  # message id, old, new: typed in the tree (for undo)
    messages_refreshed = Signal(list)  # message ids re-read in place (the detail panel listens)
    rows_added = Signal(list)  # message ids inserted after loading (resends, new batches)
    rows_restyled = Signal()  # many rows changed at once: repaint the view, first column included
    replies_changed = Signal()  # reply counts changed (a reply arrived or was read)

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
        # the tournament whose batches with no round (private URLs, registration) are shown
        self.tournament_wide: int | None = None
        self._contents = RoundContents()
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._cells = CellFormatter(self._theme, self._contents)
        self._updates = RoundUpdater(self, ctx, self._contents)
        if bridge is not None:
            bridge.message_state_changed.connect(self._updates.on_message_state_changed)
            bridge.statuses_changed.connect(self._updates.on_statuses_changed)
            bridge.flags_changed.connect(self._updates.on_flags_changed)
            bridge.batch_queued.connect(self._updates.on_batch_queued)
            bridge.person_changed.connect(self._updates.on_person_changed)
            bridge.replies_received.connect(self._updates.on_replies_received)
            bridge.replies_changed.connect(self._updates.on_replies_received)

    # -- loading ----------------------------------------------------------------------------
    def load_tournament_wide(self, tournament_id: int) -> None:
        """Show the tournament's batches that have no round (private URLs, registration)."""
        self.load(None, tournament_wide=tournament_id)

    def reload(self) -> None:
        """Read what is shown again (a round, the tournament-wide batches, or nothing)."""
        self.load(self.round_id, tournament_wide=self.tournament_wide)

    def load(self, round_id: int | None, *, tournament_wide: int | None = None) -> None:
        """Show ``round_id``'s batches, or with ``tournament_wide`` that tournament's batches with
        no round (neither: nothing). At most seven queries, whatever the size:
        batches (two), messages, address flags, the director's resolutions and corrected addresses
        (the last two only when the round has problems), and the reply counts."""
        if round_id is not None and tournament_wide is not None:
            raise ValueError("load: a round or a tournament's round-less batches, not both")
        self.beginResetModel()
        self.round_id = round_id
        self.tournament_wide = tournament_wide
        self._contents.clear()
        self._updates.clear()
        if self.scoped:
            summaries = self.scope_batches()
            messages = (
                self._ctx.notifications.messages(batch_ids=[s.batch.id for s in summaries])
                if summaries
                else []
            )
            for summary in summaries:
                self._contents.append_batch(summary.batch)
            keys = {k for k in (address_key(m.address) for m in messages) if k}
            self._contents.flags = self._ctx.flags.active(list(keys)) if keys else {}
            for m in messages:
                self._contents.attach(m)
            problem_ids = [n.message.id for n in self._contents.messages.values() if n.problem_category]
            self._contents.manual = self._ctx.problems.resolutions(problem_ids) if problem_ids else {}
            for batch in self._contents.order:
                self._updates.settle(batch)
                self._sort_children(batch)
            self._updates.take_corrections(list(self._contents.messages.values()))
            self._updates.load_replies(
                list(self._contents.messages.values()), batch_ids=list(self._contents.batches)
            )
        self.endResetModel()

    def refresh_replies(self) -> None:
        """Re-read every row's reply count (a reply was read in the message view)."""
        self._updates.refresh_replies()

    def reply_totals(self) -> tuple[int, int]:
        """(replies, unread replies) over the round."""
        nodes = self._contents.messages.values()
        return sum(n.replies[0] for n in nodes), sum(n.replies[1] for n in nodes)

    # -- what is shown, and telling the view what changed -------------------------------------------
    @property
    def scoped(self) -> bool:
        """True when a round or a tournament's round-less batches are shown."""
        return self.round_id is not None or self.tournament_wide is not None

    def scope_batches(self) -> list[BatchSummary]:
        """The batches of what is shown, newest first (one query with the counts)."""
        if self.round_id is not None:
            return self._ctx.notifications.batches(round_id=self.round_id)
        if self.tournament_wide is not None:
            return self._ctx.notifications.batches(tournament_id=self.tournament_wide, no_round=True)
        return []

    def row_changed(self, node: MessageNode) -> None:
        parent = self.createIndex(self._contents.batches[node.batch_id].row, 0, 0)
        self.dataChanged.emit(
            self.index(node.row, 0, parent), self.index(node.row, len(Column) - 1, parent), []
        )

    def rows_changed(self, batch: BatchNode, rows: list[int]) -> None:
        """dataChanged for these rows of a batch: one signal per row when there are a few, one
        spanning range when many (each signal makes the view and the proxy re-read the row, and
        the view re-measure its first row: hundreds of them cost more than one range)."""
        if not rows:
            return
        parent = self.createIndex(batch.row, 0, 0)
        last = len(Column) - 1
        if len(rows) <= MAX_SINGLE_ROW_SIGNALS:
            for row in rows:
                self.dataChanged.emit(self.index(row, 0, parent), self.index(row, last, parent), [])
        else:
            # From the second column: for a range that starts in the first, QTreeView asks every
            # row in it whether it has children (a flags() and a hasChildren() call into Python
            # per row: 3,000 rows of a batch at every slice of a poll); message rows never have
            # children. The first column is repainted by the view (``rows_restyled``).
            self.dataChanged.emit(self.index(min(rows), 1, parent), self.index(max(rows), last, parent), [])
            self.rows_restyled.emit()

    def batch_changed(self, node: BatchNode) -> None:
        self.dataChanged.emit(
            self.createIndex(node.row, 0, 0), self.createIndex(node.row, len(Column) - 1, 0), []
        )

    # -- changes reported by the bridge (applied by the updater) ---------------------------------
    @property
    def pending(self) -> bool:
        """True while changes reported by the bridge wait to be applied."""
        return self._updates.pending

    def flush(self) -> None:
        """Apply everything the bridge reported so far, now (a timer does it in slices)."""
        self._updates.flush()

    def add_batch(self, batch_id: int) -> None:
        """Show a batch just queued for this round now (the bridge's signal may come later)."""
        self._updates.add_batch(batch_id)

    # -- lookups ------------------------------------------------------------------------------
    def batch_ids(self) -> list[int]:
        return [b.batch.id for b in self._contents.order]

    def batch(self, batch_id: int) -> BulkNotification | None:
        node = self._contents.batches.get(batch_id)
        return node.batch if node else None

    def batch_counts(self, batch_id: int) -> dict[str, int]:
        node = self._contents.batches.get(batch_id)
        return dict(node.counts) if node else {}

    def message(self, message_id: str) -> Message | None:
        node = self._contents.messages.get(message_id)
        return node.message if node else None

    def message_ids(self, batch_id: int) -> list[str]:
        node = self._contents.batches.get(batch_id)
        return [c.message.id for c in node.children] if node else []

    def message_count(self) -> int:
        return len(self._contents.messages)

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for b in self._contents.order:
            total.update(b.counts)
        return total

    def status_of(self, message_id: str) -> str | None:
        node = self._contents.messages.get(message_id)
        return node.status if node else None

    def category_of(self, message_id: str) -> Category | None:
        node = self._contents.messages.get(message_id)
        return node.category if node else None

    def resolution(self, message_id: str) -> Resolution | None:
        """How this message's problem was resolved (None: not a problem, or unresolved)."""
        node = self._contents.messages.get(message_id)
        return node.resolution if node is not None and node.resolved else None

    def is_problem(self, message_id: str) -> bool:
        node = self._contents.messages.get(message_id)
        return node is not None and node.problem

    def problem_count(self) -> int:
        return sum(1 for n in self._contents.messages.values() if n.problem)

    def is_resendable(self, message_id: str) -> bool:
        node = self._contents.messages.get(message_id)
        return node is not None and node.resendable and not self._ctx.read_only

    def resent_as(self, message_id: str) -> list[str]:
        return list(self._contents.resent_as.get(message_id, ()))

    def flag_of(self, address: str) -> AddressFlag | None:
        return self._contents.flags.get(address_key(address) or "")

    def index_of_batch(self, batch_id: int, column: int = 0) -> QModelIndex:
        node = self._contents.batches.get(batch_id)
        return self.createIndex(node.row, column, 0) if node else QModelIndex()

    def index_of_message(self, message_id: str, column: int = 0) -> QModelIndex:
        node = self._contents.messages.get(message_id)
        return self.createIndex(node.row, column, node.batch_id) if node else QModelIndex()

    # -- corrected addresses ------------------------------------------------------------------
    def draft(self, message_id: str) -> str | None:
        node = self._contents.messages.get(message_id)
        return node.draft if node else None

    def drafts(self, batch_id: int) -> dict[str, str]:
        node = self._contents.batches.get(batch_id)
        if node is None:
            return {}
        return {c.message.id: c.draft for c in node.children if c.draft and c.resendable}

    def set_draft(self, message_id: str, text: str | None) -> str | None:
        """Remember a corrected address for a resend. Returns why it cannot be used, or None."""
        node = self._contents.messages.get(message_id)
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
            flag = self._contents.flags.get(node.key)
            node.update(node.message, flag.kind if flag else None)
            self.row_changed(node)
            self.draft_changed.emit(message_id)
        return None

    def clear_draft(self, message_id: str) -> None:
        self.set_draft(message_id, None)

    # -- sorting -------------------------------------------------------------------------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order each batch's messages by ``column``; batches stay newest first.

        Sorting happens here, with key functions, not in the proxy's ``lessThan``: thousands of
        Python comparisons per click would not fit the time budget. Rows keep their place as
        statuses change afterwards (nothing jumps under the director's cursor) until the next sort.
        """
        self._sort_column, self._sort_order = column, order
        if not self._contents.order:
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        nodes = [
            self._contents.batches[p.internalId()].children[p.row()] if p.internalId() != 0 else None
            for p in before
        ]
        for batch in self._contents.order:
            self._sort_children(batch)
        after = [
            p if node is None else self.createIndex(node.row, p.column(), node.batch_id)
            for p, node in zip(before, nodes, strict=True)
        ]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _sort_children(self, batch: BatchNode) -> None:
        column = self._sort_column
        if column < 0 or column >= len(Column):
            return
        key = SORT_KEYS[Column(column)]
        batch.children.sort(key=key, reverse=self._sort_order == Qt.SortOrder.DescendingOrder)
        for row, node in enumerate(batch.children):
            node.row = row

    # -- Qt model API ------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= N_COLUMNS or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row < len(self._contents.order) else QModelIndex()
        if parent.internalId() != 0 or parent.column() != 0 or parent.row() >= len(self._contents.order):
            return QModelIndex()
        batch = self._contents.order[parent.row()]
        if row >= len(batch.children):
            return QModelIndex()
        return self.createIndex(row, column, batch.batch.id)

    def parent(self, child: AnyIndex | None = None) -> Any:  # type: ignore[override]
        if child is None:  # QObject.parent()
            return super().parent()
        if not child.isValid() or child.internalId() == 0:
            return QModelIndex()
        node = self._contents.batches.get(child.internalId())
        return self.createIndex(node.row, 0, 0) if node else QModelIndex()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._contents.order)
        if parent.internalId() != 0 or parent.column() != 0 or parent.row() >= len(self._contents.order):
            return 0
        return len(self._contents.order[parent.row()].children)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return N_COLUMNS

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
        if index.internalId() == 0:
            return _BATCH_FLAGS
        if index.column() == Column.ADDRESS:
            node = self._message_node(index)
            if node is not None and node.resendable and not self._ctx.read_only:
                return _EDITABLE_FLAGS
        return MESSAGE_FLAGS

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != Column.ADDRESS:
            return False
        node = self._message_node(index)
        if node is None or not node.resendable:
            return False
        before = node.draft
        problem = self.set_draft(node.message.id, str(value or ""))
        if problem is not None:
            self.draft_rejected.emit(node.message.id, problem)
            return False
        if node.draft != before:
            self.draft_edited.emit(node.message.id, before or "", node.draft or "")
        return True

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if index.internalId() == 0:
            if index.row() >= len(self._contents.order):
                return None
            return self._cells.batch_data(self._contents.order[index.row()], COLUMNS[index.column()], role)
        node = self._message_node(index)
        return None if node is None else self._cells.message_data(node, COLUMNS[index.column()], role)

    def node_at(self, row: int, parent: AnyIndex) -> MessageNode | None:
        """The message row ``row`` under the batch row ``parent`` (the proxy's filter reads it)."""
        if parent.internalId() != 0 or parent.row() >= len(self._contents.order):
            return None
        children = self._contents.order[parent.row()].children
        return children[row] if row < len(children) else None

    def batch_children(self, row: int) -> list[MessageNode]:
        """The message rows of the batch row ``row`` (the proxy's filter reads them)."""
        order = self._contents.order
        return order[row].children if 0 <= row < len(order) else []

    def _message_node(self, index: AnyIndex) -> MessageNode | None:
        batch = self._contents.batches.get(index.internalId())
        if batch is None or index.row() >= len(batch.children):
            return None
        return batch.children[index.row()]

    # -- message rows ---------------------------------------------------------------------------
