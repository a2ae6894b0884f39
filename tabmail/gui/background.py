"""Work that goes on while the window is open: the outbox, the delivery-status poller and the
tab room's mailbox (``InboxWatcher``, IDLE when the server offers it).

One ``BackgroundWorker`` per app, owning the app's one ``Outbox`` and one ``Poller``, both run
as asyncio tasks on the qasync loop (so nothing here blocks the window: the backends and the
SendGrid client do their blocking I/O through ``asyncio.to_thread``).

- ``run_outbox()`` after each enqueue or resend: one outbox run at a time; a request made while
  one is running makes it go round once more, so nothing queued meanwhile waits for the next
  request. At start the outbox runs once, which also turns messages a crash left "sending" into
  "uncertain" (shown, never silently resent) and resumes what was queued.
- Polling: every ``poll.interval_seconds`` while mail goes through SendGrid; ``poll_now()`` (F5)
  polls at once. In a tab room on PostgreSQL only the laptop holding the duty polls and reads
  the mailbox (services/election.py); the others try to take the duty every interval and show
  the database's "last checked by …" meanwhile (``room_checked``). The poller publishes its results on the bus (the bridge and the status bar
  pick them up); the worker only says "checking…" while a poll runs.
- Scheduled batches (services.schedule): released when their time comes (checked every
  ``SCHEDULE_CHECK_SECONDS`` and exactly at the next scheduled time), then sent; one whose time
  passed while nothing ran is reported once through ``schedule_overdue`` and waits for an answer.
- ``stop()`` (the window closing) cancels everything; what the outbox had in flight is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from tabmail.domain.events import DatabaseWaiting, InboxWaiting, MessageStateChanged, OutboxWaiting
from tabmail.domain.notification import MessageState
from tabmail.services import schedule
from tabmail.services.context import AppContext
from tabmail.services.election import INBOX, SENDGRID, Duty, LastCheck, last_check
from tabmail.services.outbox import Outbox, OutboxReport
from tabmail.services.poll_state import CONNECTION_KEYS, forget_capabilities
from tabmail.services.sending import default_outbox, is_practice
from tabmail.store.db import DatabaseUnreachable

if TYPE_CHECKING:  # the IMAP reader and bounce parsers load when the mailbox is first checked
    from tabmail.services.inbox import InboxReport
    from tabmail.services.inbox_watch import InboxWatcher

log = logging.getLogger(__name__)


def _unreachable(exc: BaseException) -> bool:
    """The database server is away: the window says so; a traceback per try adds nothing."""
    return isinstance(exc, DatabaseUnreachable)


PRACTICE_POLL_SECONDS = 5.0
SCHEDULE_CHECK_SECONDS = 30.0
# The first delivery check waits this long after start: the window is shown and usable first,
# and the SendGrid client loads after it (tests that set an interval do not wait).
FIRST_CHECK_DELAY = 1.0


class BackgroundWorker(QObject):
    outbox_started = Signal()
    outbox_finished = Signal(object)  # the last OutboxReport of the run (None if it failed)
    outbox_failed = Signal(str)  # why the outbox stopped, in the director's words
    outbox_waiting = Signal(str)  # what the outbox waits for (a retry, another process's lock)
    poll_started = Signal()
    poll_completed = Signal(object)  # the PollReport
    inbox_completed = Signal(object)  # the InboxReport of a mailbox check
    inbox_waiting = Signal(object)  # an InboxWaiting: the mailbox is read again after trouble
    room_checked = Signal(object)  # a LastCheck another laptop of the tab room made
    # Scheduled batches whose time passed while nothing ran ([ScheduledBatch]): ask before they go.
    schedule_overdue = Signal(object)

    def __init__(
        self,
        ctx: AppContext,
        *,
        outbox: Outbox | None = None,
        poller_factory: Callable[[AppContext], Any] | None = None,
        poll_interval: float | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``poll_interval`` overrides the ``poll.interval_seconds`` setting (tests)."""
        super().__init__(parent)
        self.ctx = ctx
        self.outbox = outbox or default_outbox(ctx)
        self._poller_factory = poller_factory
        self._poll_interval = poll_interval
        self._poller: Any = None
        self._outbox_task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._again = False
        self._cancelled = False
        self._stopped = False
        self._wake: asyncio.Event | None = None
        self.last_report: OutboxReport | None = None
        self._inbox: InboxWatcher | None = None
        self._inbox_task: asyncio.Task[None] | None = None
        self._inbox_wake: asyncio.Event | None = None
        self._schedule_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._asked_overdue: set[int] = set()
        self.sendgrid_duty = Duty(ctx, SENDGRID)
        self.inbox_duty = Duty(ctx, INBOX)
        ctx.bus.subscribe(OutboxWaiting, self._on_waiting)
        ctx.bus.subscribe(DatabaseWaiting, self._on_waiting)
        ctx.bus.subscribe(InboxWaiting, self._on_inbox_waiting)

    def _on_waiting(self, event: object) -> None:
        if isinstance(event, OutboxWaiting):
            minutes = max(1, round(event.seconds / 60))
            why = f": {event.reason}" if event.reason else ""
            self.outbox_waiting.emit(
                f"{event.count} message(s) will be tried again in about {minutes} min{why}"
            )
        elif isinstance(event, DatabaseWaiting):
            self.outbox_waiting.emit(event.message)

    def _on_inbox_waiting(self, event: InboxWaiting) -> None:
        if not self._stopped:
            self.inbox_waiting.emit(event)

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, *, resume: bool = True, poll: bool = True) -> None:
        """Resume the outbox and start polling. Needs the qasync loop to be the current loop."""
        self._stopped = False
        if resume:
            self.run_outbox()
        if poll and self._poll_task is None:
            self._wake = asyncio.Event()
            self._poll_task = asyncio.ensure_future(self._poll_loop())
        if poll and self._inbox_task is None:
            self._inbox_wake = asyncio.Event()
            self._inbox_task = asyncio.ensure_future(self._inbox_loop())
        if resume and self._schedule_task is None and not self.ctx.read_only:
            self._schedule_task = asyncio.ensure_future(self._schedule_loop())
        if resume and self._lease_task is None and not self.ctx.read_only and not self.ctx.db.is_sqlite:
            self._lease_task = asyncio.ensure_future(self._lease_loop())

    def stop(self) -> None:
        """Cancel the tasks (the window is closing). The outbox records what it had in flight."""
        self._stopped = True
        self.outbox.cancel()
        if self._inbox is not None:
            self._inbox.stop()  # ends an IDLE wait within half a second
            if not self._inbox.wait_idle_ended(3.0):
                log.warning("the mailbox's IDLE wait did not end within 3 s of closing")
        for task in (
            self._outbox_task,
            self._poll_task,
            self._inbox_task,
            self._schedule_task,
            self._lease_task,
        ):
            if task is not None and not task.done():
                task.cancel()
        self._poll_task = None
        self._inbox_task = None
        self._schedule_task = None
        self._lease_task = None
        if self._poller is not None:
            with contextlib.suppress(Exception):
                self._poller.stop()
                self._poller.close()
        for duty in (self.sendgrid_duty, self.inbox_duty):
            duty.release()  # another laptop takes over at its next try

    # -- outbox ----------------------------------------------------------------------------------
    @property
    def outbox_running(self) -> bool:
        return self._outbox_task is not None and not self._outbox_task.done()

    def run_outbox(self, batch_id: int | None = None) -> asyncio.Task[None]:
        """Send what is queued (``batch_id`` first, when given). Never raises; see the signals."""
        self._cancelled = False
        if self.outbox_running:
            self._again = True
            self.outbox.wake()  # a run waiting for a retry looks at the new work now
            assert self._outbox_task is not None
            return self._outbox_task
        self._outbox_task = asyncio.ensure_future(self._outbox_loop(batch_id))
        return self._outbox_task

    def cancel_outbox(self) -> None:
        """Stop handing messages over; what is in flight finishes and is recorded."""
        self._cancelled = True
        self._again = False
        self.outbox.cancel()

    async def wait_outbox(self) -> None:
        """Until the current outbox run (if any) has finished."""
        task = self._outbox_task
        if task is not None and not task.done():
            await asyncio.shield(task)

    async def _outbox_loop(self, batch_id: int | None) -> None:
        self.outbox_started.emit()
        report: OutboxReport | None = None
        try:
            while True:
                self._again = False
                report = await self.outbox.run(batch_id=batch_id)
                self.last_report = report
                batch_id = None
                if self._cancelled or self._stopped:
                    break
                if self._again:
                    continue
                pending = await asyncio.to_thread(self.ctx.notifications.pending_count)
                # A run asked for while the count was being read sets _again: look again, or a
                # message queued in that instant would wait for the next send.
                if pending == 0 and not self._again:
                    break
        except asyncio.CancelledError:
            self.outbox.cancel()
            raise
        except Exception as exc:
            message = (
                str(exc) if exc.__class__.__module__.startswith("tabmail") else f"{type(exc).__name__}: {exc}"
            )
            log.warning("the outbox stopped: %s", message, exc_info=not message)
            self.outbox_failed.emit(message)
            report = None
        self.outbox_finished.emit(report)

    # -- scheduled batches ---------------------------------------------------------------------
    async def check_schedule(self) -> None:
        """Release the scheduled batches whose time has come and send them; report overdue ones
        (their time passed while nothing ran) once each through ``schedule_overdue``."""
        released, overdue = await asyncio.to_thread(schedule.release_due, self.ctx)
        if released:
            self.run_outbox()
        new = [b for b in overdue if b.batch_id not in self._asked_overdue]
        if new:
            self._asked_overdue.update(b.batch_id for b in new)
            self.schedule_overdue.emit(new)

    async def _schedule_loop(self) -> None:
        while not self._stopped:
            try:
                await self.check_schedule()
                waiting = await asyncio.to_thread(schedule.waiting, self.ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server away: one line, it is said in the status bar
                log.warning("checking the scheduled batches failed: %s", exc, exc_info=not _unreachable(exc))
                waiting = []
            now = datetime.now(UTC)
            future = [(b.at - now).total_seconds() for b in waiting if b.at > now]
            await asyncio.sleep(min([SCHEDULE_CHECK_SECONDS, *future]) + 0.05)

    # -- other laptops' claims -----------------------------------------------------------------
    async def _lease_loop(self) -> None:
        """A tab room on PostgreSQL: what a vanished laptop left 'sending' becomes uncertain once
        its lease has passed, while this window is open (not only at this laptop's next send).
        Looks once per lease length; an outbox run does the same at its start."""
        while not self._stopped:
            await asyncio.sleep(self.outbox.lease_seconds)
            if self._stopped or self.outbox_running:
                continue
            try:
                found = await asyncio.to_thread(self._abandoned)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is unreachable: the window says so elsewhere
                log.info("could not look for abandoned claims", exc_info=True)
                continue
            for mid, batch_id in found:
                self.ctx.bus.publish(MessageStateChanged(mid, batch_id, MessageState.UNCERTAIN.value))

    def _abandoned(self) -> list[tuple[str, int]]:
        ids = self.outbox.recover_abandoned()
        if ids:
            log.warning("%d message(s) a vanished tabmail was sending are now uncertain", len(ids))
        return [(mid, self.ctx.notifications.get(mid).batch_id) for mid in ids]

    # -- polling -------------------------------------------------------------------------------
    @property
    def poller(self) -> Any:
        if self._poller is None:
            factory = self._poller_factory
            if factory is None:
                from tabmail.services.tracking import Poller

                factory = Poller
            self._poller = factory(self.ctx)
        return self._poller

    def tracking_enabled(self) -> bool:
        from tabmail.services.tracking import tracking_disabled_reason

        return tracking_disabled_reason(self.ctx) is None

    async def _settle_after_start(self) -> None:
        if self._poll_interval is None and FIRST_CHECK_DELAY > 0:
            await asyncio.sleep(FIRST_CHECK_DELAY)

    async def poll_now(self) -> Any:
        """Poll once now (F5). Returns the PollReport; SendGrid trouble is in it, not raised.
        In a tab room where another laptop holds the duty, polls nothing (SendGrid's budget is
        the account's): shows that laptop's last check instead and returns None."""
        if not await self._duty_is_mine(self.sendgrid_duty):
            return None
        self.poll_started.emit()
        report = await self.poller.poll_once()
        self.poll_completed.emit(report)
        return report

    def settings_changed(self, keys: Sequence[str] = ()) -> None:
        """Settings were saved: the next send and the next check use them, and a check runs now.

        The outbox builds its next backend from the new settings; the poller is replaced (a new
        SendGrid client for the new address or key), and what the old account allowed is
        forgotten when the account may have changed."""
        self.outbox.use_new_settings()
        old, self._poller = self._poller, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.stop()
                old.close()
        if not keys or CONNECTION_KEYS.intersection(keys):
            forget_capabilities(self.ctx)
        if self._wake is not None:
            self._wake.set()
        if self._inbox is not None:
            self._inbox.stop()  # its IDLE ends; the next check reads the new settings
            self._inbox = None
        if self._inbox_wake is not None:
            self._inbox_wake.set()

    def interval(self) -> float:
        if self._poll_interval is not None:
            return self._poll_interval
        if is_practice(self.ctx):
            return PRACTICE_POLL_SECONDS  # the fates play out over a minute: show them as they come
        try:
            return max(10.0, float(self.ctx.settings.get("poll.interval_seconds")))
        except (TypeError, ValueError):
            return 60.0

    async def _poll_loop(self) -> None:
        assert self._wake is not None
        await self._settle_after_start()
        while not self._stopped:
            if self.tracking_enabled():
                try:
                    await self.poll_now()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("a background poll failed: %s", exc, exc_info=not _unreachable(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval())

    async def _duty_is_mine(self, duty: Duty) -> bool:
        """Whether this laptop does ``duty`` now; when another does, show its last check."""
        if not duty.elected:
            return True
        if await asyncio.to_thread(duty.mine):
            return True
        try:
            last = await asyncio.to_thread(last_check, self.ctx, duty.duty)
        except Exception:  # the database is unreachable: the window says so elsewhere
            log.info("could not read the tab room's last %s check", duty.duty, exc_info=True)
            return False
        if last is not None and not self._stopped:
            self.room_checked.emit(last)
        return False

    def last_checks(self) -> dict[str, LastCheck]:
        """The tab room's last checks as recorded (for a window that opens)."""
        found = {d: last_check(self.ctx, d) for d in (SENDGRID, INBOX)}
        return {d: c for d, c in found.items() if c is not None}

    # -- the tab room's mailbox ------------------------------------------------------------
    @property
    def inbox(self) -> InboxWatcher:
        if self._inbox is None:
            from tabmail.services.inbox import InboxChecker
            from tabmail.services.inbox_watch import InboxWatcher

            self._inbox = InboxWatcher(InboxChecker(self.ctx))
        return self._inbox

    def inbox_enabled(self) -> bool:
        if not str(self.ctx.settings.get("imap.host") or "").strip():
            return False  # no mailbox to read: the IMAP stack need not load
        from tabmail.services.inbox import inbox_disabled_reason

        return inbox_disabled_reason(self.ctx) is None

    async def check_inbox_now(self) -> InboxReport:
        """Read the mailbox once now; trouble is in the report, not raised."""
        report = await self.inbox.checker.check_once()
        self.inbox_completed.emit(report)
        return report

    def inbox_interval(self) -> float:
        try:
            return max(5.0, float(self.ctx.settings.get("imap.poll_seconds")))
        except (TypeError, ValueError):
            return 60.0

    async def _inbox_loop(self) -> None:
        """Check the mailbox, then wait for news (``InboxWatcher.wait_for_news``): IMAP IDLE
        when the server offers it (a bounce shows within seconds), otherwise
        ``imap.poll_seconds``; after trouble (a dropped connection, the server out of reach) a
        few seconds, growing while it lasts, shown in the status bar (``inbox_waiting``)."""
        assert self._inbox_wake is not None
        while not self._stopped:
            self._inbox_wake.clear()  # settings saved from here on end the wait below
            pause = self.inbox_interval()
            if self.inbox_enabled() and self.inbox.may_check() and await self._duty_is_mine(self.inbox_duty):
                watcher = self.inbox
                try:
                    report = await self.check_inbox_now()
                    if self._stopped:
                        break
                    pause = await watcher.wait_for_news(report, pause)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database away, settings half-typed
                    log.info("the inbox check or its IDLE wait failed", exc_info=True)
                    pause = watcher.retry_after("check failed", type(exc).__name__, pause)
            if pause <= 0 or self._stopped:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inbox_wake.wait(), timeout=pause)
