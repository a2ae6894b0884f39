"""SMTP connections claim and report from their own threads (no event-loop round trip per
message): sending goes on while the event loop, the window's GUI thread, is busy, and every claim
is still durable before its message reaches the server."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from tabmail.domain.events import MessageStateChanged
from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.sending import default_outbox
from tests.servers.smtp import SmtpTestServer


def queued_draw(ctx: AppContext) -> list[str]:
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ALL)
    batch = notify.enqueue(ctx, plan).batch_id
    return [m.id for m in ctx.notifications.messages(batch_id=batch)]


def test_smtp_sending_goes_on_while_the_event_loop_is_busy(
    smtp_demo: AppContext, smtp: SmtpTestServer
) -> None:
    ctx = smtp_demo
    ctx.settings.set_text("smtp.connections", "2")
    ids = queued_draw(ctx)
    assert len(ids) >= 12
    during: list[int] = []

    def busy(_event: MessageStateChanged) -> None:
        if during:
            return
        before = len(smtp.messages)
        time.sleep(1.0)  # a window busy for a second: its event loop runs nothing else
        during.append(len(smtp.messages) - before)

    ctx.bus.subscribe(MessageStateChanged, busy)
    report = asyncio.run(default_outbox(ctx).run(wait_for_retries=False))

    assert report.sent == len(ids)
    assert {ctx.notifications.get(i).state for i in ids} == {MessageState.SENT}
    # When each claim needed the event loop, at most the two transactions already running went
    # out while it was blocked.
    assert during and during[0] > 2 * 2, during


def test_each_claim_made_in_a_connection_thread_is_durable_before_the_server_gets_the_message(
    smtp_demo: AppContext, smtp: SmtpTestServer
) -> None:
    ctx = smtp_demo
    ids = queued_draw(ctx)
    assert ctx.db.path is not None
    seen: dict[str, str] = {}
    con = sqlite3.connect(ctx.db.path, check_same_thread=False)

    def at_data(tabmail_id: str | None) -> None:  # in the server's thread, before it answers
        assert tabmail_id is not None
        row = con.execute("SELECT state FROM messages WHERE id = ?", (tabmail_id,)).fetchone()
        seen[tabmail_id] = row[0]

    smtp.on_message = at_data
    try:
        report = asyncio.run(default_outbox(ctx).run(wait_for_retries=False))
    finally:
        con.close()

    assert report.sent == len(ids)
    assert seen == dict.fromkeys(ids, "sending")
