"""The round tree's rows: columns, custom roles, and the batch and message nodes behind them."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import BulkNotification, Message
from tabmail.gui.rounds.words import (
    BUCKET_SEVERITY,
    PROBLEM_STATUSES,
    SEVERITY,
    Bucket,
    aware,
    bucket_of,
    effective_status,
)
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


def _name(node: MessageNode) -> str:
    return node.message.recipient_name.casefold()


def _when(node: MessageNode) -> float:
    m = node.message
    at = aware(m.status_at or m.sent_at or m.created_at)
    return at.timestamp() if at else 0.0


SORT_KEYS: dict[Column, Any] = {
    Column.RECIPIENT: lambda n: (_name(n), n.message.id),
    Column.ROLE: lambda n: (n.message.role or "", _name(n)),
    Column.ADDRESS: lambda n: ((n.draft or n.message.address).casefold(), _name(n)),
    Column.STATUS: lambda n: (SEVERITY.get(n.status, 99), _name(n)),
    Column.WHEN: lambda n: (_when(n), _name(n)),
}
