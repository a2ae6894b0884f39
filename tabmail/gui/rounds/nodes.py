"""The round tree's rows: columns, custom roles, the batch and message nodes behind them, and
the round's contents that hold them."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import AddressFlag, BulkNotification, FlagKind, Message
from tabmail.domain.problems import (
    ORDER,
    PROBLEM_CATEGORIES,
    SEVERITY,
    Category,
    Resolution,
    category_of,
    effective_status,
    resolved_by_resend,
)
from tabmail.gui.collation import sort_key
from tabmail.gui.rounds.words import RESOLVED, aware
from tabmail.gui.theme import Look, Tone

AnyIndex = QModelIndex | QPersistentModelIndex


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
    COUNTS = Qt.ItemDataRole.UserRole + 20  # batch rows: dict[Category | "resolved", int]
    BUCKET = Qt.ItemDataRole.UserRole + 21  # message rows: the count key (Category value, "resolved")
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
    Category.BOUNCED: Look(Tone.BAD, "Bounces", "Some messages bounced.", "cross"),
    Category.INVALID: Look(Tone.BAD, "Invalid addresses", "Some addresses do not exist.", "at"),
    Category.BLOCKED: Look(Tone.BAD, "Blocks", "Some messages were blocked.", "cross"),
    Category.DROPPED: Look(Tone.BAD, "Drops", "SendGrid dropped some messages.", "cross"),
    Category.FAILED: Look(Tone.BAD, "Failures", "Some messages could not be sent.", "cross"),
    Category.SPAM_REPORT: Look(Tone.BAD, "Spam reports", "Some recipients reported spam.", "warning"),
    Category.UNSUBSCRIBED: Look(Tone.WARNING, "Unsubscribes", "Some recipients unsubscribed.", "minus"),
    Category.UNCERTAIN: Look(Tone.WARNING, "Uncertain", "Some messages may not have gone out.", "warning"),
    Category.SKIPPED: Look(Tone.NEUTRAL, "Skipped", "Some messages were not sent.", "minus"),
    Category.DEFERRED: Look(Tone.WARNING, "Deferred", "Some messages are deferred.", "retry"),
    Category.PENDING: Look(Tone.PENDING, "Sending", "Some messages are still being sent.", "clock"),
    Category.SENT: Look(Tone.GOOD, "Sent", "Every message was accepted.", "check"),
    Category.DELIVERED: Look(Tone.GOOD, "Delivered", "Every message was delivered.", "double_check"),
}
# The categories that paint a batch row red.
HIGHLIGHT_CATEGORIES = frozenset(c for c in PROBLEM_CATEGORIES if BATCH_LOOKS[c].tone is Tone.BAD)


@dataclass(slots=True, eq=False)
class MessageNode:
    message: Message
    batch_id: int
    row: int
    status: str = ""
    category: Category = Category.PENDING
    key: str = ""
    search: str = ""
    draft: str | None = None
    resolution: Resolution | None = None
    name_key: Any = None  # the recipient's name as QCollator sorts it
    replies: tuple[int, int] = (0, 0)  # (replies, unread replies) read from the tab room's mailbox

    def update(self, message: Message, flag: FlagKind | None = None) -> None:
        if self.name_key is None or message.recipient_name != self.message.recipient_name:
            self.name_key = sort_key(message.recipient_name)
        self.message = message
        self.status = effective_status(message)
        self.category = category_of(message, flag)
        self.key = address_key(message.address) or ""
        self.search = " ".join(
            (message.recipient_name, message.address, message.id, message.role or "", self.draft or "")
        ).casefold()

    @property
    def problem_category(self) -> bool:
        return self.category in PROBLEM_CATEGORIES

    @property
    def resolved(self) -> bool:
        return self.resolution is not None and self.problem_category

    @property
    def problem(self) -> bool:
        """An unresolved problem: highlighted, counted, kept by "problems only"."""
        return self.problem_category and self.resolution is None

    @property
    def bucket(self) -> str:
        """What this row counts as in its batch's counts."""
        return RESOLVED if self.resolved else self.category.value

    @property
    def resendable(self) -> bool:
        if not self.problem_category or self.message.state.pending:
            return False
        return self.resolution is None or self.resolution.resend_id is None


@dataclass(slots=True, eq=False)
class BatchNode:
    batch: BulkNotification
    row: int
    children: list[MessageNode] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def settle(self, manual: dict[str, Resolution], *, tracked: bool) -> list[MessageNode]:
        """Recompute every child's resolution and the counts; returns the children whose
        resolution changed."""
        by_resend = resolved_by_resend((c.message for c in self.children), tracked=tracked)
        changed = []
        for c in self.children:
            mid = c.message.id
            if mid in by_resend:
                fresh: Resolution | None = Resolution(
                    mid, "a resend reached the recipient", None, "", by_resend[mid]
                )
            else:
                fresh = manual.get(mid)
            if fresh != c.resolution:
                c.resolution = fresh
                changed.append(c)
        self.counts = Counter(c.bucket for c in self.children)
        return changed

    @property
    def worst(self) -> Category:
        for category in ORDER:
            if self.counts.get(category):
                return category
        return Category.SENT

    @property
    def problem(self) -> bool:
        return any(self.counts.get(c) for c in PROBLEM_CATEGORIES)

    @property
    def highlighted(self) -> bool:
        return any(self.counts.get(c) for c in HIGHLIGHT_CATEGORIES)


def _name(node: MessageNode) -> Any:
    return node.name_key


def _when(node: MessageNode) -> float:
    m = node.message
    at = aware(m.status_at or m.sent_at or m.created_at)
    return at.timestamp() if at else 0.0


SORT_KEYS: dict[Column, Any] = {
    Column.RECIPIENT: lambda n: (_name(n), n.message.id),
    Column.ROLE: lambda n: (n.message.role or "", _name(n)),
    Column.ADDRESS: lambda n: ((n.draft or n.message.address).casefold(), _name(n)),
    Column.STATUS: lambda n: (SEVERITY[n.category] + (50 if n.resolved else 0), _name(n)),
    Column.WHEN: lambda n: (_when(n), _name(n)),
}


class RoundContents:
    """What the round tree shows, owned by ``RoundMessagesModel`` and shared with the objects it
    owns (its ``CellFormatter`` reads it, its ``RoundUpdater`` keeps it current): the batches in
    display order, every message row by id and by address, the resend links, the address flags
    and the director's resolutions."""

    def __init__(self) -> None:
        self.order: list[BatchNode] = []
        self.batches: dict[int, BatchNode] = {}
        self.messages: dict[str, MessageNode] = {}
        self.by_key: dict[str, list[MessageNode]] = {}
        self.resent_as: dict[str, list[str]] = {}
        self.flags: dict[str, AddressFlag] = {}
        self.manual: dict[str, Resolution] = {}
        self.foreign_batches: set[int] = set()  # batches of another round or tournament

    def clear(self) -> None:
        self.order, self.batches, self.messages = [], {}, {}
        self.by_key, self.resent_as, self.flags, self.manual = {}, {}, {}, {}
        self.foreign_batches = set()

    def flag_kind(self, node: MessageNode) -> FlagKind | None:
        flag = self.flags.get(node.key)
        return flag.kind if flag else None

    def append_batch(self, batch: BulkNotification) -> BatchNode:
        node = BatchNode(batch, len(self.order))
        self.order.append(node)
        self.batches[batch.id] = node
        return node

    def attach(self, m: Message) -> MessageNode:
        parent = self.batches[m.batch_id]
        node = MessageNode(m, m.batch_id, len(parent.children))
        flag = self.flags.get(address_key(m.address) or "")
        node.update(m, flag.kind if flag else None)
        parent.children.append(node)
        parent.counts[node.bucket] += 1
        self.messages[m.id] = node
        if node.key:
            self.by_key.setdefault(node.key, []).append(node)
        if m.resend_of:
            self.resent_as.setdefault(m.resend_of, []).append(m.id)
        return node

    def address_of(self, message_id: str) -> str:
        node = self.messages.get(message_id)
        return node.message.address if node is not None else "another address"

    def category(self, message_id: str) -> Category | None:
        node = self.messages.get(message_id)
        return node.category if node is not None else None
