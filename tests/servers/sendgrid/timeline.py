"""Scripted per-recipient event timelines and the three ways SendGrid shows them.

A timeline is a tuple of ``Step``s in webhook vocabulary (processed, deferred, delivered, bounce,
dropped, open, click, spamreport, unsubscribe), each ``after`` seconds after the send. An event
is visible once the server's clock reaches it. Shapes follow SendGrid's documented event and activity formats.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OUTBOUND_IP = "198.51.100.7"


class FakeClock:
    """The server's notion of now (unix seconds); it only moves when told to."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time() if start is None else start))
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            self._now = float(when)


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class Step:
    event: str
    after: float
    fields: Mapping[str, Any] = field(default_factory=dict)
    with_message_id: bool = True  # False: an asynchronous bounce SendGrid cannot tie to a message
    suppress: str | None = None  # the suppression list this event puts the address on


Timeline = tuple[Step, ...]

_DELIVERED = {"response": "250 2.0.0 OK queued", "ip": OUTBOUND_IP, "tls": 1}


def delivered(after: float = 2.0) -> Timeline:
    return (Step("processed", 0.0), Step("delivered", after, _DELIVERED))


def deferred(times: int = 2, every: float = 300.0, *, then_delivered: bool = True) -> Timeline:
    """processed, deferred x times, then delivered (or, without delivery, a block: expired)."""
    steps = [Step("processed", 0.0)]
    for n in range(1, times + 1):
        steps.append(
            Step(
                "deferred",
                n * every,
                {"response": "421 4.7.0 Try again later", "attempt": str(n), "ip": OUTBOUND_IP, "tls": 1},
            )
        )
    end = (times + 1) * every
    if then_delivered:
        steps.append(Step("delivered", end, _DELIVERED))
    else:
        steps.append(
            Step(
                "bounce", end, {"type": "blocked", "reason": "expired", "status": "4.0.0"}, suppress="blocks"
            )
        )
    return tuple(steps)


def bounced(
    kind: str = "bounce",
    after: float = 5.0,
    *,
    reason: str = "550 5.1.1 The email account that you tried to reach does not exist",
    status: str = "5.1.1",
    classification: str = "Invalid Address",
) -> Timeline:
    """A hard bounce (kind "bounce", lands on the bounces list) or a block (kind "blocked")."""
    if kind == "blocked" and reason.startswith("550 5.1.1"):
        reason, status, classification = "554 5.7.1 Message rejected as spam", "5.7.1", "Reputation"
    fields: dict[str, Any] = {
        "type": kind,
        "reason": reason,
        "status": status,
        "bounce_classification": classification,
    }
    fields |= {"ip": OUTBOUND_IP, "tls": 1}
    return (
        Step("processed", 0.0),
        Step("bounce", after, fields, suppress="bounces" if kind == "bounce" else "blocks"),
    )


def invalid_address(after: float = 5.0) -> Timeline:
    fields = {
        "type": "bounce",
        "reason": "Mail domain mentioned in email address is unknown",
        "status": "5.1.2",
        "bounce_classification": "Invalid Address",
    }
    return (Step("processed", 0.0), Step("bounce", after, fields, suppress="invalid_emails"))


def dropped(reason: str = "Bounced Address", after: float = 1.0) -> Timeline:
    return (Step("processed", 0.0), Step("dropped", after, {"reason": reason, "status": "5.0.0"}))


def opened(after: float = 60.0, *, machine: bool = False) -> Timeline:
    fields: dict[str, Any] = {"useragent": "Mozilla/5.0", "ip": "203.0.113.50", "sg_content_type": "html"}
    if machine:
        fields["sg_machine_open"] = True
    return (*delivered(), Step("open", after, fields))


def spam_report(after: float = 120.0) -> Timeline:
    return (*delivered(), Step("spamreport", after, suppress="spam_reports"))


def unsubscribed(after: float = 120.0) -> Timeline:
    return (*delivered(), Step("unsubscribe", after, suppress="unsubscribes"))


def late_bounce(after: float = 3600.0) -> Timeline:
    """Delivered, then an asynchronous bounce carrying no sg_message_id (reference §1.4)."""
    fields = {
        "type": "bounce",
        "reason": "550 5.1.1 user unknown (async)",
        "bounce_classification": "Invalid Address",
    }
    return (*delivered(), Step("bounce", after, fields, with_message_id=False, suppress="bounces"))


# What each suppression list says when SendGrid drops a message to a suppressed address.
DROP_REASONS = {
    "bounces": "Bounced Address",
    "invalid_emails": "Invalid",
    "spam_reports": "Spam Reporting Address",
    "unsubscribes": "Unsubscribed Address",
}

# The Activity API's own names (OAI-activity) versus the webhook names (StrongGrid): both seen.
ACTIVITY_NAMES = {"bounce": "bounced", "open": "opened", "click": "clicked", "spamreport": "spam_report"}


@dataclass(slots=True)
class Recipient:
    """One recipient of an accepted request: one SendGrid message with its own msg_id."""

    msg_id: str
    x_message_id: str
    email: str
    from_email: str
    subject: str
    custom_args: dict[str, str]
    categories: list[str]
    sent_at: float
    timeline: Timeline
    smtp_id: str

    def steps(self, now: float) -> list[tuple[int, Step]]:
        return [(i, s) for i, s in enumerate(self.timeline) if self.sent_at + s.after <= now]

    def attached(self, now: float) -> list[tuple[int, Step]]:
        """Visible events SendGrid can tie to this message."""
        return [(i, s) for i, s in self.steps(now) if s.with_message_id]

    def event_id(self, index: int) -> str:
        digest = hashlib.sha256(f"{self.msg_id}/{index}".encode()).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()

    def webhook_event(self, index: int, step: Step, *, nested_args: bool) -> dict[str, Any]:
        """The Event Webhook shape; custom args merged at top level, or nested (Email Logs)."""
        event: dict[str, Any] = {}
        if not nested_args:
            event.update(self.custom_args)  # reserved keys below win, as SendGrid does
        event |= {
            "email": self.email,
            "timestamp": int(self.sent_at + step.after),
            "event": step.event,
            "sg_event_id": self.event_id(index),
            "smtp-id": self.smtp_id,
            "category": list(self.categories),
            **step.fields,
        }
        if step.with_message_id:
            event["sg_message_id"] = self.msg_id
        if nested_args and self.custom_args:
            event["custom_args"] = dict(self.custom_args)
        return event

    def last_event_time(self, now: float) -> float | None:
        attached = self.attached(now)
        return self.sent_at + attached[-1][1].after if attached else None

    def activity_status(self, now: float) -> str:
        names = {s.event for _, s in self.attached(now)}
        if names & {"bounce", "dropped"}:
            return "not_delivered"
        if names & {"delivered", "open", "click"}:
            return "delivered"
        return "processed"

    def activity_summary(self, now: float) -> dict[str, Any]:
        attached = self.attached(now)
        last = self.last_event_time(now)
        return {
            "from_email": self.from_email,
            "msg_id": self.msg_id,
            "subject": self.subject,
            "to_email": self.email,
            "status": self.activity_status(now),
            "opens_count": sum(1 for _, s in attached if s.event == "open"),
            "clicks_count": sum(1 for _, s in attached if s.event == "click"),
            "last_event_time": iso(last if last is not None else self.sent_at),
        }

    def activity_detail(self, now: float, *, vocabulary: str, duplicates: bool) -> dict[str, Any]:
        events = []
        for _, step in self.attached(now):
            name = ACTIVITY_NAMES.get(step.event, step.event) if vocabulary == "spec" else step.event
            item: dict[str, Any] = {"event_name": name, "processed": iso(self.sent_at + step.after)}
            reason = step.fields.get("reason") or step.fields.get("response")
            if reason:
                item["reason"] = str(reason)
            if step.event == "deferred":
                item["attempt_num"] = int(step.fields.get("attempt", "1"))
                item["mx_server"] = "mx." + self.email.rpartition("@")[2]
            if step.event == "bounce":
                kind = str(step.fields.get("type", "bounce"))
                item["bounce_type"] = (
                    {"bounce": "hard", "blocked": "soft"}[kind] if vocabulary == "spec" else kind
                )
            if step.event in ("open", "click"):
                item["http_user_agent"] = str(step.fields.get("useragent", "Mozilla/5.0"))
            events.append(item)
            if duplicates:
                events.append(dict(item))
        args = ", ".join(f"'{k}': '{v}'" for k, v in self.custom_args.items())
        return {
            **self.activity_summary(now),
            "template_id": "",
            "asm_group_id": 0,
            "teammate": "",
            "api_key_id": "TabmailTestKey",
            "originating_ip": "203.0.113.9",
            "categories": list(self.categories),
            # a string, not an object (OAI-activity)
            "unique_args": "{" + args + "}" if args else "Null",
            "outbound_ip": OUTBOUND_IP,
            "outbound_ip_type": "shared",
            "events": events,
        }

    def logs_status(self, now: float) -> tuple[str, str | None]:
        status, reason = "processed", None
        for _, step in self.attached(now):
            if step.event == "bounce":
                status = "blocked" if step.fields.get("type") == "blocked" else "bounced"
                reason = str(step.fields.get("reason", "")) or None
            elif step.event == "dropped":
                status, reason = "dropped", str(step.fields.get("reason", "")) or None
            elif step.event == "deferred":
                status, reason = "deferred", str(step.fields.get("response", "")) or None
            elif step.event in ("delivered", "open", "click"):
                status, reason = "delivered", None
        return status, reason

    def logs_summary(self, now: float) -> dict[str, Any]:
        status, reason = self.logs_status(now)
        row: dict[str, Any] = {
            "from_email": self.from_email,
            "sg_message_id": self.msg_id,
            "subject": self.subject,
            "to_email": self.email,
            "status": status,
            "sg_message_id_created_at": iso(self.sent_at),
        }
        if reason:
            row["reason"] = reason
        return row

    def logs_detail(self, now: float, *, duplicates: bool) -> dict[str, Any]:
        events = []
        for index, step in self.attached(now):
            event = self.webhook_event(index, step, nested_args=True)
            events.append(event)
            if duplicates:
                events.append(dict(event))
        summary = self.logs_summary(now)
        summary.pop("reason", None)
        summary.pop("sg_message_id_created_at", None)
        return {
            **summary,
            "api_key_id": "TabmailTestKey",
            "client_ip": "203.0.113.9",
            "category": list(self.categories),
            "custom_args": dict(self.custom_args),
            "outbound_ip": OUTBOUND_IP,
            "outbound_ip_type": "shared",
            "events": events[-100:],
        }
