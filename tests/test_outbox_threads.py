"""SMTP connections claim and report from their own threads (no event-loop round trip per
message): sending goes on while the event loop, the window's GUI thread, is busy, and every claim
is still durable before its message reaches the server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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


def test_a_connection_claims_its_next_message_while_the_server_still_holds_the_current_one(
    smtp_demo: AppContext,
) -> None:
    """Claim ahead: a connection asks for its next message's claim before the current transaction
    and waits for it after; another connection's write makes it durable meanwhile. Results are
    still durable before the connection hands over the message after next."""
    ctx = smtp_demo
    ctx.settings.set_text("smtp.connections", "2")
    ids = queued_draw(ctx)
    assert ctx.db.path is not None
    con = sqlite3.connect(ctx.db.path, check_same_thread=False)
    states_at: dict[str, dict[str, str]] = {}  # at each message's end of DATA, before the reply

    def at_data(tabmail_id: str | None) -> None:
        assert tabmail_id is not None
        states_at[tabmail_id] = dict(con.execute("SELECT id, state FROM messages").fetchall())

    with SmtpTestServer(data_delay=0.05) as server:
        ctx.settings.set_text("smtp.port", str(server.port))
        server.on_message = at_data
        try:
            report = asyncio.run(default_outbox(ctx).run(wait_for_retries=False))
        finally:
            con.close()
        lanes: dict[int, list[str]] = {}
        for m in server.received:
            assert m.tabmail_id is not None
            lanes.setdefault(m.connection_id, []).append(m.tabmail_id)

    assert report.sent == len(ids)
    assert len(lanes) == 2
    pairs = [(a, b) for sent in lanes.values() for a, b in itertools.pairwise(sent)]
    ahead = [b for a, b in pairs if states_at[a][b] == "sending"]
    # A connection's next claim, written by the other connection while the server held the
    # current message (when each claim was asked for after the previous result: never).
    # (About half here: the two connections' writes alternate, each writing both claims.)
    assert len(ahead) >= len(pairs) // 4, (len(ahead), len(pairs))
    for sent in lanes.values():
        for before, _current, after_next in zip(sent, sent[1:], sent[2:], strict=False):
            assert states_at[after_next][before] == "sent", (before, after_next)
    assert all(states_at[i][i] == "sending" for i in ids)


def test_a_message_claimed_ahead_but_not_sent_when_the_run_is_cancelled_is_queued_again(
    smtp_demo: AppContext,
) -> None:
    ctx = smtp_demo  # 3 connections
    ids = queued_draw(ctx)
    assert ctx.db.path is not None
    con = sqlite3.connect(ctx.db.path, check_same_thread=False)
    with con:  # what an earlier attempt said: a withdrawn claim keeps it
        con.execute("UPDATE messages SET last_error = '421 earlier: try again later'")
    claimed_seen: set[str] = set()  # 'sending' while the server held some message

    def at_data(_tabmail_id: str | None) -> None:
        rows = con.execute("SELECT id FROM messages WHERE state = 'sending'").fetchall()
        claimed_seen.update(r[0] for r in rows)

    with SmtpTestServer(data_delay=0.05) as server:
        ctx.settings.set_text("smtp.port", str(server.port))
        server.on_message = at_data

        async def scenario() -> None:
            task = asyncio.ensure_future(default_outbox(ctx).run(wait_for_retries=False))
            while len(server.received) < 4:
                await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        try:
            asyncio.run(scenario())
        finally:
            con.close()
        received = [m.tabmail_id for m in server.received]

    messages = {m.id: m for m in ctx.notifications.messages()}
    assert len(received) == len(set(received))
    states = {i: messages[i].state for i in ids}
    assert set(states.values()) <= {MessageState.SENT, MessageState.QUEUED}, states
    assert {i for i, s in states.items() if s is MessageState.SENT} == set(received)
    withdrawn = {i for i in claimed_seen if states[i] is MessageState.QUEUED}
    # Claimed ahead, never handed over: queued again, the attempt given back.
    assert withdrawn, "no claim ahead was withdrawn: the test proved nothing"
    assert all(messages[i].attempts == 0 for i in withdrawn)
    assert all(messages[i].last_error == "421 earlier: try again later" for i in withdrawn)
    # The next run sends the rest, nothing twice.
    with SmtpTestServer() as server:
        ctx.settings.set_text("smtp.port", str(server.port))
        report = asyncio.run(default_outbox(ctx).run(wait_for_retries=False))
        assert sorted(m.tabmail_id or "" for m in server.received) == sorted(
            i for i, s in states.items() if s is MessageState.QUEUED
        )
    assert report.sent == len(ids) - len(received)


def test_after_outbox_cancel_only_the_transactions_already_running_reach_the_server(
    smtp_demo: AppContext,
) -> None:
    """Outbox.cancel() (the window's Cancel): claims granted ahead but not handed over yet are
    not used; they go back to queued with the rest."""
    ctx = smtp_demo  # 3 connections
    ids = queued_draw(ctx)
    outbox = default_outbox(ctx)
    seen: list[str] = []

    def at_data(tabmail_id: str | None) -> None:  # the server's thread, before its reply
        assert tabmail_id is not None
        seen.append(tabmail_id)
        if len(seen) == 4:
            outbox.cancel()  # the other two connections are at most inside one transaction each

    with SmtpTestServer(data_delay=0.1) as server:
        ctx.settings.set_text("smtp.port", str(server.port))
        server.on_message = at_data
        report = asyncio.run(outbox.run(wait_for_retries=False))
        received = [m.tabmail_id for m in server.received]

    assert 4 <= len(received) <= 4 + 2, received
    states = {m.id: m.state for m in ctx.notifications.messages()}
    assert {i for i in ids if states[i] is MessageState.SENT} == set(received)
    assert {states[i] for i in ids if i not in received} == {MessageState.QUEUED}
    assert report.sent == len(received)
