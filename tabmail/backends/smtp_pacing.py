"""How fast an SMTP account may be used: messages per minute and per UTC day, shared by all of
a backend's connections (backends/smtp.py)."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

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


class DailyCap:
    """Messages per UTC day: ``sent_today`` plus every message handed over since, reserved before
    the transaction and given back unless it was SENT or UNCERTAIN (the provider may count those).
    The count restarts at 0 when the UTC date changes. ``cap`` 0: no cap. Safe from any thread
    (connections' threads reserve and release)."""

    def __init__(self, cap: int, sent_today: int, utcnow: Callable[[], datetime]) -> None:
        self.cap = cap
        self._utcnow = utcnow
        self._day: date = utcnow().date()
        self._count = sent_today
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        with self._lock:
            self._roll()
            return self._count

    def exhausted(self) -> bool:
        if not self.cap:
            return False
        with self._lock:
            self._roll()
            return self._count >= self.cap

    def try_reserve(self) -> bool:
        with self._lock:
            if self.cap:
                self._roll()
                if self._count >= self.cap:
                    return False
            self._count += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._count = max(0, self._count - 1)

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

    def _roll(self) -> None:
        today = self._utcnow().date()
        if today != self._day:
            self._day, self._count = today, 0
