"""Issue 12 item 7: a batch scheduled for a time is never sent early (injected clock), survives a
restart, asks before going when its time passed while nothing ran, and can be cancelled until it
starts. Sent through the real outbox to the loopback SMTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify, schedule
from tabmail.services.context import AppContext
from tabmail.services.outbox import Backoff, Outbox, OutboxReport
from tabmail.services.sending import build_backend
from tests.keyrings import MemoryKeyring
from tests.servers.smtp import SmtpTestServer

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

T = datetime(2026, 12, 2, 18, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def run_outbox(ctx: AppContext, clock: Clock) -> OutboxReport:
    outbox = Outbox(
        ctx.notifications,
        ctx.flags,
        lambda name: build_backend(ctx, name),
        ctx.bus,
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 1.0,
        backoff=Backoff(base=30, max_attempts=3),
    )
    return asyncio.run(outbox.run())


def schedule_draw(ctx: AppContext, at: datetime) -> notify.EnqueueResult:
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    chosen = notify.selection_for(plan, include_already_sent=True)
    return notify.enqueue(ctx, plan, selected=chosen, scheduled_at=at, now=at - timedelta(hours=1))


def states(ctx: AppContext, batch_id: int) -> set[MessageState]:
    return {m.state for m in ctx.notifications.messages(batch_id=batch_id)}


def test_not_sent_early_then_sent_at_its_time(smtp_demo: AppContext, smtp: SmtpTestServer) -> None:
    result = schedule_draw(smtp_demo, T)
    clock = Clock(T - timedelta(minutes=1))
    assert run_outbox(smtp_demo, clock).sent == 0  # the outbox never claims a scheduled message
    assert schedule.release_due(smtp_demo, clock()) == ([], [])
    assert states(smtp_demo, result.batch_id) == {MessageState.SCHEDULED}
    assert smtp.messages == []
    # The scheduled messages count as on their way: a second draw release leaves them unticked.
    slug = smtp_demo.tournaments.list_all()[0].slug
    again = notify.plan(smtp_demo, slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    assert again.default_selection() == set()

    clock.now = T + timedelta(seconds=5)
    released, overdue = schedule.release_due(smtp_demo, clock())
    assert [b.batch_id for b in released] == [result.batch_id] and overdue == []
    assert run_outbox(smtp_demo, clock).sent == result.queued
    assert len(smtp.messages) == result.queued


def test_a_schedule_survives_a_restart(
    smtp_demo: AppContext, db_target: str, keyring_backend: MemoryKeyring
) -> None:
    result = schedule_draw(smtp_demo, T)
    smtp_demo.close()
    reopened = AppContext.open(db_target, keyring_backend=keyring_backend)
    try:
        (waiting,) = schedule.waiting(reopened)
        assert (waiting.batch_id, waiting.at, waiting.count) == (result.batch_id, T, result.queued)
        assert schedule.release_due(reopened, T - timedelta(seconds=1)) == ([], [])
        released, _ = schedule.release_due(reopened, T)
        assert [b.batch_id for b in released] == [result.batch_id]
        assert states(reopened, result.batch_id) == {MessageState.QUEUED}
    finally:
        reopened.close()


def test_overdue_batch_waits_for_the_directors_answer(smtp_demo: AppContext, smtp: SmtpTestServer) -> None:
    result = schedule_draw(smtp_demo, T)
    clock = Clock(T + schedule.GRACE + timedelta(minutes=1))  # nothing ran at 18:30
    released, overdue = schedule.release_due(smtp_demo, clock())
    assert released == [] and [b.batch_id for b in overdue] == [result.batch_id]
    assert run_outbox(smtp_demo, clock).sent == 0 and smtp.messages == []
    assert "ago" in schedule.describe(overdue[0], clock())
    assert schedule.release(smtp_demo, result.batch_id) == result.queued
    assert run_outbox(smtp_demo, clock).sent == result.queued


def test_cancel_until_it_starts(smtp_demo: AppContext) -> None:
    result = schedule_draw(smtp_demo, T)
    assert schedule.cancel(smtp_demo, result.batch_id) == result.queued
    messages = smtp_demo.notifications.messages(batch_id=result.batch_id)
    assert {(m.state, m.last_error) for m in messages} == {
        (MessageState.SKIPPED, "cancelled before its scheduled time")
    }
    other = schedule_draw(smtp_demo, T + timedelta(hours=1))
    schedule.release(smtp_demo, other.batch_id)
    with pytest.raises(TabmailError, match="already released or sent"):
        schedule.cancel(smtp_demo, other.batch_id)


def test_wait_and_release_sends_each_batch_at_its_time(smtp_demo: AppContext) -> None:
    first = schedule_draw(smtp_demo, T + timedelta(minutes=1))
    second = schedule_draw(smtp_demo, T + timedelta(minutes=3))
    clock = Clock(T)
    releases: list[tuple[int, datetime]] = []
    waits: list[int] = []
    overdue = asyncio.run(
        schedule.wait_and_release(
            smtp_demo,
            clock=clock,
            sleep=clock.sleep,
            on_wait=lambda b, _now: waits.append(b.batch_id),
            on_release=lambda b: releases.append((b.batch_id, clock())),
        )
    )
    assert overdue == []
    assert [b for b, _ in releases] == [first.batch_id, second.batch_id]
    assert releases[0][1] >= T + timedelta(minutes=1) and releases[1][1] >= T + timedelta(minutes=3)
    assert waits == [first.batch_id, second.batch_id]  # each wait said once, naming the batch
    assert max(clock.slept) <= schedule.MAX_SLEEP


def test_parse_at() -> None:
    now = datetime.now(UTC).astimezone()
    later = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    if later.date() == now.date():
        assert schedule.parse_at(later.strftime("%H:%M"), now) == later.astimezone(UTC)
    assert schedule.parse_at("2099-01-02T18:30+00:00", now) == datetime(2099, 1, 2, 18, 30, tzinfo=UTC)
    with pytest.raises(TabmailError, match="has already passed"):
        schedule.parse_at("2001-01-01T10:00", now)
    with pytest.raises(TabmailError, match="--at takes HH:MM"):
        schedule.parse_at("half past six", now)
