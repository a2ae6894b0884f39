"""How the inbox's messages become effects: a bounce's recipients become status events in the
same vocabulary as SendGrid's, and a reply is attributed to one of our messages (or not).

Pure decisions over a ``Classified`` message; the only I/O is the ``InboxRepository`` lookups a
reply's attribution needs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tabmail.compose.message import thread_anchor
from tabmail.domain.addresses import address_key
from tabmail.domain.inbox import SentRef
from tabmail.domain.notification import DeliveryStatus, FlagKind
from tabmail.status.events import ProviderEvent, stable_event_id
from tabmail.status.inbound import (
    COMPLAINT_TYPES,
    NAMING_NO_RECIPIENT,
    Classified,
    InboundKind,
    RecipientReport,
    is_anchor,
    tabmail_id_of,
)
from tabmail.store.inbox import InboxRepository

PROVIDER = "inbox"
REPLY_WINDOW = timedelta(days=14)  # a reply by address alone belongs to a send this recent
REPORT_KINDS = (InboundKind.DSN, InboundKind.BOUNCE, InboundKind.FEEDBACK)


def event_id(c: Classified, r: RecipientReport) -> str:
    """The dedupe key of one recipient's event: the same message read again gives the same."""
    return stable_event_id(c.key, r.address.lower(), r.action, r.status)


def bounce_events(c: Classified, when: datetime) -> list[ProviderEvent]:
    """A bounce's / DSN's / spam report's recipients as status events ([] for other kinds)."""
    if c.kind not in REPORT_KINDS:
        return []
    tid, how = original_id(c)
    out = []
    for r in c.recipients:
        status, flag = effect(r)
        if status is None:
            continue
        reason = " ".join(x for x in (r.status, r.diagnostic or "") if x) or c.subject
        out.append(
            ProviderEvent(
                provider_event_id=event_id(c, r),
                name=f"{c.kind.value}:{r.action}",
                status=status,
                event_time=when,
                tabmail_id=tid,
                address=r.address,
                reason=reason[:2000],
                flag=flag,
                source="imap",
                raw={
                    "inbox_key": c.key,
                    "kind": c.kind.value,
                    "action": r.action,
                    "status": r.status,
                    "diagnostic": r.diagnostic,
                    "subject": c.subject[:300],
                    "original_message_id": c.original_message_id,
                    "matched_on": how,
                },
                provider=PROVIDER,
            )
        )
    return out


def with_our_recipient(c: Classified, repo: InboxRepository) -> Classified:
    """A spam report that names no recipient (feedback loops often hide the original's To and
    send no Original-Rcpt-To) but returns one of our messages: its recipient is the address
    that message went to."""
    if c.kind is not InboundKind.FEEDBACK or c.recipients:
        return c
    tid, _how = original_id(c)
    address = repo.addresses_of([tid]).get(tid) if tid else None
    if not address:
        return c
    kind = str(c.detail.get("feedback_type") or "abuse")
    action = "complained" if kind in COMPLAINT_TYPES else "reported"
    return replace(
        c,
        recipients=(RecipientReport(address, action, "", kind),),
        problems=tuple(p for p in c.problems if NAMING_NO_RECIPIENT not in p),
    )


def original_id(c: Classified) -> tuple[str | None, str | None]:
    """Our message a report names, most exact first: the returned X-Tabmail-Id, the returned
    Message-ID, the VERP address it came back to."""
    if c.original_tabmail_id:
        return c.original_tabmail_id, "x_tabmail_id"
    from_header = tabmail_id_of(c.original_message_id)
    if from_header:
        return from_header, "message_id"
    if c.verp_id:
        return c.verp_id, "verp"
    return None, None


def effect(r: RecipientReport) -> tuple[DeliveryStatus | None, FlagKind | None]:
    """A recipient report's status and flag, in the same vocabulary as SendGrid's events."""
    if r.action == "failed":
        return (DeliveryStatus.BOUNCED, FlagKind.HARD) if r.permanent else (DeliveryStatus.BLOCKED, None)
    if r.action == "delayed":
        return DeliveryStatus.DEFERRED, None
    if r.action in ("delivered", "relayed", "expanded"):
        return DeliveryStatus.DELIVERED, None
    if r.action == "complained":
        return DeliveryStatus.SPAM_REPORT, FlagKind.SPAM
    return None, None


def attribute_reply(
    c: Classified, repo: InboxRepository, key: bytes, now: datetime
) -> tuple[SentRef | None, str | None, str | None]:
    """Which of our messages a reply answers: (message, how, note).

    Most exact first: a Message-ID of ours in In-Reply-To / References, accepted when the thread
    anchor for that message's tournament and address is among the references (or no anchor is
    quoted at all: the Message-ID itself is unguessable); then a quoted anchor that checks out
    for the sender's address in one of our tournaments; then the sender's address among recent
    sends. A quoted anchor that does not check out (forged, or another installation's) is never
    attributed, by any rule."""
    refs = c.all_references
    anchors = [r for r in refs if is_anchor(r)]
    ours = repo.sent_by_header([r for r in refs if tabmail_id_of(r)])
    for ref_id in refs:
        sent = ours.get(ref_id)
        if sent is None:
            continue
        if not anchors:
            return sent, "in_reply_to", "no thread anchor quoted; matched by our Message-ID"
        domain = ref_id.rsplit("@", 1)[1].rstrip(">")
        expected = thread_anchor(key, sent.tournament_slug, sent.address_key, domain)
        if expected in anchors:
            return sent, "in_reply_to+anchor", None
        return None, None, "the quoted thread anchor does not check out: not attributed"
    from_key = address_key(c.from_address)
    if anchors:
        if from_key:
            for slug in repo.tournament_slugs():
                for anchor in anchors:
                    domain = anchor.rsplit("@", 1)[1].rstrip(">")
                    if thread_anchor(key, slug, from_key, domain) == anchor:
                        sent = repo.latest_sent_to(from_key, slug=slug)
                        if sent is not None:
                            return sent, "anchor", None
        return None, None, "the quoted thread anchor does not check out: not attributed"
    if from_key:
        sent = repo.latest_sent_to(from_key, since=(c.date or now) - REPLY_WINDOW)
        if sent is not None:
            return sent, "address_time", "matched by the sender's address and time only"
    return None, None, None
