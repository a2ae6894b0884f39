"""Every status request goes through one ``Requester``: rate limits, backoff, plain outcomes.

- /v3/messages (Email Activity) is held to ``activity_per_minute`` (SendGrid: 6) with a sliding
  window, whatever the headers say.
- Any endpoint whose answer said ``X-RateLimit-Remaining: 0`` waits for ``X-RateLimit-Reset``
  (headers read case-insensitively by the provider client).
- 429 waits for the reset (or backs off) and tries again; 5xx backs off and tries again; a wait
  longer than ``max_wait`` is not waited for: the call fails with a sentence saying when to
  come back, and the next poll tries.
- No connection is ``Offline`` (a state for the GUI, not an error); 400 "authorization
  required", 401, 403 (and 404 on an endpoint) are ``Unavailable``.
The clock and the sleep are injected: tests and benchmarks never really wait.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tabmail.providers.sendgrid import (
    RateLimit,
    SendGridClient,
    SendGridConnectionError,
    SendGridError,
    SendGridResponse,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

_KEY_SHAPE = re.compile(r"SG\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
RAW_LOG_CHARS = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


class Offline(Exception):
    """No answer from SendGrid: the laptop is offline or SendGrid unreachable."""


class Unavailable(Exception):
    """The account or the key does not have this feature (add-on, plan or scope)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class CallFailed(Exception):
    """A call that failed after the retries allowed; ``str()`` is one plain sentence."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Backoff:
    """base * 2**(attempt-1), capped; ``attempts`` tries in all."""

    base: float = 2.0
    cap: float = 60.0
    attempts: int = 4

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * float(2 ** max(0, attempt - 1)))


def group_of(path: str) -> str:
    if path.startswith("/v3/messages"):
        return "activity"
    if path.startswith("/v3/logs"):
        return "logs"
    if path.startswith(("/v3/suppression", "/v3/asm")):
        return "suppressions"
    return "other"


def raw_excerpt(body: bytes, limit: int = RAW_LOG_CHARS) -> str:
    """The body for a log line: decoded, cut short, and any API-key-shaped text hidden."""
    text = body[: limit * 2].decode("utf-8", errors="replace")
    text = _KEY_SHAPE.sub("SG.[hidden]", text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(body)} bytes in all)"


class Requester:
    """One per poller (so the Activity budget is shared by every source and every poll)."""

    def __init__(
        self,
        client: SendGridClient,
        *,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        backoff: Backoff | None = None,
        activity_per_minute: int = 6,
        max_wait: float = 90.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff or Backoff()
        self.activity_per_minute = activity_per_minute
        self.max_wait = max_wait
        self._activity: deque[float] = deque()
        self._blocked_until: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self.sent_at: list[tuple[float, str]] = []  # (epoch, group) of every request made

    def _now(self) -> float:
        return self.clock().timestamp()

    async def _wait(self, seconds: float, why: str) -> None:
        if seconds > 0:
            log.debug("waiting %.1f s: %s", seconds, why)
            await self.sleep(seconds)

    async def _before(self, group: str) -> None:
        until = self._blocked_until.get(group)
        if until is not None:
            wait = until - self._now()
            if wait > self.max_wait:
                raise CallFailed(
                    f"SendGrid's rate limit for this feature is used up; it resets in {int(wait) + 1} s"
                )
            await self._wait(wait, f"{group} rate limit reset")
            self._blocked_until.pop(group, None)
        if group == "activity":
            while True:
                now = self._now()
                while self._activity and self._activity[0] <= now - 60.0:
                    self._activity.popleft()
                if len(self._activity) < self.activity_per_minute:
                    break
                await self._wait(self._activity[0] + 60.0 - now, "Email Activity allows 6 requests a minute")
            self._activity.append(self._now())

    def _after(self, group: str, rate: RateLimit | None) -> None:
        if rate is not None and rate.remaining == 0 and rate.reset is not None:
            self._blocked_until[group] = rate.reset

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> SendGridResponse:
        """One API call with the retries allowed. Raises Offline, Unavailable or CallFailed."""
        group = group_of(path)
        attempt = 0
        while True:
            attempt += 1
            await self._before(group)
            self.counts[group] += 1
            self.sent_at.append((self._now(), group))
            try:
                answer = await asyncio.to_thread(self.client.request, method, path, params, json)
            except SendGridConnectionError as exc:
                raise Offline(str(exc)) from None
            except SendGridError as exc:
                rate = exc.response.rate_limit if exc.response is not None else None
                self._after(group, rate)
                status = exc.status
                if status in (401, 403) or (status == 400 and exc.authorization_required):
                    raise Unavailable(str(exc), status) from None
                if status == 404 and group in ("logs",):
                    raise Unavailable(str(exc), status) from None
                if status == 429 or (status is not None and status >= 500):
                    if attempt >= self.backoff.attempts:
                        raise CallFailed(f"{exc} (gave up after {attempt} tries)", status) from None
                    wait = self._retry_wait(status, rate, exc.retry_after, attempt)
                    if wait > self.max_wait:
                        self._blocked_until[group] = self._now() + wait
                        raise CallFailed(f"{exc}; tabmail will ask again in a later poll", status) from None
                    await self._wait(wait, f"HTTP {status} from {path}")
                    continue
                raise CallFailed(str(exc), status) from None
            self._after(group, answer.rate_limit)
            return answer

    def _retry_wait(
        self, status: int, rate: RateLimit | None, retry_after: float | None, attempt: int
    ) -> float:
        if status == 429:
            if rate is not None and rate.reset is not None:
                return max(0.0, rate.reset - self._now()) + 0.5
            if retry_after is not None:
                return retry_after
        return self.backoff.delay(attempt)

    def per_minute_peak(self, group: str) -> int:
        """The most requests of a group within any 60-second window (for benchmarks)."""
        times = sorted(t for t, g in self.sent_at if g == group)
        best = 0
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - 60.0:
                start += 1
            best = max(best, end - start + 1)
        return best
