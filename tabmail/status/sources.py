"""Where delivery news comes from: Email Activity, Email Logs and the suppression lists.

Each source's ``poll`` never raises: it returns a ``PollOutcome`` holding the events it read,
its new cursor (the service persists it), whether SendGrid was reachable and whether the account
has the feature, in plain words. A malformed answer is logged with its raw body (cut short, any
key hidden) and the source stops there; the poll goes on with the next source.

Window shrinking (Activity and Logs return at most 1,000 items and have no paging): when a window
comes back full, and the items came newest first (what SendGrid does for Activity; UNVERIFIED for
Logs), the part they cover is complete and only the older rest is asked again; otherwise the
window is halved. Either way nothing already read is thrown away.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tabmail.providers.sendgrid import SendGridClient, SendGridResponse, missing_scopes
from tabmail.status.events import ProviderEvent, ShapeError, iso_z, parse_time
from tabmail.status.requester import CallFailed, Offline, Requester, Unavailable, raw_excerpt
from tabmail.status.shapes import (
    SUPPRESSION_LISTS,
    from_activity_detail,
    from_activity_summary,
    from_logs_summary,
    from_suppression,
)

log = logging.getLogger(__name__)

LIMIT = 1000  # Activity and Logs: the most items one answer holds
PAGE = 500  # suppression lists: the largest page
PROBLEM_STATUSES = ("deferred", "bounced", "blocked", "dropped")


@dataclass(slots=True)
class PollOutcome:
    source: str  # "activity" | "logs" | "suppressions"
    events: list[ProviderEvent] = field(default_factory=list)
    cursor: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    online: bool = True
    available: bool = True
    requests: int = 0
    problems: list[str] = field(default_factory=list)
    note: str = ""


async def check_scopes(client: SendGridClient) -> dict[str, list[str]]:
    """Per feature of tabmail, the scopes the key lacks (GET /v3/scopes). Raises SendGridError."""
    scopes = await asyncio.to_thread(client.get_scopes)
    return missing_scopes(scopes)


def _read_json(answer: SendGridResponse, key: str, what: str) -> list[Any]:
    """answer[key] as a list; ShapeError (after logging the raw body) for anything else."""
    try:
        data = answer.json()
    except Exception:
        log.warning("%s: the answer is not JSON; raw body: %s", what, raw_excerpt(answer.body))
        raise ShapeError(f"{what}: SendGrid's answer was not valid JSON") from None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        log.warning("%s: no %r list in the answer; raw body: %s", what, key, raw_excerpt(answer.body))
        raise ShapeError(f"{what}: SendGrid's answer had an unexpected shape (no {key!r} list)")
    return items


def _skip_item(what: str, item: Any, exc: Exception) -> str:
    text = repr(item)
    log.warning("%s: skipped an item tabmail cannot read (%s): %s", what, exc, raw_excerpt(text.encode()))
    return f"{what}: skipped an item tabmail cannot read ({exc})"


class _Windowed:
    """Shared window walk for Activity and Logs."""

    name = ""
    time_key = ""

    def __init__(self, requester: Requester, *, max_requests: int = 5) -> None:
        self.requester = requester
        self.max_requests = max_requests

    async def _fetch(self, start: datetime, end: datetime) -> SendGridResponse:
        raise NotImplementedError

    def _read(self, items: list[Any], out: PollOutcome) -> list[datetime]:
        raise NotImplementedError

    async def _walk(self, start: datetime, end: datetime, out: PollOutcome) -> bool:
        """Read [start, end] completely; False if the request budget ran out first."""
        windows = [(start, end)]
        while windows:
            if out.requests >= self.max_requests:
                out.problems.append(
                    f"{self.name}: more messages than {self.max_requests} requests can read in one poll; "
                    "the rest comes next poll"
                )
                return False
            a, b = windows.pop()
            out.requests += 1
            answer = await self._fetch(a, b)
            items = _read_json(answer, "messages", self.name)
            times = self._read(items, out)
            if len(items) < LIMIT or not times:
                continue
            oldest = min(times)
            newest_first = all(x >= y for x, y in itertools.pairwise(times))
            if newest_first and a < oldest < b:
                windows.append((a, oldest))  # (oldest, b] is complete; ties at oldest re-read, deduped
            elif newest_first and oldest >= b > a:
                # a thousand or more in the window's last second: read what is older, and say so
                windows.append((a, b - timedelta(seconds=1)))
                out.problems.append(
                    f"{self.name}: more than {LIMIT} messages at {iso_z(b)}; some may be missing"
                )
            elif not newest_first and b - a > timedelta(seconds=2):
                mid = a + (b - a) / 2
                windows += [(a, mid), (mid, b)]
            else:
                out.problems.append(
                    f"{self.name}: more than {LIMIT} messages within 2 seconds; some may be missing"
                )
        return True


class ActivitySource(_Windowed):
    """GET /v3/messages by last_event_time window (never one call per message); the detail
    only for messages not delivered, a few per poll (the rest wait in the cursor)."""

    name = "Email Activity"

    def __init__(self, requester: Requester, *, max_requests: int = 5, max_details: int = 3) -> None:
        super().__init__(requester, max_requests=max_requests)
        self.max_details = max_details
        self._needs_detail: list[str] = []

    async def _fetch(self, start: datetime, end: datetime) -> SendGridResponse:
        query = f'last_event_time BETWEEN TIMESTAMP "{iso_z(start)}" AND TIMESTAMP "{iso_z(end)}"'
        return await self.requester.call("GET", "/v3/messages", params={"limit": LIMIT, "query": query})

    def _read(self, items: list[Any], out: PollOutcome) -> list[datetime]:
        times = []
        for item in items:
            try:
                events, detail = from_activity_summary(item)
                times.append(parse_time(item.get("last_event_time")))
            except ShapeError as exc:
                out.problems.append(_skip_item(self.name, item, exc))
                continue
            out.events.extend(events)
            if detail:
                self._needs_detail.append(detail)
        return times

    async def poll(
        self,
        since: datetime,
        until: datetime,
        cursor: dict[str, Any],
        *,
        details: bool = True,
        settled: Callable[[Sequence[str]], set[str]] | None = None,
    ) -> PollOutcome:
        """``details=False`` when Email Logs already gives the reasons; ``settled`` names msg_ids
        whose outcome is already known (their detail is not fetched)."""
        out = PollOutcome("activity", cursor=dict(cursor))
        self._needs_detail = []
        try:
            complete = await self._walk(since, until, out)
            if complete:
                out.cursor["until"] = iso_z(until)
            queue = list(dict.fromkeys([*cursor.get("pending_details", []), *self._needs_detail]))
            if details and queue:
                if settled is not None:
                    done = settled(queue)
                    queue = [m for m in queue if m not in done]
                queue = await self._details(queue, out)
            out.cursor["pending_details"] = queue[-500:] if details else []
        except Offline:
            out.ok = out.online = False
            out.note = "SendGrid could not be reached"
            return out
        except Unavailable as exc:
            out.ok = out.available = False
            out.note = (
                "Email Activity is not available on this account or key (it needs SendGrid's paid "
                f"Email Activity add-on and the messages.read permission): {exc}"
            )
            return out
        except (CallFailed, ShapeError) as exc:
            out.ok = False
            out.problems.append(str(exc))
        out.note = out.note or f"{len(out.events)} event(s) from {out.requests} Email Activity request(s)"
        return out

    async def _details(self, queue: list[str], out: PollOutcome) -> list[str]:
        """Fetch what the poll's request budget still allows; returns the msg_ids left."""
        left = list(queue)
        budget = max(0, min(self.max_details, self.max_requests - out.requests))
        for msg_id in queue[:budget]:
            out.requests += 1
            path = "/v3/messages/" + urllib.parse.quote(msg_id, safe="")
            try:
                answer = await self.requester.call("GET", path)
            except CallFailed as exc:
                if exc.status == 404:
                    left.remove(msg_id)  # gone (older than the history kept): stop asking
                    continue
                raise
            left.remove(msg_id)
            try:
                out.events.extend(from_activity_detail(answer.json()))
            except Exception as exc:
                log.warning(
                    "%s detail of %s unreadable (%s); raw body: %s",
                    self.name,
                    msg_id,
                    exc,
                    raw_excerpt(answer.body),
                )
                out.problems.append(f"{self.name}: the detail of one message was unreadable ({exc})")
        return left


class LogsSource(_Windowed):
    """POST /v3/logs over the creation window of messages still waiting for news: summary
    statuses (deferred, bounced, blocked, dropped...) with SendGrid's reason."""

    name = "Email Logs"

    def __init__(self, requester: Requester, *, max_requests: int = 5) -> None:
        super().__init__(requester, max_requests=max_requests)
        self.only_problems = False

    async def _fetch(self, start: datetime, end: datetime) -> SendGridResponse:
        query = (
            f'sg_message_id_created_at >= TIMESTAMP "{iso_z(start)}" '
            f'AND sg_message_id_created_at <= TIMESTAMP "{iso_z(end)}"'
        )
        if self.only_problems:
            query += " AND status IN (" + ", ".join(f"'{s}'" for s in PROBLEM_STATUSES) + ")"
        return await self.requester.call("POST", "/v3/logs", json={"query": query, "limit": LIMIT})

    def _read(self, items: list[Any], out: PollOutcome) -> list[datetime]:
        times = []
        for item in items:
            try:
                event = from_logs_summary(item)
            except ShapeError as exc:
                out.problems.append(_skip_item(self.name, item, exc))
                continue
            out.events.append(event)
            times.append(event.event_time)
        return times

    async def poll(
        self, since: datetime, until: datetime, cursor: dict[str, Any], *, only_problems: bool = False
    ) -> PollOutcome:
        """``only_problems`` when Email Activity already tells delivered from processed."""
        out = PollOutcome("logs", cursor=dict(cursor))
        self.only_problems = only_problems
        try:
            if await self._walk(since, until, out):
                out.cursor["until"] = iso_z(until)
        except Offline:
            out.ok = out.online = False
            out.note = "SendGrid could not be reached"
            return out
        except Unavailable as exc:
            out.ok = out.available = False
            out.note = f"Email Logs is not available on this account or key: {exc}"
            return out
        except (CallFailed, ShapeError) as exc:
            out.ok = False
            out.problems.append(str(exc))
        out.note = f"{len(out.events)} message status(es) from {out.requests} Email Logs request(s)"
        return out


class SuppressionSource:
    """The five suppression lists, paged by limit/offset from each list's cursor (the newest
    ``created`` seen). Available on every plan; a list the key may not read is skipped."""

    name = "suppression lists"

    def __init__(self, requester: Requester, *, max_pages: int = 20) -> None:
        self.requester = requester
        self.max_pages = max_pages

    async def poll(self, cursor: dict[str, Any], first_since: datetime) -> PollOutcome:
        out = PollOutcome("suppressions", cursor=dict(cursor))
        refused: list[str] = []
        for list_name in SUPPRESSION_LISTS:
            start = cursor.get(list_name)
            start_time = int(start) if isinstance(start, int | float) else int(first_since.timestamp())
            try:
                newest, complete = await self._list(list_name, start_time, out)
            except Offline:
                out.ok = out.online = False
                out.note = "SendGrid could not be reached"
                return out
            except Unavailable:
                refused.append(list_name)
                continue
            except (CallFailed, ShapeError) as exc:
                out.ok = False
                out.problems.append(f"{list_name}: {exc}")
                continue
            # a list read only in part keeps its cursor: the unread pages may hold older entries
            out.cursor[list_name] = max(newest, start_time) if complete else start_time
        if len(refused) == len(SUPPRESSION_LISTS):
            out.ok = out.available = False
            out.note = "the API key may not read the suppression lists (it needs suppression.read)"
            return out
        out.note = f"{len(out.events)} suppression entr{'y' if len(out.events) == 1 else 'ies'}"
        if refused:
            out.note += f"; the key may not read: {', '.join(refused)}"
        return out

    async def _list(self, list_name: str, start_time: int, out: PollOutcome) -> tuple[int, bool]:
        """Entries created since start_time: (the newest ``created`` seen, all pages read)."""
        newest = start_time
        offset = 0
        for _ in range(self.max_pages):
            params: dict[str, str | int] = {"start_time": start_time, "limit": PAGE, "offset": offset}
            out.requests += 1
            answer = await self.requester.call("GET", f"/v3/suppression/{list_name}", params=params)
            try:
                items = answer.json()
            except Exception:
                log.warning("%s %s: not JSON; raw body: %s", self.name, list_name, raw_excerpt(answer.body))
                raise ShapeError("SendGrid's answer was not valid JSON") from None
            if not isinstance(items, list):
                log.warning("%s %s: not a list; raw body: %s", self.name, list_name, raw_excerpt(answer.body))
                raise ShapeError("SendGrid's answer had an unexpected shape (not a list)")
            for item in items:
                try:
                    event = from_suppression(list_name, item)
                except ShapeError as exc:
                    out.problems.append(_skip_item(f"{self.name} {list_name}", item, exc))
                    continue
                out.events.append(event)
                newest = max(newest, int(event.event_time.timestamp()))
            if len(items) < PAGE:
                return newest, True
            offset += PAGE
        out.problems.append(
            f"{list_name}: more than {self.max_pages * PAGE} new entries; the rest comes next poll"
        )
        return newest, False
