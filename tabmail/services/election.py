"""One poller at a time in a tab room: which laptop checks delivery statuses and reads the
mailbox, and who last did.

SendGrid's Activity API allows 6 requests a minute per account, and the tab room's mailbox should
be read once, not once per laptop. On a PostgreSQL database several laptops share, each duty
("sendgrid": checking delivery statuses, "inbox": reading the mailbox) is done by the process
holding its advisory lock (store/advisory.py); the others stand by and try again every interval,
so one takes over within one interval when the holder disappears (its session ends, and the
server releases the lock). On SQLite (one laptop) every process that polls, polls, as before.

Whoever checks records it in the database ("by": the machine, ``services.machine``), so every
window and `tabmail status` can say "last checked by tabroom-2, 12 s ago".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tabmail.services.context import AppContext
from tabmail.store.advisory import DutyLock

SENDGRID = "sendgrid"
INBOX = "inbox"
# Where each duty's last check is kept (settings state, written by services.tracking/inbox).
RECORDS = {SENDGRID: "poll.sendgrid.last_poll", INBOX: "inbox.last_check"}
WHAT = {SENDGRID: "delivery statuses", INBOX: "the mailbox"}


def ago(seconds: float) -> str:
    """'12 s ago', '3 min ago', '2 h ago', '4 days ago'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


@dataclass(frozen=True, slots=True)
class LastCheck:
    """A duty's last check as recorded in the database."""

    duty: str
    at: datetime
    by: str | None  # the machine; None in a record from before machines were recorded
    ok: bool
    online: bool
    summary: str

    def words(self, now: datetime | None = None) -> str:
        """'last checked by tabroom-2, 12 s ago' (without a machine: 'last checked 12 s ago')."""
        when = ago(((now or datetime.now(UTC)) - self.at).total_seconds())
        return f"last checked by {self.by}, {when}" if self.by else f"last checked {when}"


def last_check(ctx: AppContext, duty: str) -> LastCheck | None:
    """The duty's last check, whoever made it; None when none is recorded (or it is unreadable)."""
    return parse_record(duty, ctx.settings.get_state(RECORDS[duty]))


def parse_record(duty: str, value: Any) -> LastCheck | None:
    if not isinstance(value, dict):
        return None
    try:
        at = datetime.fromisoformat(str(value["at"]))
    except (KeyError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    by = value.get("by")
    return LastCheck(
        duty,
        at,
        str(by) if by else None,
        bool(value.get("ok")),
        bool(value.get("online", True)),
        str(value.get("summary") or ""),
    )


class Duty:
    """Whether this process does ``duty`` now (``mine()``), for as long as it keeps asking.
    ``release()`` when it stops (the window closes, the command ends)."""

    def __init__(self, ctx: AppContext, duty: str) -> None:
        self.ctx = ctx
        self.duty = duty
        self._lock = DutyLock(ctx.db, duty)
        self.held = False

    @property
    def elected(self) -> bool:
        """Whether laptops take turns at all (a shared PostgreSQL database; not SQLite)."""
        return self._lock.elected

    def mine(self) -> bool:
        """Keep the duty, or take it when no other process holds it. Blocking (a database
        round trip): the window calls it in a thread."""
        self.held = self._lock.hold()
        return self.held

    def release(self) -> None:
        self._lock.release()
        self.held = False

    def standby_words(self, *, once: bool = False) -> str:
        """What a process that does not hold the duty says while it stands by (``once``: a
        single check that was not made)."""
        last = last_check(self.ctx, self.duty)
        seen = f" ({last.words()})" if last is not None else ""
        who = f"{last.by}" if last is not None and last.by else "another tabmail"
        verb = "are checked" if self.duty == SENDGRID else "is read"
        tail = "so not from here now" if once else "this one takes over if it stops"
        return f"{WHAT[self.duty]} {verb} by {who}{seen}; {tail}"
