"""Outgoing messages shaped like tabmail's (built by hand with EmailMessage), for feeding the
SendGrid backend in tests and benchmarks."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

from tabmail.backends.base import OutgoingMessage


def outgoing(
    index: int,
    *,
    to: str | None = None,
    name: str = "",
    subject: str | None = None,
    text: str | None = None,
    html: str | None = "",
    sender: str = "tab@example.org",
    reply_to: str | None = "help@example.org",
    categories: tuple[str, ...] = ("tabmail", "draw"),
) -> OutgoingMessage:
    """Message ``index``: a text part and (unless html is None) an HTML part."""
    message_id = f"tm-{index:05d}"
    address = to or f"speaker{index}@example.org"
    body = text if text is not None else f"Hello {name or address},\nRound 3: you are in room {index}.\n"
    message = EmailMessage()
    message["From"] = Address("Nationals 2026 Tab Room", addr_spec=sender)
    try:
        message["To"] = Address(name, addr_spec=address)
    except (HeaderParseError, ValueError):  # a deliberately broken address, for error tests
        message["To"] = address
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject if subject is not None else f"Round 3 draw: room {index}"
    message["Message-ID"] = make_msgid(idstring=message_id, domain="tabmail.example.org")
    message["References"] = "<thread-abc123@tabmail.example.org>"
    message["X-Tabmail-Id"] = message_id
    message.set_content(body)
    if html is not None:
        message.add_alternative(html or f"<p>{body.replace(chr(10), '<br>')}</p>", subtype="html")
    return OutgoingMessage(
        id=message_id,
        envelope_from=sender,
        envelope_to=address,
        message=message,
        raw=bytes(message),
        categories=categories,
    )
