"""Practice mode in tests: the demo round sent through the practice backend and its fates played
out with an injected clock (no waiting)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tabmail.domain.notification import Audience, Event
from tabmail.domain.practice import SPAN
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.outbox import Backoff, Outbox
from tabmail.services.sending import build_backend
from tabmail.services.tracking import Poller, PollReport

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def outbox(ctx: AppContext, t: FakeTime) -> Outbox:
    return Outbox(
        ctx.notifications,
        ctx.flags,
        lambda name: build_backend(ctx, name),
        ctx.bus,
        clock=t.clock,
        sleep=t.sleep,
        rng=lambda: 1.0,
        backoff=Backoff(base=30, max_attempts=3),
    )


def send_all(ctx: AppContext, t: FakeTime) -> None:
    report = asyncio.run(outbox(ctx, t).run())
    assert report.failed == 0


def poll(ctx: AppContext, t: FakeTime) -> PollReport:
    return asyncio.run(Poller(ctx, clock=t.clock, sleep=t.sleep).poll_once())


def send_demo_round(ctx: AppContext, t: FakeTime, round_seq: int = 1) -> int:
    """Queue and send the demo's draw release for ``round_seq`` to everyone; the batch id."""
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=round_seq, audience=Audience.ALL)
    batch_id = notify.enqueue(ctx, plan).batch_id
    send_all(ctx, t)
    return batch_id


def play_out(ctx: AppContext, t: FakeTime) -> PollReport:
    """Every fate of what was sent so far, played to its end."""
    t.advance(SPAN.total_seconds())
    return poll(ctx, t)
