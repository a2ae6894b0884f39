"""SendGrid's event vocabularies mapped onto one ``DeliveryStatus``; pure, no I/O.

SendGrid speaks two dialects (reference/sendgrid.md §2.3, §2b, §4): the Event Webhook names
(``bounce``, ``open``, ``spamreport``...) that StrongGrid and the Logs API's event list use, and
the newer names (``bounced``, ``opened``, ``spam_report``, ``blocked``...) of the Activity spec and
the Logs API's summaries. Which one the live Activity API sends is UNVERIFIED, so both are read.

A message's status is derived from all its events by rank, not arrival order: ``delivered``
beats ``deferred`` and ``processed`` whatever order they come in, opens and clicks imply
delivery, and bounce / dropped / blocked are final (a later ``delivered`` cannot undo them; only
a resend, which is a new message, can). Unknown event names are kept with status UNKNOWN.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tabmail.domain.notification import DeliveryStatus, FlagKind

PROVIDER = "sendgrid"
TABMAIL_ID_ARG = "tabmail_id"

S = DeliveryStatus

# Event Webhook / StrongGrid / Logs-API event-list names.
OLD_NAMES: dict[str, DeliveryStatus] = {
    "processed": S.PROCESSED,
    "received": S.PROCESSED,  # Logs API: SendGrid received the request
    "deferred": S.DEFERRED,
    "delivered": S.DELIVERED,
    "bounce": S.BOUNCED,  # type "blocked"/"expired" -> BLOCKED, see status_for
    "dropped": S.DROPPED,
    "drop": S.DROPPED,
    "cancel_drop": S.DROPPED,
    "open": S.OPENED,
    "click": S.CLICKED,
    "spamreport": S.SPAM_REPORT,
    "unsubscribe": S.UNSUBSCRIBED,
    "group_unsubscribe": S.UNSUBSCRIBED,
    "group_resubscribe": S.DELIVERED,  # an act by the recipient: the mail got there
}
# Activity spec event_name enum and Logs-API summary statuses (plus the Activity summary's own).
NEW_NAMES: dict[str, DeliveryStatus] = {
    "processing": S.PROCESSED,
    "bounced": S.BOUNCED,
    "blocked": S.BLOCKED,
    "opened": S.OPENED,
    "clicked": S.CLICKED,
    "spam_report": S.SPAM_REPORT,
    "unsubscribed": S.UNSUBSCRIBED,
    "expired": S.BLOCKED,  # deferred for 72 h, then given up (TW-docs "Expired")
}
EVENT_STATUS: dict[str, DeliveryStatus] = {**OLD_NAMES, **NEW_NAMES}

# bounce / bounced "type" or "bounce_type": webhook bounce|blocked|expired, Activity spec hard|soft.
SOFT_BOUNCE_TYPES = frozenset({"blocked", "block", "soft", "expired"})

# Higher wins. Problems sit above everything: a late bounce after "delivered" is the truth.
RANK: dict[DeliveryStatus, int] = {
    S.UNKNOWN: 0,
    S.PROCESSED: 1,
    S.DEFERRED: 2,
    S.DELIVERED: 3,
    S.OPENED: 4,
    S.CLICKED: 5,
    S.UNSUBSCRIBED: 6,
    S.SPAM_REPORT: 7,
    S.BLOCKED: 8,
    S.DROPPED: 9,
    S.BOUNCED: 10,
}
FINAL_STATUSES = frozenset({S.BOUNCED, S.DROPPED, S.BLOCKED})
# No more news is expected once a message is here (engagement may still come, but is weak).
SETTLED_STATUSES = FINAL_STATUSES | {S.DELIVERED, S.OPENED, S.CLICKED, S.SPAM_REPORT, S.UNSUBSCRIBED}

# Drop reasons that mean "this address does not work" (reference §3: lists that suppress).
DROP_REASON_FLAGS: tuple[tuple[str, FlagKind | None], ...] = (
    ("bounced address", FlagKind.HARD),
    ("spam reporting address", FlagKind.SPAM),
    ("unsubscribed address", FlagKind.UNSUBSCRIBED),
    ("invalid smtpapi header", None),  # our fault, not the address's
    ("invalid", FlagKind.INVALID),
)


class ShapeError(ValueError):
    """An item did not have the shape SendGrid documents; the caller logs it and skips it."""


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing SendGrid says happened, whatever API it came from."""

    provider_event_id: str  # sg_event_id, or a stable hash of message + name + time
    name: str  # SendGrid's own name ("bounce", "bounced", "suppression:bounces"...)
    status: DeliveryStatus
    event_time: datetime  # SendGrid's time (aware UTC), never the arrival time
    tabmail_id: str | None = None
    sg_message_id: str | None = None
    x_message_id: str | None = None  # the X-Message-Id: sg_message_id's text before the first "."
    address: str | None = None
    reason: str | None = None
    bounce_type: str | None = None
    flag: FlagKind | None = None  # what this event says about the address, if anything
    source: str = ""  # "activity", "logs", "suppressions"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    provider: str = PROVIDER


@dataclass(frozen=True, slots=True)
class Derived:
    status: DeliveryStatus
    at: datetime | None
    reason: str | None


def status_for(name: str, bounce_type: str | None = None) -> DeliveryStatus:
    """The status an event name means (either vocabulary); UNKNOWN for names we do not know."""
    key = (name or "").strip().lower()
    status = EVENT_STATUS.get(key, S.UNKNOWN)
    if status is S.BOUNCED and (bounce_type or "").strip().lower() in SOFT_BOUNCE_TYPES:
        return S.BLOCKED
    return status


def flag_for(
    status: DeliveryStatus,
    *,
    reason: str | None = None,
    bounce_type: str | None = None,
    classification: str | None = None,
    name: str = "",
) -> FlagKind | None:
    """Which flag an event puts on its address: hard bounce, invalid, dropped because the address
    is on a suppression list, spam report, global unsubscribe. Blocks and deferrals flag nothing."""
    if status is S.BOUNCED:
        if (bounce_type or "").lower() in SOFT_BOUNCE_TYPES:
            return None
        if (classification or "").lower() == "invalid address":
            return FlagKind.INVALID
        return FlagKind.HARD
    if status is S.DROPPED:
        text = (reason or "").strip().lower()
        for needle, kind in DROP_REASON_FLAGS:
            if text.startswith(needle):
                return kind
        return None
    if status is S.SPAM_REPORT:
        return FlagKind.SPAM
    if status is S.UNSUBSCRIBED and name.lower() in (
        "unsubscribe",
        "unsubscribed",
        "suppression:unsubscribes",
    ):
        return FlagKind.UNSUBSCRIBED  # group unsubscribes only leave one group: no flag
    return None


def derive_status(events: Iterable[tuple[str | DeliveryStatus, datetime, str | None]]) -> Derived:
    """A message's status from its events' (status, time, reason): highest rank wins, the later
    event breaks a tie, and the reason comes from the winning event (or the latest event of the
    same status that gave one)."""
    best: DeliveryStatus = S.UNKNOWN
    best_at: datetime | None = None
    reasons: dict[DeliveryStatus, tuple[datetime, str]] = {}
    for raw_status, at, reason in events:
        try:
            status = DeliveryStatus(raw_status)
        except ValueError:
            status = S.UNKNOWN
        if reason:
            seen = reasons.get(status)
            if seen is None or at >= seen[0]:
                reasons[status] = (at, reason)
        rank = RANK[status]
        if best_at is None or rank > RANK[best] or (rank == RANK[best] and at > best_at):
            best, best_at = status, at
    why = reasons.get(best)
    return Derived(best, best_at, why[1] if why else None)


def stable_event_id(*parts: object) -> str:
    """A dedupe key for events SendGrid gives no sg_event_id: same inputs, same id."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return "h:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def x_message_id_of(sg_message_id: str | None) -> str | None:
    """The X-Message-Id an sg_message_id starts with (its text before the first '.')."""
    if not sg_message_id:
        return None
    head = sg_message_id.strip().split(".", 1)[0]
    return head or None


def parse_time(value: Any) -> datetime:
    """Unix seconds (int, float or digits) or ISO-8601 ('Z' or offset; naive means UTC)."""
    if isinstance(value, bool) or value is None:
        raise ShapeError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ShapeError(f"not a time: {value!r}") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ShapeError(f"not a time: {value!r}")


def iso_z(when: datetime) -> str:
    """SendGrid's TIMESTAMP literal format: 2026-03-01T09:00:00Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def tabmail_id_from(item: Mapping[str, Any]) -> str | None:
    """Our id from custom_args (Logs API: nested), unique_args (Activity: a dict or a JSON-ish
    string like "{'tabmail_id': '7f3c2a'}") or the top level (Event Webhook merges them)."""
    for key in ("custom_args", "unique_args"):
        nested = item.get(key)
        if isinstance(nested, Mapping):
            found = text_or_none(nested.get(TABMAIL_ID_ARG))
            if found:
                return found
        elif isinstance(nested, str) and TABMAIL_ID_ARG in nested:
            found = _id_in_text(nested)
            if found:
                return found
    return text_or_none(item.get(TABMAIL_ID_ARG))


def _id_in_text(text: str) -> str | None:
    """tabmail_id out of "{'tabmail_id': 'abc'}" / '{"tabmail_id":"abc"}' without eval."""
    start = text.find(TABMAIL_ID_ARG) + len(TABMAIL_ID_ARG)
    rest = text[start:].lstrip("'\" ").lstrip(":= ").lstrip()
    if not rest or rest[0] not in "'\"":
        return None
    quote = rest[0]
    end = rest.find(quote, 1)
    return rest[1:end].strip() or None if end > 1 else None
