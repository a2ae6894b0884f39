"""Failures that must end (issue 9 items 3 and 4): a refused login or an untrusted certificate
stops the run at once and leaves the messages queued; an unreachable server backs off
exponentially and gives up after ``outbox.max_attempts``; `send` sends its own batch only, and a
message keeps the backend it was queued for. Real loopback servers, injected clock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.outbox import OutboxReport, OutboxStopped
from tabmail.services.sending import default_outbox
from tests.outbox_support import FakeTime, cli_env
from tests.servers.sendgrid import DEFAULT_KEY, SendGridTestServer
from tests.servers.smtp import SmtpTestServer, closed_port

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "tab@tournament.test", "correct-horse-battery"

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def db_arg(ctx: AppContext) -> str:
    """What the CLI's --db takes for this test's database: the SQLite file, or the server URL."""
    return str(ctx.db.path) if ctx.db.path is not None else ctx.db.url


def slug(ctx: AppContext) -> str:
    return ctx.tournaments.list_all()[0].slug


def queue(ctx: AppContext, audience: Audience = Audience.ADJUDICATORS, round_seq: int = 1) -> int:
    plan = notify.plan(ctx, slug(ctx), Event.DRAW, round_seq=round_seq, audience=audience)
    return notify.enqueue(ctx, plan).batch_id


def run(ctx: AppContext, t: FakeTime, **kwargs: object) -> OutboxReport:
    outbox = default_outbox(ctx, clock=t.clock, sleep=t.sleep, rng=lambda: 1.0)
    return asyncio.run(outbox.run(**kwargs))  # type: ignore[arg-type]


@pytest.fixture
def auth_server() -> Iterator[SmtpTestServer]:
    """AUTH offered on plain text (tabmail allows that to loopback only); any other password: 535."""
    with SmtpTestServer(auth=(USER, PASSWORD), auth_require_tls=False) as server:
        yield server


def use_smtp(ctx: AppContext, server: SmtpTestServer, **settings: str) -> None:
    values = {
        "backend": "smtp",
        "smtp.host": server.host,
        "smtp.port": str(server.port),
        "smtp.security": "none",
        "smtp.connections": "4",
        "from_address": "tab@example.org",
    }
    values.update(settings)
    for key, value in values.items():
        ctx.settings.set_text(key, value)


# -- item 3 ------------------------------------------------------------------------------------


def test_a_refused_login_stops_the_run_at_once_and_leaves_the_messages_queued(
    smtp_demo: AppContext, auth_server: SmtpTestServer
) -> None:
    ctx = smtp_demo
    use_smtp(ctx, auth_server, **{"smtp.username": USER})
    ctx.secrets.set("smtp-password", "not-the-password")
    batch = queue(ctx)
    t = FakeTime(limit=3600)  # the old outbox retried every 15-30 s forever

    with pytest.raises(OutboxStopped) as stopped:
        run(ctx, t)

    said = str(stopped.value)
    assert f"the SMTP server {auth_server.host}:{auth_server.port} refused the login for {USER}" in said
    assert "535 5.7.8 Authentication credentials invalid" in said
    assert "not-the-password" not in said
    assert auth_server.logins == 1  # once for the whole batch over four connections
    assert t.slept == []  # stopped, not waiting to try again
    messages = ctx.notifications.messages(batch_id=batch)
    assert {m.state for m in messages} == {MessageState.QUEUED}
    assert {m.attempts for m in messages} == {0}
    assert all("535" in (m.last_error or "") for m in messages)
    assert auth_server.received == []

    # the director fixes the password: the same messages go out, each once
    ctx.secrets.set("smtp-password", PASSWORD)
    report = run(ctx, FakeTime())
    assert report.sent == len(messages)
    assert sorted(r.tabmail_id or "" for r in auth_server.messages) == sorted(m.id for m in messages)


@pytest.fixture(scope="module")
def wrong_host_cert() -> trustme.LeafCert:
    return trustme.CA().issue_cert("mail.example.org")


def test_an_untrusted_certificate_stops_the_run_and_nothing_is_sent(
    smtp_demo: AppContext, wrong_host_cert: trustme.LeafCert
) -> None:
    ctx = smtp_demo
    with SmtpTestServer(tls="starttls", cert=wrong_host_cert) as server:
        use_smtp(ctx, server, **{"smtp.security": "starttls"})
        batch = queue(ctx)
        t = FakeTime(limit=3600)
        with pytest.raises(OutboxStopped) as stopped:
            run(ctx, t)
        assert "could not be verified" in str(stopped.value)
        assert t.slept == []
        assert server.connections == 1
        assert server.received == []
    assert {m.state for m in ctx.notifications.messages(batch_id=batch)} == {MessageState.QUEUED}


def test_an_unreachable_server_backs_off_exponentially_then_gives_up_after_max_attempts(
    smtp_demo: AppContext, smtp: SmtpTestServer
) -> None:
    ctx = smtp_demo
    port = closed_port()
    use_smtp(ctx, smtp, **{"smtp.port": str(port)})
    ctx.settings.set_text("outbox.max_attempts", "9")
    batch = queue(ctx)
    t = FakeTime(limit=30 * 86400)

    report = run(ctx, t)

    # one wait per round for the whole batch (not one per message), doubling, capped at an hour
    assert t.slept == [30, 60, 120, 240, 480, 960, 1920, 3600]
    messages = ctx.notifications.messages(batch_id=batch)
    assert report.failed == len(messages)
    assert {m.state for m in messages} == {MessageState.FAILED}
    assert {m.attempts for m in messages} == {9}
    for m in messages:
        assert m.last_error == (
            f"gave up after 9 attempts: not sent: Cannot connect to 127.0.0.1:{port}: connection refused"
        )


def test_the_attempt_limit_is_the_setting(smtp_demo: AppContext, smtp: SmtpTestServer) -> None:
    ctx = smtp_demo
    use_smtp(ctx, smtp, **{"smtp.port": str(closed_port())})
    ctx.settings.set_text("outbox.max_attempts", "2")
    batch = queue(ctx)
    t = FakeTime()
    run(ctx, t)
    assert t.slept == [30]
    assert {m.attempts for m in ctx.notifications.messages(batch_id=batch)} == {2}


def test_send_yes_and_outbox_run_exit_non_zero_with_the_servers_words_off_a_terminal(
    smtp_demo: AppContext, auth_server: SmtpTestServer
) -> None:
    ctx = smtp_demo
    use_smtp(ctx, auth_server, **{"smtp.username": USER})
    db, tournament = db_arg(ctx), slug(ctx)
    ctx.close()
    env = cli_env(TABMAIL_SMTP_PASSWORD="not-the-password")
    send = [sys.executable, "-m", "tabmail", "--db", db, "send", "draw", "--tournament", tournament]
    for cmd in (
        [*send, "--round", "1", "--audience", "adjudicators", "--yes"],
        [sys.executable, "-m", "tabmail", "--db", db, "outbox", "run"],
    ):
        done = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
        assert done.returncode != 0, done.stdout + done.stderr
        errors = done.stderr.strip().splitlines()
        assert len(errors) == 1, done.stderr
        assert "refused the login for tab@tournament.test: 535 5.7.8" in errors[0]
        assert "stay queued" in errors[0]
        assert "Traceback" not in done.stderr and "not-the-password" not in done.stdout + done.stderr
    assert auth_server.logins == 2  # one per command
    again = AppContext.open(db, keyring_backend=ctx.secrets._backend)
    try:
        assert {m.state for m in again.notifications.messages()} == {MessageState.QUEUED}
    finally:
        again.close()


# -- item 4 ------------------------------------------------------------------------------------


def test_send_sends_its_own_batch_and_old_work_keeps_its_backend(
    smtp_demo: AppContext, smtp: SmtpTestServer, tmp_path: Path
) -> None:
    ctx = smtp_demo
    # An SMTP message retrying: the server greylists its recipient.
    old_batch = queue(ctx, Audience.ADJUDICATORS)
    old = ctx.notifications.messages(batch_id=old_batch)
    smtp.script(old[0].address, rcpt="451 4.7.1 Greylisted, try again")
    run(ctx, FakeTime(), wait_for_retries=False)
    assert ctx.notifications.get(old[0].id).state is MessageState.RETRYING
    sent_by_smtp = len(smtp.received)

    # The director switches to SendGrid and sends a new batch with `tabmail send --yes`.
    with SendGridTestServer() as sendgrid:
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", sendgrid.url)
        ctx.settings.set("from_address", "tab@demo-open.example")
        db = db_arg(ctx)
        body = tmp_path / "body.txt"
        body.write_text("Hello {{ USER }}.\n", encoding="utf-8")
        done = subprocess.run(
            [
                *(sys.executable, "-m", "tabmail", "--db", db, "send", "custom"),
                *("--tournament", slug(ctx), "--subject", "News", "--body-file", str(body)),
                *("--audience", "teams", "--yes"),
            ],
            cwd=REPO,
            env=cli_env(TABMAIL_SENDGRID_API_KEY=DEFAULT_KEY),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        through_sendgrid = {p["custom_args"]["tabmail_id"] for r in sendgrid.sent for p in r.personalizations}
    assert old[0].id not in through_sendgrid
    assert not {m.id for m in old} & through_sendgrid
    assert "1 older message(s) wait in the outbox" in done.stdout
    assert ctx.notifications.get(old[0].id).state is MessageState.RETRYING
    assert len(smtp.received) == sent_by_smtp  # `send` did not touch the old batch at all

    # The outbox sends the old message through the backend it was queued for: SMTP.
    t = FakeTime()
    t.now = ctx.notifications.get(old[0].id).next_attempt_at or t.now
    smtp.script(old[0].address, rcpt=None)
    report = run(ctx, t, wait_for_retries=False)
    assert report.sent == 1
    assert ctx.notifications.get(old[0].id).state is MessageState.SENT
    assert smtp.received[-1].tabmail_id == old[0].id


def test_a_message_moves_to_another_backend_only_when_requeued(
    smtp_demo: AppContext, smtp: SmtpTestServer, tmp_path: Path
) -> None:
    ctx = smtp_demo
    use_smtp(ctx, smtp, **{"smtp.port": str(closed_port())})
    batch = queue(ctx)
    run(ctx, FakeTime(), wait_for_retries=False)  # the server is down: retrying, through smtp
    ctx.settings.set("backend", "file")
    ctx.settings.set("file.directory", str(tmp_path / "eml"))
    t = FakeTime()
    t.now += timedelta(days=1)
    run(ctx, t, wait_for_retries=False)  # still smtp: tried again there, nothing in the folder
    assert not (tmp_path / "eml").exists() or not list((tmp_path / "eml").iterdir())
    assert {m.attempts for m in ctx.notifications.messages(batch_id=batch)} == {2}

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tabmail",
            "--db",
            db_arg(ctx),
            "outbox",
            "requeue",
            "--batch",
            str(batch),
        ],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    n = len(ctx.notifications.messages(batch_id=batch))
    assert f"re-queued {n} message(s) to go through file" in done.stdout
    report = run(ctx, FakeTime())
    assert report.sent == n
    assert len(list((tmp_path / "eml").glob("*.eml"))) == n
