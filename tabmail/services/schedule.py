"""Scheduled release: a batch queued to go at a chosen time (the draw release at 18:30).

Its messages wait as 'scheduled', which the outbox never claims, so nothing goes early whatever
runs meanwhile. Whoever is running when the time comes (the open window's background worker,
or `tabmail outbox run --wait`) releases it: the messages become 'queued' and the outbox sends
them. A batch whose time passed more than GRACE ago while nothing ran is *overdue*: it is never
released on its own; the director confirms (`release`) or cancels it. Clock and sleep are
injected; everything is in the database, so a schedule survives a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta

from tabmail.domain.errors import TabmailError
from tabmail.services.context import AppContext
from tabmail.store.schedule import ScheduledBatch as ScheduledBatch
from tabmail.store.schedule import ScheduleRepository

GRACE = timedelta(minutes=5)  # released this late by a running tabmail; later: ask first
MAX_SLEEP = 60.0  # wake at least this often while waiting (a cancel elsewhere is noticed)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


def parse_at(text: str, now: datetime | None = None) -> datetime:
    """``HH:MM`` (today, local time) or an ISO date-time (local when it names no zone), as
    aware UTC. Raises TabmailError for anything else, or a time that has passed."""
    now = now or _now()
    local_now = now.astimezone()
    value = text.strip()
    try:
        if len(value) <= 5 and ":" in value:
            hour, minute = (int(x) for x in value.split(":"))
            when = datetime.combine(local_now.date(), time(hour, minute), tzinfo=local_now.tzinfo)
        else:
            when = datetime.fromisoformat(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=local_now.tzinfo)
    except ValueError:
        raise TabmailError(
            f"--at takes HH:MM (today) or an ISO date and time like 2026-12-03T18:30, not {text!r}"
        ) from None
    when = when.astimezone(UTC)
    if when <= now:
        shown = when.astimezone().strftime("%Y-%m-%d %H:%M")
        raise TabmailError(f"{shown} has already passed; give a later time (a date too: 2026-12-03T18:30)")
    return when


def describe(batch: ScheduledBatch, now: datetime | None = None) -> str:
    """ "batch 12 (draw, round 3, 40 messages) at 18:30 (in 25 min)" """
    now = now or _now()
    where = f", round {batch.round_seq}" if batch.round_seq is not None else ""
    at = batch.at.astimezone().strftime("%H:%M" if batch.at - now < timedelta(hours=20) else "%Y-%m-%d %H:%M")
    return f"batch {batch.batch_id} ({batch.event}{where}, {batch.count} messages) at {at} ({countdown(batch.at, now)})"


def countdown(at: datetime, now: datetime | None = None) -> str:
    seconds = (at - (now or _now())).total_seconds()
    if seconds < 0:
        return f"{_span(-seconds)} ago"
    return f"in {_span(seconds)}"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def waiting(ctx: AppContext) -> list[ScheduledBatch]:
    return ScheduleRepository(ctx.db).waiting()


def release_due(
    ctx: AppContext, now: datetime | None = None
) -> tuple[list[ScheduledBatch], list[ScheduledBatch]]:
    """Release every batch whose time has come (within GRACE). Returns (released, overdue):
    overdue batches stay waiting until the director releases or cancels them."""
    now = now or _now()
    repo = ScheduleRepository(ctx.db)
    released, overdue = [], []
    for batch in repo.waiting():
        if batch.at > now:
            continue
        if now - batch.at > GRACE:
            overdue.append(batch)
        elif repo.release(batch.batch_id):
            released.append(batch)
    return released, overdue


def release(ctx: AppContext, batch_id: int) -> int:
    """Send a waiting batch now (the director's answer to an overdue one)."""
    if not ScheduleRepository(ctx.db).waiting(batch_id):
        raise TabmailError(f"batch {batch_id} has no messages waiting for a scheduled time")
    return ScheduleRepository(ctx.db).release(batch_id)


def cancel(ctx: AppContext, batch_id: int) -> int:
    """Cancel a waiting batch: its messages become skipped. Only until it has started."""
    if not ScheduleRepository(ctx.db).waiting(batch_id):
        raise TabmailError(
            f"batch {batch_id} has no messages waiting for a scheduled time (already released or sent)"
        )
    return ScheduleRepository(ctx.db).cancel(batch_id)


async def wait_and_release(
    ctx: AppContext,
    *,
    clock: Clock = _now,
    sleep: Sleep = asyncio.sleep,
    on_wait: Callable[[ScheduledBatch, datetime], None] | None = None,
    on_release: Callable[[ScheduledBatch], Awaitable[None] | None] | None = None,
) -> list[ScheduledBatch]:
    """Until no batch waits for a future time: sleep until the next one, then release it.
    Overdue batches are left alone (returned at the end, for the caller to report).
    ``on_release`` may be a coroutine function (sending the batch): awaited before waiting on."""
    overdue: dict[int, ScheduledBatch] = {}
    announced: int | None = None
    while True:
        released, late = release_due(ctx, clock())
        for batch in released:
            if on_release:
                done = on_release(batch)
                if done is not None:  # a coroutine (the CLI sends the batch here): in this loop
                    await done
        overdue.update((b.batch_id, b) for b in late)
        future = [b for b in waiting(ctx) if b.batch_id not in overdue and b.at > clock()]
        if not future:
            return list(overdue.values())
        nxt = future[0]
        if on_wait and announced != nxt.batch_id:
            on_wait(nxt, clock())
            announced = nxt.batch_id
        await sleep(max(0.0, min(MAX_SLEEP, (nxt.at - clock()).total_seconds())))
