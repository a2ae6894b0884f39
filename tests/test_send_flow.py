"""Compose, enqueue and send through a real SMTP server on loopback, with an injected clock."""

from __future__ import annotations

import asyncio
import email
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from tabmail.compose.templates import TemplateRenderError
from tabmail.domain.notification import Audience, Event, FlagKind, MessageState, Templates
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.outbox import Backoff, Outbox, OutboxReport
from tabmail.services.sending import build_backend
from tests.outbox_support import dead_claim
from tests.servers.smtp import SmtpTestServer

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


class FakeTime:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def demo(smtp_demo: AppContext) -> AppContext:
    return smtp_demo


def run_outbox(ctx: AppContext, t: FakeTime | None = None) -> OutboxReport:
    t = t or FakeTime()
    outbox = Outbox(
        ctx.notifications,
        ctx.flags,
        lambda name: build_backend(ctx, name),
        ctx.bus,
        clock=t.clock,
        sleep=t.sleep,
        rng=lambda: 1.0,
        backoff=Backoff(base=30, max_attempts=3),
    )
    return asyncio.run(outbox.run())


def slug(ctx: AppContext) -> str:
    return ctx.tournaments.list_all()[0].slug


def test_draw_release_reaches_everyone_once_with_the_stored_bytes(
    demo: AppContext, smtp: SmtpTestServer
) -> None:
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.ALL)
    ok = plan.count(notify.Mark.OK)
    assert ok > 20
    # the demo has one person with an invalid address and one without
    assert plan.count(notify.Mark.INVALID) + plan.count(notify.Mark.NO_ADDRESS) >= 1
    result = notify.enqueue(demo, plan)
    assert result.queued == ok
    report = run_outbox(demo)
    assert report.sent == ok and report.failed == 0
    messages = demo.notifications.messages(batch_id=result.batch_id)
    assert {m.state for m in messages} == {MessageState.SENT}
    received = {r.tabmail_id: r for r in smtp.received}
    assert len(smtp.received) == ok == len(received)
    for m in messages:
        got = received[m.id]
        stored = demo.notifications.raw(m.id)
        assert got.raw.replace(b"\r\n", b"\n").rstrip() == stored.replace(b"\r\n", b"\n").rstrip()
        parsed = email.message_from_bytes(stored, policy=policy.default)
        assert parsed["Message-ID"] == m.message_id_header
        assert parsed["X-Tabmail-Id"] == m.id
        assert got.envelope_to == (m.address,)
    # a second plan for the same round marks everyone as already served
    again = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.ALL)
    assert again.count(notify.Mark.ALREADY_SENT) == ok and again.count(notify.Mark.OK) == 0


def test_a_template_error_queues_nothing_and_names_every_recipient(demo: AppContext) -> None:
    bad = Templates("Round {{ ROUND }}", "Hello {{ USER }}, see {{ VENU }}", None)
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.ALL, templates=bad)
    with pytest.raises(TemplateRenderError) as info:
        notify.enqueue(demo, plan)
    assert len(info.value.problems) == plan.count(notify.Mark.OK)
    assert all("VENU" in p.message for p in info.value.problems)
    assert demo.notifications.messages() == []
    assert demo.notifications.batches() == []


def test_transient_then_success_permanent_flags_uncertain_is_not_resent(
    demo: AppContext, smtp: SmtpTestServer
) -> None:
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    sendable = [p.recipient for p in plan.recipients if p.mark is notify.Mark.OK]
    soft, hard, lost = sendable[0].address, sendable[1].address, sendable[2].address
    assert soft and hard and lost
    smtp.script(soft, rcpt="451 4.7.1 Greylisted, try again", times=1)
    smtp.script(hard, rcpt="550 5.1.1 User unknown")
    smtp.script(lost, drop="after_data")
    result = notify.enqueue(demo, plan)
    t = FakeTime()
    report = run_outbox(demo, t)
    by_address = {m.address: m for m in demo.notifications.messages(batch_id=result.batch_id)}
    assert by_address[soft].state is MessageState.SENT and by_address[soft].attempts == 2
    assert t.slept and t.slept[0] >= 30  # backed off, without really waiting
    assert by_address[hard].state is MessageState.FAILED
    assert "550" in (by_address[hard].last_error or "") and "User unknown" in (
        by_address[hard].last_error or ""
    )
    assert by_address[lost].state is MessageState.UNCERTAIN and by_address[lost].attempts == 1
    assert report.uncertain == 1 and report.failed == 1
    flags = demo.flags.active()
    assert hard.lower() in flags and flags[hard.lower()].kind is FlagKind.HARD
    # the permanent rejection flags the address: the next send skips it by default
    nxt = notify.plan(demo, slug(demo), Event.DRAW, round_seq=2, audience=Audience.ADJUDICATORS)
    assert any(p.mark is notify.Mark.FLAGGED and p.recipient.address == hard for p in nxt.recipients)
    # running the outbox again sends nothing twice
    before = len(smtp.received)
    assert run_outbox(demo).sent == 0
    assert len(smtp.received) == before


def test_flag_is_checked_again_just_before_sending(demo: AppContext, smtp: SmtpTestServer) -> None:
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    result = notify.enqueue(demo, plan)
    victim = demo.notifications.messages(batch_id=result.batch_id)[0]
    demo.flags.add(victim.address, FlagKind.HARD, "550 user unknown", "test")
    report = run_outbox(demo)
    assert report.skipped == 1
    assert demo.notifications.get(victim.id).state is MessageState.SKIPPED
    assert victim.id not in {r.tabmail_id for r in smtp.received}


def test_interrupted_sending_becomes_uncertain_on_restart(demo: AppContext, smtp: SmtpTestServer) -> None:
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    result = notify.enqueue(demo, plan)
    first = demo.notifications.messages(batch_id=result.batch_id)[0]
    # as if a process that has since died was sending it
    assert demo.notifications.outbox.claim([first.id], dead_claim("smtp")) == ([True], [])
    report = run_outbox(demo)
    assert report.recovered_uncertain == [first.id]
    assert demo.notifications.get(first.id).state is MessageState.UNCERTAIN
    assert first.id not in {r.tabmail_id for r in smtp.received}
    assert report.sent == result.queued - 1


def test_test_mode_reroutes_every_message_to_the_director(demo: AppContext, smtp: SmtpTestServer) -> None:
    demo.settings.set_text("test_mode.reroute_to", "director@example.org")
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    result = notify.enqueue(demo, plan)
    run_outbox(demo)
    assert {r.envelope_to for r in smtp.received} == {("director@example.org",)}
    msg = demo.notifications.messages(batch_id=result.batch_id)[0]
    parsed = email.message_from_bytes(demo.notifications.raw(msg.id), policy=policy.default)
    assert parsed["Subject"].startswith("[TEST for ")
    assert parsed["X-Tabmail-Original-To"] == msg.address
    # a rerouted test send does not count as the real thing
    again = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.TEAMS)
    assert again.count(notify.Mark.ALREADY_SENT) == 0


def test_ballot_receipts_go_to_adjudicators_with_scores(demo: AppContext, smtp: SmtpTestServer) -> None:
    plan = notify.plan(demo, slug(demo), Event.BALLOT, round_seq=1)
    assert plan.count(notify.Mark.OK) > 0
    assert all(p.recipient.role == "adjudicator" for p in plan.recipients)
    notify.enqueue(demo, plan)
    run_outbox(demo)
    body = email.message_from_bytes(smtp.received[0].raw, policy=policy.default).get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert any(ch.isdigit() for ch in text)
    assert "You are receiving this because" in text


def test_cancelling_a_run_leaves_nothing_half_sent(demo: AppContext, smtp: SmtpTestServer) -> None:
    smtp.data_delay = 0.05
    plan = notify.plan(demo, slug(demo), Event.DRAW, round_seq=1, audience=Audience.ALL)
    result = notify.enqueue(demo, plan)
    outbox = Outbox(demo.notifications, demo.flags, lambda name: build_backend(demo, name), demo.bus)

    async def scenario() -> None:
        task = asyncio.ensure_future(outbox.run())
        while not smtp.received:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    states = [m.state for m in demo.notifications.messages(batch_id=result.batch_id)]
    assert MessageState.SENDING not in states
    assert MessageState.QUEUED in states  # the rest waits for the next run
    assert states.count(MessageState.SENT) >= 1
    received = {r.tabmail_id for r in smtp.received}
    for m in demo.notifications.messages(batch_id=result.batch_id):
        if m.state is MessageState.QUEUED:
            assert m.id not in received
    # the next run sends the rest, and nothing twice
    report = run_outbox(demo)
    assert report.sent == states.count(MessageState.QUEUED)
    assert len(smtp.received) == len({r.tabmail_id for r in smtp.received})
