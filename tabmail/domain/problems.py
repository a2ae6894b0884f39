"""One vocabulary for what happened to a message, and when a problem counts as resolved.

Every screen, count, banner, dialog and ``tabmail status --json`` reads a message through
``category_of``: the outbox state and the provider's delivery status folded into one
``Category``. A problem (``PROBLEM_CATEGORIES``) is *resolved* when a resend of it (directly or
down a chain of resends) reached its recipient, or when the director marked it resolved with a
reason; counts and "problems only" filters mean unresolved problems.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tabmail.domain.notification import DeliveryStatus, FlagKind, Message, MessageState


class Category(enum.StrEnum):
    """What happened to a message, in the director's words. Values are stable (JSON, CLI)."""

    BOUNCED = "bounced"
    BLOCKED = "blocked"
    DROPPED = "dropped"
    INVALID = "invalid"
    SPAM_REPORT = "spam_report"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    PENDING = "pending"  # queued, being sent, or waiting to retry
    SENT = "sent"  # accepted by the server or the provider, no final word yet
    DELIVERED = "delivered"  # delivered, opened or clicked


C = Category

PROBLEM_CATEGORIES = frozenset(
    {
        C.BOUNCED,
        C.BLOCKED,
        C.DROPPED,
        C.INVALID,
        C.SPAM_REPORT,
        C.UNSUBSCRIBED,
        C.FAILED,
        C.UNCERTAIN,
        C.SKIPPED,
    }
)
# What raises an alert when it arrives: the message did not reach its recipient (or was reported).
ALERT_CATEGORIES = frozenset({C.BOUNCED, C.BLOCKED, C.DROPPED, C.INVALID, C.SPAM_REPORT, C.FAILED})
# Worst first: the order counts are spelt out in and the sort order of a status column.
ORDER: tuple[Category, ...] = (
    C.BOUNCED,
    C.INVALID,
    C.BLOCKED,
    C.DROPPED,
    C.FAILED,
    C.SPAM_REPORT,
    C.UNSUBSCRIBED,
    C.UNCERTAIN,
    C.SKIPPED,
    C.DEFERRED,
    C.PENDING,
    C.SENT,
    C.DELIVERED,
)
SEVERITY = {c: i for i, c in enumerate(ORDER)}

# (one, many): the words a count uses, e.g. "2 bounced · 1 spam report".
COUNT_WORDS: dict[Category, tuple[str, str]] = {
    C.BOUNCED: ("bounced", "bounced"),
    C.BLOCKED: ("blocked", "blocked"),
    C.DROPPED: ("dropped", "dropped"),
    C.INVALID: ("invalid address", "invalid addresses"),
    C.SPAM_REPORT: ("spam report", "spam reports"),
    C.UNSUBSCRIBED: ("unsubscribed", "unsubscribed"),
    C.FAILED: ("failed", "failed"),
    C.UNCERTAIN: ("uncertain", "uncertain"),
    C.SKIPPED: ("skipped", "skipped"),
    C.DEFERRED: ("deferred", "deferred"),
    C.PENDING: ("pending", "pending"),
    C.SENT: ("sent", "sent"),
    C.DELIVERED: ("delivered", "delivered"),
}
# A short label for one message's row, and what happened, for sentences ("since it ...").
LABELS: dict[Category, str] = {
    C.BOUNCED: "Bounced",
    C.BLOCKED: "Blocked",
    C.DROPPED: "Dropped",
    C.INVALID: "Invalid address",
    C.SPAM_REPORT: "Spam report",
    C.UNSUBSCRIBED: "Unsubscribed",
    C.FAILED: "Failed",
    C.UNCERTAIN: "Uncertain",
    C.SKIPPED: "Skipped",
    C.DEFERRED: "Deferred",
    C.PENDING: "Pending",
    C.SENT: "Sent",
    C.DELIVERED: "Delivered",
}
HAPPENED: dict[Category, str] = {
    C.BOUNCED: "it bounced",
    C.BLOCKED: "the receiving server blocked it",
    C.DROPPED: "SendGrid dropped it",
    C.INVALID: "the address turned out to be invalid",
    C.SPAM_REPORT: "the recipient reported it as spam",
    C.UNSUBSCRIBED: "the recipient unsubscribed",
    C.FAILED: "sending it failed",
    C.UNCERTAIN: "it may not have been sent",
    C.SKIPPED: "it was not sent",
    C.DEFERRED: "delivery was deferred",
    C.PENDING: "it is still being sent",
    C.SENT: "it was sent",
    C.DELIVERED: "it was delivered",
}

_SETTLED = frozenset(s for s in DeliveryStatus if s is not DeliveryStatus.UNKNOWN)
_BY_STATUS: dict[DeliveryStatus, Category] = {
    DeliveryStatus.PROCESSED: C.SENT,
    DeliveryStatus.DEFERRED: C.DEFERRED,
    DeliveryStatus.DELIVERED: C.DELIVERED,
    DeliveryStatus.OPENED: C.DELIVERED,
    DeliveryStatus.CLICKED: C.DELIVERED,
    DeliveryStatus.BOUNCED: C.BOUNCED,
    DeliveryStatus.BLOCKED: C.BLOCKED,
    DeliveryStatus.DROPPED: C.DROPPED,
    DeliveryStatus.SPAM_REPORT: C.SPAM_REPORT,
    DeliveryStatus.UNSUBSCRIBED: C.UNSUBSCRIBED,
}
_BY_STATE: dict[MessageState, Category] = {
    MessageState.QUEUED: C.PENDING,
    MessageState.SCHEDULED: C.PENDING,
    MessageState.SENDING: C.PENDING,
    MessageState.RETRYING: C.PENDING,
    MessageState.SENT: C.SENT,
    MessageState.FAILED: C.FAILED,
    MessageState.SKIPPED: C.SKIPPED,
    MessageState.UNCERTAIN: C.UNCERTAIN,
}


def effective_status(m: Message) -> str:
    """The delivery status once the provider reported on a handed-over message, else the state."""
    if m.state in (MessageState.SENT, MessageState.UNCERTAIN) and m.delivery_status in _SETTLED:
        return m.delivery_status.value
    return m.state.value


def category_of(m: Message, flag: FlagKind | None = None) -> Category:
    """The message's category. ``flag``: the active flag on its address, if any (a bounce from an
    address flagged invalid reads "invalid address")."""
    if m.state in (MessageState.SENT, MessageState.UNCERTAIN) and m.delivery_status in _SETTLED:
        category = _BY_STATUS[m.delivery_status]
        if category is C.BOUNCED and flag is FlagKind.INVALID:
            return C.INVALID
        return category
    return _BY_STATE[m.state]


def count_words(category: Category, n: int) -> str:
    one, many = COUNT_WORDS[category]
    return f"{n} {one if n == 1 else many}"


def counts_text(counts: Mapping[Category, int], *, resolved: int = 0) -> str:
    """``"2 bounced · 1 spam report · 38 delivered"``: worst first, zeros left out."""
    parts = [count_words(c, counts[c]) for c in ORDER if counts.get(c)]
    if resolved:
        parts.insert(
            sum(1 for c in ORDER if counts.get(c) and c in PROBLEM_CATEGORIES), f"{resolved} resolved"
        )
    return " · ".join(parts) if parts else "no messages"


def reaches_recipient(m: Message, *, tracked: bool) -> bool:
    """A resend that settles its original: delivered, or accepted where nothing reports delivery
    (SMTP, files: ``tracked`` False)."""
    category = category_of(m)
    return category is C.DELIVERED or (not tracked and category is C.SENT)


def resolved_by_resend(messages: Iterable[Message], *, tracked: bool) -> dict[str, str]:
    """Original message id -> the id of a resend (direct, or down a chain) that reached its
    recipient. ``messages``: every message of the batches concerned (resends share the batch)."""
    children: dict[str, list[Message]] = {}
    for m in messages:
        if m.resend_of:
            children.setdefault(m.resend_of, []).append(m)
    found: dict[str, str] = {}

    def settle(mid: str, seen: frozenset[str]) -> str | None:
        if mid in found:
            return found[mid]
        for child in children.get(mid, ()):
            if child.id in seen:
                continue
            if reaches_recipient(child, tracked=tracked):
                found[mid] = child.id
                return child.id
            deeper = settle(child.id, seen | {child.id})
            if deeper is not None:
                found[mid] = deeper
                return deeper
        return None

    for original in list(children):
        settle(original, frozenset({original}))
    return found


@dataclass(frozen=True, slots=True)
class Resolution:
    """Why a problem no longer needs the director: a resend got there, or they said so."""

    message_id: str
    reason: str
    at: datetime | None = None
    by: str = ""
    resend_id: str | None = None  # the resend that reached the recipient, if that is why
