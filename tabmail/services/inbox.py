"""The tab room's mailbox as a status source, for every backend: bounces, spam reports,
auto-replies and participants' replies, read over IMAP.

``InboxChecker.check_once`` reads what arrived since the last check (UIDs above the last one
seen, kept per folder with its UIDVALIDITY; a new UIDVALIDITY rescans the folder and the
per-message key keeps anything from being stored twice), classifies each message
(``tabmail.status.inbound``), and applies the effects through the same pipeline as SendGrid's
events (``TrackingRepository.ingest``): a permanent failure bounces the message and flags the
address, a delay shows deferred, a spam report flags. Replies are attached to their message
and person (never changing an address) once their thread anchor checks out. After each batch
the cursor is saved, so a dropped connection resumes where it stopped. A message that cannot
be understood is logged and recorded as ignored; the next one is processed.

Offline is a state in the report, not an exception. How each kind of message becomes an effect
(events, reply attribution) is in ``tabmail.services.inbox_matching``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tabmail.domain.addresses import address_key
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import (
    AddressFlagsChanged,
    InboxChecked,
    RepliesReceived,
    StatusesChanged,
)
from tabmail.services.context import AppContext
from tabmail.services.inbox_matching import (
    PROVIDER,
    attribute_reply,
    bounce_events,
    event_id,
    original_id,
    with_our_recipient,
)
from tabmail.services.machine import machine_name
from tabmail.services.sending import thread_key
from tabmail.status.events import ProviderEvent, derive_status
from tabmail.status.imap import (
    FetchedMessage,
    ImapMailbox,
    ImapOffline,
    ImapProblem,
    ImapSettings,
)
from tabmail.status.inbound import (
    Classified,
    InboundKind,
    classify,
    header_key,
)

log = logging.getLogger(__name__)

STATE = "inbox."
RAW_CAP = 256 * 1024  # bytes of an inbound message kept for "show raw"
ATTACHING_KINDS = (InboundKind.REPLY, InboundKind.AUTO_REPLY)

MailboxFactory = Callable[[ImapSettings], ImapMailbox]


@dataclass(slots=True)
class InboxReport:
    started_at: datetime
    enabled: bool = True
    online: bool = True
    offline: str = ""  # why the server could not be reached (when not online)
    reason: str = ""  # why the inbox is not read, or what must be fixed
    must_fix: bool = False  # the reason is a setting only the director can fix (login, folder)
    read: int = 0  # messages fetched
    new: int = 0  # not seen before
    kinds: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # per message, the next was processed
    changed_message_ids: list[str] = field(default_factory=list)
    flagged_keys: list[str] = field(default_factory=list)
    reply_message_ids: list[str] = field(default_factory=list)
    unmatched: int = 0
    rescanned: bool = False  # UIDVALIDITY changed
    idle: bool = False  # the server offers IDLE

    @property
    def ok(self) -> bool:
        return self.enabled and self.online and not self.reason

    def summary(self) -> str:
        if not self.enabled or self.reason:
            return self.reason
        if not self.online:
            why = self.offline or "offline?"
            return f"The mailbox could not be reached ({why}); it is read again shortly."
        parts = [f"{self.new} new message(s) in the mailbox"]
        for kind, label in (
            ("dsn", "delivery report(s)"),
            ("bounce", "other bounce(s)"),
            ("feedback", "spam report(s)"),
            ("reply", "reply(ies)"),
            ("auto_reply", "auto-reply(ies)"),
            ("ignored", "ignored"),
        ):
            if self.kinds.get(kind):
                parts.append(f"{self.kinds[kind]} {label}")
        text = ", ".join(parts)
        text += f"; {len(self.changed_message_ids)} message(s) changed status, {len(self.flagged_keys)} address(es) flagged"
        if self.unmatched:
            text += f", {self.unmatched} matched none of our messages (kept: tabmail replies / events --unmatched)"
        if self.problems:
            text += f"; {len(self.problems)} message(s) could not be read fully (see the log)"
        return text + "."


class ImapSettingMissing(TabmailError):
    """A setting the mailbox needs is not set (server, login or password)."""


def _must_fix(exc: TabmailError) -> bool:
    """Only the director can fix it: the server refused the login or the folder, or a setting
    is missing. (Anything else, a busy database for one, may pass by itself.)"""
    return isinstance(exc, ImapProblem | ImapSettingMissing)


def imap_settings(ctx: AppContext) -> ImapSettings:
    """The configured mailbox. Raises TabmailError naming what is missing."""
    return imap_settings_from(ctx.settings.all(), ctx.secrets.get("imap-password"))


def imap_settings_from(values: Mapping[str, Any], password: str | None) -> ImapSettings:
    """A mailbox from settings values (saved, or as typed in the settings dialog)."""
    host = str(values["imap.host"] or "").strip()
    if not host:
        raise ImapSettingMissing("no IMAP server is set: tabmail config set imap.host mail.example.org")
    username = str(values["imap.username"] or "").strip()
    if not username:
        raise ImapSettingMissing("no IMAP login is set: tabmail config set imap.username tab@example.org")
    if not password:
        raise ImapSettingMissing(
            "the IMAP password is not set: store it with `tabmail secret set imap-password` "
            "(or TABMAIL_IMAP_PASSWORD where no keyring exists)"
        )
    return ImapSettings(
        host=host,
        port=int(values["imap.port"]),
        security=str(values["imap.security"]),
        username=username,
        password=password,
        folder=str(values["imap.folder"] or "") or "INBOX",
        ca_file=str(values["tls.ca_file"] or "") or None,
        timeout=30.0,
        processed_folder=str(values["imap.processed_folder"] or "") or None,
    )


def reply_mailto(to: str, subject: str, in_reply_to: str | None) -> str:
    """A mailto: URL (RFC 6068) answering a participant: their address, "Re: " once, and
    In-Reply-To/References so their client threads the answer."""
    subject = subject.strip()
    if not subject.lower().startswith("re:"):
        subject = "Re: " + subject
    query = [("subject", subject)]
    if in_reply_to:
        query += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    params = "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
    return f"mailto:{quote(to.strip(), safe='@')}?{params}"


def inbox_disabled_reason(ctx: AppContext) -> str | None:
    if not str(ctx.settings.get("imap.host") or "").strip():
        return "The inbox is not read: no IMAP server is set (tabmail config set imap.host ...)."
    return None


def test_connection(
    ctx: AppContext, *, settings: ImapSettings | None = None, factory: MailboxFactory = ImapMailbox
) -> str:
    """Log in, open the folder, count its messages: one sentence saying what worked. Raises
    TabmailError saying exactly what failed. ``settings``: test these (typed, unsaved) instead."""
    settings = settings or imap_settings(ctx)
    try:
        with factory(settings) as box:
            status = box.open()
    except ImapOffline as exc:
        raise TabmailError(str(exc)) from None
    idle = (
        "offers IDLE (new mail shows within seconds)"
        if status.idle
        else "has no IDLE (checked every imap.poll_seconds)"
    )
    return (
        f"Logged in to {settings.host} as {settings.username}; {settings.folder} holds "
        f"{status.exists} message(s); the server {idle}."
    )


class InboxChecker:
    """One per process. ``check_once`` never raises for mailbox trouble: it reports it."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        factory: MailboxFactory = ImapMailbox,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_message: Callable[[FetchedMessage], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.repo = ctx.inbox
        self.factory = factory
        self.clock = clock
        self.after_message = after_message  # tests: drop the connection mid-fetch
        self._lock = asyncio.Lock()
        self._key: bytes | None = None

    # -- state ------------------------------------------------------------------------------
    def folder_state(self, folder: str) -> dict[str, Any]:
        value = self.ctx.settings.get_state(STATE + "folder." + folder, {})
        return value if isinstance(value, dict) else {}

    def _save_state(self, folder: str, value: dict[str, Any]) -> None:
        self.ctx.settings.set_state(STATE + "folder." + folder, value)

    # -- checking ---------------------------------------------------------------------------
    async def check_once(self) -> InboxReport:
        async with self._lock:
            report = InboxReport(started_at=self.clock())
            reason = inbox_disabled_reason(self.ctx)
            if reason:
                report.enabled, report.reason = False, reason
            else:
                try:
                    settings = imap_settings(self.ctx)
                    await asyncio.to_thread(self._check, settings, report)
                except ImapOffline as exc:
                    report.online, report.offline = False, str(exc)
                    log.info("inbox: %s", exc)
                except TabmailError as exc:  # ImapProblem included: something to fix
                    report.reason = str(exc)
                    report.must_fix = _must_fix(exc)
            self._finish(report)
            return report

    def check_blocking(self, settings: ImapSettings | None = None) -> InboxReport:
        """The same as ``check_once`` without an event loop (CLI, benchmarks); never raises for
        mailbox trouble."""
        report = InboxReport(started_at=self.clock())
        try:
            self._check(settings or imap_settings(self.ctx), report)
        except ImapOffline as exc:
            report.online, report.offline = False, str(exc)
            log.info("inbox: %s", exc)
        except TabmailError as exc:
            report.reason = str(exc)
            report.must_fix = _must_fix(exc)
        self._finish(report)
        return report

    def _check(self, settings: ImapSettings, report: InboxReport) -> None:
        with self.factory(settings) as box:
            status = box.open()
            report.idle = status.idle
            state = self.folder_state(settings.folder)
            last_uid = int(state.get("last_uid", 0) or 0)
            if state.get("uidvalidity") not in (None, status.uidvalidity):
                log.info(
                    "inbox: %s's UIDVALIDITY changed (%s -> %s): reading the folder again; "
                    "messages already stored are recognised and skipped",
                    settings.folder,
                    state.get("uidvalidity"),
                    status.uidvalidity,
                )
                last_uid, report.rescanned = 0, True
            uids = box.uids_after(last_uid)
            batch: list[FetchedMessage] = []
            for fetched in box.fetch(uids):
                batch.append(fetched)
                if self.after_message is not None:
                    self.after_message(fetched)
                if len(batch) >= 200:
                    self._take(settings, status.uidvalidity, batch, report, box)
                    batch = []
            self._take(settings, status.uidvalidity, batch, report, box)
            self._save_state(
                settings.folder, {"uidvalidity": status.uidvalidity, "last_uid": max(uids, default=last_uid)}
            )

    def _take(
        self,
        settings: ImapSettings,
        uidvalidity: int,
        batch: list[FetchedMessage],
        report: InboxReport,
        box: ImapMailbox,
    ) -> None:
        """Classify, store and apply one batch, then move the cursor past it."""
        if not batch:
            return
        report.read += len(batch)
        known = self.repo.known_keys([_key_of(m) for m in batch])
        items: list[tuple[FetchedMessage, Classified]] = []
        for m in batch:
            try:
                c = classify(m.raw)
            except Exception as exc:  # classify never raises by contract; belt and braces
                c = Classified(InboundKind.IGNORED, _key_of(m), problems=(f"{type(exc).__name__}: {exc}",))
            if c.key in known:
                continue
            known.add(c.key)
            c = with_our_recipient(c, self.repo)
            for problem in c.problems:
                log.warning("inbox: message UID %s (%s): %s", m.uid, c.subject[:80] or "no subject", problem)
                report.problems.append(f"UID {m.uid}: {problem}")
            items.append((m, c))
        report.new += len(items)
        events: list[ProviderEvent] = []
        for m, c in items:
            report.kinds[c.kind.value] = report.kinds.get(c.kind.value, 0) + 1
            events += bounce_events(c, c.date or m.internal_date or self.clock())
        result = (
            self.ctx.tracking.ingest(events, derive=derive_status, now=self.clock(), flag_source=PROVIDER)
            if events
            else None
        )
        matched = self.repo.event_matches(PROVIDER, [e.provider_event_id for e in events]) if events else {}
        people = self.repo.people_of(set(matched.values())) if matched else {}
        rows = [self._row(settings, uidvalidity, m, c, matched, people, report) for m, c in items]
        self.repo.add(rows)
        if result is not None:
            report.changed_message_ids += [
                i for i in result.changed_message_ids if i not in report.changed_message_ids
            ]
            report.flagged_keys += [k for k in result.flagged_keys if k not in report.flagged_keys]
        self._save_state(settings.folder, {"uidvalidity": uidvalidity, "last_uid": max(m.uid for m in batch)})
        if settings.processed_folder:
            box.move([m.uid for m in batch], settings.processed_folder)

    # -- rows and replies -------------------------------------------------------------------
    def _row(
        self,
        settings: ImapSettings,
        uidvalidity: int,
        m: FetchedMessage,
        c: Classified,
        matched: dict[str, str],
        people: dict[str, int | None],
        report: InboxReport,
    ) -> dict[str, Any]:
        message_id: str | None = None
        matched_by: str | None = None
        person_id: int | None = None
        different = False
        detail: dict[str, Any] = dict(c.detail)
        if c.recipients:
            detail["recipients"] = [
                {"address": r.address, "action": r.action, "status": r.status, "diagnostic": r.diagnostic}
                for r in c.recipients
            ]
        if c.problems:
            detail["problems"] = list(c.problems)
        if c.kind in (InboundKind.DSN, InboundKind.BOUNCE, InboundKind.FEEDBACK):
            ids = [matched.get(event_id(c, r)) for r in c.recipients]
            message_id = next((i for i in ids if i), None)
            tid, how = original_id(c)
            matched_by = (how if message_id == tid else "address_time") if message_id else None
            if message_id:
                person_id = people.get(message_id)
            else:
                report.unmatched += 1
        elif c.kind in ATTACHING_KINDS:
            ref, matched_by, note = attribute_reply(c, self.repo, self._thread_key(), self.clock())
            if note:
                detail["attribution"] = note
            if ref is not None:
                message_id, person_id = ref.id, ref.person_id
                different = address_key(c.from_address) != ref.address_key
                if c.kind is InboundKind.REPLY:
                    report.reply_message_ids.append(ref.id)
            elif c.kind is InboundKind.REPLY:
                report.unmatched += 1
        keep_raw = c.kind is not InboundKind.IGNORED
        return {
            "key": c.key,
            "folder": settings.folder[:300],
            "uidvalidity": uidvalidity,
            "uid": m.uid,
            "kind": c.kind.value,
            "received_at": c.date or m.internal_date,
            "processed_at": self.clock(),
            "header_message_id": (c.message_id or "")[:300] or None,
            "from_address": (c.from_address or "")[:320] or None,
            "from_key": address_key(c.from_address),
            "from_name": c.from_name[:300],
            "subject": c.subject,
            "message_id": message_id,
            "person_id": person_id,
            "matched_by": matched_by,
            "different_sender": different,
            "reply_text": c.reply_text,
            "detail": detail,
            "raw": m.raw[:RAW_CAP] if keep_raw else None,
            "truncated": m.truncated or len(m.raw) > RAW_CAP,
            "read_at": None,
        }

    def _thread_key(self) -> bytes:
        if self._key is None:
            self._key = thread_key(self.ctx)
        return self._key

    # -- after a check ----------------------------------------------------------------------
    def _finish(self, report: InboxReport) -> None:
        bus = self.ctx.bus
        if report.changed_message_ids or report.unmatched:
            bus.publish(StatusesChanged(tuple(report.changed_message_ids), report.unmatched))
        if report.flagged_keys:
            bus.publish(AddressFlagsChanged(tuple(report.flagged_keys)))
        if report.reply_message_ids:
            bus.publish(RepliesReceived(tuple(dict.fromkeys(report.reply_message_ids))))
        summary = report.summary()
        if report.enabled:
            self.ctx.settings.set_state(
                STATE + "last_check",
                {
                    "at": report.started_at.isoformat(),
                    "ok": report.ok,
                    "online": report.online,
                    "summary": summary,
                    "by": machine_name(),  # "last read by tabroom-2" in every window
                },
            )
        bus.publish(InboxChecked(ok=report.ok, online=report.online, summary=summary))


def _key_of(m: FetchedMessage) -> str:
    return header_key(m.raw)


def check_blocking(ctx: AppContext, **kw: Any) -> InboxReport:
    return InboxChecker(ctx, **kw).check_blocking()


__all__: Sequence[str] = ["InboxChecker", "InboxReport", "check_blocking", "imap_settings", "test_connection"]
