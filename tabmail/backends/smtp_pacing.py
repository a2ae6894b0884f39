"""How fast an SMTP account may be used: messages per minute and per UTC day, shared by all of
a backend's connections (backends/smtp.py)."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from enum import Enum

from tabmail.backends.base import Outcome, SendResult


def seconds_to_utc_midnight(now: datetime) -> float:
    tomorrow = (now.astimezone(UTC) + timedelta(days=1)).date()
    return (datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC) - now).total_seconds()


class RateLimiter:
    """Messages per minute, shared by all connections: a token bucket holding one token, so sends
    are evenly spaced 60/rate seconds apart. Each caller books the next free slot at once, then
    sleeps until it (slots are handed out in call order). ``rate_per_minute`` 0: no limit."""

    def __init__(
        self,
        rate_per_minute: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self._interval = 60.0 / rate_per_minute if rate_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None

    @property
    def limited(self) -> bool:
        return bool(self._interval)

    async def acquire(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        slot = now if self._next_slot is None else max(self._next_slot, now)
        self._next_slot = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


class Slot(Enum):
    """A daily cap's answer to a request for one more message."""

    GRANTED = "granted"  # reserved: settle or release it
    FULL = "full"  # settled sends reach the cap: nothing more today, whatever is in flight
    UNDECIDED = "undecided"  # the cap is reached only with messages still in their transaction


class DailyCap:
    """Messages per UTC day: ``sent_today`` plus every message handed over since. A slot is
    reserved before the transaction and, once the server answered, settled (SENT or UNCERTAIN:
    the provider may count those) or released. Only settled sends make the cap "full"; while
    the cap is reached only by counting reservations still in flight, a new request is
    "undecided" (one of them may be given back). Settled sends restart at 0 when the UTC date
    changes (reservations in flight then count for the new day). ``cap`` 0: no cap. Safe from
    any thread (connections' threads reserve, settle and release)."""

    WAIT_STEP = 0.1  # seconds between looks at ``stopping`` while waiting for a decision

    def __init__(self, cap: int, sent_today: int, utcnow: Callable[[], datetime]) -> None:
        self.cap = cap
        self._utcnow = utcnow
        self._day: date = utcnow().date()
        self._settled = sent_today
        self._in_flight = 0
        self._changed = threading.Condition(threading.Lock())  # notified on each settle/release

    @property
    def count(self) -> int:
        """Sends settled today plus reservations in flight."""
        with self._changed:
            self._roll()
            return self._settled + self._in_flight

    def exhausted(self) -> bool:
        """The definitive answer: settled sends already reach the cap."""
        if not self.cap:
            return False
        with self._changed:
            self._roll()
            return self._settled >= self.cap

    def try_reserve(self) -> Slot:
        """A slot for one more message, without waiting."""
        with self._changed:
            return self._decide()

    def reserve(self, stopping: Callable[[], bool]) -> Slot | None:
        """A slot for one more message: while undecided, waits in the calling thread until the
        messages in flight settle or are released, then decides (GRANTED or FULL). None when
        ``stopping()`` turns true meanwhile (looked at every ``WAIT_STEP`` seconds, so a stop
        never waits for a transaction). The caller must hold no reservation of its own: then
        every reservation waited for belongs to a transaction that ends without waiting for
        this cap, so callers cannot wait for each other."""
        with self._changed:
            while (slot := self._decide()) is Slot.UNDECIDED:
                if stopping():
                    return None
                self._changed.wait(self.WAIT_STEP)
            return slot

    def settle(self) -> None:
        """A reserved message was handed over (SENT or UNCERTAIN): it counts for today."""
        with self._changed:
            self._roll()
            self._in_flight -= 1
            self._settled += 1
            self._changed.notify_all()

    def release(self) -> None:
        """A reserved message was not handed over: its slot is free again."""
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def refusal(self, message_id: str) -> SendResult:
        return SendResult(
            message_id,
            Outcome.TRANSIENT,
            detail=(
                f"not sent: the daily limit of {self.cap} messages for this SMTP account is reached; "
                "sending resumes after midnight UTC"
            ),
            retry_after=seconds_to_utc_midnight(self._utcnow()),
            attempted=False,
        )

    def _decide(self) -> Slot:
        if self.cap:
            self._roll()
            if self._settled >= self.cap:
                return Slot.FULL
            if self._settled + self._in_flight >= self.cap:
                return Slot.UNDECIDED
        self._in_flight += 1
        return Slot.GRANTED

    def _roll(self) -> None:
        today = self._utcnow().date()
        if today != self._day:
            self._day, self._settled = today, 0
