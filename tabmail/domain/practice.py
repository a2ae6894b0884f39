"""Practice mode: what happens to a message that never leaves this computer. Pure, no I/O.

The practice backend accepts every message at once; its status source then plays each
recipient's *fate* over about a minute, in SendGrid's own event names, so the messages go
through the same status pipeline as real ones. A fate is a function of the address alone (a
hash), so sending twice to a bad address fails twice, and the same demo round always shows the
same problems. A message resent to a *corrected* address (a different address from the message
it resends) is always delivered: in practice, the director's fix works.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

BACKEND = "practice"
LABEL = "Practice — nothing leaves this computer"
SHORT_LABEL = "Practice"
EXPLANATION = (
    "Practice mode: messages are not sent anywhere. Each recipient gets a realistic fate over "
    "about a minute (most are delivered; a few bounce, are blocked, dropped or reported as spam; "
    "some are deferred first), decided by the address, so a corrected address is delivered."
)
# Every fate has played out this long after the send (the source looks back this far).
SPAN = timedelta(seconds=65)


class Fate(enum.StrEnum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # deferred first, delivered about a minute later
    BOUNCED = "bounced"
    BLOCKED = "blocked"
    DROPPED = "dropped"
    SPAM = "spam"  # delivered, then reported as spam


# Out of 1,000 hash buckets: about one message in eight has a problem, one in twenty-five is
# deferred first; the rest are delivered.
_BUCKETS: tuple[tuple[Fate, int], ...] = (
    (Fate.BOUNCED, 45),
    (Fate.BLOCKED, 30),
    (Fate.DROPPED, 25),
    (Fate.SPAM, 25),
    (Fate.DEFERRED, 40),
)
# The salt is chosen so that the bundled demo's round shows every fate at least once.
_SALT = b"tabmail practice v37\x00"


@dataclass(frozen=True, slots=True)
class PracticeSend:
    """One message sent through the practice backend, as the status source needs it."""

    message_id: str
    address: str
    sent_at: datetime
    corrected: bool = False  # a resend to a different address than the message it resends


@dataclass(frozen=True, slots=True)
class PracticeEvent:
    """One step of a fate: SendGrid's Event Webhook name, its offset from the send, the reason."""

    name: str  # "processed", "deferred", "delivered", "bounce", "dropped", "spamreport"
    after: timedelta
    reason: str | None = None
    bounce_type: str | None = None  # "bounce" or "blocked" for name == "bounce"


def _digest(address: str) -> bytes:
    return hashlib.sha256(_SALT + address.strip().lower().encode("utf-8")).digest()


def fate_of(address: str, *, corrected: bool = False) -> Fate:
    """The fate of mail to ``address``; always DELIVERED for a corrected address."""
    if corrected:
        return Fate.DELIVERED
    bucket = int.from_bytes(_digest(address)[:4], "big") % 1000
    for fate, width in _BUCKETS:
        if bucket < width:
            return fate
        bucket -= width
    return Fate.DELIVERED


def _seconds(address: str, index: int, low: int, high: int) -> timedelta:
    """A per-address delay in [low, high] seconds (a different byte of the hash per step)."""
    byte = _digest(address)[8 + index]
    return timedelta(seconds=low + byte % (high - low + 1))


def script(address: str, *, corrected: bool = False) -> list[PracticeEvent]:
    """Every event a message to ``address`` gets, in order, with its offset from the send."""
    fate = fate_of(address, corrected=corrected)
    events = [PracticeEvent("processed", timedelta(seconds=1))]
    delivered = PracticeEvent("delivered", _seconds(address, 0, 4, 15), "250 2.0.0 OK: queued as practice")
    if fate is Fate.DELIVERED:
        events.append(delivered)
    elif fate is Fate.DEFERRED:
        events.append(
            PracticeEvent(
                "deferred",
                _seconds(address, 1, 6, 12),
                "421 4.7.0 Try again later: the receiving server is busy",
            )
        )
        events.append(
            PracticeEvent("delivered", _seconds(address, 2, 45, 60), "250 2.0.0 OK: queued as practice")
        )
    elif fate is Fate.BOUNCED:
        events.append(
            PracticeEvent(
                "bounce",
                _seconds(address, 3, 10, 25),
                f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table",
                bounce_type="bounce",
            )
        )
    elif fate is Fate.BLOCKED:
        events.append(
            PracticeEvent(
                "bounce",
                _seconds(address, 4, 12, 30),
                "554 5.7.1 Service unavailable; message blocked by the receiving server's policy",
                bounce_type="blocked",
            )
        )
    elif fate is Fate.DROPPED:
        events.append(PracticeEvent("dropped", _seconds(address, 5, 2, 4), "Bounced Address"))
    elif fate is Fate.SPAM:
        events.append(delivered)
        events.append(
            PracticeEvent(
                "spamreport", _seconds(address, 6, 35, 60), "The recipient marked the message as spam"
            )
        )
    return events
