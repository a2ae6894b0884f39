"""New work wakes an outbox that waits for a retry: mail queued while only retrying messages are
left is sent at once, not when the retry's backoff ends. Real loopback servers, injected clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tabmail.domain.events import OutboxWaiting
from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.sending import default_outbox
from tests.outbox_support import FakeTime
from tests.servers.smtp import closed_port

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def queue(ctx: AppContext, audience: Audience) -> int:
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=audience)
    return notify.enqueue(ctx, plan).batch_id


@pytest.mark.timeout(60)
def test_a_batch_queued_while_the_outbox_waits_for_a_retry_is_sent_at_once(
    smtp_demo: AppContext, tmp_path: Path
) -> None:
    ctx = smtp_demo
    ctx.settings.set_text("smtp.port", str(closed_port()))
    ctx.settings.set_text("outbox.max_attempts", "9")
    retrying = queue(ctx, Audience.ADJUDICATORS)
    t = FakeTime()
    start = t.now
    slept: list[float] = []

    async def scenario() -> None:
        released = asyncio.Event()
        waiting = asyncio.Event()
        ctx.bus.subscribe(OutboxWaiting, lambda e: waiting.set())

        async def sleep(seconds: float) -> None:  # a long backoff: nothing ends it but the test
            slept.append(seconds)
            await released.wait()

        outbox = default_outbox(ctx, clock=t.clock, sleep=sleep, rng=lambda: 1.0)
        task = asyncio.create_task(outbox.run())
        try:
            await asyncio.wait_for(waiting.wait(), 20)
            assert {m.state for m in ctx.notifications.messages(batch_id=retrying)} == {MessageState.RETRYING}
            waiting.clear()
            # new mail goes through the file backend; the retrying batch keeps its (unreachable) one
            ctx.settings.set_text("backend", "file")
            ctx.settings.set_text("file.directory", str(tmp_path / "eml"))
            fresh = queue(ctx, Audience.TEAMS)
            # the outbox sends the new batch and waits again for the old one's retry
            await asyncio.wait_for(waiting.wait(), 20)
            assert {m.state for m in ctx.notifications.messages(batch_id=fresh)} == {MessageState.SENT}
            assert {m.state for m in ctx.notifications.messages(batch_id=retrying)} == {MessageState.RETRYING}
            assert t.now == start  # no time passed: nothing waited for the backoff to end
        finally:
            outbox.cancel()
            released.set()
            await asyncio.wait_for(task, 20)

    asyncio.run(scenario())
    assert slept and slept[0] == 30
