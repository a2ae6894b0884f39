"""`tabmail outbox run --wait` as a director runs it: the real command in a process of its own,
a batch scheduled a few seconds ahead, the loopback SMTP server (tests/servers/smtp.py).

README: "tabmail outbox run --wait — also sends each scheduled batch at its time": the command
says what it waits for, sends nothing before the time, sends the batch at its time, and exits 0
once no batch waits for a later time."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tests.outbox_support import REPO, cli_env
from tests.servers.smtp import SmtpTestServer

AHEAD = 4.0  # seconds between queueing and the scheduled time


def test_outbox_run_wait_sends_a_scheduled_batch_at_its_time_then_exits(
    smtp_demo: AppContext, smtp: SmtpTestServer, db_target: str
) -> None:
    slug = smtp_demo.tournaments.list_all()[0].slug
    plan = notify.plan(smtp_demo, slug, Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    at = (datetime.now(UTC) + timedelta(seconds=AHEAD)).replace(microsecond=0) + timedelta(seconds=1)
    result = notify.enqueue(smtp_demo, plan, scheduled_at=at)
    assert result.queued > 1

    proc = subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", db_target, "outbox", "run", "--wait"],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        # Nothing waits without saying what for: the batch, and when.
        line = proc.stderr.readline()
        assert line.startswith(f"tabmail: waiting to send scheduled batch {result.batch_id} "), line
        assert at.astimezone().strftime("%H:%M") in line

        # Until its time: still running, nothing at the server, the messages still scheduled.
        while datetime.now(UTC) < at - timedelta(seconds=0.5):
            assert proc.poll() is None, "outbox run --wait ended before the scheduled time"
            assert smtp.received == []
            time.sleep(0.1)
        states = {m.state for m in smtp_demo.notifications.messages(batch_id=result.batch_id)}
        assert states == {MessageState.SCHEDULED}

        # At its time: every message arrives, none before the time.
        try:
            smtp.wait_for(lambda s: len(s.messages) >= result.queued, timeout=30)
        except TimeoutError:
            proc.kill()
            raise AssertionError(proc.communicate()) from None
        arrived = datetime.now(UTC)
        assert arrived >= at
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"released scheduled batch {result.batch_id} " in out
    assert f"sent {result.queued}, failed 0, uncertain 0, skipped 0, still pending 0" in out
    assert len(smtp.messages) == result.queued  # each once
    sent = smtp_demo.notifications.messages(batch_id=result.batch_id)
    assert {m.state for m in sent} == {MessageState.SENT}
    assert all(m.sent_at is not None and m.sent_at >= at for m in sent)
