"""Group commit: claims asked for together are written in one transaction, and each is durable
before its message is handed over. The backend here is a test double that asks for all its
claims at once, as eight SMTP connections finishing together do; the database is a real file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from tabmail.backends.base import BackendInfo, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.outbox import Outbox


class ParallelLanes:
    """Asks ``handing_over`` for every message at once (one task per message), checks from
    another connection that each claim is already durable when it is answered, then reports
    every message sent. ``cancel_first``: the run is cancelled (``Outbox.cancel``) and the
    first lane with it, before its claim is written."""

    info = BackendInfo("file", "parallel lanes (test double)")

    def __init__(self, db: Path, cancel_first: bool = False) -> None:
        self.db = db
        self.cancel_first = cancel_first
        self.durable_at_answer: dict[str, str] = {}
        self.outbox: Outbox | None = None

    async def send(self, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        async def lane(msg: OutgoingMessage) -> None:
            if not (await hooks.handing_over([msg.id]))[0]:
                return
            con = sqlite3.connect(self.db)
            try:
                self.durable_at_answer[msg.id] = con.execute(
                    "SELECT state FROM messages WHERE id = ?", (msg.id,)
                ).fetchone()[0]
            finally:
                con.close()
            await hooks.finished(SendResult(msg.id, Outcome.SENT, "250 ok", 250))

        tasks = [asyncio.create_task(lane(m)) for m in messages]
        if self.cancel_first:
            await asyncio.sleep(0)  # every lane has asked; no claim is written yet
            assert self.outbox is not None
            self.outbox.cancel()
            tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def check(self) -> str:
        return "ok"

    async def close(self) -> None:
        return None


def queued_batch(ctx: AppContext) -> int:
    slug = ctx.tournaments.list_all()[0].slug
    plan = notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    return notify.enqueue(ctx, plan).batch_id


def run(ctx: AppContext, backend: ParallelLanes, batch: int) -> None:
    ctx.settings.set_text("backend", "file")  # the batch is queued for the "file" backend
    outbox = Outbox(ctx.notifications, ctx.flags, lambda _name: backend, ctx.bus)
    backend.outbox = outbox
    asyncio.run(outbox.run(batch_id=batch, wait_for_retries=False))


def test_claims_asked_for_together_are_one_transaction_and_durable_before_the_answer(
    practice_demo: AppContext, tmp_path: Path
) -> None:
    ctx = practice_demo
    ctx.settings.set_text("backend", "file")
    ctx.settings.set_text("file.directory", str(tmp_path / "eml"))
    batch = queued_batch(ctx)
    ids = [m.id for m in ctx.notifications.messages(batch_id=batch)]
    assert len(ids) >= 4
    assert ctx.db.path is not None
    statements: list[str] = []
    ctx.notifications.outbox._outbox_connection().set_trace_callback(statements.append)
    backend = ParallelLanes(ctx.db.path)
    run(ctx, backend, batch)

    assert {m.state for m in ctx.notifications.messages(batch_id=batch)} == {MessageState.SENT}
    assert backend.durable_at_answer == dict.fromkeys(ids, "sending")
    # every claim went into one transaction (the old outbox wrote one per message)
    transactions: list[list[str]] = []
    current: list[str] | None = None
    for sql in statements:
        if sql.startswith("BEGIN"):
            current = []
        elif sql == "COMMIT":
            assert current is not None
            transactions.append(current)
            current = None
        elif "SET state = 'sending'" in sql:
            assert current is not None, "a claim written outside a transaction"
            current.append(sql)
    assert [len(t) for t in transactions if t] == [len(ids)]


def test_a_lane_cancelled_while_waiting_for_its_claim_leaves_its_message_queued(
    practice_demo: AppContext, tmp_path: Path
) -> None:
    ctx = practice_demo
    ctx.settings.set_text("backend", "file")
    ctx.settings.set_text("file.directory", str(tmp_path / "eml"))
    batch = queued_batch(ctx)
    assert ctx.db.path is not None
    backend = ParallelLanes(ctx.db.path, cancel_first=True)
    run(ctx, backend, batch)
    states = [m.state for m in ctx.notifications.messages(batch_id=batch)]
    # the cancelled lane's message was never claimed: queued, not 'sending' or 'uncertain';
    # the others had asked before the run was cancelled, and a cancelled run claims nothing more
    assert MessageState.SENDING not in states
    assert MessageState.UNCERTAIN not in states
    assert states.count(MessageState.QUEUED) >= 1
