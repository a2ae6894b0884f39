"""Delivery tracking: ask SendGrid what happened, store it, flag addresses, tell the GUI.

A laptop cannot receive SendGrid's webhook, so the ``Poller`` asks (one per process: it owns the
Email Activity budget of 6 requests a minute). Each ``poll_once`` runs the sources the account
allows, in order: Email Activity, Email Logs, suppression lists. What the account allows is
detected once (key scopes, then one cheap request to each paid feature), remembered for a day,
and said in plain words. After each source its events are ingested and its cursor saved, so a
failure in a later source loses nothing. Being offline is a state in the report, never an
exception; the poller switches itself off, saying why, when mail does not go through SendGrid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tabmail.domain.events import AddressFlagsChanged, PollFinished, StatusesChanged
from tabmail.domain.notification import DeliveryStatus
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.domain.practice import SPAN as PRACTICE_SPAN
from tabmail.providers.sendgrid import SendGridClient, SendGridError
from tabmail.services.context import AppContext
from tabmail.services.machine import machine_name

# The poll's small persistent state lives apart, readable at start-up without the SendGrid client.
from tabmail.services.poll_state import (  # noqa: F401 (re-exported)
    CONNECTION_KEYS,
    STATE,
    forget_capabilities,
    last_poll,
)
from tabmail.services.sending import backend_name, is_practice, is_sendgrid_relay, uses_sendgrid
from tabmail.status.events import SETTLED_STATUSES, derive_status, iso_z, parse_time
from tabmail.status.practice import PracticeSource
from tabmail.status.requester import (
    Backoff,
    CallFailed,
    Clock,
    Offline,
    Requester,
    Sleep,
    Unavailable,
    utcnow,
)
from tabmail.status.sources import ActivitySource, LogsSource, PollOutcome, SuppressionSource, check_scopes
from tabmail.store.tracking import IngestResult

if TYPE_CHECKING:  # a tab room's election, handed in by the caller
    from tabmail.services.election import Duty

log = logging.getLogger(__name__)

PRACTICE_STATE = "poll.practice.cursor"
HORIZON = timedelta(days=4)  # 72 h of deferrals + a margin (reference §8.6)
OVERLAP = timedelta(minutes=15)  # events SendGrid indexes late are still seen
SKEW = timedelta(minutes=5)
RECHECK = timedelta(days=1)
FIRST_SUPPRESSION_LOOKBACK = timedelta(days=30)
OPEN_STATUSES = tuple(s.value for s in DeliveryStatus if s not in SETTLED_STATUSES)


@dataclass(slots=True)
class Capabilities:
    """What the account and key allow. None: not known yet (try it)."""

    activity: bool | None = None
    logs: bool | None = None
    suppressions: bool | None = None
    missing_scopes: dict[str, list[str]] = field(default_factory=dict)
    checked_at: datetime | None = None
    notes: dict[str, str] = field(default_factory=dict)
    key_problem: str | None = None  # SendGrid refused the key itself (not remembered)

    def sentences(self) -> list[str]:
        words = {
            "activity": "Email Activity (delivered, opened, bounced per message)",
            "logs": "Email Logs (deferred, bounced, blocked, dropped with reasons)",
            "suppressions": "suppression lists (bounces, blocks, invalid, spam reports, unsubscribes)",
        }
        out = []
        for key, label in words.items():
            value = getattr(self, key)
            if value is True:
                out.append(f"{label}: available.")
            elif value is False:
                out.append(f"{label}: not available. {self.notes.get(key, '')}".strip())
            else:
                out.append(f"{label}: not checked yet.")
        for feature, scopes in self.missing_scopes.items():
            out.append(f"The API key lacks {', '.join(scopes)} for {feature}.")
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "activity": self.activity,
            "logs": self.logs,
            "suppressions": self.suppressions,
            "missing_scopes": self.missing_scopes,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "notes": self.notes,
        }

    @classmethod
    def from_state(cls, data: Any) -> Capabilities | None:
        if not isinstance(data, dict) or not data.get("checked_at"):
            return None
        try:
            return cls(
                activity=data.get("activity"),
                logs=data.get("logs"),
                suppressions=data.get("suppressions"),
                missing_scopes=dict(data.get("missing_scopes") or {}),
                checked_at=parse_time(data["checked_at"]),
                notes=dict(data.get("notes") or {}),
            )
        except (ValueError, TypeError):
            return None


@dataclass(slots=True)
class PollReport:
    started_at: datetime
    enabled: bool = True
    online: bool = True
    outcomes: list[PollOutcome] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0
    matched: int = 0
    unmatched: int = 0
    changed_message_ids: list[str] = field(default_factory=list)
    flagged_keys: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)  # made by this poll, per API group
    reason: str = ""  # why polling is off, or why it failed
    practice: bool = False  # the practice backend's fates, not a provider

    @property
    def ok(self) -> bool:
        return (
            self.enabled
            and self.online
            and not self.reason
            and all(o.ok or not o.available for o in self.outcomes)
        )

    @property
    def problems(self) -> list[str]:
        return [p for o in self.outcomes for p in o.problems]

    def summary(self) -> str:
        if not self.enabled:
            return self.reason
        if self.practice:  # short: it sits in the status bar beside "Practice — nothing leaves…"
            changed, flagged = len(self.changed_message_ids), len(self.flagged_keys)
            if not changed and not flagged:
                return "Practice: nothing new."
            text = f"Practice: {changed} status change{'s' if changed != 1 else ''}"
            if flagged:
                text += f", {flagged} address{'es' if flagged != 1 else ''} flagged"
            return text + "."
        if not self.online:
            return "SendGrid could not be reached (offline?); statuses are as of the last successful poll."
        if self.reason:
            return self.reason
        text = (
            f"{self.inserted} new event(s), {len(self.changed_message_ids)} message(s) changed status, "
            f"{len(self.flagged_keys)} address(es) newly flagged"
        )
        if self.unmatched:
            text += f", {self.unmatched} event(s) matched no message (tabmail events --unmatched)"
        failed = [o for o in self.outcomes if not o.ok and o.available]
        if failed:
            text += "; trouble with " + ", ".join(o.source for o in failed) + " (see the log)"
        return text + "."

    def _add(self, result: IngestResult) -> None:
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        self.matched += result.matched
        self.unmatched += result.unmatched
        self.changed_message_ids += [
            m for m in result.changed_message_ids if m not in self.changed_message_ids
        ]
        self.flagged_keys += [k for k in result.flagged_keys if k not in self.flagged_keys]


def tracking_disabled_reason(ctx: AppContext) -> str | None:
    """Why delivery tracking cannot run with these settings, in one sentence; None if it can."""
    if is_practice(ctx):
        return None
    if not uses_sendgrid(ctx):
        name = backend_name(ctx)
        where = f"through {ctx.settings.get('smtp.host')}" if name == "smtp" else f"with the {name!r} backend"
        return (
            f"Delivery tracking is off: mail goes out {where}, which says nothing after accepting a "
            "message. It works when sending through SendGrid (tabmail config set backend sendgrid, "
            "or SMTP via smtp.sendgrid.net)."
        )
    if not api_key(ctx):
        return (
            "Delivery tracking is off: the SendGrid API key is not set "
            "(tabmail secret set sendgrid-api-key, or TABMAIL_SENDGRID_API_KEY where no keyring exists)."
        )
    return None


def api_key(ctx: AppContext) -> str | None:
    """The SendGrid key; through the SMTP relay the password (user 'apikey') is that key."""
    key = ctx.secrets.get("sendgrid-api-key")
    if not key and is_sendgrid_relay(ctx) and str(ctx.settings.get("smtp.username")) == "apikey":
        key = ctx.secrets.get("smtp-password")
    return key or None


def client_for(ctx: AppContext) -> SendGridClient:
    key = api_key(ctx)
    if not key:
        raise SendGridError("No SendGrid API key is set: add one with `tabmail secret set sendgrid-api-key`")
    return SendGridClient(str(ctx.settings.get("sendgrid.base_url")), key)


class Poller:
    """One per process. ``poll_once`` never raises for SendGrid trouble: it reports it."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        client_factory: Callable[[], SendGridClient] | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        backoff: Backoff | None = None,
        activity_per_minute: int = 6,
        max_requests: int = 5,
    ) -> None:
        self.ctx = ctx
        self.client_factory = client_factory or (lambda: client_for(ctx))
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff
        self.activity_per_minute = activity_per_minute
        self.max_requests = max_requests
        self._client: SendGridClient | None = None
        self._requester: Requester | None = None
        self._caps: Capabilities | None = None
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()

    # -- plumbing -------------------------------------------------------------------------
    @property
    def requester(self) -> Requester:
        if self._requester is None:
            self._client = self.client_factory()
            self._requester = Requester(
                self._client,
                clock=self.clock,
                sleep=self.sleep,
                backoff=self.backoff,
                activity_per_minute=self.activity_per_minute,
            )
        return self._requester

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._requester = None

    def stop(self) -> None:
        """Ask ``run_forever`` to return after the poll in progress."""
        self._stopping.set()

    def _state(self, name: str, default: Any = None) -> Any:
        return self.ctx.settings.get_state(STATE + name, default)

    def _save(self, name: str, value: Any) -> None:
        self.ctx.settings.set_state(STATE + name, value)

    # -- capabilities ---------------------------------------------------------------------
    async def detect(self, *, force: bool = False) -> Capabilities:
        """What the account allows: scopes, then one small request to Activity and to Logs.
        Done once and remembered for a day. Offline: returns what is known (maybe nothing)."""
        now = self.clock()
        if not force:
            caps = self._caps or Capabilities.from_state(self._state("capabilities"))
            if caps is not None and caps.checked_at is not None and now - caps.checked_at < RECHECK:
                self._caps = caps
                return caps
        caps = Capabilities(checked_at=now)
        req = self.requester
        try:
            caps.missing_scopes = await check_scopes(req.client)
        except SendGridError as exc:
            if exc.status is None:
                return self._caps or Capabilities()  # offline: nothing learnt, ask again later
            if exc.status == 401:
                return Capabilities(key_problem=str(exc))
            log.info("could not read the key's scopes: %s", exc)
        window = f'TIMESTAMP "{iso_z(now - timedelta(minutes=1))}"'
        probes: list[tuple[str, str, str, dict[str, Any]]] = [
            (
                "activity",
                "GET",
                "/v3/messages",
                {"params": {"limit": 1, "query": f"last_event_time >= {window}"}},
            ),
            (
                "logs",
                "POST",
                "/v3/logs",
                {"json": {"query": f"sg_message_id_created_at >= {window}", "limit": 1}},
            ),
        ]
        for name, method, path, kw in probes:
            try:
                await req.call(method, path, **kw)
                setattr(caps, name, True)
            except Unavailable as exc:
                setattr(caps, name, False)
                caps.notes[name] = str(exc)
            except Offline:
                return self._caps or Capabilities()
            except CallFailed as exc:
                caps.notes[name] = f"could not check: {exc}"  # stays None: tried at each poll
        self._caps = caps
        self._save("capabilities", caps.to_state())
        for sentence in caps.sentences():
            log.info("SendGrid: %s", sentence)
        return caps

    def _learn(self, caps: Capabilities, outcome: PollOutcome) -> None:
        value = outcome.available if outcome.online else None
        if value is None or getattr(caps, outcome.source) == value:
            return
        setattr(caps, outcome.source, value)
        if not value:
            caps.notes[outcome.source] = outcome.note
        self._save("capabilities", caps.to_state())

    # -- polling ----------------------------------------------------------------------------
    async def poll_once(self) -> PollReport:
        """Run every available source once; ingest, flag, publish. Never raises for SendGrid."""
        async with self._lock:
            report = PollReport(started_at=self.clock())
            reason = tracking_disabled_reason(self.ctx)
            if reason is not None:
                report.enabled, report.reason = False, reason
            elif is_practice(self.ctx):
                report.practice = True
                await self._poll_practice(report)
            else:
                before = dict(self.requester.counts)
                await self._poll(report)
                report.requests = {
                    group: n - before.get(group, 0) for group, n in self.requester.counts.items()
                }
            self._finish(report)
            return report

    async def _poll(self, report: PollReport) -> None:
        caps = await self.detect()
        if caps.key_problem:
            report.reason = caps.key_problem
            return
        if caps.checked_at is None:  # detection could not reach SendGrid
            report.online = False
            return
        report.capabilities = caps.sentences()
        tracking = self.ctx.tracking
        now = self.clock()
        horizon = now - HORIZON
        latest = tracking.latest_sent()
        open_since = tracking.earliest_sent(horizon, OPEN_STATUSES)
        req = self.requester
        activity_ok = False
        if caps.activity is not False and latest is not None and latest >= horizon:
            cursor = self._state("activity", {}) or {}
            since = (
                parse_time(cursor["until"]) - OVERLAP
                if cursor.get("until")
                else (open_since or latest) - SKEW
            )
            since = max(since, horizon)
            outcome = await ActivitySource(req, max_requests=self.max_requests).poll(
                since,
                now,
                cursor,
                details=caps.logs is False,
                settled=self._settled,
            )
            activity_ok = outcome.ok
            if not await self._take(report, caps, outcome):
                return
        if caps.logs is not False and open_since is not None:
            cursor = self._state("logs", {}) or {}
            outcome = await LogsSource(req, max_requests=self.max_requests).poll(
                open_since - SKEW, now, cursor, only_problems=activity_ok
            )
            if not await self._take(report, caps, outcome):
                return
        cursor = self._state("suppressions", {}) or {}
        outcome = await SuppressionSource(req).poll(cursor, now - FIRST_SUPPRESSION_LOOKBACK)
        await self._take(report, caps, outcome)
        report.capabilities = caps.sentences()

    async def _poll_practice(self, report: PollReport) -> None:
        """The practice backend's fates up to now (nothing is reached: always online)."""
        now = self.clock()
        cursor = self.ctx.settings.get_state(PRACTICE_STATE, {}) or {}
        since = now - HORIZON
        if isinstance(cursor, dict) and cursor.get("until"):
            since = max(since, parse_time(cursor["until"]) - PRACTICE_SPAN)
        sends = await asyncio.to_thread(self.ctx.tracking.sent_through, PRACTICE, since)
        outcome = PracticeSource().poll(sends, now, cursor if isinstance(cursor, dict) else {})
        report.outcomes.append(outcome)
        if outcome.events:
            result = await asyncio.to_thread(
                self.ctx.tracking.ingest,
                outcome.events,
                derive=derive_status,
                now=now,
                flag_source=PRACTICE,
            )
            report._add(result)
        self.ctx.settings.set_state(PRACTICE_STATE, outcome.cursor)

    def _settled(self, msg_ids: Sequence[str]) -> set[str]:
        known = self.ctx.tracking.statuses_by_sg_id(msg_ids)
        settled = {s.value for s in SETTLED_STATUSES}
        return {m for m, status in known.items() if status in settled}

    async def _take(self, report: PollReport, caps: Capabilities, outcome: PollOutcome) -> bool:
        """Ingest a source's events (in a worker thread: a big first poll must not freeze the
        window) and save its cursor. False: offline, stop this poll."""
        report.outcomes.append(outcome)
        self._learn(caps, outcome)
        if not outcome.online:
            report.online = False
            return False
        if outcome.events:
            result = await asyncio.to_thread(
                self.ctx.tracking.ingest, outcome.events, derive=derive_status, now=self.clock()
            )
            report._add(result)
        if outcome.available:
            self._save(outcome.source, outcome.cursor)
        for problem in outcome.problems:
            log.warning("SendGrid %s: %s", outcome.source, problem)
        return True

    def _finish(self, report: PollReport) -> None:
        summary = report.summary()
        bus = self.ctx.bus
        if report.changed_message_ids:
            bus.publish(StatusesChanged(tuple(report.changed_message_ids), report.unmatched))
        elif report.unmatched:
            bus.publish(StatusesChanged((), report.unmatched))
        if report.flagged_keys:
            bus.publish(AddressFlagsChanged(tuple(report.flagged_keys)))
        if report.enabled:
            self._save(
                "last_poll",
                {
                    "at": report.started_at.isoformat(),
                    "ok": report.ok,
                    "online": report.online,
                    "summary": summary,
                    "by": machine_name(),  # "last checked by tabroom-2" in every window
                },
            )
        bus.publish(PollFinished(ok=report.ok, online=report.online, summary=summary))

    async def run_forever(
        self,
        interval: float | None = None,
        *,
        max_polls: int | None = None,
        on_report: Callable[[PollReport], None] | None = None,
        duty: Duty | None = None,
        on_standby: Callable[[str], None] | None = None,
    ) -> PollReport | None:
        """Poll until ``stop()`` (or ``max_polls``). Returns at once, with the report saying
        why, when tracking is off. The interval comes from the settings unless given.

        ``duty`` (a tab room on PostgreSQL): poll only while this process holds it; otherwise
        say so once through ``on_standby`` and try again every interval (services/election.py)."""
        self._stopping.clear()
        polls = 0
        last: PollReport | None = None
        standing_by = False
        while not self._stopping.is_set():
            if duty is not None and not duty.mine():
                if not standing_by and on_standby is not None:
                    on_standby(duty.standby_words())
                standing_by = True
                await self.sleep(max(self._interval(interval), 1.0))
                continue
            standing_by = False
            last = await self.poll_once()
            polls += 1
            if on_report is not None:
                on_report(last)
            if not last.enabled or self._stopping.is_set() or (max_polls is not None and polls >= max_polls):
                break
            await self.sleep(max(self._interval(interval), 1.0))
        return last

    def _interval(self, given: float | None) -> float:
        return float(given if given is not None else self.ctx.settings.get("poll.interval_seconds"))
