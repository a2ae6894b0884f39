"""The one protocol every sending backend follows (SMTP, SendGrid Web API, file).

The outbox owns state; a backend only moves bytes. For each message the backend:
1. awaits ``hooks.handing_over([ids])`` right before it starts handing those messages to the
   provider (the outbox commits them as ``sending``; ids it returns False for are not sent:
   e.g. an address flagged since queueing, or a cancelled run);
2. reports exactly one ``SendResult`` per handed-over message through ``hooks.finished``.
A backend never raises out of ``send``: every failure becomes a result with the server's words.

A backend whose sending runs in threads of its own (SMTP: smtplib blocks) may call the
thread-side methods from those threads instead, with the same meaning: ``handing_over_from_thread``
returns once the claim is durable, and ``finished_from_thread`` hands a result over without
waiting (it is written with the next claim written after it). No event-loop round trip per
message. Such a thread may also claim AHEAD: ``claim_ahead_from_thread`` asks for a claim without
waiting (it goes into the next write of any thread), the thread sends the message before, and
``claimed_from_thread`` then waits until that claim is durable (usually another thread has
written it meanwhile). A claim granted but never handed over (the run stops, the connection
breaks) is given back with ``withdraw_from_thread``: the message is queued again, no attempt
counted.

A backend may also report a message it never offered to ``handing_over``: when the connection
could not be set up (TRANSIENT, an attempt that counts against the limit), when the settings are
refused (SETUP_REFUSED: the run stops) or when a daily cap is reached (TRANSIENT with
``attempted=False``: not counted).
"""

from __future__ import annotations

import email
import email.policy
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol


class Outcome(enum.StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"  # try again later (4xx, timeout, reset before DATA, 429, 5xx API)
    PERMANENT = "permanent"  # never retry (5xx per recipient, 400/403 API)
    UNCERTAIN = "uncertain"  # the body was handed over but no answer came: never resend silently
    # The provider refused the settings before taking the message (SMTP login refused, TLS
    # certificate untrusted, API key rejected): nothing was delivered, retrying cannot help until
    # the director changes a setting. The message goes back to queued and the run stops.
    SETUP_REFUSED = "setup_refused"


class OutgoingMessage:
    """One message to hand over. ``raw`` is the exact bytes (SMTP sends exactly these);
    ``message`` is the parsed EmailMessage a Web API backend takes its parts from, parsed from
    ``raw`` only when asked for (an SMTP send never pays for parsing)."""

    __slots__ = ("_message", "categories", "envelope_from", "envelope_to", "id", "raw")

    def __init__(
        self,
        id: str,
        envelope_from: str,
        envelope_to: str,
        message: EmailMessage | None,
        raw: bytes,
        categories: tuple[str, ...] = (),
    ) -> None:
        self.id = id  # tabmail's own id (also in X-Tabmail-Id)
        self.envelope_from = envelope_from
        self.envelope_to = envelope_to
        self._message = message
        self.raw = raw
        self.categories = categories

    @property
    def message(self) -> EmailMessage:
        """Parsed on each access when built from bytes, and not kept: a parsed message weighs
        about a hundred times its bytes, and a batch holds thousands. Read it once."""
        if self._message is not None:
            return self._message
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def __repr__(self) -> str:
        return f"OutgoingMessage({self.id!r}, to={self.envelope_to!r}, {len(self.raw)} bytes)"


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    outcome: Outcome
    detail: str = ""  # the server's own words, for the director; never a secret
    code: int | None = None  # SMTP reply code or HTTP status
    provider_message_id: str | None = None  # SendGrid X-Message-Id
    retry_after: float | None = None  # seconds, when the server said when to come back
    flag_address: bool = False  # a permanent rejection of the address itself (550 user unknown)
    connection_failed: bool = False  # the provider could not be reached at all (nothing answered)
    attempted: bool = True  # False: nothing was tried (a daily cap); not counted as an attempt


class ClaimTicket:
    """A claim asked for ahead (``SendHooks.claim_ahead_from_thread``): its ids, then its answer
    (one bool per id) or the error that kept it unwritten."""

    __slots__ = ("answer", "error", "ids")

    def __init__(self, ids: Sequence[str], answer: Sequence[bool] | None = None) -> None:
        self.ids = list(ids)
        self.answer = answer
        self.error: Exception | None = None


class SendHooks(Protocol):
    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        """Persist 'sending' for these ids; one bool per id, False: do not send it."""
        ...

    async def finished(self, result: SendResult) -> None:
        """Persist one message's result."""
        ...

    def handing_over_from_thread(self, ids: Sequence[str]) -> Sequence[bool]:
        """``handing_over`` from a backend's own thread (never the event loop's): blocks until
        the claim is durable."""
        ...

    def finished_from_thread(self, result: SendResult) -> None:
        """``finished`` from any thread; results reach the outbox in the order they were given."""
        ...

    def claim_ahead_from_thread(self, ids: Sequence[str]) -> ClaimTicket:
        """Ask for a claim from a backend's thread without waiting: it is written with the next
        write of any thread (with every result handed over before it)."""
        ...

    def claimed_from_thread(self, ticket: ClaimTicket) -> Sequence[bool]:
        """Wait until ``ticket``'s claim is durable (writing it if nobody has); one bool per id."""
        ...

    def withdraw_from_thread(self, ids: Sequence[str]) -> None:
        """Claims granted but never handed over: the messages go back to queued (no attempt
        counted). Written with the next write, before any later claim."""
        ...


@dataclass(slots=True)
class BackendInfo:
    name: str  # "smtp", "sendgrid", "file"
    description: str  # "smtp.example.org:587 (STARTTLS) as tab@..." — no secrets
    is_sendgrid: bool = False  # SendGrid API, or SendGrid's SMTP relay (status polling works)
    extra: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    info: BackendInfo

    async def send(self, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        """Send every message, reporting each through hooks. Never raises (but may be cancelled)."""
        ...

    async def check(self) -> str:
        """Test the settings (log in / sandbox send / scope check). Returns a plain-words summary;
        raises TabmailError with a plain-words reason when the settings do not work."""
        ...

    async def close(self) -> None: ...
