"""Matching new provider events to the messages they are about, in bulk (DESIGN.md "Track").

The order: tabmail's own id from custom_args / unique_args; then the sg_message_id (exact, then
its X-Message-Id prefix, which is what the send stored); then the address and time: the latest
message to that address sent before the event, within a window. ``EventIngest.ingest``
(store/tracking_ingest.py, behind ``TrackingRepository.ingest``) owns an ``EventMatcher`` per
ingest and stores what it found.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import DeliveryStatus, FlagKind
from tabmail.store.models import MessageRow
from tabmail.store.sql import chunks as chunks


class IncomingEvent(Protocol):
    """What ingest reads from an event (``tabmail.status.events.ProviderEvent`` fits)."""

    @property
    def provider(self) -> str: ...
    @property
    def provider_event_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> DeliveryStatus: ...
    @property
    def event_time(self) -> datetime: ...
    @property
    def tabmail_id(self) -> str | None: ...
    @property
    def sg_message_id(self) -> str | None: ...
    @property
    def x_message_id(self) -> str | None: ...
    @property
    def address(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def flag(self) -> FlagKind | None: ...
    @property
    def source(self) -> str: ...
    @property
    def raw(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class Candidate:
    id: str
    address_key: str
    sent_at: datetime | None
    sg_message_id: str | None


class EventMatcher:
    """Bulk matching of new events to messages; see the module docstring for the order."""

    def __init__(self, s: Session, window: timedelta, skew: timedelta) -> None:
        self.s = s
        self.window = window
        self.skew = skew

    def match(self, events: list[IncomingEvent]) -> tuple[list[str | None], list[str | None], dict[str, str]]:
        """(message id per event, how it matched, sg_message_id learned per message id)."""
        n = len(events)
        found: list[str | None] = [None] * n
        how: list[str | None] = [None] * n
        learned: dict[str, str] = {}

        def settle(i: int, mid: str, method: str) -> None:
            found[i], how[i] = mid, method
            sg = events[i].sg_message_id
            if sg:
                learned.setdefault(mid, sg)

        # 1. tabmail's own id
        tids = sorted({e.tabmail_id for e in events if e.tabmail_id})
        known = self._existing(tids)
        for i, e in enumerate(events):
            if e.tabmail_id and e.tabmail_id in known:
                settle(i, e.tabmail_id, "tabmail_id")

        # 2. sg_message_id, exact
        todo = [i for i in range(n) if found[i] is None and events[i].sg_message_id]
        exact = self._by_column(MessageRow.sg_message_id, {events[i].sg_message_id or "" for i in todo})
        for i in todo:
            cands = exact.get(events[i].sg_message_id or "", [])
            if len(cands) == 1:
                settle(i, cands[0].id, "sg_message_id")

        # 3. the X-Message-Id prefix (one per request; several recipients share it)
        todo = [i for i in range(n) if found[i] is None and _prefix(events[i])]
        by_prefix = self._by_column(MessageRow.provider_message_id, {_prefix(events[i]) or "" for i in todo})
        for i in todo:
            cands = [c for c in by_prefix.get(_prefix(events[i]) or "", []) if _compatible(c, events[i])]
            if len(cands) > 1:
                key = address_key(events[i].address)
                cands = [c for c in cands if c.address_key == key]
            if len(cands) == 1:
                settle(i, cands[0].id, "x_message_id")

        # 4. address + time: the latest send to that address before the event, within the window
        todo = [i for i in range(n) if found[i] is None and address_key(events[i].address)]
        if todo:
            lo = min(events[i].event_time for i in todo) - self.window - self.skew
            hi = max(events[i].event_time for i in todo) + self.skew
            sends = self._sends(sorted({address_key(events[i].address) or "" for i in todo}), lo, hi)
            for i in todo:
                e = events[i]
                per = sends.get(address_key(e.address) or "")
                if not per:
                    continue
                times = [t for t, _ in per]
                j = bisect.bisect_right(times, e.event_time + self.skew) - 1
                while j >= 0 and times[j] >= e.event_time - self.window:
                    if _compatible(per[j][1], e):
                        settle(i, per[j][1].id, "address_time")
                        break
                    j -= 1
        return found, how, learned

    def _existing(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for part in chunks(ids):
            out.update(self.s.scalars(select(MessageRow.id).where(MessageRow.id.in_(part))))
        return out

    def _by_column(self, column: Any, values: set[str]) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = defaultdict(list)
        wanted = sorted(v for v in values if v)
        for part in chunks(wanted):
            q = select(
                column, MessageRow.id, MessageRow.address_key, MessageRow.sent_at, MessageRow.sg_message_id
            ).where(column.in_(part))
            for value, mid, key, sent_at, sg in self.s.execute(q):
                out[value].append(Candidate(mid, key, sent_at, sg))
        return out

    def _sends(
        self, keys: list[str], lo: datetime, hi: datetime
    ) -> dict[str, list[tuple[datetime, Candidate]]]:
        """Sends to these addresses between lo and hi, per address, oldest first."""
        out: dict[str, list[tuple[datetime, Candidate]]] = defaultdict(list)
        for part in chunks(keys):
            q = (
                select(MessageRow.address_key, MessageRow.id, MessageRow.sent_at, MessageRow.sg_message_id)
                .where(
                    MessageRow.address_key.in_(part),
                    MessageRow.sent_at.is_not(None),
                    MessageRow.sent_at >= lo,
                    MessageRow.sent_at <= hi,
                )
                .order_by(MessageRow.sent_at, MessageRow.id)
            )
            for key, mid, sent_at, sg in self.s.execute(q):
                if sent_at is not None:
                    out[key].append((sent_at, Candidate(mid, key, sent_at, sg)))
        return out


def _prefix(ev: IncomingEvent) -> str | None:
    if ev.x_message_id:
        return ev.x_message_id
    if ev.sg_message_id:
        return ev.sg_message_id.split(".", 1)[0] or None
    return None


def _compatible(c: Candidate, ev: IncomingEvent) -> bool:
    """A message that already knows a different sg_message_id is some other send."""
    return not (c.sg_message_id and ev.sg_message_id and c.sg_message_id != ev.sg_message_id)
