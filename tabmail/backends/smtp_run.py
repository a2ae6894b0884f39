"""One ``SmtpBackend.send`` call (backends/smtp.py): the shared queue, a worker per connection,
and each connection's thread (a lane), which claims, sends and reports messages by itself."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import smtplib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tabmail.backends.base import ClaimTicket, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.backends.smtp_pacing import Slot
from tabmail.domain.errors import TabmailError

if TYPE_CHECKING:
    from tabmail.backends.smtp import SmtpBackend

T = TypeVar("T")

# A connection idle this long (rate limiting) is checked with NOOP before it carries a message,
# so a server-side idle timeout costs a reconnect rather than a failed message.
IDLE_CHECK_SECONDS = 30.0


class SmtpConnectionError(TabmailError):
    """Setting up a connection failed (connect, TLS, STARTTLS, login). ``code``: the SMTP reply code
    when the server gave one; ``permanent``: retrying cannot help until a setting changes."""

    def __init__(self, message: str, code: int | None = None, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


@dataclass
class Connection:
    smtp: smtplib.SMTP
    last_used: float
    used: int = 0


def quit_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def noop_ok(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


class SmtpRun:
    """One ``send`` call: the shared queue and the workers pulling from it."""

    def __init__(self, backend: SmtpBackend, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        self.backend = backend
        self.hooks = hooks
        self.queue: deque[OutgoingMessage] = deque(messages)
        self.workers_left = 0
        self.last_error: SmtpConnectionError | None = None
        self.refused: SmtpConnectionError | None = None  # a setting must change: stop the run
        self.connected = False  # one connection of this run has been set up
        self.stopping = False  # cancelled: threads take nothing more
        self._first = asyncio.Lock()  # until then, connections are opened one at a time

    async def execute(self) -> None:
        count = min(self.backend.config.connections, len(self.queue))
        self.workers_left = count
        tasks = [asyncio.create_task(self._worker(), name=f"tabmail-smtp-{i}") for i in range(count)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _worker(self) -> None:
        lane = Lane()
        try:
            await self._drain(lane)
            if lane.conn is not None:
                await lane.run(quit_quietly, lane.conn.smtp)
        except BaseException:
            if lane.conn is not None:  # queued behind any transaction still in the thread
                lane.submit(lane.conn.smtp.close)
            raise
        finally:
            lane.conn = None
            lane.close()
            self.workers_left -= 1
        if self.workers_left == 0 and self.queue:
            await self._fail_remaining()

    async def _drain(self, lane: Lane) -> None:
        """Set up the lane's connection on the event loop (the first of a run alone: its failure
        decides the run), then let the lane's thread send from the shared queue by itself
        (``_send_from_thread``) until it needs the loop again: a new connection, the rate
        limiter's next slot, or an empty queue."""
        backend, cap = self.backend, self.backend._cap
        paced = backend._limiter.limited
        while self.queue and self.refused is None and not self.stopping:
            if cap.exhausted():  # nothing to connect for
                await self.hooks.finished(cap.refusal(self.queue.popleft().id))
                continue
            if paced:
                await backend._limiter.acquire()
                if not self.queue:
                    return
            try:
                await self._ready(lane)
            except SmtpConnectionError as exc:
                if exc.permanent:
                    self.refused = self.refused or exc
                self.last_error = exc
                return
            if not self.queue or self.refused is not None:
                return
            job = lane.run(self._send_from_thread, lane, paced)
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                # Cancelled: the thread takes nothing more; a transaction it has claimed or
                # started finishes and is reported (the server's answer comes within the
                # timeout, and a known answer beats an 'uncertain' message). Then it goes on.
                self.stopping = True
                while not job.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(job)  # cancelled again: still wait for it
                raise

    def _send_from_thread(self, lane: Lane, once: bool) -> None:
        """In the lane's thread: take, claim, send and report messages on the lane's connection
        until the queue is empty, the run stops, or the connection must be replaced (one message
        when ``once``: the rate limiter paces each). No event-loop round trip per message.

        Claims go one message ahead: the claim of the lane's next message is asked for before
        the current transaction starts and waited for after it, so it is written meanwhile,
        usually by another lane's write, together with the other lanes' claims and results
        (one commit for about one message per lane instead of one per message). Each claim is
        still durable before its transaction starts. A result is written with the next write of
        any lane, at the latest with the claim its lane asks for after it (the claim of the
        message after next). A claim granted but not used (the run stops, the connection must
        be replaced) is withdrawn: the message is queued again.

        The daily cap: a message claimed ahead needs a slot free at once; the lane's current
        message, taken while the lane holds no slot, waits for the messages in flight when only
        they fill the cap (one of them may be refused and give its slot back)."""
        backend, hooks, cap = self.backend, self.hooks, self.backend._cap
        limit = backend.config.messages_per_connection
        ahead: tuple[OutgoingMessage, ClaimTicket] | None = None
        try:
            while not self.stopping and self.refused is None:
                conn = lane.conn
                if conn is None or conn.used >= limit:
                    return
                if ahead is not None:
                    (msg, ticket), ahead = ahead, None
                else:
                    taken = self._take(wait=True)
                    if taken is None:
                        return
                    msg, ticket = taken
                if not hooks.claimed_from_thread(ticket)[0]:
                    cap.release()
                    continue
                if not once and conn.used + 1 < limit:
                    ahead = self._take(wait=False)
                result, usable = backend._transact(conn.smtp, msg)
                conn.used += 1
                conn.last_used = backend._clock()
                if not usable:
                    lane.conn = None
                if result.outcome in (Outcome.SENT, Outcome.UNCERTAIN):
                    cap.settle()
                else:
                    cap.release()
                hooks.finished_from_thread(result)
                if once:
                    return
        finally:
            if ahead is not None:
                self._give_back(*ahead)

    def _take(self, *, wait: bool) -> tuple[OutgoingMessage, ClaimTicket] | None:
        """In a lane's thread: the next message within the daily cap, its claim asked for (not
        waited for); None when the queue is empty, or the cap is undecided (reached only by
        counting messages still in their transaction): without ``wait``, the message stays
        first in the queue; with ``wait`` (only while the lane holds no slot: see
        ``DailyCap.reserve``), the lane waits until they settle, or until the run stops."""
        cap = self.backend._cap
        while self.queue:
            slot = cap.reserve(self._ending) if wait else cap.try_reserve()
            if slot is None or slot is Slot.UNDECIDED:
                return None
            try:
                msg = self.queue.popleft()
            except IndexError:  # another lane took the last one meanwhile
                if slot is Slot.GRANTED:
                    cap.release()
                return None
            if slot is Slot.GRANTED:
                return msg, self.hooks.claim_ahead_from_thread([msg.id])
            self.hooks.finished_from_thread(cap.refusal(msg.id))
        return None

    def _ending(self) -> bool:
        return self.stopping or self.refused is not None

    def _give_back(self, msg: OutgoingMessage, ticket: ClaimTicket) -> None:
        """A message claimed ahead that its lane will not send: if the claim was granted, it is
        withdrawn and the message is first in the queue again (refused: dropped, as always)."""
        try:
            granted = self.hooks.claimed_from_thread(ticket)[0]
        finally:
            self.backend._cap.release()
        if granted:
            self.hooks.withdraw_from_thread([msg.id])
            self.queue.appendleft(msg)

    async def _ready(self, lane: Lane) -> None:
        backend = self.backend
        conn = lane.conn
        if conn is not None and conn.used >= backend.config.messages_per_connection:
            lane.conn = None
            await lane.run(quit_quietly, conn.smtp)
        elif (
            conn is not None
            and backend._clock() - conn.last_used > IDLE_CHECK_SECONDS
            and not await lane.run(noop_ok, conn.smtp)
        ):
            lane.conn = None
            await lane.run(conn.smtp.close)
        if lane.conn is None:
            lane.conn = Connection(await self._connect(lane), last_used=backend._clock())

    async def _connect(self, lane: Lane) -> smtplib.SMTP:
        if not self.connected:
            async with self._first:
                # A refused login or an unreachable server is tried once per run, not once per
                # worker.
                if self.last_error is not None and not self.connected:
                    raise self.last_error
                if not self.connected:
                    smtp = await lane.run(self.backend._open)
                    self.connected = True
                    return smtp
        # Once one connection is up, the others are set up together (the workers that waited
        # for the first one no longer take turns).
        return await lane.run(self.backend._open)

    async def _fail_remaining(self) -> None:
        error = self.refused or self.last_error
        if self.refused is not None:
            outcome, detail = Outcome.SETUP_REFUSED, str(self.refused)
        else:
            outcome = Outcome.TRANSIENT
            detail = f"not sent: {error}" if error else "not sent: no SMTP connection could be set up"
        code = error.code if error else None
        while self.queue:
            msg = self.queue.popleft()
            await self.hooks.finished(
                SendResult(msg.id, outcome, detail, code, connection_failed=outcome is Outcome.TRANSIENT)
            )


class Lane:
    """One worker's connection and the single thread that every call on it runs in, so calls on
    one smtplib object never overlap (even after a cancellation).

    A plain thread fed by a queue, answering on an asyncio future (half the CPU of
    ``run_in_executor``): the worker hands it a connection set-up, a QUIT, or a stretch of
    sending (``SmtpRun._send_from_thread``)."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[object, ...], _Answer] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def run(self, func: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """``func(*args)`` in the lane's thread, after every call submitted before it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(func, args, (loop, future))
        return future

    def submit(self, func: Callable[..., object]) -> None:
        """``func()`` in the lane's thread after every call before it, nobody waiting for it."""
        self._submit(func, (), None)

    def close(self) -> None:
        """The thread ends after the calls already submitted (it never outlives them)."""
        if self._thread is not None:
            self._calls.put(None)

    def _submit(self, func: Callable[..., Any], args: tuple[object, ...], answer: _Answer) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="tabmail-smtp", daemon=False)
            self._thread.start()
        self._calls.put((func, args, answer))

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            func, args, answer = call
            try:
                value, failure = func(*args), None
            except BaseException as exc:  # handed to the awaiting task, as run_in_executor does
                value, failure = None, exc
            if answer is None:
                continue
            loop, future = answer
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, value, failure)


_Answer = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"] | None


def _settle(future: asyncio.Future[Any], value: object, failure: BaseException | None) -> None:
    if future.cancelled():
        return
    if failure is not None:
        future.set_exception(failure)
    else:
        future.set_result(value)
