"""What one message in the tab room's mailbox is: a bounce, a spam report, an auto-reply, a
participant's reply, or nothing of ours. Pure: bytes in, a ``Classified`` out; no I/O.

Order (each step decides, the next is not tried):
1. ``multipart/report; report-type=delivery-status`` (RFC 3464): one ``RecipientReport`` per
   recipient block (Action, Status, Diagnostic-Code), plus the returned original's Message-ID
   and X-Tabmail-Id (from ``message/rfc822`` or ``text/rfc822-headers``).
2. ``multipart/report; report-type=feedback-report`` (ARF, RFC 5965): a spam report about the
   original's recipient(s) (an auth-failure or other non-complaint report flags nobody); and
   Microsoft's JMRP complaint, which is no ARF report (``X-HmXmrOriginalRecipient``).
3. Out-of-office and other auto-replies (X-Autoreply, Precedence: auto_reply, an out-of-office
   subject): recorded as auto-replies, never a bounce, whatever their body says.
4. Non-standard bounces (Exchange, qmail, Exim, Yahoo...) from a bounce-like sender (null
   Return-Path, MAILER-DAEMON, postmaster): flufl.bounce's detectors, most specific first.
5. Anything else automatic (Auto-Submitted other than ``no``, Precedence bulk / junk / list):
   an auto-reply.
6. A message whose In-Reply-To / References name an id shaped like ours (a tabmail id or a thread
   anchor): a reply candidate; the caller decides whether it really answers one of our messages.
7. Everything else: ignored.

The message is untrusted: malformed MIME, unknown charsets, huge headers and CR/LF in header
values must not raise out of ``classify``; what was odd goes to ``problems``.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from flufl.bounce import all_failures
from mailparser_reply import EmailReplyParser

HEADER_CAP = 8192  # characters kept of any one header value
TEXT_CAP = 100_000  # characters of a reply's text considered
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh"]
VERP_MARK = "+tm-"  # MAIL FROM local+tm-<tabmail id>@domain

_MSG_ID = re.compile(r"<([^<>\s@]+)@([^<>\s]+)>")
_TABMAIL_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$", re.IGNORECASE)
_ANCHOR = re.compile(r"^v1\.[0-9a-f]{64}$")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "bounce")
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery (status|fail|problem|notification|warning)|returned mail|non-?delivery|"
    r"mail error|could not be delivered|failure notice|delivery has failed|mail system error|"
    r"rejected mail|nicht zustellbar|unzustellbar|non remis|non recens)",
    re.IGNORECASE,
)
_OOO_SUBJECT = re.compile(
    r"(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"away from (the )?office|on (annual )?leave|on vacation|vacation reply|"
    r"abwesenheit|automatische antwort|réponse automatique|absence|"
    r"respuesta autom[aá]tica|fuera de la oficina|risposta automatica|"
    r"automatisch antwoord|afwezig|autosvar|poza biurem|^auto:)",
    re.IGNORECASE,
)


NAMING_NO_RECIPIENT = "naming no recipient"

# ARF Feedback-Types (RFC 5965, and "opt-out" as some feedback loops send it) that are a
# recipient's complaint; others (auth-failure, virus, not-spam...) are kept, never flag anyone
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "opt-out", "unsubscribe"})

# RFC 3464 Action values, and the misspellings seen in the wild (flufl.bounce's corpus)
_ACTIONS = {
    "failed": "failed",
    "failure": "failed",
    "fail": "failed",
    "delayed": "delayed",
    "delivered": "delivered",
    "relayed": "relayed",
    "expanded": "expanded",
}


class InboundKind(enum.StrEnum):
    DSN = "dsn"  # RFC 3464 delivery status notification
    BOUNCE = "bounce"  # a non-standard bounce (flufl.bounce)
    FEEDBACK = "feedback"  # ARF spam report
    AUTO_REPLY = "auto_reply"
    REPLY = "reply"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient a bounce / DSN / spam report is about."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded | complained
    status: str = ""  # "5.1.1"; "" when the report gives none
    diagnostic: str | None = None

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and not self.status.startswith("4")


@dataclass(frozen=True, slots=True)
class Classified:
    kind: InboundKind
    key: str  # stable dedupe key: the same message read twice (or after UIDVALIDITY) has the same
    message_id: str | None = None  # the inbound message's own Message-ID
    from_address: str | None = None
    from_name: str = ""
    subject: str = ""
    date: datetime | None = None
    recipients: tuple[RecipientReport, ...] = ()
    original_message_id: str | None = None  # the returned original's Message-ID
    original_tabmail_id: str | None = None  # ... and X-Tabmail-Id
    original_to: str | None = None
    verp_id: str | None = None  # a tabmail id from a VERP address this came back to
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    reply_text: str | None = None  # the reply without quoted history and signature
    text: str | None = None  # the first text part, as read (capped)
    problems: tuple[str, ...] = ()
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def all_references(self) -> tuple[str, ...]:
        """In-Reply-To first, then References newest first, without repeats."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))


def header_key(raw: bytes) -> str:
    """The dedupe key of a message: a hash of its header block (stable across re-reads)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    return "sha256:" + hashlib.sha256(head.replace(b"\r\n", b"\n")).hexdigest()


def msg_ids(value: str | None) -> tuple[str, ...]:
    """Every <local@domain> in a header value, in order."""
    if not value:
        return ()
    return tuple(m.group(0) for m in _MSG_ID.finditer(value[:HEADER_CAP]))


def tabmail_id_of(msg_id: str | None) -> str | None:
    """The tabmail id a Message-ID of ours carries (``<ID@domain>``), else None."""
    m = _MSG_ID.fullmatch((msg_id or "").strip())
    if m and _TABMAIL_ID.match(m.group(1)):
        return m.group(1).upper()
    return None


def is_anchor(msg_id: str) -> bool:
    m = _MSG_ID.fullmatch(msg_id.strip())
    return bool(m and _ANCHOR.match(m.group(1)))


def looks_ours(msg_id: str) -> bool:
    return tabmail_id_of(msg_id) is not None or is_anchor(msg_id)


def verp_id_of(address: str | None) -> str | None:
    """The tabmail id in ``local+tm-<id>@domain``, else None."""
    local = (address or "").strip().strip("<>").rpartition("@")[0]
    if VERP_MARK not in local:
        return None
    candidate = local.rsplit(VERP_MARK, 1)[1]
    return candidate.upper() if _TABMAIL_ID.match(candidate) else None


def _header(msg: Message, name: str) -> str:
    """A header's raw value as one line of text (capped); "" when absent."""
    value = msg.get(name)  # compat32: the raw text, no parsing that could raise
    if value is None:
        return ""
    text = str(value)[:HEADER_CAP]
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def _decoded(msg: Message, name: str) -> str:
    """A header with RFC 2047 encoded words decoded (bad charsets replaced, never raised)."""
    text = _header(msg, name)
    if "=?" not in text:
        return text
    try:
        return " ".join(str(make_header(decode_header(text))).split())
    except (LookupError, UnicodeError, ValueError, HeaderParseError):
        return text


def _address(value: str) -> str | None:
    _, addr = parseaddr(value)
    addr = addr.strip()
    return addr if "@" in addr else None


def _date(msg: Message) -> datetime | None:
    text = _header(msg, "Date")
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _report_type(msg: Message) -> str:
    if msg.get_content_type() != "multipart/report":
        return ""
    return str(msg.get_param("report-type", "", header="content-type") or "").lower()


def _text_of(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def first_text(msg: Message) -> str | None:
    """The first text/plain part that is not an attachment (capped)."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            return _text_of(part)[:TEXT_CAP]
    for part in msg.walk():
        if part.get_content_type() == "text/html" and not part.get_filename():
            return _strip_html(_text_of(part))[:TEXT_CAP]
    return None


def _strip_html(html: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"[ \t]+", " ", text)


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status part (per-message, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else _text_of(part)
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [
        message_from_bytes(b.encode("utf-8", "replace") + b"\n\n", policy=policy.compat32) for b in blocks
    ]


def _typed_address(value: str) -> str | None:
    """ "rfc822; a@b" → "a@b"."""
    if not value:
        return None
    text = value.split(";", 1)[1] if ";" in value else value
    return _address(text.strip())


def _original_headers(msg: Message) -> Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype == "text/rfc822-headers":
            text = _text_of(part)
            return message_from_bytes(text.encode("utf-8", "replace") + b"\n\n", policy=policy.compat32)
    return None


def _dsn(msg: Message) -> tuple[list[RecipientReport], dict[str, str]]:
    reports: list[RecipientReport] = []
    detail: dict[str, str] = {}
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _status_blocks(part):
            envid = _header(block, "Original-Envelope-Id")
            if envid:
                detail["original_envelope_id"] = envid
            mta = _header(block, "Reporting-MTA")
            if mta:
                detail["reporting_mta"] = mta
            # Original-Recipient is the address as we sent it; Final-Recipient may be rewritten
            rcpt = _typed_address(_header(block, "Original-Recipient")) or _typed_address(
                _header(block, "Final-Recipient")
            )
            action = (
                _ACTIONS.get(_header(block, "Action").lower().split(" ")[0], "")
                if _header(block, "Action")
                else ""
            )
            if not rcpt or not action:
                continue
            status_match = re.search(r"[245]\.\d{1,3}\.\d{1,3}", _header(block, "Status"))
            diag = _header(block, "Diagnostic-Code")
            if ";" in diag:
                diag = diag.split(";", 1)[1].strip()
            reports.append(
                RecipientReport(rcpt, action, status_match.group(0) if status_match else "", diag or None)
            )
        break
    return reports, detail


def _feedback(msg: Message, original: Message | None) -> tuple[list[RecipientReport], dict[str, str]]:
    """An ARF report's recipients: every Original-Rcpt-To / Removal-Recipient (a spam trap's
    report names several), else the returned original's To. Only a complaint (abuse, fraud,
    opt-out) is "complained": an auth-failure (DMARC failure report, RFC 6591), virus or
    not-spam report says nothing against the recipient and is kept as "reported"."""
    detail: dict[str, str] = {}
    addresses: list[str] = []
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        for block in _status_blocks(part):
            if _header(block, "Feedback-Type"):
                detail["feedback_type"] = _header(block, "Feedback-Type").lower()
            for name in ("Original-Rcpt-To", "Removal-Recipient"):
                for value in (block.get_all(name) or [])[:100]:
                    found = _address(" ".join(str(value)[:HEADER_CAP].split()))
                    if found:
                        addresses.append(found)
        break
    if not addresses and original is not None:
        addresses += [a for _, a in getaddresses([_header(original, "To")]) if "@" in a]
    kind = detail.get("feedback_type", "abuse")
    action = "complained" if kind in COMPLAINT_TYPES else "reported"
    return [RecipientReport(a, action, "", kind) for a in dict.fromkeys(addresses)], detail


def _jmrp(msg: Message) -> Message | None:
    """Microsoft's JMRP complaint (Outlook.com / Hotmail feedback loop) is no ARF report: a
    multipart/mixed message whose attached original carries X-HmXmrOriginalRecipient, the
    address that complained. Returns that original, else None."""
    if msg.get_content_type() != "multipart/mixed":
        return None
    original = _original_headers(msg)
    if original is not None and _header(original, "X-HmXmrOriginalRecipient"):
        return original
    return None


def _bounce_like(msg: Message) -> bool:
    """Sent by a mail system rather than a person: null or daemon Return-Path, a daemon or
    postmaster From, or a subject mail systems use for returned mail."""
    return_path = _header(msg, "Return-Path").replace(" ", "")
    if return_path == "<>" or _daemon(_address(return_path) or return_path.strip("<>")):
        return True
    from_value = _header(msg, "From")
    if _daemon(_address(from_value) or "") or from_value.replace(" ", "").endswith("<>"):
        return True
    return bool(_BOUNCE_SUBJECT.search(_decoded(msg, "Subject")))


def _daemon(address: str) -> bool:
    local = address.lower().rpartition("@")[0] or address.lower()
    return any(local.startswith(s) for s in _BOUNCE_SENDERS) or "mail.delivery" in local


def _auto_reply_header(msg: Message) -> bool:
    if _header(msg, "X-Autoreply") or _header(msg, "X-Autorespond") or _header(msg, "X-Autoresponder"):
        return True
    return _header(msg, "Precedence").lower() == "auto_reply"


def _automatic(msg: Message) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    return _header(msg, "Precedence").lower() in ("bulk", "junk", "list")


def _flufl(msg: Message) -> list[RecipientReport]:
    temporary, permanent = all_failures(msg)
    reports = [RecipientReport(_decode(a), "failed", "5.0.0") for a in sorted(permanent)]
    reports += [RecipientReport(_decode(a), "delayed", "4.0.0") for a in sorted(temporary - permanent)]
    return [r for r in reports if "@" in r.address]


def _decode(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return text.strip().strip("<>")


def reply_text(text: str | None) -> str | None:
    """The new text of a reply: quoted history and signature folded away (mail-parser-reply)."""
    if not text:
        return None
    try:
        parsed = EmailReplyParser(languages=REPLY_LANGUAGES).parse_reply(text=text[:TEXT_CAP])
    except Exception:  # the parser's regular expressions on hostile text: keep the text as is
        return text.strip()[:TEXT_CAP]
    return (parsed or "").strip() or text.strip()[:TEXT_CAP]


def _verp(msg: Message, recipients: Iterable[str]) -> str | None:
    for name in ("Delivered-To", "X-Original-To", "To", "Envelope-To"):
        found = verp_id_of(_address(_header(msg, name)))
        if found:
            return found
    for addr in recipients:
        found = verp_id_of(addr)
        if found:
            return found
    return None


def parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.compat32)


def classify(raw: bytes) -> Classified:
    """Classify one message (its bytes as read, maybe without large parts). Never raises: an
    unreadable message comes back IGNORED with the reason in ``problems``."""
    key = header_key(raw)
    problems: list[str] = []
    try:
        msg = parse(raw)
    except Exception as exc:  # pragma: no cover - the compat32 parser records defects instead
        return Classified(InboundKind.IGNORED, key, problems=(f"unreadable message: {type(exc).__name__}",))
    if msg.defects:
        problems += [f"MIME defect: {type(d).__name__}" for d in msg.defects[:5]]
    try:
        return _classify(msg, key, problems)
    except Exception as exc:  # hostile input must not stop the next message
        problems.append(f"could not classify: {type(exc).__name__}: {str(exc)[:200]}")
        return Classified(
            InboundKind.IGNORED,
            key,
            message_id=(msg_ids(_header(msg, "Message-ID")) or (None,))[0],
            subject=_header(msg, "Subject")[:500],
            problems=tuple(problems),
        )


def _original_ids(original: Message | None) -> tuple[str | None, str | None]:
    """The returned original's Message-ID and X-Tabmail-Id (when it looks like ours)."""
    if original is None:
        return None, None
    value = _header(original, "Message-ID")
    original_id = (msg_ids(value) or (None,))[0]
    if original_id is None and _MSG_ID.fullmatch(f"<{value.strip()}>"):
        original_id = f"<{value.strip()}>"  # written without its angle brackets (seen in ARF 0.1 reports)
    tabmail_id = _header(original, "X-Tabmail-Id").strip()
    return original_id, tabmail_id.upper() if _TABMAIL_ID.match(tabmail_id) else None


def _classify(msg: Message, key: str, problems: list[str]) -> Classified:
    from_value = _header(msg, "From")
    name, _ = parseaddr(_decoded(msg, "From"))
    base = Classified(
        InboundKind.IGNORED,
        key,
        message_id=(msg_ids(_header(msg, "Message-ID")) or (None,))[0],
        from_address=_address(from_value),
        from_name=name[:300],
        subject=_decoded(msg, "Subject")[:1000],
        date=_date(msg),
        # decoded: some mailers (Python's email among them) wrap a long id in encoded words
        in_reply_to=msg_ids(_decoded(msg, "In-Reply-To").replace(" ", "")),
        references=msg_ids(_decoded(msg, "References").replace("><", "> <")),
        problems=tuple(problems),
    )
    report_type = _report_type(msg)
    if report_type in ("delivery-status", "feedback-report"):
        original = _original_headers(msg)
        if report_type == "delivery-status":
            kind = InboundKind.DSN
            recipients, detail = _dsn(msg)
        else:
            kind = InboundKind.FEEDBACK
            recipients, detail = _feedback(msg, original)
        if not recipients and report_type == "delivery-status":
            recipients = _flufl(msg)  # a report whose status part is broken or missing
        if not recipients:
            problems.append(f"a {report_type} report {NAMING_NO_RECIPIENT}")
        original_id, tabmail_id = _original_ids(original)
        return replace(
            base,
            kind=kind,
            recipients=tuple(recipients),
            original_message_id=original_id,
            original_tabmail_id=tabmail_id,
            original_to=_address(_header(original, "To")) if original else None,
            verp_id=_verp(msg, [r.address for r in recipients]),
            text=first_text(msg),
            problems=tuple(problems),
            detail=detail,
        )
    jmrp = _jmrp(msg)
    if jmrp is not None:
        address = _address(_header(jmrp, "X-HmXmrOriginalRecipient"))
        original_id, tabmail_id = _original_ids(jmrp)
        if address is None:
            problems.append("a JMRP complaint naming no recipient")
        return replace(
            base,
            kind=InboundKind.FEEDBACK,
            recipients=(RecipientReport(address, "complained", "", "abuse"),) if address else (),
            original_message_id=original_id,
            original_tabmail_id=tabmail_id,
            original_to=_address(_header(jmrp, "To")),
            text=first_text(msg),
            problems=tuple(problems),
            detail={"feedback_type": "abuse", "format": "jmrp"},
        )
    if _auto_reply_header(msg) or _OOO_SUBJECT.search(base.subject):
        return replace(base, kind=InboundKind.AUTO_REPLY, text=first_text(msg))
    if _bounce_like(msg):
        recipients = _flufl(msg)
        if recipients:
            original_id, tabmail_id = _original_ids(_original_headers(msg))
            return replace(
                base,
                kind=InboundKind.BOUNCE,
                recipients=tuple(recipients),
                original_message_id=original_id,
                original_tabmail_id=tabmail_id,
                verp_id=_verp(msg, [r.address for r in recipients]),
                text=first_text(msg),
            )
    if _automatic(msg):
        return replace(base, kind=InboundKind.AUTO_REPLY, text=first_text(msg))
    if any(looks_ours(r) for r in (*base.in_reply_to, *base.references)):
        text = first_text(msg)
        return replace(base, kind=InboundKind.REPLY, text=text, reply_text=reply_text(text))
    return base
