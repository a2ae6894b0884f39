"""What was read from the tab room's mailbox: bounces, spam reports, auto-replies, replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class InboxEntry:
    id: int
    kind: str  # dsn | bounce | feedback | auto_reply | reply | ignored
    received_at: datetime | None
    from_address: str | None
    from_name: str
    subject: str
    message_id: str | None  # the tabmail message it answers or reports on; None: unmatched
    person_id: int | None
    matched_by: str | None
    different_sender: bool  # a reply from another address than the one we sent to
    reply_text: str | None
    read_at: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)
    header_message_id: str | None = None  # the inbound message's own Message-ID
    recipient_name: str | None = None  # of the attributed message
    sent_to: str | None = None  # the address the attributed message went to
    tournament_slug: str | None = None
    round_seq: int | None = None


@dataclass(frozen=True, slots=True)
class SentRef:
    """One of our sent messages, as inbound matching needs it."""

    id: str
    message_id_header: str | None
    address_key: str
    person_id: int | None
    tournament_slug: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class SentChoice:
    """One of our sent messages, as the director picks it to attach a reply by hand."""

    id: str
    recipient_name: str
    address: str
    subject: str
    sent_at: datetime | None
    tournament_slug: str
    round_seq: int | None
