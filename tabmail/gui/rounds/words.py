"""How batches, messages and times read on screen: one place for the round view's words.

A message's *effective status* folds the outbox state and the provider's delivery status into
one string: the delivery status once the provider has said something about a handed-over
message, the outbox state otherwise. Buckets group effective statuses for a batch's counts.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from tabmail.domain.notification import (
    Audience,
    BulkNotification,
    DeliveryStatus,
    Event,
    Message,
    MessageState,
)
from tabmail.gui.theme import Look, Tone, delivery_status_look, message_state_look

# Statuses the "problems only" filter keeps (and the rows that get highlighted).
PROBLEM_STATUSES = frozenset(
    {
        DeliveryStatus.BOUNCED.value,
        DeliveryStatus.DROPPED.value,
        DeliveryStatus.BLOCKED.value,
        DeliveryStatus.SPAM_REPORT.value,
        MessageState.FAILED.value,
        MessageState.UNCERTAIN.value,
        MessageState.SKIPPED.value,
    }
)
# Worst first: the sort order of the status column.
SEVERITY = {
    DeliveryStatus.BOUNCED.value: 0,
    DeliveryStatus.BLOCKED.value: 1,
    DeliveryStatus.DROPPED.value: 2,
    MessageState.FAILED.value: 3,
    DeliveryStatus.SPAM_REPORT.value: 4,
    MessageState.UNCERTAIN.value: 5,
    MessageState.SKIPPED.value: 6,
    MessageState.RETRYING.value: 7,
    DeliveryStatus.DEFERRED.value: 8,
    MessageState.QUEUED.value: 9,
    MessageState.SENDING.value: 10,
    MessageState.SENT.value: 11,
    DeliveryStatus.PROCESSED.value: 12,
    DeliveryStatus.UNSUBSCRIBED.value: 13,
    DeliveryStatus.DELIVERED.value: 14,
    DeliveryStatus.OPENED.value: 15,
    DeliveryStatus.CLICKED.value: 16,
}
ROLE_NAMES = {"adjudicator": "Adjudicator", "speaker": "Speaker"}
BACKEND_NAMES = {"smtp": "SMTP", "sendgrid": "SendGrid", "file": "Files (dry run)"}


class Bucket(enum.StrEnum):
    """What a batch's stacked bar and counts are made of, in drawing order."""

    DELIVERED = "delivered"
    SENT = "sent"
    PENDING = "pending"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"
    BOUNCED = "bounced"
    FAILED = "failed"


BUCKET_TONES = {
    Bucket.DELIVERED: Tone.GOOD,
    Bucket.SENT: Tone.GOOD,
    Bucket.PENDING: Tone.PENDING,
    Bucket.UNCERTAIN: Tone.WARNING,
    Bucket.SKIPPED: Tone.NEUTRAL,
    Bucket.BOUNCED: Tone.BAD,
    Bucket.FAILED: Tone.BAD,
}
BUCKET_WORDS = {
    Bucket.DELIVERED: "delivered",
    Bucket.SENT: "sent",
    Bucket.PENDING: "pending",
    Bucket.UNCERTAIN: "uncertain",
    Bucket.SKIPPED: "skipped",
    Bucket.BOUNCED: "bounced",
    Bucket.FAILED: "failed",
}
# A batch's worst bucket decides its row's icon and highlight.
BUCKET_SEVERITY = (
    Bucket.BOUNCED,
    Bucket.FAILED,
    Bucket.UNCERTAIN,
    Bucket.PENDING,
    Bucket.SKIPPED,
    Bucket.SENT,
    Bucket.DELIVERED,
)
_SETTLED_DELIVERY = frozenset(s for s in DeliveryStatus if s is not DeliveryStatus.UNKNOWN)
_STATES = frozenset(s.value for s in MessageState)


def effective_status(m: Message) -> str:
    """The delivery status once the provider reported on a handed-over message, else the state."""
    if m.state in (MessageState.SENT, MessageState.UNCERTAIN) and m.delivery_status in _SETTLED_DELIVERY:
        return m.delivery_status.value
    return m.state.value


def status_look(status: str) -> Look:
    if status in _STATES:
        return message_state_look(status)
    return delivery_status_look(status)


def bucket_of(status: str) -> Bucket:
    if status in (DeliveryStatus.BOUNCED, DeliveryStatus.BLOCKED, DeliveryStatus.DROPPED):
        return Bucket.BOUNCED
    if status in (
        DeliveryStatus.DELIVERED,
        DeliveryStatus.OPENED,
        DeliveryStatus.CLICKED,
        DeliveryStatus.SPAM_REPORT,
        DeliveryStatus.UNSUBSCRIBED,
    ):
        return Bucket.DELIVERED
    if status in (MessageState.QUEUED, MessageState.SENDING, MessageState.RETRYING):
        return Bucket.PENDING
    if status == MessageState.FAILED:
        return Bucket.FAILED
    if status == MessageState.UNCERTAIN:
        return Bucket.UNCERTAIN
    if status == MessageState.SKIPPED:
        return Bucket.SKIPPED
    return Bucket.SENT  # sent, processed, deferred: accepted, no final word yet


# The order counts are spelt out in: what needs the director first, so an elided cell keeps it.
WORDS_ORDER = (
    Bucket.BOUNCED,
    Bucket.FAILED,
    Bucket.UNCERTAIN,
    Bucket.SKIPPED,
    Bucket.PENDING,
    Bucket.DELIVERED,
    Bucket.SENT,
)


def counts_text(counts: dict[Bucket, int]) -> str:
    parts = [f"{counts[b]} {BUCKET_WORDS[b]}" for b in WORDS_ORDER if counts.get(b)]
    return " · ".join(parts) if parts else "no messages"


def batch_title(batch: BulkNotification) -> str:
    if batch.event is Event.DRAW:
        who = {
            Audience.ADJUDICATORS: "adjudicators",
            Audience.TEAMS: "teams",
            Audience.ALL: "everyone",
        }.get(batch.audience or Audience.ALL, "everyone")
        title = f"Draw release · {who}"
    elif batch.event is Event.BALLOT:
        title = "Ballot receipts"
    else:
        title = "Custom message"
        if batch.audience is Audience.ADJUDICATORS:
            title += " · adjudicators"
        elif batch.audience is Audience.TEAMS:
            title += " · teams"
    if batch.reroute_to:
        title += " · test mode"
    return title


def backend_words(name: str) -> str:
    return BACKEND_NAMES.get(name, name)


def aware(value: datetime | None) -> datetime | None:
    """Stored times are UTC; SQLite may hand them back naive."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local_time(value: datetime | None, *, now: datetime | None = None, seconds: bool = False) -> str:
    """A stored UTC time in the laptop's time zone: just the time today, the day otherwise."""
    at = aware(value)
    if at is None:
        return ""
    local = at.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    clock = "%H:%M:%S" if seconds else "%H:%M"
    if local.date() == today:
        return local.strftime(clock)
    if local.year == today.year:
        return local.strftime(f"%a %d %b, {clock}")
    return local.strftime(f"%d %b %Y, {clock}")


def full_time(value: datetime | None) -> str:
    at = aware(value)
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if at else ""
