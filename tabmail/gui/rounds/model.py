"""One round's notifications as a tree: send batches (newest first), each with its messages.

Loading costs three queries whatever the size of the round (batches with counts, all their
messages, the bounce flags of their addresses); every ``data()`` call is O(1) (``cells.py``).
After that the model only changes in place (``updates.py``): bridge signals mark messages
dirty, a short timer re-reads just those and emits ``dataChanged`` for exactly the rows that
changed, or inserts the rows that are new (a resend, a batch queued for this round). The view's
expansion and selection survive.

Index layout: batch rows have internal id 0; message rows carry their batch's id, which is
how ``parent()`` finds the batch row in O(1).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont

from tabmail.domain.addresses import address_key, validate_address
from tabmail.domain.notification import AddressFlag, BulkNotification, Message
from tabmail.domain.problems import Category, Resolution
from tabmail.gui.bridge import EventBridge
from tabmail.gui.rounds.cells import RoundCells
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
    RoundRoles,
)
from tabmail.gui.rounds.updates import FLUSH_DELAY_MS, RoundUpdates
from tabmail.gui.theme import Theme
from tabmail.services.context import AppContext

AnyIndex = QModelIndex | QPersistentModelIndex
log = logging.getLogger(__name__)
# Qt asks for indexes and data tens of thousands of times per filter keystroke: an enum's len()
# and Column(n) cost more than the rest of index() together.
COLUMNS = tuple(Column)
N_COLUMNS = len(COLUMNS)
_BATCH_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_MESSAGE_FLAGS = _BATCH_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_EDITABLE_FLAGS = _MESSAGE_FLAGS | Qt.ItemFlag.ItemIsEditable

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


class RoundMessagesModel(RoundCells, RoundUpdates, QAbstractItemModel):
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
        self._order: list[BatchNode] = []
        self._batches: dict[int, BatchNode] = {}
        self._messages: dict[str, MessageNode] = {}
        self._by_key: dict[str, list[MessageNode]] = {}
        self._resent_as: dict[str, list[str]] = {}
        self._flags: dict[str, AddressFlag] = {}
        self._manual: dict[str, Resolution] = {}
        self._foreign_batches: set[int] = set()
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._dirty: dict[str, int] = {}
        self._new_batches: set[int] = set()
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_DELAY_MS)
        self._flush_timer.timeout.connect(self._on_flush_timer_timeout)
        self._bold = QFont()
        self._bold.setWeight(QFont.Weight.DemiBold)
        self._italic = QFont()
        self._italic.setItalic(True)
        if bridge is not None:
            bridge.message_state_changed.connect(self._on_bridge_message_state_changed)
            bridge.statuses_changed.connect(self._on_bridge_statuses_changed)
            bridge.flags_changed.connect(self._on_bridge_flags_changed)
            bridge.batch_queued.connect(self._on_bridge_batch_queued)
            bridge.person_changed.connect(self._on_bridge_person_changed)
            bridge.replies_received.connect(self._on_bridge_replies_received)
            bridge.replies_changed.connect(self._on_bridge_replies_received)

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
        self._order, self._batches, self._messages = [], {}, {}
        self._by_key, self._resent_as, self._flags, self._manual = {}, {}, {}, {}
        self._foreign_batches.clear()
        self._dirty.clear()
        self._new_batches.clear()
        if self.scoped:
            summaries = self.scope_batches()
            messages = (
                self._ctx.notifications.messages(batch_ids=[s.batch.id for s in summaries])
                if summaries
                else []
            )
            for summary in summaries:
                self._append_batch(summary.batch)
            keys = {k for k in (address_key(m.address) for m in messages) if k}
            self._flags = self._ctx.flags.active(list(keys)) if keys else {}
            for m in messages:
                self._attach(m)
            problem_ids = [n.message.id for n in self._messages.values() if n.problem_category]
            self._manual = self._ctx.problems.resolutions(problem_ids) if problem_ids else {}
            for batch in self._order:
                self._settle(batch)
                self._sort_children(batch)
            self._take_corrections(list(self._messages.values()))
            self._load_replies(list(self._messages.values()), batch_ids=list(self._batches))
        self.endResetModel()

    # -- replies read from the tab room's mailbox ----------------------------------------------
    def _load_replies(
        self, nodes: list[MessageNode], batch_ids: list[int] | None = None
    ) -> list[MessageNode]:
        """Each row's reply count (one query); returns the rows whose count changed."""
        try:
            if batch_ids is not None:
                counts = self._ctx.inbox.reply_counts_in_batches(batch_ids)
            else:
                counts = self._ctx.inbox.reply_counts([n.message.id for n in nodes]) if nodes else {}
        except Exception:  # the round still shows without its reply markers
            log.warning("could not read the reply counts", exc_info=True)
            return []
        changed = []
        for node in nodes:
            fresh = counts.get(node.message.id, (0, 0))
            if fresh != node.replies:
                node.replies = fresh
                changed.append(node)
        return changed

    def _on_bridge_replies_received(self, message_ids: list[str]) -> None:
        nodes = [self._messages[m] for m in message_ids if m in self._messages]
        for node in self._load_replies(nodes):
            self._emit_row(node)
        if nodes:
            self.replies_changed.emit()

    def refresh_replies(self) -> None:
        """Re-read every row's reply count (a reply was read in the message view)."""
        for node in self._load_replies(list(self._messages.values()), batch_ids=list(self._batches)):
            self._emit_row(node)
        self.replies_changed.emit()

    def reply_totals(self) -> tuple[int, int]:
        """(replies, unread replies) over the round."""
        nodes = self._messages.values()
        return sum(n.replies[0] for n in nodes), sum(n.replies[1] for n in nodes)

    # -- addresses corrected in Participants ------------------------------------------------------
    def _take_corrections(self, nodes: list[MessageNode]) -> list[MessageNode]:
        """A problem row whose person's address was corrected since (in Participants, or by an
        import) shows the corrected address, ready to resend. Returns the rows that changed."""
        wanted = [
            n
            for n in nodes
            if n.resendable and n.message.person_id and not n.draft and n.message.id not in self._resent_as
        ]
        if not wanted:
            return []
        current = self._ctx.problems.current_addresses([n.message.person_id or 0 for n in wanted])
        changed = []
        for node in wanted:
            address, key = current.get(node.message.person_id or 0, ("", None))
            if not address or key == node.key:
                continue
            node.draft = address
            flag = self._flags.get(node.key)
            node.update(node.message, flag.kind if flag else None)
            changed.append(node)
        return changed

    def _on_bridge_person_changed(self, person_id: int) -> None:
        nodes = [n for n in self._messages.values() if n.message.person_id == person_id]
        if not nodes:
            return
        current = self._ctx.problems.current_addresses([person_id]).get(person_id)
        for node in nodes:
            if node.draft and node.resendable and (current is None or node.draft != current[0]):
                node.draft = None  # the address in Participants wins over an older correction here
                self._emit_row(node)
                self.draft_changed.emit(node.message.id)
        for node in self._take_corrections(nodes):
            self._emit_row(node)
            self.draft_changed.emit(node.message.id)

    def _append_batch(self, batch: BulkNotification) -> BatchNode:
        node = BatchNode(batch, len(self._order))
        self._order.append(node)
        self._batches[batch.id] = node
        return node

    def _attach(self, m: Message) -> MessageNode:
        parent = self._batches[m.batch_id]
        node = MessageNode(m, m.batch_id, len(parent.children))
        flag = self._flags.get(address_key(m.address) or "")
        node.update(m, flag.kind if flag else None)
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

    def batch_counts(self, batch_id: int) -> dict[str, int]:
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

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for b in self._order:
            total.update(b.counts)
        return total

    def status_of(self, message_id: str) -> str | None:
        node = self._messages.get(message_id)
        return node.status if node else None

    def category_of(self, message_id: str) -> Category | None:
        node = self._messages.get(message_id)
        return node.category if node else None

    def resolution(self, message_id: str) -> Resolution | None:
        """How this message's problem was resolved (None: not a problem, or unresolved)."""
        node = self._messages.get(message_id)
        return node.resolution if node is not None and node.resolved else None

    def is_problem(self, message_id: str) -> bool:
        node = self._messages.get(message_id)
        return node is not None and node.problem

    def problem_count(self) -> int:
        return sum(1 for n in self._messages.values() if n.problem)

    def is_resendable(self, message_id: str) -> bool:
        node = self._messages.get(message_id)
        return node is not None and node.resendable and not self._ctx.read_only

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
            flag = self._flags.get(node.key)
            node.update(node.message, flag.kind if flag else None)
            self._emit_row(node)
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
        if not self._order:
            return
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        nodes = [
            self._batches[p.internalId()].children[p.row()] if p.internalId() != 0 else None for p in before
        ]
        for batch in self._order:
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
        return _MESSAGE_FLAGS

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
            if index.row() >= len(self._order):
                return None
            return self._batch_data(self._order[index.row()], COLUMNS[index.column()], role)
        node = self._message_node(index)
        return None if node is None else self._message_data(node, COLUMNS[index.column()], role)

    def node_at(self, row: int, parent: AnyIndex) -> MessageNode | None:
        """The message row ``row`` under the batch row ``parent`` (the proxy's filter reads it)."""
        if parent.internalId() != 0 or parent.row() >= len(self._order):
            return None
        children = self._order[parent.row()].children
        return children[row] if row < len(children) else None

    def _message_node(self, index: AnyIndex) -> MessageNode | None:
        batch = self._batches.get(index.internalId())
        if batch is None or index.row() >= len(batch.children):
            return None
        return batch.children[index.row()]

    # -- message rows ---------------------------------------------------------------------------
