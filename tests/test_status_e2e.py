"""End to end: send a draw through the SendGrid backend, poll, see the bounces flagged, correct an
address, resend, poll again, see the resend delivered; then the CLI reads the same database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tabmail.domain.notification import Audience, Event, FlagKind, MessageState
from tabmail.domain.notification import DeliveryStatus as S
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.outbox import Outbox
from tabmail.services.resend import ResendOutcome, resend
from tabmail.services.sending import build_backend
from tabmail.services.tracking import Poller
from tests.servers.sendgrid import DEFAULT_KEY, FakeClock, SendGridTestServer, bounced

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]
FIXED = "corrected.address@example.net"


class World:
    def __init__(self, ctx: AppContext, server: SendGridTestServer, clock: FakeClock) -> None:
        self.ctx, self.server, self.clock = ctx, server, clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def run_outbox(self) -> None:
        outbox = Outbox(
            self.ctx.notifications,
            self.ctx.flags,
            lambda name: build_backend(self.ctx, name),
            self.ctx.bus,
            clock=self.now,
        )
        report = asyncio.run(outbox.run(wait_for_retries=False))
        assert (report.failed, report.uncertain) == (0, 0)


@pytest.fixture
def world(ctx: AppContext) -> Iterator[World]:
    clock = FakeClock()
    with SendGridTestServer(clock=clock) as server:
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", server.url)
        ctx.settings.set("from_address", "tab@demo-open.example")
        ctx.secrets.set("sendgrid-api-key", DEFAULT_KEY)
        yield World(ctx, server, clock)


def test_bounce_flag_correct_resend_delivered(world: World, ctx: AppContext, tmp_path: Path) -> None:
    assert load_demo_if_empty(ctx) is not None
    plan = notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    recipients = [p.recipient for p in plan.recipients if p.selected_by_default]
    assert len(recipients) >= 4
    first, second = recipients[0], recipients[1]
    assert first.address and second.address
    world.server.script(first.address, bounced("bounce"))
    world.server.script(second.address, bounced("bounce"))
    queued = notify.enqueue(ctx, plan)
    world.run_outbox()
    messages = {m.address: m for m in ctx.notifications.messages(batch_id=queued.batch_id)}
    assert all(m.state is MessageState.SENT and m.provider_message_id for m in messages.values())

    # poll: the two bounces are flagged and their messages bounced; the others delivered
    world.server.advance(600)
    poller = Poller(ctx, clock=world.now, sleep=world.sleep)
    report = asyncio.run(poller.poll_once())
    assert report.ok, report.summary()
    flags = ctx.flags.active()
    assert set(flags) == {first.address_key, second.address_key}
    assert (
        flags[first.address_key or ""].kind is FlagKind.INVALID
        or flags[first.address_key or ""].kind is FlagKind.HARD
    )
    by_id = {m.id: m for m in ctx.notifications.messages(batch_id=queued.batch_id)}
    old = by_id[messages[first.address].id]
    assert old.delivery_status is S.BOUNCED and old.status_reason
    assert by_id[messages[second.address].id].delivery_status is S.BOUNCED
    others = [m for a, m in messages.items() if a not in (first.address, second.address)]
    assert all(by_id[m.id].delivery_status is S.DELIVERED for m in others)

    # correct the first address and resend; poll again
    result = asyncio.run(resend(ctx, old.id, FIXED))
    assert result.outcome is ResendOutcome.QUEUED
    world.run_outbox()
    world.server.advance(600)
    second_report = asyncio.run(poller.poll_once())
    assert second_report.ok, second_report.summary()
    new = ctx.notifications.get(result.new_message_id or "")
    assert (new.resend_of, new.batch_id, new.address) == (old.id, queued.batch_id, FIXED)
    assert new.state is MessageState.SENT and new.delivery_status is S.DELIVERED
    assert ctx.notifications.get(old.id).delivery_status is S.BOUNCED  # the old one stays bounced
    assert first.address_key in ctx.flags.active()  # and its address stays flagged
    assert ctx.tournaments.get_person(first.person_id).email == FIXED
    assert world.server.validation_errors == []
    poller.close()

    # the CLI reads the same database
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("TABMAIL_DB", None)
    db = ctx.db.url  # a SQLite file's or the PostgreSQL database's URL

    def cli(*args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "tabmail", "--db", db, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    status = cli("status", "--tournament", "demo-open", "--json")
    assert isinstance(status, dict)
    [batch] = status["batches"]
    assert batch["id"] == queued.batch_id
    assert batch["statuses"]["bounced"] == 2
    assert batch["statuses"]["delivered"] == len(messages) - 1
    rows = {m["id"]: m for m in batch["messages"]}
    assert rows[new.id]["resend_of"] == old.id and rows[new.id]["status"] == "delivered"
    assert rows[old.id]["status"] == "bounced" and rows[old.id]["address_flagged"] is True
    assert rows[old.id]["last_event_at"] and rows[old.id]["reason"]
    flags_json = cli("flags", "--json")
    assert isinstance(flags_json, list)
    assert sorted(f["address_key"] for f in flags_json) == sorted([first.address_key, second.address_key])
    assert all(f["source"] == "sendgrid" for f in flags_json)
    exported = cli("export", "--tournament", "demo-open", "--format", "json")
    assert isinstance(exported, list) and len(exported) == len(messages) + 1
    assert DEFAULT_KEY not in json.dumps(exported)
    assert all("context" not in row for row in exported)

    # the CLI resends the second bounced message to a corrected address and runs the outbox
    env |= {
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "TABMAIL_SENDGRID_API_KEY": DEFAULT_KEY,
        "TABMAIL_THREAD_KEY": "00" * 32,
    }
    second_old = messages[second.address].id
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabmail",
            "--db",
            db,
            "resend",
            second_old,
            "--to",
            "second.fixed@example.net",
            "--yes",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Queued a resend of" in done.stdout and "sent 1, failed 0" in done.stdout
    world.server.advance(600)
    third = asyncio.run(Poller(ctx, clock=world.now, sleep=world.sleep).poll_once())
    assert third.ok, third.summary()
    resent = [m for m in ctx.notifications.messages(batch_id=queued.batch_id) if m.resend_of == second_old]
    assert [(m.address, m.delivery_status) for m in resent] == [("second.fixed@example.net", S.DELIVERED)]
    assert world.server.validation_errors == []


def test_cli_poll_says_why_it_is_off_and_lists_nothing_unmatched(ctx: AppContext) -> None:
    ctx.settings.set("backend", "file")
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("TABMAIL_DB", None)
    db = ctx.db.url  # a SQLite file's or the PostgreSQL database's URL
    done = subprocess.run(
        [sys.executable, "-m", "tabmail", "--db", db, "poll", "--once"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Delivery tracking is off" in done.stdout and "sendgrid" in done.stdout
    events = subprocess.run(
        [sys.executable, "-m", "tabmail", "--db", db, "events", "--unmatched", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(events.stdout) == []
