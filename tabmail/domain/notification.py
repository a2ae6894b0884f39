"""Send batches, messages, provider events and address flags."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Event(enum.StrEnum):
    DRAW = "draw"  # draw release (adjudicators and/or teams)
    BALLOT = "ballot"  # ballot receipt
    CUSTOM = "custom"
    URLS = "urls"  # private URLs (Tabbycat "u"), tournament-scoped
    MOTIONS = "motions"  # motion release ("m"), per round
    POINTS = "points"  # team points / wins after a round ("p")
    REGISTRATION = "registration"  # team ("t") or adjudicator ("a") registration, tournament-scoped

    @property
    def per_round(self) -> bool:
        return self in (Event.DRAW, Event.BALLOT, Event.MOTIONS, Event.POINTS)


# Where a tournament's batches with no round (private URLs, registration) are listed: the
# navigator's node, the round view's title and the Problems view's round column say this.
TOURNAMENT_WIDE_NAME = "Tournament messages"


class Audience(enum.StrEnum):
    ADJUDICATORS = "adjudicators"
    TEAMS = "teams"
    ALL = "all"


class MessageState(enum.StrEnum):
    """Where a message is in the outbox. Terminal: sent, failed, skipped, uncertain."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"  # its batch waits for a release time (services.schedule)
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"

    @property
    def pending(self) -> bool:
        return self in (
            MessageState.QUEUED,
            MessageState.SCHEDULED,
            MessageState.SENDING,
            MessageState.RETRYING,
        )


class DeliveryStatus(enum.StrEnum):
    """What the provider says happened, one vocabulary for SendGrid's old and new names."""

    UNKNOWN = "unknown"
    PROCESSED = "processed"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    BLOCKED = "blocked"
    DROPPED = "dropped"
    SPAM_REPORT = "spam_report"
    UNSUBSCRIBED = "unsubscribed"

    @property
    def is_problem(self) -> bool:
        return self in PROBLEM_STATUSES


PROBLEM_STATUSES = frozenset(
    {DeliveryStatus.BOUNCED, DeliveryStatus.BLOCKED, DeliveryStatus.DROPPED, DeliveryStatus.SPAM_REPORT}
)


class FlagKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    BLOCKED = "blocked"
    INVALID = "invalid"
    SPAM = "spam"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Templates:
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class BulkNotification:
    id: int
    tournament_id: int
    round_id: int | None
    event: Event
    audience: Audience | None
    created_at: datetime
    templates: Templates
    backend: str
    triggered_by: str
    reroute_to: str | None = None  # test mode: every message went to this address
    scheduled_at: datetime | None = None  # a scheduled release: its messages waited until then
    triggered_on: str = ""  # the machine it was sent from ("": before tabmail kept it)


@dataclass(frozen=True, slots=True)
class Message:
    id: str  # tabmail's own id, generated here; never the provider's
    batch_id: int
    person_id: int | None
    recipient_name: str
    address: str
    state: MessageState
    attempts: int = 0
    last_error: str | None = None
    message_id_header: str | None = None
    provider_message_id: str | None = None  # SendGrid X-Message-Id
    sg_message_id: str | None = None
    delivery_status: DeliveryStatus = DeliveryStatus.UNKNOWN
    status_at: datetime | None = None
    status_reason: str | None = None
    resend_of: str | None = None
    reasons: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    role: str | None = None
    made_by: str | None = None  # a resend: who asked for it, and on which machine
    made_on: str | None = None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    id: int
    message_id: str | None  # None: unmatched, kept and shown
    provider: str
    provider_event_id: str
    event: str  # the provider's own name
    status: DeliveryStatus
    event_time: datetime
    received_at: datetime
    address: str | None
    reason: str | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AddressFlag:
    address_key: str
    address: str
    kind: FlagKind
    since: datetime
    diagnostic: str
    source: str
