"""Turning rendered parts into the exact email that is sent and stored.

Every header comes from one validated list (`_header_list`). `build_email` sets them on an
`email.message.EmailMessage` with `policy.default`; `email_bytes`, the batch path, writes a header
line itself only when it is short printable ASCII that policy.default would write unchanged, and
passes every other value to the policy's header objects (`_header_bytes`; tests compare both byte
for byte). Imported text (names, subjects) is first put on one line, so a CR/LF in a team name
cannot start a header of its own; a line written directly has no control character by
construction, and the policy refuses one anyway.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from typing import Any, NotRequired, TypedDict, Unpack, cast

from tabmail.compose.formatting import one_line
from tabmail.compose.templates import RenderedParts
from tabmail.domain import addresses
from tabmail.domain.errors import TabmailError

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_CHARS = frozenset(_CROCKFORD + _CROCKFORD.lower() + "-_.")
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
_HEADER_NAME_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}
_THREAD_SCHEME = b"tabmail-thread-v1"

# Set here and nowhere else; extra_headers may not replace them.
_OWN_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "References",
        "In-Reply-To",
        "X-Tabmail-Id",
        "X-Tabmail-Original-To",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Sender",
        "Return-Path",
    )
)


class MessageBuildError(TabmailError, ValueError):
    pass


def _fold_id_list(name: str, ids: str, limit: int, linesep: str) -> str:
    """ "References: <a> <b>", a new line only between ids when the next would pass ``limit``."""
    lines = [f"{name}:"]
    for msg_id in ids.split():
        if len(lines[-1]) > len(name) + 1 and len(lines[-1]) + 1 + len(msg_id) > limit:
            lines.append("")
        lines[-1] += " " + msg_id
    return linesep.join(lines) + linesep


class _MessageIdListHeader(UnstructuredHeader):
    """References / In-Reply-To: a list of msg-ids, folded only between ids.

    policy.default treats these as unstructured text and, when one id is longer than a line
    (a 64-hex anchor plus a long domain), turns it into RFC 2047 encoded words that no client
    recognises as a Message-ID any more."""

    max_count = 1
    name: str  # BaseHeader's, mixed in by HeaderRegistry

    def fold(self, *, policy: Policy) -> str:
        return _fold_id_list(self.name, str(self), policy.max_line_length or 998, policy.linesep)


def _headers() -> HeaderRegistry:
    registry = HeaderRegistry()
    header = cast("type[BaseHeader]", _MessageIdListHeader)
    registry.map_to_type("references", header)
    registry.map_to_type("in-reply-to", header)
    return registry


# policy.default, with References and In-Reply-To folded as lists of ids.
_POLICY = policy.default.clone(header_factory=_headers())
_MSG_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII, no spaces or angle brackets


def new_tabmail_id(*, now_ms: int | None = None) -> str:
    """26 characters, Crockford base32 (a ULID): 48 bits of milliseconds then 80 random bits, so
    ids sort by creation time. Safe in URLs, headers, Message-IDs and SendGrid custom_args."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if not 0 <= ms < 1 << 48:
        raise ValueError(f"time out of range: {ms}")
    value = (ms << 80) | int.from_bytes(secrets.token_bytes(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


@functools.lru_cache(maxsize=64)
def ascii_domain(domain: str) -> str:
    """The domain as it goes on the wire: IDNA-encoded, lower-case. Raises MessageBuildError."""
    text = domain.strip().rstrip(".")
    try:
        encoded = text.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise MessageBuildError(f"not a usable mail domain: {domain!r}") from exc
    if not encoded or not set(encoded) <= _DOMAIN_CHARS or ".." in encoded or encoded.startswith("."):
        raise MessageBuildError(f"not a usable mail domain: {domain!r}")
    return encoded


def make_message_id(tabmail_id: str, domain: str) -> str:
    if not tabmail_id or not set(tabmail_id) <= _ID_CHARS:
        raise MessageBuildError(f"not a usable message id: {tabmail_id!r}")
    return f"<{tabmail_id}@{ascii_domain(domain)}>"


def thread_anchor(key: bytes, tournament_slug: str, address_key: str, domain: str) -> str:
    """A References id shared by all of one address's emails for one tournament, so they thread
    together, and that a reply can be checked against (HMAC-SHA256 under a keyring secret).

    "<v1.{hex}@domain>": the version marker comes first so the scheme can rotate."""
    if not key:
        raise ValueError("the thread-anchor key is empty")
    normalised = addresses.address_key(address_key) or ""
    message = b"\0".join((_THREAD_SCHEME, tournament_slug.encode("utf-8"), normalised.encode("utf-8")))
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return f"<v1.{digest}@{ascii_domain(domain)}>"


def _mailbox(display_name: str, address: str) -> Address:
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or one_line(text) != text
        or " " in text
        or "<" in text
        or ">" in text
    ):
        raise MessageBuildError(f"not a usable email address: {one_line(address)!r}")
    if not local.isascii():
        raise MessageBuildError(f"{text} needs SMTPUTF8 (a non-ASCII local part), which tabmail cannot send")
    return Address(display_name=one_line(display_name), username=local, domain=ascii_domain(domain))


_NAMED_ADDRESS = re.compile(r"(.*?)\s*<([^<>]*)>\s*", re.DOTALL)


def _reply_to(value: str) -> Address:
    """ "tab@example.org" or "Tab Room <tab@example.org>". Not email.utils.parseaddr: it reads
    "Evil Bcc: victim@example.com <tab@example.org>" as victim@example.com."""
    match = _NAMED_ADDRESS.fullmatch(value.strip())
    if match:
        return _mailbox(match.group(1).strip().strip('"'), match.group(2))
    return _mailbox("", value)


def _msg_id(value: str) -> str:
    text = value.strip()
    if not _MSG_ID.fullmatch(text):
        raise MessageBuildError(f"not a usable Message-ID: {one_line(value)!r}")
    return text


def _transfer_encoding(body: str) -> str:
    # Never 8bit: the stored bytes must be sendable through any SMTP server, 8BITMIME or not.
    if body.isascii() and all(len(line) <= 78 for line in body.splitlines()):
        return "7bit"
    return "quoted-printable"


class EmailFields(TypedDict):
    """What one recipient's message is made of: the keywords of build_email and email_bytes."""

    tabmail_id: str
    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str | None
    parts: RenderedParts
    thread_anchor: str | None
    date: datetime
    domain: str
    reroute_to: NotRequired[str | None]
    extra_headers: NotRequired[Mapping[str, str] | None]
    in_reply_to: NotRequired[str | None]


@functools.lru_cache(maxsize=16)
def _sender(from_name: str, from_address: str, reply_to: str | None) -> tuple[Address, Address | None]:
    """From and Reply-To, the same for a whole batch: validated once."""
    return _mailbox(from_name, from_address), _reply_to(reply_to) if reply_to else None


@functools.lru_cache(maxsize=16)
def _date_text(date: datetime) -> str:
    return format_datetime(date)


def _header_list(f: EmailFields) -> list[tuple[str, Any]]:
    """Every header, validated, in order: the one definition both builders below use."""
    tabmail_id, domain, date, to_name = f["tabmail_id"], f["domain"], f["date"], f["to_name"]
    reroute_to, in_reply_to = f.get("reroute_to"), f.get("in_reply_to")
    subject, thread_anchor, reply_to = f["parts"].subject, f["thread_anchor"], f["reply_to"]
    if date.tzinfo is None or date.utcoffset() is None:
        raise MessageBuildError("the Date must be time-zone aware")
    subject = one_line(subject)
    to = _mailbox(to_name, f["to_address"])
    real_to = to
    if reroute_to:
        subject = one_line(f"[TEST for {one_line(to_name)} <{to.addr_spec}>] {subject}")
        to = _mailbox(to_name, reroute_to)
    sender, reply_box = _sender(f["from_name"], f["from_address"], reply_to or None)
    headers: list[tuple[str, Any]] = [("From", sender), ("To", to)]
    if reply_box is not None:
        headers.append(("Reply-To", reply_box))
    headers += [
        ("Subject", subject),
        ("Date", _date_text(date)),
        ("Message-ID", make_message_id(tabmail_id, domain)),
    ]
    references = [_msg_id(r) for r in (thread_anchor, in_reply_to) if r]
    if references:
        headers.append(("References", " ".join(references)))
    if in_reply_to:
        headers.append(("In-Reply-To", _msg_id(in_reply_to)))
    headers.append(("X-Tabmail-Id", tabmail_id))
    if reroute_to:
        headers.append(("X-Tabmail-Original-To", real_to.addr_spec))
    # Tell autoresponders (RFC 3834) and Exchange not to answer: hundreds of out-of-office
    # replies would bury the real answers in the tab room's inbox.
    headers.append(("Auto-Submitted", "auto-generated"))
    headers.append(("X-Auto-Response-Suppress", "All"))
    for name, value in (f.get("extra_headers") or {}).items():
        if not name or not set(name) <= _HEADER_NAME_CHARS or name.lower() in _OWN_HEADERS:
            raise MessageBuildError(f"extra header not allowed: {name!r}")
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
            raise MessageBuildError(f"extra header {name} contains a line break or control character")
        headers.append((name, value.strip()))
    return headers


def build_email(**fields: Unpack[EmailFields]) -> EmailMessage:
    """One recipient's message. Raises MessageBuildError for an unusable address or header.

    Threading: References carries the synthetic thread anchor, so clients group one person's
    emails for a tournament. In-Reply-To is left out unless `in_reply_to` names a message that
    really was sent (a resend's original): pointing it at the anchor would claim a reply to a
    message nobody has, and clients show that as a missing parent. Message-ID is ours, built
    from the tabmail id, so the stored id is the one on the wire."""
    msg = EmailMessage(policy=_POLICY)
    for name, value in _header_list(fields):
        msg[name] = value
    parts = fields["parts"]
    msg.set_content(parts.text, subtype="plain", charset="utf-8", cte=_transfer_encoding(parts.text))
    if parts.html is not None:
        msg.add_alternative(parts.html, subtype="html", charset="utf-8", cte=_transfer_encoding(parts.html))
    return msg


_WIRE_POLICY = _POLICY.clone(linesep="\r\n")
_LINE_LIMIT = _WIRE_POLICY.max_line_length or 998  # 78
_ID_LIST_HEADERS = frozenset({"references", "in-reply-to"})


def _header_bytes(name: str, value: Any) -> bytes:
    """``Name: value\r\n`` exactly as policy.default's header objects fold it.

    Most headers of a batch are short printable ASCII, which policy.default writes unchanged on
    one line: those are written directly. Anything else (non-ASCII, a control character, an
    RFC 2047 look-alike "=?", a line over 78 characters) goes through the policy's header
    objects, which encode, fold, and refuse a CR/LF. tests/test_compose_message.py checks both
    ways agree byte for byte on awkward values."""
    text = str(value)
    if text.isascii() and text.isprintable() and "=?" not in text:
        if name.lower() in _ID_LIST_HEADERS:
            return _fold_id_list(name, text, _LINE_LIMIT, "\r\n").encode("ascii")
        if len(name) + 2 + len(text) <= _LINE_LIMIT:
            return f"{name}: {text}\r\n".encode("ascii")
    return _fold(name, value)


@functools.lru_cache(maxsize=512)
def _header_bytes_cached(name: str, value: str) -> bytes:
    return _header_bytes(name, value)


def _fold(name: str, value: Any) -> bytes:
    # The policy's own header objects parse, encode (RFC 2047) and fold every value.
    header = _WIRE_POLICY.header_factory(name, value)
    folded: str = header.fold(policy=_WIRE_POLICY)
    return folded.encode("ascii")


def _body_part(body: str, subtype: str) -> bytes:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    cte = _transfer_encoding(text)
    if cte == "7bit":
        payload = text.encode("ascii")
    else:
        payload = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    return head.encode("ascii") + payload.replace(b"\n", b"\r\n")


_CONSTANT_HEADERS = frozenset({"from", "reply-to", "date", "auto-submitted", "x-auto-response-suppress"})


def email_bytes(**fields: Unpack[EmailFields]) -> bytes:
    """The same message as ``to_bytes(build_email(...))``, several times faster, for batches.

    Same headers from the same validated list, written as policy.default's header objects write
    them (`_header_bytes`: short printable ASCII directly, anything else through those objects, so
    a CR/LF can no more inject a header here than there); only the MIME skeleton around the two
    body parts is written here. tests/test_compose_message.py checks both agree."""
    out = []
    for name, value in _header_list(fields):
        if name.lower() in _CONSTANT_HEADERS:
            out.append(_header_bytes_cached(name, str(value)))
        else:
            out.append(_header_bytes(name, value))
    out.append(b"MIME-Version: 1.0\r\n")
    parts = fields["parts"]
    text = _body_part(parts.text, "plain")
    if parts.html is None:
        out.append(text)
        return b"".join(out)
    html = _body_part(parts.html, "html")
    boundary = ("=_tabmail_" + secrets.token_hex(12)).encode("ascii")
    out += [
        b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n',
        b"--" + boundary + b"\r\n",
        text,
        b"\r\n--" + boundary + b"\r\n",
        html,
        b"\r\n--" + boundary + b"--\r\n",
    ]
    return b"".join(out)


def to_bytes(msg: EmailMessage) -> bytes:
    """The exact bytes to send and to store: CRLF line ends, 7-bit clean."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
