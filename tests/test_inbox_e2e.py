"""End to end with a real Postfix and Dovecot: a draw sent through Postfix to existing and unknown
users, Postfix's own DSNs, a reply, an out-of-office and a forged anchor in the tab mailbox, then
``tabmail inbox check --once`` (a subprocess on the same database) and the CLI's views."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from tabmail.domain.notification import Audience, DeliveryStatus, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.inbox import InboxChecker
from tabmail.services.outbox import Outbox
from tabmail.services.sending import build_backend
from tabmail.status.imap import FetchedMessage
from tests.servers.mailserver import MailServers

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]
EXISTING = ("alice", "bob", "carol", "dave", "erin")
UNKNOWN = ("ghost.one", "ghost.two", "ghost.three")


def configure(ctx: AppContext, mail: MailServers, *, verp: bool = False) -> None:
    for key, value in {
        "backend": "smtp",
        "smtp.host": "127.0.0.1",
        "smtp.port": str(mail.relay_port),  # accepts everyone, bounces unknown users later
        "smtp.security": "none",
        "from_address": "tab@tab.example",
        "reply_to": "tab@tab.example",
        "imap.host": "127.0.0.1",
        "imap.port": str(mail.imaps_port),
        "imap.security": "ssl",
        "imap.username": "tab",
        "tls.ca_file": str(mail.ca_file),
        "smtp.verp": "true" if verp else "false",
    }.items():
        ctx.settings.set_text(key, value)
    ctx.secrets.set("imap-password", mail.password)


def send_draw(ctx: AppContext, mail: MailServers) -> dict[str, str]:
    """Round 1's draw to eight adjudicators: five existing mailboxes, three unknown users.
    Returns address -> tabmail message id."""
    assert load_demo_if_empty(ctx) is not None
    plan = notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    chosen = [p for p in plan.recipients if p.selected_by_default][: len(EXISTING) + len(UNKNOWN)]
    for p, local in zip(chosen, EXISTING + UNKNOWN, strict=True):
        assert p.recipient.person_id is not None
        ctx.tournaments.set_person_email(p.recipient.person_id, mail.address(local), "test")
    plan = notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    wanted = {mail.address(x) for x in EXISTING + UNKNOWN}
    keys = [p.key for p in plan.recipients if p.recipient.address in wanted]
    queued = notify.enqueue(ctx, plan, selected=keys)
    outbox = Outbox(ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus)
    report = asyncio.run(outbox.run(wait_for_retries=False))
    assert (report.failed, report.uncertain) == (0, 0)
    messages = ctx.notifications.messages(batch_id=queued.batch_id)
    assert len(messages) == len(wanted) and all(m.state is MessageState.SENT for m in messages)
    return {m.address: m.id for m in messages}


def reply_to(
    ctx: AppContext,
    mail: MailServers,
    message_id: str,
    sender: str,
    *,
    subject: str,
    body: str,
    anchor: str | None = None,
) -> bytes:
    """A participant's answer to one of our messages, as their mail client would write it."""
    original = ctx.notifications.raw(message_id).decode()
    headers = dict(
        line.split(": ", 1) for line in original.split("\r\n\r\n", 1)[0].replace("\r\n ", " ").split("\r\n")
    )
    msg = EmailMessage()
    msg["From"] = mail.address(sender)
    msg["To"] = "tab@tab.example"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg["In-Reply-To"] = headers["Message-ID"]
    refs = headers["References"].split()
    if anchor is not None:
        refs = [anchor if r.startswith("<v1.") else r for r in refs]
    msg["References"] = " ".join([*refs, headers["Message-ID"]])
    msg.set_content(body)
    return msg.as_bytes()


def deliver(mail: MailServers, raw: bytes, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as smtp:
        smtp.sendmail(mail.address(sender), ["tab@tab.example"], raw)


def cli(ctx: AppContext, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("TABMAIL_DB", None)
    # No keyring in the subprocess: the password and thread key come from the environment
    env |= {
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "TABMAIL_IMAP_PASSWORD": ctx.secrets.get("imap-password") or "",
        "TABMAIL_THREAD_KEY": ctx.secrets.get("thread-key") or "",
    }
    return subprocess.run(
        [sys.executable, "-m", "tabmail", "--db", ctx.db.url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.slow_on_postgresql  # the longest test here; its storage on PostgreSQL is covered by the other tests of this module
@pytest.mark.timeout(180)
def test_draw_through_postfix_bounces_replies_and_forgeries(ctx: AppContext, mail: MailServers) -> None:
    configure(ctx, mail)
    sent = send_draw(ctx, mail)
    # Postfix accepted everyone; its DSNs for the unknown users reach the tab mailbox
    mail.wait_for_messages("tab", len(UNKNOWN))
    a, b, c = (sent[mail.address(x)] for x in ("alice", "bob", "carol"))
    deliver(
        mail,
        reply_to(
            ctx,
            mail,
            a,
            "alice",
            subject="Re: Round 1",
            body="I cannot chair, my partner is ill.\n\nOn Tue, Tab Room wrote:\n> Round 1\n",
        ),
        "alice",
    )
    deliver(
        mail,
        reply_to(ctx, mail, b, "bob", subject="Out of office: Round 1", body="I am away until Monday."),
        "bob",
    )
    forged = "<v1." + "0" * 64 + "@tab.example>"
    deliver(
        mail,
        reply_to(ctx, mail, c, "carol", subject="Re: Round 1", body="Move me to Hall B.", anchor=forged),
        "carol",
    )
    mail.wait_for_messages("tab", len(UNKNOWN) + 3)

    done = cli(ctx, "inbox", "check", "--once")
    assert done.returncode == 0, done.stderr
    assert "3 delivery report(s), 2 reply(ies), 1 auto-reply(ies)" in done.stdout, done.stdout
    assert "3 address(es) flagged, 1 matched none of our messages" in done.stdout, done.stdout

    # exactly the unknown users are flagged, their messages bounced, matched by the exact ids
    flags = json.loads(cli(ctx, "flags", "--json").stdout)
    assert sorted(f["address"] for f in flags) == sorted(mail.address(x) for x in UNKNOWN)
    assert {f["source"] for f in flags} == {"inbox"}
    status = json.loads(cli(ctx, "status", "--tournament", "demo-open", "--round", "1", "--json").stdout)
    rows = {m["address"]: m for b_ in status["batches"] for m in b_["messages"]}
    for local in UNKNOWN:
        row = rows[mail.address(local)]
        assert (row["status"], row["status_source"], row["address_flagged"]) == ("bounced", "inbox", True)
        assert "5.1.1" in row["reason"]
    for local in EXISTING:
        assert rows[mail.address(local)]["status"] != "bounced"
    inbox_rows = ctx.inbox.entries(kinds=("dsn",))
    assert sorted(e.message_id or "" for e in inbox_rows) == sorted(sent[mail.address(x)] for x in UNKNOWN)
    assert {e.matched_by for e in inbox_rows} == {"x_tabmail_id"}

    # the reply is attached to Alice's message and person; the out-of-office is no bounce; the
    # forged anchor is kept unattributed
    replies = json.loads(cli(ctx, "replies", "--tournament", "demo-open", "--round", "1", "--json").stdout)
    assert [(r["message_id"], r["text"], r["different_sender"]) for r in replies] == [
        (a, "I cannot chair, my partner is ill.", False)
    ]
    assert rows[mail.address("alice")]["replies"] == 1
    (ooo,) = ctx.inbox.entries(kinds=("auto_reply",))
    assert ooo.message_id == b
    assert (
        rows[mail.address("bob")]["status"] != "bounced" and not rows[mail.address("bob")]["address_flagged"]
    )
    (unattributed,) = json.loads(cli(ctx, "replies", "--unmatched", "--json").stdout)
    assert (unattributed["from"], unattributed["message_id"]) == (mail.address("carol"), None)
    assert "does not check out" in unattributed["note"]

    # reading the same mailbox again changes nothing
    before = (ctx.inbox.counts(), ctx.tracking.event_count(), len(ctx.flags.active()))
    again = cli(ctx, "inbox", "check", "--once")
    assert again.returncode == 0 and again.stdout.split(" ", 1)[1].startswith("0 new message(s)"), (
        again.stdout
    )
    assert (ctx.inbox.counts(), ctx.tracking.event_count(), len(ctx.flags.active())) == before


@pytest.mark.timeout(180)
def test_uidvalidity_change_rescans_without_duplicates(ctx: AppContext, mail: MailServers) -> None:
    configure(ctx, mail)
    send_draw(ctx, mail)
    mail.wait_for_messages("tab", len(UNKNOWN))
    checker = InboxChecker(ctx)
    first = checker.check_blocking()
    assert (first.new, first.kinds) == (3, {"dsn": 3})
    before = (ctx.inbox.counts(), ctx.tracking.event_count())
    state = ctx.settings.get_state("inbox.folder.INBOX")
    mail.set_uidvalidity("tab", "INBOX", int(state["uidvalidity"]) + 7)
    second = checker.check_blocking()
    assert second.rescanned and second.read == 3 and second.new == 0
    assert (ctx.inbox.counts(), ctx.tracking.event_count()) == before


@pytest.mark.timeout(180)
def test_connection_dropped_mid_fetch_resumes(ctx: AppContext, mail: MailServers) -> None:
    configure(ctx, mail, verp=True)
    sent = send_draw(ctx, mail)
    mail.wait_for_messages("tab", len(UNKNOWN))
    seen: list[int] = []

    def drop_after_first(m: FetchedMessage) -> None:
        seen.append(m.uid)
        if len(seen) == 1:
            mail.kick("tab")  # the server hangs up before the rest is fetched

    report = InboxChecker(ctx, after_message=drop_after_first).check_blocking()
    # the first chunk was fetched before the drop: whatever was read is kept or read again
    total_first = report.new
    resumed = InboxChecker(ctx).check_blocking()
    assert resumed.online
    assert total_first + resumed.new == 3
    assert ctx.inbox.counts() == {"dsn": 3}
    statuses = {m.address: m.delivery_status for m in ctx.notifications.messages()}
    assert {a for a, s in statuses.items() if s is DeliveryStatus.BOUNCED} == {
        mail.address(x) for x in UNKNOWN
    }
    # with VERP the envelope sender named each message: the DSNs came back to tab+tm-<id>
    verp = {e.message_id for e in ctx.inbox.entries(kinds=("dsn",))}
    assert verp == {sent[mail.address(x)] for x in UNKNOWN}


@pytest.mark.timeout(180)
def test_postfix_delay_warning_shows_deferred_and_flags_nothing(ctx: AppContext, mail: MailServers) -> None:
    configure(ctx, mail)
    assert load_demo_if_empty(ctx) is not None
    plan = notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    first = next(p for p in plan.recipients if p.selected_by_default)
    assert first.recipient.person_id is not None
    ctx.tournaments.set_person_email(first.recipient.person_id, mail.address("stuck"), "test")
    plan = notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    keys = [p.key for p in plan.recipients if p.recipient.address == mail.address("stuck")]
    mail.make_undeliverable("stuck")  # Postfix defers (4.2.0) and warns the sender after 2 s
    try:
        queued = notify.enqueue(ctx, plan, selected=keys)
        outbox = Outbox(ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus)
        asyncio.run(outbox.run(wait_for_retries=False))
        mail.wait_for_messages("tab", 1, timeout=60)
        report = InboxChecker(ctx).check_blocking()
        assert report.kinds == {"dsn": 1}
        (message,) = ctx.notifications.messages(batch_id=queued.batch_id)
        assert message.delivery_status is DeliveryStatus.DEFERRED
        assert ctx.flags.active() == {}
        (entry,) = ctx.inbox.entries(kinds=("dsn",))
        assert entry.message_id == message.id
        assert [r["action"] for r in entry.detail["recipients"]] == ["delayed"]
    finally:
        mail.purge_queue()
        mail.make_deliverable("stuck")
