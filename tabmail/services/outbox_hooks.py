"""The outbox's side of the backend protocol for one run's messages through one backend:
claims and results written in group commits (services/outbox.py owns one per backend group)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from tabmail.backends.base import ClaimTicket, Outcome, SendResult
from tabmail.domain.events import MessageStateChanged, OutboxProgressed
from tabmail.domain.notification import FlagKind, MessageState
from tabmail.store.db import DatabaseBusy, DatabaseLocked
from tabmail.store.notifications import StateUpdate

if TYPE_CHECKING:
    from tabmail.services.outbox import Outbox, OutboxReport

LOCK_RETRY_SECONDS = 0.25
RESULT_PATIENCE = 3.0  # results of handed-over messages wait this many times longer than claims


class OutboxHooks:
    """The outbox's side of the backend protocol.

    Group commit: claims and results are written by ``flush``, which runs once per event-loop
    iteration when there is something to write. Every claim asked for and every result reported
    since the last flush go into ONE short transaction, so eight connections whose messages
    finish together cost one commit, not eight. Still per message: a claim is durable before
    ``handing_over`` returns (the message is handed over only after), and a result is durable
    before the next claim of its worker, at the latest on the next loop iteration. Bus events go
    out after the commit, so a screen that reloads on them sees the new state.

    A backend's own threads (SMTP) claim and report without the event loop: a thread waiting
    for a claim writes it itself, with every claim and result waiting at that moment, one thread
    at a time (``_writer``): while one writes, the others' claims gather for the next write.
    Threads claim one message AHEAD (``claim_ahead_from_thread`` before the current transaction,
    ``claimed_from_thread`` after it), so a claim is usually written by another thread's write
    while its own thread sends: about one commit per message per eight connections, not one per
    message. The rules then: a claim is durable before its message is handed over; a result is
    written with the next write of any thread, at the latest with the claim its thread asks for
    after it (that of its message after next); a claim granted but not used is withdrawn (queued
    again, the attempt given back). After a SIGKILL, up to three messages per connection are
    left 'sending' and marked uncertain by the next run: the one handed over, the one claimed
    ahead, and the one before whose result was not written yet. Events of threads' writes are
    published on the loop, coalesced."""

    def __init__(
        self, outbox: Outbox, report: OutboxReport, total: int, batch_id: int | None, backend: str
    ) -> None:
        self.o = outbox
        self.report = report
        self.total = total
        self.batch_id = batch_id
        self.backend = backend
        self.claimed: set[str] = set()
        self.finished_ids: set[str] = set()
        self._pending: list[StateUpdate] = []
        self._claiming: list[tuple[list[str], asyncio.Future[Sequence[bool]]]] = []
        self._flush_scheduled = False
        self._patient: set[asyncio.Task[None]] = set()  # claims waiting for another process's lock
        self._delays: dict[int, float] = {}
        self._loop = asyncio.get_running_loop()
        self._guard = threading.Lock()  # _pending, _asked, _unpublished, report counters
        self._writer = threading.Lock()  # one backend thread writes at a time
        self._asked: list[ClaimTicket] = []  # claims asked for by backend threads, not yet written
        self._unpublished: list[tuple[list[StateUpdate], list[str]]] = []
        self._publish_scheduled = False

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        o = self.o
        if o.cancelled or o.stop_reason is not None:
            return [False] * len(ids)
        waiter: asyncio.Future[Sequence[bool]] = asyncio.get_running_loop().create_future()
        self._claiming.append((list(ids), waiter))
        self._schedule()
        # Cancelled while waiting: ``flush`` drops the claim (it was never written).
        return await waiter

    def handing_over_from_thread(self, ids: Sequence[str]) -> Sequence[bool]:
        """``handing_over`` for a backend's thread: returns once the claim is durable. The claim
        is written by this thread, or by another thread writing at the same moment."""
        return self.claimed_from_thread(self.claim_ahead_from_thread(ids))

    def claim_ahead_from_thread(self, ids: Sequence[str]) -> ClaimTicket:
        """A claim asked for without waiting: the next write of any thread takes it, with every
        result handed over before it."""
        o = self.o
        if o.cancelled or o.stop_reason is not None:
            return ClaimTicket(ids, [False] * len(ids))
        ticket = ClaimTicket(ids)
        with self._guard:
            self._asked.append(ticket)
        return ticket

    def claimed_from_thread(self, ticket: ClaimTicket) -> Sequence[bool]:
        """Once ``ticket``'s claim is durable, its answer: written by this thread now, unless
        another thread wrote it meanwhile (or is writing it). A claim granted before the run was
        cancelled or stopped is withdrawn and answered False."""
        if ticket.answer is None and ticket.error is None:
            with self._writer:
                if ticket.answer is None and ticket.error is None:
                    self._write_from_thread()
        if ticket.error is not None:
            raise ticket.error
        answer = ticket.answer
        assert answer is not None
        o = self.o
        if (o.cancelled or o.stop_reason is not None) and any(answer):
            # Cancelled or stopped since the claim was written (it was asked for ahead): not
            # handed over, so queued again like every message not claimed yet.
            self.withdraw_from_thread([i for i, ok in zip(ticket.ids, answer, strict=True) if ok])
            return [False] * len(answer)
        return answer

    def withdraw_from_thread(self, ids: Sequence[str]) -> None:
        """Claims granted but never handed over: back to queued, the attempt the claim counted
        given back; written with the next write (before any later claim of these messages)."""
        o = self.o
        with self._guard:
            for mid in ids:
                self.claimed.discard(mid)
                self._pending.append(
                    StateUpdate(mid, MessageState.QUEUED, claimed=True, attempts=o._attempts.get(mid, 0))
                )

    def finished_from_thread(self, result: SendResult) -> None:
        """``finished`` for a backend's thread: written with the next claim (or at the end)."""
        effects: list[Callable[[], object]] = []
        with self._guard:
            self._pending.append(self._result(result, effects))
        for effect in effects:
            self._loop.call_soon_threadsafe(effect)

    def _write_from_thread(self) -> None:
        """Under ``_writer``, in a backend's thread: write every result and thread claim waiting
        now in one transaction. Another process's lock is waited for (said on the loop) up to
        the database's lock_wait; then the run stops and the claims are refused. Results that
        cannot be written stay for the next write or ``drain``."""
        o = self.o
        with self._guard:
            pending, self._pending = self._pending, []
            asked, self._asked = self._asked, []
        db = o.repo.db
        limit = db.lock_wait if o.lock_wait is None else o.lock_wait
        since: float | None = None
        while True:
            if asked and (o.cancelled or o.stop_reason is not None):
                for a in asked:
                    a.answer = [False] * len(a.ids)
                asked = []
            ids = [i for a in asked for i in a.ids]
            if not ids and since is not None and o.stop_reason is not None:
                self._put_back(pending)  # ``drain`` waits longer for results
                return
            try:
                if ids:
                    o.renew_leases()
                result, skipped = o.repo.outbox.commit(pending, claim=ids, by=o.claim_for(self.backend))
                break
            except DatabaseLocked:
                now = time.monotonic()
                if since is None:
                    since = now
                    self._loop.call_soon_threadsafe(db.waiting)
                elif now - since >= limit:
                    o.stop(str(db.busy(now - since)))  # the claims are refused on the next turn
                    continue
                time.sleep(LOCK_RETRY_SECONDS)
            except Exception as exc:  # nothing was written: each thread raises it
                self._put_back(pending)
                for a in asked:
                    a.error = exc
                return
        self.claimed.update(i for i, ok in zip(ids, result, strict=True) if ok)
        start = 0
        for a in asked:
            a.answer = result[start : start + len(a.ids)]
            start += len(a.ids)
        with self._guard:
            self._unpublished.append((pending, skipped))
            if self._publish_scheduled:
                return
            self._publish_scheduled = True
        self._loop.call_soon_threadsafe(self._publish_written)

    def _publish_written(self) -> None:
        """On the loop: the events of what backend threads wrote since the last call."""
        with self._guard:
            written, self._unpublished = self._unpublished, []
            self._publish_scheduled = False
        if not written:
            return
        self._published([u for pending, _skipped in written for u in pending])
        for _pending, skipped in written:
            for i in skipped:
                self.report.skipped += 1
                self._publish(i, MessageState.SKIPPED)

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def _live_claims(self) -> list[tuple[list[str], asyncio.Future[Sequence[bool]]]]:
        """The claims asked for and still awaited (a cancelled worker's is dropped unwritten)."""
        claiming, self._claiming = self._claiming, []
        return [(ids, w) for ids, w in claiming if not w.done()]

    def _commit(
        self, pending: list[StateUpdate], claiming: list[tuple[list[str], asyncio.Future[Sequence[bool]]]]
    ) -> None:
        """Write ``pending`` results and ``claiming``'s claims in one transaction, then answer
        the claims and publish. Raises DatabaseLocked with nothing written."""
        o = self.o
        ids = [i for group, _w in claiming for i in group]
        if ids:
            o.renew_leases()
        result, skipped = o.repo.outbox.commit(pending, claim=ids, by=o.claim_for(self.backend))
        self.claimed.update(i for i, ok in zip(ids, result, strict=True) if ok)
        # Answer the claims before publishing: a subscriber runs window code at once (a quit
        # among it), and a waiter it cancelled could no longer take its answer.
        start = 0
        for group, waiter in claiming:
            if not waiter.done():
                waiter.set_result(result[start : start + len(group)])
            start += len(group)
        self._published(pending)
        for i in skipped:
            self.report.skipped += 1
            self._publish(i, MessageState.SKIPPED)

    def flush(self) -> None:
        """Write what is waiting (results and claims), if the database lets us now. Results that
        cannot be written yet stay for the next flush or ``drain``; claims then wait (visibly, and
        bounded) in a task of their own."""
        self._flush_scheduled = False
        o = self.o
        claiming = self._live_claims()
        if claiming and (o.cancelled or o.stop_reason is not None):
            for group, waiter in claiming:
                waiter.set_result([False] * len(group))
            claiming = []
        if any(not task.done() for task in self._patient):  # it takes these on its next try
            self._claiming[:0] = claiming
            return
        pending = self._take()
        if not pending and not claiming:
            return
        try:
            self._commit(pending, claiming)
        except DatabaseLocked:
            self._put_back(pending)
            if claiming:
                self._claiming[:0] = claiming
                task = asyncio.ensure_future(self._claim_patiently(since=time.monotonic()))
                self._patient.add(task)
                task.add_done_callback(self._patient.discard)
        except Exception as exc:  # e.g. the database server went away: nothing was written
            self._put_back(pending)  # ``drain`` tries them again, and raises if it must
            for _group, waiter in claiming:
                if not waiter.done():
                    waiter.set_exception(exc)  # each worker raises it, as its own commit would have

    async def _claim_patiently(self, since: float) -> None:
        """Another process holds the write lock: wait for it (saying so), up to the database's
        lock_wait; then stop the run and refuse the claims. Claims are written only for workers
        still waiting when the write succeeds."""
        o = self.o

        def attempt() -> None:
            pending = self._take()
            taken = self._live_claims()
            try:
                self._commit(pending, taken)
            except BaseException:
                self._put_back(pending)
                self._claiming[:0] = taken
                raise

        try:
            await o.write(attempt, since=since)
        except DatabaseBusy as exc:
            o.stop(str(exc))
            for group, waiter in self._live_claims():
                waiter.set_result([False] * len(group))
        except asyncio.CancelledError:  # ``drain``: the backend is done, nobody waits
            raise
        except Exception as exc:  # nothing was written: each worker raises it
            for _group, waiter in self._live_claims():
                waiter.set_exception(exc)

    async def finished(self, result: SendResult) -> None:
        effects: list[Callable[[], object]] = []
        with self._guard:
            self._pending.append(self._result(result, effects))
        for effect in effects:
            effect()
        self._schedule()

    def _result(self, result: SendResult, effects: list[Callable[[], object]]) -> StateUpdate:
        """The state ``result`` leaves its message in, counted in the report (under
        ``_guard``). ``effects``: what the caller runs on the event loop afterwards."""
        o = self.o
        now = o.clock()
        mid = result.message_id
        self.finished_ids.add(mid)
        claimed = mid in self.claimed
        words = result.detail or result.outcome.value
        if result.code is not None and str(result.code) not in words:
            words = f"{result.code} {words}"
        before = o._attempts.get(mid, 0)  # as stored when the run read it, before any claim
        attempts = before + 1  # a claim counted this attempt; a failed connection counts it here
        backoff = o.current_backoff
        online = not result.connection_failed
        if online != o.connection_online:  # told on the loop, once per change
            effects.append(functools.partial(o._observe_connection, online, words))
        if result.outcome is Outcome.SENT:
            update = StateUpdate(
                mid, MessageState.SENT, sent_at=now, provider_message_id=result.provider_message_id
            )
            self.report.sent += 1
        elif result.outcome is Outcome.UNCERTAIN:
            update = StateUpdate(mid, MessageState.UNCERTAIN, error=f"uncertain: {words}", claimed=claimed)
            self.report.uncertain += 1
        elif result.outcome is Outcome.SETUP_REFUSED:
            # Not the message's fault and not an attempt: back to queued, and the run stops.
            update = StateUpdate(mid, MessageState.QUEUED, error=words, claimed=claimed, attempts=before)
            o.stop(words)
        elif result.outcome is Outcome.TRANSIENT and not result.attempted:
            delay = backoff.delay(1, result.retry_after, o.rng)
            update = StateUpdate(
                mid,
                MessageState.RETRYING,
                error=words,
                next_attempt_at=now + timedelta(seconds=delay),
                claimed=claimed,
            )
            self.report.retrying += 1
        elif result.outcome is Outcome.TRANSIENT and attempts < backoff.max_attempts:
            delay = self._delay(attempts, result.retry_after, shared=not claimed)
            update = StateUpdate(
                mid,
                MessageState.RETRYING,
                error=words,
                next_attempt_at=now + timedelta(seconds=delay),
                claimed=claimed,
                attempts=attempts,
            )
            self.report.retrying += 1
        else:
            gave_up = result.outcome is Outcome.TRANSIENT
            prefix = f"gave up after {attempts} attempts: " if gave_up else ""
            update = StateUpdate(
                mid, MessageState.FAILED, error=prefix + words, claimed=claimed, attempts=attempts
            )
            self.report.failed += 1
            if result.flag_address and mid in o._addresses:
                effects.append(
                    functools.partial(o.flags.add, o._addresses[mid], FlagKind.HARD, words, "smtp")
                )
        return update

    def _delay(self, attempts: int, retry_after: float | None, shared: bool) -> float:
        """A connection that could not be set up fails every waiting message at once: they all
        come back together (one jitter draw per attempt count), so the next try is one
        connection, not one per message."""
        o = self.o
        if not shared:
            return o.current_backoff.delay(attempts, retry_after, o.rng)
        if attempts not in self._delays:
            self._delays[attempts] = o.current_backoff.delay(attempts, retry_after, o.rng)
        return self._delays[attempts]

    async def drain(self) -> None:
        """Write every result not yet written, waiting for another process's lock (bounded)."""
        for task in self._patient:  # the backend is done: nobody waits for those claims now
            task.cancel()
        self._publish_written()
        pending = self._take()
        if not pending:
            return
        o = self.o
        try:
            # Results of messages already handed over are worth a longer wait than a new claim:
            # unwritten, they would end up 'uncertain'.
            await o.write(
                lambda: o.repo.outbox.commit(pending, by=o.claim_for(self.backend)), patience=RESULT_PATIENCE
            )
        except DatabaseBusy:
            self._put_back(pending)
            raise
        self._published(pending)

    def _take(self) -> list[StateUpdate]:
        with self._guard:
            pending, self._pending = self._pending, []
        return pending

    def _put_back(self, pending: list[StateUpdate]) -> None:
        """Results not written after all: first in line for the next write."""
        with self._guard:
            self._pending[:0] = pending

    def add(self, update: StateUpdate) -> None:
        with self._guard:
            self._pending.append(update)

    def _published(self, updates: Sequence[StateUpdate]) -> None:
        for u in updates:
            self._publish(u.message_id, u.state)
        if updates:
            self.o.bus.publish(OutboxProgressed(self.batch_id, self.report.total_done(), self.total))

    def _publish(self, mid: str, state: MessageState) -> None:
        self.o.bus.publish(MessageStateChanged(mid, self.o._batches.get(mid, 0), state.value))
