"""The outbox: hands queued messages to the backend, exactly once, and survives crashes.

States: queued -> sending -> sent | retrying | failed | skipped | uncertain.
- A message is committed as 'sending' (attempts + 1) right before the backend hands it over,
  by an atomic compare-and-set, so two runs can never both send it. The claim carries a lease
  (owner host:pid:token, expiry) that the run renews while it sends.
- A process killed while a message is 'sending' leaves it so; the next run (in any process)
  turns it into 'uncertain' (shown to the director, never silently resent) once no live process
  holds it: on this host the owner's pid is gone, elsewhere its lease has expired.
- A message goes out through the backend it was queued for (``backend_factory(name)``); only an
  explicit re-queue changes that.
- Transient failures retry with exponential backoff and full jitter, honouring the server's
  retry-after; permanent ones fail at once with the server's words kept. A connection that cannot
  be set up counts as an attempt for every message it was meant for; after
  ``Backoff.max_attempts`` (setting ``outbox.max_attempts``) the message fails with the reason.
- Settings the provider refuses (login, certificate, API key) stop the run at once with the
  server's words (OutboxStopped); the messages stay queued for the director to fix the setting.
- Another process holding the database's write lock: the run waits, saying so
  (DatabaseWaiting), up to the database's ``lock_wait``; then it stops claiming, records what it
  had in flight, and stops with one clear line.
The clock, the sleep and the random source are injected, so tests never really wait.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tabmail.backends.base import Backend, OutgoingMessage
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import (
    BatchQueued,
    MessageStateChanged,
    OutboxWaiting,
    SendingConnectionChanged,
    SettingsChanged,
)
from tabmail.domain.notification import MessageState
from tabmail.services.bus import EventBus
from tabmail.services.machine import lease_seconds, machine_name
from tabmail.services.outbox_hooks import LOCK_RETRY_SECONDS, OutboxHooks
from tabmail.store.db import DatabaseBusy, DatabaseLocked
from tabmail.store.flags import FlagRepository
from tabmail.store.notifications import Claim, NotificationRepository, OutboxItem, StateUpdate
from tabmail.store.outbox_shared import Reservations

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

# On this host a live pid settles it; a lease this long overdue means the pid was reused.
SAME_HOST_STALE = timedelta(minutes=15)
# On a database several senders share: messages reserved per round (store/outbox_shared.py), a
# few per connection, so the senders share a batch without trying each other's messages.
SHARED_CHUNK = 48


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_owner() -> str:
    """This process as a lease owner: machine:pid:random token (services/machine.py)."""
    return f"{machine_name()}:{os.getpid()}:{secrets.token_hex(4)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def holder_gone(owner: str | None, expires: datetime | None, now: datetime) -> bool:
    """Whether no live process holds a message in 'sending' (see the module docstring)."""
    if owner is None or expires is None:
        return True  # claimed before leases existed
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == machine_name() and pid_text.isdigit():
        return not pid_alive(int(pid_text)) or expires < now - SAME_HOST_STALE
    return expires < now


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: base * 2**(attempt-1), capped, times U(0.5, 1)."""

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempts: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        raw = min(self.cap, self.base * float(2 ** max(0, attempts - 1)))
        delay = raw * (0.5 + 0.5 * rng())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


@dataclass(slots=True)
class OutboxReport:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    uncertain: int = 0
    recovered_uncertain: list[str] = field(default_factory=list)

    def total_done(self) -> int:
        return self.sent + self.failed + self.skipped + self.uncertain


class OutboxStopped(TabmailError):
    """The run stopped before its work was done: a setting the provider refuses, or a database
    another process keeps locked. The message is the whole story; ``report``: what was done."""

    def __init__(self, message: str, report: OutboxReport) -> None:
        super().__init__(message)
        self.report = report


class Outbox:
    """One per process. ``run`` may be called repeatedly; runs are serialised.

    ``backend_factory(name)`` builds the backend a message was queued for ("smtp", "sendgrid",
    "file"). ``backoff`` may be a callable, read at the start of each run (a setting).
    ``chunk``: the due list is read this many messages at a time (their bytes in memory, ~5 KB
    each); each chunk is one backend run, whose connections are set up and closed again, so a
    chunk holds the largest round in one run (a 400-team BP draw is 1,150 messages)."""

    def __init__(
        self,
        repo: NotificationRepository,
        flags: FlagRepository,
        backend_factory: Callable[[str], Backend],
        bus: EventBus,
        *,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        backoff: Backoff | Callable[[], Backoff] | None = None,
        chunk: int = 4000,
        lock_wait: float | None = None,
        lease: float | None = None,
    ) -> None:
        self.repo = repo
        self.flags = flags
        self.backend_factory = backend_factory
        self.bus = bus
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self._backoff = backoff or Backoff()
        self.current_backoff = self._backoff if isinstance(self._backoff, Backoff) else Backoff()
        self.chunk = chunk
        self.lock_wait = lock_wait
        # A claim holds this long unless renewed (every third of it while sending).
        self.lease_seconds = lease_seconds() if lease is None else lease
        self.owner = new_owner()
        self._reservations = None if repo.db.is_sqlite else Reservations(repo.db)
        self.cancelled = False
        self.connection_online: bool | None = None  # the last attempt's reach; None: none yet
        self._stale_backend = False
        self.stop_reason: str | None = None
        self._lock = asyncio.Lock()
        self._addresses: dict[str, str] = {}
        self._batches: dict[str, int] = {}
        self._attempts: dict[str, int] = {}
        self._backlog: list[tuple[str, list[StateUpdate]]] = []  # results a locked database refused
        self._claims: dict[str, Claim] = {}
        self._lease_until = utcnow()
        self._renew_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None  # set by wake(): new work while waiting for a retry
        bus.subscribe(BatchQueued, lambda _e: self.wake())
        bus.subscribe(SettingsChanged, lambda _e: self.wake())
        bus.subscribe(MessageStateChanged, self._on_state_changed)

    def wake(self) -> None:
        """New work (a queued batch, a resend, "Retry now", new settings): a run waiting for a
        retry looks again at once instead of at the retry's time. Safe from any thread."""
        loop, woken = self._loop, self._woken
        if loop is None or woken is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            woken.set()
        else:
            loop.call_soon_threadsafe(woken.set)

    def _on_state_changed(self, event: MessageStateChanged) -> None:
        if event.state == MessageState.QUEUED.value:
            self.wake()

    def cancel(self) -> None:
        """Stop handing over new messages; what is in flight finishes and is recorded."""
        self.cancelled = True

    def use_new_settings(self) -> None:
        """The settings changed: the next message goes through a backend built from them (a run
        waiting for retries drops the backend it holds before sending again)."""
        self._stale_backend = True
        self.connection_online = None
        self.wake()

    def _observe_connection(self, online: bool, detail: str) -> None:
        """Tell the bus when the provider stops or starts being reachable (not per message)."""
        if online != self.connection_online:
            self.connection_online = online
            self.bus.publish(SendingConnectionChanged(online, "" if online else detail))

    def stop(self, reason: str) -> None:
        """Stop handing over new messages because of ``reason``; the run then raises OutboxStopped."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def claim_for(self, backend: str) -> Claim:
        """This process's claim for ``backend``: the lease runs ``lease_seconds`` from the last
        renewal (one object per renewal period, not one per message)."""
        claim = self._claims.get(backend)
        if claim is None:
            claim = Claim(self.owner, self._lease_until, backend)
            self._claims[backend] = claim
        return claim

    def _new_lease(self) -> datetime:
        self._lease_until = utcnow() + timedelta(seconds=self.lease_seconds)
        self._claims.clear()
        return self._lease_until

    async def write(self, fn: Callable[[], T], *, patience: float = 1.0, since: float | None = None) -> T:
        """Run a database write; while another process holds the lock, say so and retry, up to
        ``patience`` times the database's lock_wait, then raise DatabaseBusy. Waits on the event
        loop, so a window stays responsive. ``since``: when a first try already found the lock
        (time.monotonic()); the wait counts from then."""
        db = self.repo.db
        limit = (db.lock_wait if self.lock_wait is None else self.lock_wait) * patience
        start: float | None = since
        if since is not None:
            db.waiting()
        while True:
            try:
                return fn()
            except DatabaseLocked:
                now = time.monotonic()
                if start is None:
                    start = now
                    db.waiting()
                elif now - start >= limit:
                    raise db.busy(now - start) from None
                await asyncio.sleep(LOCK_RETRY_SECONDS)

    async def run(self, *, batch_id: int | None = None, wait_for_retries: bool = True) -> OutboxReport:
        """Send what is due (only ``batch_id``'s messages when given); with wait_for_retries,
        keep going until nothing is pending. Raises OutboxStopped (see the module docstring)."""
        async with self._lock:
            self.cancelled = False
            self.stop_reason = None
            if not isinstance(self._backoff, Backoff):
                self.current_backoff = self._backoff()
            report = OutboxReport()
            self._loop = asyncio.get_running_loop()
            self._woken = asyncio.Event()
            self._new_lease()
            self._renew_at = time.monotonic() + self.lease_seconds / 3
            backends: dict[str, Backend] = {}
            try:
                await self._write_backlog()
                report.recovered_uncertain = await asyncio.to_thread(self._recover)
                total = self.repo.pending_count(batch_id)
                while not self.cancelled and self.stop_reason is None:
                    items = self._due(batch_id)
                    if not items:
                        if not wait_for_retries or not await self._wait_for_retry(batch_id):
                            break
                        continue
                    if self._stale_backend:
                        self._stale_backend = False
                        for old in backends.values():
                            await old.close()
                        backends.clear()
                    for name, group in _by_backend(items).items():
                        if self.cancelled or self.stop_reason is not None:
                            break
                        if name not in backends:
                            backends[name] = self.backend_factory(name)
                        await self._send(backends[name], name, group, report, total, batch_id)
            except DatabaseBusy as exc:
                self.stop(str(exc))
            finally:
                for backend in backends.values():
                    await backend.close()
            if self.stop_reason is not None:
                raise OutboxStopped(self.stop_reason, report)
            return report

    def _due(self, batch_id: int | None) -> list[OutboxItem]:
        """What to send next. On a database several senders share, a share of its own first;
        when nothing is left that another sender has not reserved, the plain due list (the claim
        before each hand-over decides, so trying another's reserved message is safe)."""
        now = self.clock()
        if self._reservations is not None:
            mine = self._reservations.reserve(
                owner=self.owner,
                lease_until=self._lease_until,
                due=now,
                now=utcnow(),
                limit=min(SHARED_CHUNK, self.chunk),
                batch_id=batch_id,
            )
            if mine:
                return mine
        return self.repo.outbox.due(now, self.chunk, batch_id)

    async def _wait_for_retry(self, batch_id: int | None) -> bool:
        nxt, count, reason = self.repo.outbox.retry_summary(batch_id)
        if nxt is None:
            return False
        wait = max((nxt - self.clock()).total_seconds(), 0.0)
        woken = self._woken
        assert woken is not None  # run() made it
        if woken.is_set():  # work came in since the last look: look again before waiting
            woken.clear()
            return True
        self.bus.publish(OutboxWaiting(batch_id, wait, count, reason))
        sleeping = asyncio.ensure_future(self.sleep(wait))
        waking = asyncio.ensure_future(woken.wait())
        try:
            await asyncio.wait((sleeping, waking), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, waking):
                task.cancel()
            await asyncio.gather(sleeping, waking, return_exceptions=True)
        failure = None if sleeping.cancelled() else sleeping.exception()
        if failure is not None:
            raise failure
        woken.clear()
        return True

    def recover_abandoned(self) -> list[str]:
        """Between runs (a window of a tab room stays open for hours): mark uncertain what
        processes that no longer hold their claims left 'sending', as a run does at its start.
        Blocking; returns the ids (the caller tells the bus, on its own thread)."""
        return self._recover()

    def _recover(self) -> list[str]:
        """Mark uncertain what was left 'sending' by processes that no longer hold it."""
        now = utcnow()
        in_flight = self.repo.outbox.in_flight()
        gone = {
            m.lease_owner
            for m in in_flight
            if m.lease_owner != self.owner and holder_gone(m.lease_owner, m.lease_expires_at, now)
        }
        out: list[str] = []
        if any(m.lease_owner == self.owner for m in in_flight):
            # An earlier run of this process stopped mid-send (the database server went away
            # before the results could be written). Runs take turns (self._lock), so none of
            # ours is sending now: what it handed over may have gone out, never resend it.
            out += self.repo.outbox.mark_abandoned(self.owner)
        for owner in gone:
            # Judged again in the update: on another host the lease must still be expired then.
            same_host = owner is not None and owner.partition(":")[0] == machine_name()
            out += self.repo.outbox.mark_abandoned(owner, None if owner is None or same_host else now)
        return out

    def renew_leases(self) -> None:
        """Every third of a lease, extend the leases this process holds. Called as messages are
        claimed and finished: no timer of its own (a long cancelled timer outlives a run on
        the Qt loop). A single transaction longer than a lease with nothing else going on lets
        the lease lapse: only a process on another host would then judge it (this host checks
        the pid), and the result, written under this process's lease, still settles it."""
        now = time.monotonic()
        if now < self._renew_at:
            return
        self._renew_at = now + self.lease_seconds / 3
        try:
            self.repo.outbox.renew_leases(self.owner, self._new_lease())
        except DatabaseLocked:
            log.info("lease renewal postponed: the database is locked")

    async def _write_backlog(self) -> None:
        while self._backlog:
            backend, updates = self._backlog[0]
            await self.write(functools.partial(self.repo.outbox.commit, updates, by=self.claim_for(backend)))
            self._backlog.pop(0)

    async def _send(
        self,
        backend: Backend,
        name: str,
        items: list[OutboxItem],
        report: OutboxReport,
        total: int,
        batch_id: int | None,
    ) -> None:
        outgoing = []
        for it in items:
            self._addresses[it.id] = it.envelope_to
            self._batches[it.id] = it.batch_id
            self._attempts[it.id] = it.attempts
            outgoing.append(OutgoingMessage(it.id, it.envelope_from, it.envelope_to, None, it.raw))
        hooks = OutboxHooks(self, report, total, batch_id, name)
        try:
            await backend.send(outgoing, hooks)
        finally:
            # Handed over but never reported (the run was cancelled mid-transaction, or the
            # backend broke its contract): the message may have gone out. Never resend silently.
            for mid in hooks.claimed - hooks.finished_ids:
                hooks.add(
                    StateUpdate(
                        mid,
                        MessageState.UNCERTAIN,
                        "interrupted while being handed to the server; check before resending",
                    )
                )
                report.uncertain += 1
            try:
                await hooks.drain()
            except DatabaseBusy as exc:
                # Kept for the next run of this process; if the process ends first, its
                # messages are still 'sending' under its lease and the next run marks them
                # uncertain, as after a crash.
                self._backlog.append((name, hooks._take()))
                self.stop(str(exc))


def _by_backend(items: list[OutboxItem]) -> dict[str, list[OutboxItem]]:
    groups: dict[str, list[OutboxItem]] = {}
    for it in items:
        groups.setdefault(it.backend, []).append(it)
    return groups
