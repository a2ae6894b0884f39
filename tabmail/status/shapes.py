"""SendGrid's JSON items (Activity, Logs, suppression lists, webhook-shaped events) read into
``ProviderEvent``s. Pure. Each reader raises ShapeError for an item it cannot use; the source
logs that item and carries on with the next one.

Dedupe keys: ``sg_event_id`` where SendGrid gives one. Summaries and detail events without one
get a stable hash of message + name + time, so polling the same window twice stores nothing new.
Summary-derived events hash message + status (no time): a summary's ``last_event_time`` moves
with every open, and one "delivered" per message is what it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabmail.domain.notification import DeliveryStatus, FlagKind
from tabmail.status.events import (
    ProviderEvent,
    ShapeError,
    flag_for,
    parse_time,
    stable_event_id,
    status_for,
    tabmail_id_from,
    text_or_none,
    x_message_id_of,
)

S = DeliveryStatus

# Suppression list -> (status, flag, plain words for the reason when SendGrid gives none).
SUPPRESSION_LISTS: dict[str, tuple[DeliveryStatus, FlagKind | None, str]] = {
    "bounces": (S.BOUNCED, FlagKind.HARD, "on SendGrid's bounce list"),
    "blocks": (S.BLOCKED, None, "on SendGrid's block list"),
    "invalid_emails": (S.BOUNCED, FlagKind.INVALID, "on SendGrid's invalid-address list"),
    "spam_reports": (S.SPAM_REPORT, FlagKind.SPAM, "reported a message as spam"),
    "unsubscribes": (S.UNSUBSCRIBED, FlagKind.UNSUBSCRIBED, "unsubscribed from all mail from this account"),
}

# Activity summary status -> the event it stands for ("not_delivered" needs the detail).
_ACTIVITY_SUMMARY = {"processed": "processed", "processing": "processed", "delivered": "delivered"}


def _mapping(item: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ShapeError(f"{what} is not a JSON object: {type(item).__name__}")
    return item


def _required_text(item: Mapping[str, Any], key: str, what: str) -> str:
    value = text_or_none(item.get(key))
    if value is None:
        raise ShapeError(f"{what} has no {key!r}")
    return value


def from_webhook_event(item: Any, *, source: str, sg_message_id: str | None = None) -> ProviderEvent:
    """An Event Webhook-shaped event (Logs API detail ``events[]``; webhook exports)."""
    d = _mapping(item, "an event")
    name = _required_text(d, "event", "an event")
    when = parse_time(d.get("timestamp"))
    msg = text_or_none(d.get("sg_message_id")) or sg_message_id
    bounce_type = text_or_none(d.get("type"))
    status = status_for(name, bounce_type)
    reason = (
        text_or_none(d.get("reason")) or text_or_none(d.get("response")) or text_or_none(d.get("message"))
    )
    event_id = text_or_none(d.get("sg_event_id")) or stable_event_id(
        msg, name, when.isoformat(), d.get("email")
    )
    x_id = x_message_id_of(msg) or text_or_none(d.get("recv_msgid"))
    return ProviderEvent(
        provider_event_id=event_id,
        name=name,
        status=status,
        event_time=when,
        tabmail_id=tabmail_id_from(d),
        sg_message_id=msg,
        x_message_id=x_id,
        address=text_or_none(d.get("email")),
        reason=reason,
        bounce_type=bounce_type,
        flag=flag_for(
            status,
            reason=reason,
            bounce_type=bounce_type,
            classification=text_or_none(d.get("bounce_classification")),
            name=name,
        ),
        source=source,
        raw=dict(d),
    )


def from_activity_summary(item: Any) -> tuple[list[ProviderEvent], str | None]:
    """One ``GET /v3/messages`` item: its events, and its msg_id when the detail is needed
    (status ``not_delivered``: only the detail says bounced, dropped or deferred, and why)."""
    d = _mapping(item, "an Email Activity message")
    msg_id = _required_text(d, "msg_id", "an Email Activity message")
    summary = (text_or_none(d.get("status")) or "").lower()
    when = parse_time(d.get("last_event_time"))
    common: dict[str, Any] = {
        "event_time": when,
        "tabmail_id": tabmail_id_from(d),
        "sg_message_id": msg_id,
        "x_message_id": x_message_id_of(msg_id),
        "address": text_or_none(d.get("to_email")),
        "source": "activity",
        "raw": dict(d),
    }
    events: list[ProviderEvent] = []
    name = _ACTIVITY_SUMMARY.get(summary)
    if name is not None:
        events.append(
            ProviderEvent(stable_event_id(msg_id, "activity", name), name, status_for(name), **common)
        )
    for count_key, engaged in (("opens_count", "opened"), ("clicks_count", "clicked")):
        count = d.get(count_key)
        if isinstance(count, int | float) and not isinstance(count, bool) and count > 0:
            events.append(
                ProviderEvent(
                    stable_event_id(msg_id, "activity", engaged), engaged, status_for(engaged), **common
                )
            )
    if summary == "not_delivered":
        return events, msg_id
    if name is None and summary:
        # A status word the spec does not list: keep it (as UNKNOWN) rather than lose it.
        events.append(
            ProviderEvent(stable_event_id(msg_id, "activity", summary), summary, S.UNKNOWN, **common)
        )
    return events, None


def from_activity_detail(item: Any) -> list[ProviderEvent]:
    """``GET /v3/messages/{msg_id}``: every event of one message (``event_name`` in either
    vocabulary, ``processed`` = the event's time, ``bounce_type`` hard|soft or bounce|blocked)."""
    d = _mapping(item, "an Email Activity message detail")
    msg_id = _required_text(d, "msg_id", "an Email Activity message detail")
    raw_events = d.get("events")
    if not isinstance(raw_events, list):
        raise ShapeError("an Email Activity message detail has no 'events' list")
    tabmail_id = tabmail_id_from(d)
    address = text_or_none(d.get("to_email"))
    out: list[ProviderEvent] = []
    for e in raw_events:
        ev = _mapping(e, "an Email Activity event")
        name = _required_text(ev, "event_name", "an Email Activity event")
        when = parse_time(ev.get("processed"))
        bounce_type = text_or_none(ev.get("bounce_type"))
        status = status_for(name, bounce_type)
        reason = text_or_none(ev.get("reason"))
        out.append(
            ProviderEvent(
                provider_event_id=stable_event_id(msg_id, name, when.isoformat(), ev.get("attempt_num")),
                name=name,
                status=status,
                event_time=when,
                tabmail_id=tabmail_id,
                sg_message_id=msg_id,
                x_message_id=x_message_id_of(msg_id),
                address=address,
                reason=reason,
                bounce_type=bounce_type,
                flag=flag_for(status, reason=reason, bounce_type=bounce_type, name=name),
                source="activity",
                raw={**dict(ev), "msg_id": msg_id, "to_email": address},
            )
        )
    return out


def from_logs_summary(item: Any) -> ProviderEvent:
    """One ``POST /v3/logs`` item: a message's summary status (processed, delivered, deferred,
    dropped, bounced, blocked) with its reason. Its only time is the message's creation."""
    d = _mapping(item, "an Email Logs message")
    msg_id = _required_text(d, "sg_message_id", "an Email Logs message")
    status_word = _required_text(d, "status", "an Email Logs message").lower()
    when = parse_time(d.get("sg_message_id_created_at"))
    status = status_for(status_word)
    reason = text_or_none(d.get("reason"))
    return ProviderEvent(
        provider_event_id=stable_event_id(msg_id, "logs", status_word),
        name=status_word,
        status=status,
        event_time=when,
        tabmail_id=tabmail_id_from(d),
        sg_message_id=msg_id,
        x_message_id=x_message_id_of(msg_id),
        address=text_or_none(d.get("to_email")),
        reason=reason,
        flag=flag_for(status, reason=reason, name=status_word),
        source="logs",
        raw=dict(d),
    )


def from_suppression(list_name: str, item: Any) -> ProviderEvent:
    """One entry of a suppression list: an address and when SendGrid added it. It names no
    message; the store matches it by address and a send before ``created``."""
    if list_name not in SUPPRESSION_LISTS:
        raise ShapeError(f"unknown suppression list {list_name!r}")
    status, flag, words = SUPPRESSION_LISTS[list_name]
    d = _mapping(item, f"a {list_name} entry")
    address = _required_text(d, "email", f"a {list_name} entry")
    when = parse_time(d.get("created", d.get("created_at")))
    reason = text_or_none(d.get("reason")) or words
    name = f"suppression:{list_name}"
    return ProviderEvent(
        provider_event_id=stable_event_id("suppression", list_name, address.lower(), int(when.timestamp())),
        name=name,
        status=status,
        event_time=when,
        address=address,
        reason=reason,
        bounce_type=text_or_none(d.get("status")),
        flag=flag,
        source="suppressions",
        raw={**dict(d), "list": list_name},
    )
