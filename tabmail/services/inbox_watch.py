"""Reading the tab room's mailbox until stopped: a check (``InboxChecker``), then a wait for
news in IMAP IDLE, or ``imap.poll_seconds`` when the server has no IDLE (``InboxWatcher``).

Bad Wi-Fi is the norm in a tab room: an IDLE connection drops, the server restarts or kicks
idle clients, a check cannot reach the server. The next try comes after a few seconds
(``FIRST_RETRY``), twice as long each time the trouble repeats, never longer than the poll
interval: once there, the mailbox is simply read every ``imap.poll_seconds``, as for a server
without IDLE, and no faster. A round that ends cleanly (an IDLE wait that returned, a timed
check) starts again from a few seconds. Each wait is announced (``InboxWaiting`` on the bus):
the window's status bar and ``tabmail inbox check`` say what the inbox waits for, and until when.

What only the director can fix (the server refused the login or the folder, a setting is
missing) is not tried again with the same settings: a provider locks an account whose login
keeps failing. The watcher says so, looks at the settings and the password (no network) every
``imap.poll_seconds``, and checks again as soon as they change.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabmail.domain.errors import TabmailError
from tabmail.domain.events import InboxWaiting
from tabmail.services.inbox import InboxChecker, InboxReport, imap_settings
from tabmail.status.imap import ImapOffline, ImapSettings

if TYPE_CHECKING:  # a tab room's election, handed in by the caller
    from tabmail.services.election import Duty

log = logging.getLogger(__name__)

FIRST_RETRY = 2.0  # seconds before the first try after trouble


@dataclass(slots=True)
class Reconnect:
    """Consecutive troubles, and the wait they call for."""

    first: float = FIRST_RETRY
    failures: int = 0

    def trouble(self, problem: str, detail: str, cap: float) -> InboxWaiting:
        """One more trouble: the wait before the next try (``cap``: the poll interval)."""
        self.failures += 1
        seconds = min(max(cap, self.first), self.first * 2.0 ** min(self.failures - 1, 30))
        return InboxWaiting(problem=problem, detail=detail, seconds=seconds)

    def clear(self) -> None:
        self.failures = 0


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.0f} min"


def waiting_short(event: InboxWaiting) -> str:
    """ "connection lost; retrying in 4 s" (a status bar's width)."""
    if event.seconds is None:
        return f"{event.problem}; waiting for the settings to change"
    return f"{event.problem}; retrying in {_seconds(event.seconds)}"


def waiting_words(event: InboxWaiting) -> str:
    """The whole sentence, with what the server or the connection said."""
    detail = f" ({event.detail})" if event.detail else ""
    if event.seconds is None:
        return (
            f"Mailbox {event.problem}{detail}; tabmail tries again when the inbox settings or the "
            "IMAP password change."
        )
    return f"Mailbox {event.problem}{detail}; retrying in {_seconds(event.seconds)}."


class InboxWatcher:
    """One per process: ``checker``'s checks, and the waits between them. ``stop()`` ends
    ``run_forever`` and an IDLE wait (within half a second)."""

    def __init__(self, checker: InboxChecker, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.checker = checker
        self.ctx = checker.ctx
        self.sleep = sleep
        self.reconnect = Reconnect()  # the wait after trouble
        self._stopping = asyncio.Event()
        self._halt = threading.Event()  # read by the IDLE thread
        self._idle_done = threading.Event()  # set while no IDLE wait is running
        self._idle_done.set()
        self._refused: tuple[object, ...] | None = None  # settings a check was refused with

    def stop(self) -> None:
        """End ``run_forever`` (and an IDLE wait) after what is in progress."""
        self._stopping.set()
        self._halt.set()

    async def run_forever(
        self,
        *,
        max_checks: int | None = None,
        on_report: Callable[[InboxReport], None] | None = None,
        duty: Duty | None = None,
        on_standby: Callable[[str], None] | None = None,
    ) -> InboxReport | None:
        """Check, then wait for new mail (``wait_for_news``): IMAP IDLE when the server offers
        it (new bounces show within seconds), otherwise ``imap.poll_seconds``; after trouble, a
        few seconds. Until ``stop()`` or ``max_checks``.

        ``duty`` (a tab room on PostgreSQL): read only while this process holds it; otherwise
        say so once through ``on_standby`` and try again every ``imap.poll_seconds``."""
        self._stopping.clear()
        self._halt.clear()
        checks = 0
        last: InboxReport | None = None
        standing_by = False
        while not self._stopping.is_set():
            if duty is not None and not duty.mine():
                if not standing_by and on_standby is not None:
                    on_standby(duty.standby_words())
                standing_by = True
                await self.sleep(max(float(self.ctx.settings.get("imap.poll_seconds")), 1.0))
                continue
            standing_by = False
            if not self.may_check():
                await self.sleep(max(float(self.ctx.settings.get("imap.poll_seconds")), 1.0))
                continue
            last = await self.checker.check_once()
            checks += 1
            if on_report is not None:
                on_report(last)
            if (
                not last.enabled
                or self._stopping.is_set()
                or (max_checks is not None and checks >= max_checks)
            ):
                break
            pause = await self.wait_for_news(last, float(self.ctx.settings.get("imap.poll_seconds")))
            if pause > 0 and not self._stopping.is_set():
                await self.sleep(pause)
        return last

    async def wait_for_news(self, last: InboxReport, poll: float) -> float:
        """After the check ``last``: wait in IMAP IDLE when it worked and the server offers it,
        and answer how long to sleep before the next check (0: check now).

        ``poll`` (``imap.poll_seconds``) after a clean check without IDLE, or when the check
        gave a reason (``last.reason``). When only the director can fix it (``last.must_fix``),
        the wait is announced as lasting until the settings change, and ``may_check`` answers
        False until they do. After trouble (the server out of reach, the IDLE
        connection dropped or refused) a few seconds, doubling while it lasts, at most ``poll``
        (``Reconnect``); each such wait is announced with ``InboxWaiting`` on the bus. The next
        check reads everything that arrived meanwhile (UIDs above the last one seen)."""
        poll = max(poll, 1.0)
        if last.enabled and last.must_fix:
            self._refused = self.settings_seen()
            waiting = InboxWaiting(problem="cannot be read", detail=last.reason, seconds=None)
            log.info("inbox: %s", waiting_words(waiting))
            self.ctx.bus.publish(waiting)
            self.reconnect.clear()
            return poll
        if not last.enabled or last.reason:
            return poll
        if not last.online:
            return self.retry_after("cannot be reached", last.offline or "offline?", poll)
        if not last.idle:
            self.reconnect.clear()
            return poll
        try:
            await asyncio.to_thread(self.idle, poll)
        except ImapOffline as exc:
            return self.retry_after("connection lost", str(exc), poll)
        except TabmailError as exc:  # ImapProblem included: the server refused IDLE
            return self.retry_after("could not wait for new mail", str(exc), poll)
        self.reconnect.clear()
        return 0.0

    def may_check(self) -> bool:
        """False while the settings a check was refused with (a login, a folder, a missing
        setting) are unchanged: trying them again cannot help. Looks at the settings and the
        password only, without connecting."""
        if self._refused is None:
            return True
        if self.settings_seen() == self._refused:
            return False
        self._refused = None
        return True

    def settings_seen(self) -> tuple[object, ...]:
        """What a check's outcome depends on that the director can change: the inbox and TLS
        settings, and the password (as a digest: nothing here keeps it)."""
        values = self.ctx.settings.all()
        password = self.ctx.secrets.get("imap-password") or ""
        return (
            tuple(sorted((k, str(v)) for k, v in values.items() if k.startswith(("imap.", "tls.")))),
            hashlib.sha256(password.encode()).hexdigest(),
        )

    def retry_after(self, problem: str, detail: str, poll: float) -> float:
        """One more trouble: announce the wait before the next try and answer it (seconds)."""
        waiting = self.reconnect.trouble(problem, detail, max(poll, 1.0))
        log.info("inbox: %s", waiting_words(waiting))
        self.ctx.bus.publish(waiting)
        assert waiting.seconds is not None
        return waiting.seconds

    def idle(self, seconds: float) -> bool:
        """Blocking: IDLE on a connection of its own until new mail, ``seconds`` (capped at 25
        minutes: servers drop IDLE after 30) or ``stop()``. True when new mail arrived. Raises
        ImapOffline when the connection drops (the caller tries again after a few seconds).

        Mail that landed after the last check but before IDLE started is never announced in a
        way IDLE can see (it is already there when IDLE starts, and the server's word of it
        lands unseen in the read buffer): once IDLE runs, a second connection looks for
        anything above the last UID seen, and finding some answers True at once instead of
        waiting ``seconds`` for the next check."""
        self._idle_done.clear()
        try:
            settings = imap_settings(self.ctx)
            with self.checker.factory(settings) as box:
                status = box.open()
                state = self.checker.folder_state(settings.folder)
                if state.get("uidvalidity") not in (None, status.uidvalidity):
                    return True
                last_uid = int(state.get("last_uid", 0) or 0)
                return box.idle_wait(
                    min(seconds, 25 * 60),
                    stop=self._halt.is_set,
                    started=lambda: self._arrived_after(settings, status.uidvalidity, last_uid),
                )
        finally:
            self._idle_done.set()

    def _arrived_after(self, settings: ImapSettings, uidvalidity: int, last_uid: int) -> bool:
        """Is anything above ``last_uid`` in the folder (or its UIDVALIDITY new)? Looked at over
        a connection of its own while another one waits in IDLE."""
        with self.checker.factory(settings) as box:
            status = box.open()
            return status.uidvalidity != uidvalidity or bool(box.uids_after(last_uid))

    def wait_idle_ended(self, timeout: float) -> bool:
        """After ``stop()``: wait (blocking, at most ``timeout`` s) until an IDLE wait running in
        a worker thread has returned, so it never reports to an event loop that is gone."""
        return self._idle_done.wait(timeout)
