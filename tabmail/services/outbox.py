"""The outbox: hands queued messages to the backend, exactly once, and survives crashes.

States: queued -> sending -> sent | retrying | failed | skipped | uncertain.
- A message is committed as 'sending' (attempts + 1) right before the backend hands it over,
  by an atomic compare-and-set, so two runs can never both send it.
- A process killed while a message is 'sending' leaves it so; the next start turns it into
  'uncertain' (shown to the director, never silently resent).
- Transient failures retry with exponential backoff and full jitter, honouring the server's
  retry-after; permanent ones fail at once with the server's words kept.
The clock, the sleep and the random source are injected, so tests never really wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tabmail.backends.base import Backend, Outcome, OutgoingMessage, SendResult
from tabmail.domain.events import MessageStateChanged, OutboxProgressed, SendingConnectionChanged
from tabmail.domain.notification import FlagKind, MessageState
from tabmail.services.bus import EventBus
from tabmail.store.flags import FlagRepository
from tabmail.store.notifications import NotificationRepository, OutboxItem, StateUpdate

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class _Hooks:
    """The outbox's side of the backend protocol.

    Results are written at the latest on the next event-loop iteration, and together with the
    next claim when one comes first: one short transaction per message instead of two, which
    matters when eight connections share one loop thread. Bus events go out after the commit,
    so a screen that reloads on them sees the new state."""

    def __init__(self, outbox: Outbox, report: OutboxReport, total: int, batch_id: int | None) -> None:
        self.o = outbox
        self.report = report
        self.total = total
        self.batch_id = batch_id
        self.claimed: set[str] = set()
        self.finished_ids: set[str] = set()
        self._pending: list[StateUpdate] = []
        self._flush_scheduled = False

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        o = self.o
        if o.cancelled:
            self.flush()
            return [False] * len(ids)
        pending = self._take()
        result, skipped = o.repo.commit(pending, claim=ids)
        self._published(pending)
        self.claimed.update(i for i, ok in zip(ids, result, strict=True) if ok)
        for i in skipped:
            self.report.skipped += 1
            self._publish(i, MessageState.SKIPPED)
        return result

    async def finished(self, result: SendResult) -> None:
        o = self.o
        now = o.clock()
        mid = result.message_id
        self.finished_ids.add(mid)
        words = result.detail or result.outcome.value
        if result.code is not None and str(result.code) not in words:
            words = f"{result.code} {words}"
        attempts = o._attempts.get(mid, 0) + 1
        o._observe_connection(not result.connection_failed, words)
        if result.outcome is Outcome.SENT:
            update = StateUpdate(
                mid, MessageState.SENT, sent_at=now, provider_message_id=result.provider_message_id
            )
            self.report.sent += 1
        elif result.outcome is Outcome.UNCERTAIN:
            update = StateUpdate(mid, MessageState.UNCERTAIN, error=f"uncertain: {words}")
            self.report.uncertain += 1
        elif result.outcome is Outcome.TRANSIENT and attempts < o.backoff.max_attempts:
            delay = o.backoff.delay(attempts, result.retry_after, o.rng)
            update = StateUpdate(
                mid, MessageState.RETRYING, error=words, next_attempt_at=now + timedelta(seconds=delay)
            )
            self.report.retrying += 1
        else:
            gave_up = result.outcome is Outcome.TRANSIENT
            prefix = "gave up after repeated temporary failures: " if gave_up else ""
            update = StateUpdate(mid, MessageState.FAILED, error=prefix + words)
            self.report.failed += 1
            if result.flag_address and mid in o._addresses:
                o.flags.add(o._addresses[mid], FlagKind.HARD, words, "smtp")
        self._pending.append(update)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write the results not yet written. Safe to call at any time."""
        pending = self._take()
        if pending:
            self.o.repo.commit(pending)
            self._published(pending)

    def _take(self) -> list[StateUpdate]:
        pending, self._pending = self._pending, []
        self._flush_scheduled = False
        return pending

    def _published(self, updates: Sequence[StateUpdate]) -> None:
        for u in updates:
            self._publish(u.message_id, u.state)
        if updates:
            self.o.bus.publish(OutboxProgressed(self.batch_id, self.report.total_done(), self.total))

    def _publish(self, mid: str, state: MessageState) -> None:
        self.o.bus.publish(MessageStateChanged(mid, self.o._batches.get(mid, 0), state.value))


class Outbox:
    """One per process. ``run`` may be called repeatedly; runs are serialised."""

    def __init__(
        self,
        repo: NotificationRepository,
        flags: FlagRepository,
        backend_factory: Callable[[], Backend],
        bus: EventBus,
        *,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        backoff: Backoff | None = None,
        chunk: int = 1000,
    ) -> None:
        self.repo = repo
        self.flags = flags
        self.backend_factory = backend_factory
        self.bus = bus
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.backoff = backoff or Backoff()
        self.chunk = chunk
        self.cancelled = False
        self.connection_online: bool | None = None  # the last attempt's reach; None: none yet
        self._stale_backend = False
        self._lock = asyncio.Lock()
        self._recovered = False
        self._keys: dict[str, str] = {}
        self._addresses: dict[str, str] = {}
        self._batches: dict[str, int] = {}
        self._attempts: dict[str, int] = {}

    def cancel(self) -> None:
        """Stop handing over new messages; what is in flight finishes and is recorded."""
        self.cancelled = True

    def use_new_settings(self) -> None:
        """The settings changed: the next message goes through a backend built from them (a run
        waiting for retries drops the backend it holds before sending again)."""
        self._stale_backend = True
        self.connection_online = None

    def _observe_connection(self, online: bool, detail: str) -> None:
        """Tell the bus when the provider stops or starts being reachable (not per message)."""
        if online != self.connection_online:
            self.connection_online = online
            self.bus.publish(SendingConnectionChanged(online, "" if online else detail))

    async def run(self, *, batch_id: int | None = None, wait_for_retries: bool = True) -> OutboxReport:
        """Send what is due; with wait_for_retries, keep going until nothing is pending."""
        async with self._lock:
            self.cancelled = False
            report = OutboxReport()
            if not self._recovered:
                report.recovered_uncertain = self.repo.recover_interrupted()
                self._recovered = True
            total = self.repo.pending_count(batch_id)
            backend: Backend | None = None
            try:
                while not self.cancelled:
                    items = self.repo.due(self.clock(), self.chunk, batch_id)
                    if not items:
                        if not wait_for_retries:
                            break
                        nxt = self.repo.next_retry_at(batch_id)
                        if nxt is None:
                            break
                        wait = (nxt - self.clock()).total_seconds()
                        await self.sleep(max(wait, 0.0))
                        continue
                    if backend is not None and self._stale_backend:
                        await backend.close()
                        backend = None
                    if backend is None:
                        self._stale_backend = False
                        backend = self.backend_factory()
                    await self._send(backend, items, report, total, batch_id)
            finally:
                if backend is not None:
                    await backend.close()
            return report

    async def _send(
        self,
        backend: Backend,
        items: list[OutboxItem],
        report: OutboxReport,
        total: int,
        batch_id: int | None,
    ) -> None:
        outgoing = []
        for it in items:
            self._keys[it.id] = it.address_key
            self._addresses[it.id] = it.envelope_to
            self._batches[it.id] = it.batch_id
            self._attempts[it.id] = it.attempts
            outgoing.append(OutgoingMessage(it.id, it.envelope_from, it.envelope_to, None, it.raw))
        hooks = _Hooks(self, report, total, batch_id)
        try:
            await backend.send(outgoing, hooks)
        finally:
            hooks.flush()
            # Handed over but never reported (the run was cancelled mid-transaction, or the
            # backend broke its contract): the message may have gone out. Never resend silently.
            for mid in hooks.claimed - hooks.finished_ids:
                self.repo.mark_unsent(
                    mid,
                    MessageState.UNCERTAIN,
                    "interrupted while being handed to the server; check before resending",
                )
                report.uncertain += 1
                hooks._publish(mid, MessageState.UNCERTAIN)
