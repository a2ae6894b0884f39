"""The IMAP reader and the checker's settings against the real Dovecot: size caps, TLS, plain
text only to loopback, one-sentence failures, IDLE."""

from __future__ import annotations

import threading
import time
from email.message import EmailMessage

import pytest

from tabmail.domain.errors import TabmailError
from tabmail.services import inbox as inbox_service
from tabmail.services.context import AppContext
from tabmail.services.inbox import InboxChecker
from tabmail.services.inbox_watch import InboxWatcher
from tabmail.status.imap import ImapMailbox, ImapProblem, ImapSettings
from tests.servers.mailserver import MailServers
from tests.test_inbox_e2e import configure

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

TID = "01M8VRDJZMCR7QSK0H1FS2W2W6"


def settings(mail: MailServers, **kw: object) -> ImapSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": mail.imaps_port,
        "security": "ssl",
        "username": "tab",
        "password": mail.password,
        "ca_file": str(mail.ca_file),
        "timeout": 10.0,
    }
    values.update(kw)
    return ImapSettings(**values)  # type: ignore[arg-type]


def big_reply() -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@tab.example"
    msg["To"] = "tab@tab.example"
    msg["Subject"] = "Re: Round 1 (with my CV)"
    msg["Message-ID"] = "<big@client.example>"
    msg["In-Reply-To"] = f"<{TID}@tab.example>"
    msg.set_content("Here is my CV, I can chair.\n")
    msg.add_attachment(
        b"\x00" * (20 * 1024 * 1024), maintype="application", subtype="octet-stream", filename="cv.bin"
    )
    return msg.as_bytes()


@pytest.mark.timeout(120)
def test_a_20_mb_attachment_is_never_downloaded(mail: MailServers) -> None:
    mail.append("tab", big_reply())
    with ImapMailbox(settings(mail)) as box:
        box.open()
        (fetched,) = list(box.fetch(box.uids_after(0)))
    assert fetched.size > 20 * 1024 * 1024
    assert fetched.truncated and box.bytes_fetched < 200 * 1024
    from tabmail.status.inbound import InboundKind, classify

    got = classify(fetched.raw)
    assert got.kind is InboundKind.REPLY and got.reply_text == "Here is my CV, I can chair."


@pytest.mark.timeout(60)
def test_starttls_and_a_clear_sentence_for_each_failure(mail: MailServers) -> None:
    with ImapMailbox(settings(mail, port=mail.imap_port, security="starttls")) as box:
        assert box.open().uidvalidity > 0
    with (
        pytest.raises(ImapProblem, match="refused the login for 'tab'"),
        ImapMailbox(settings(mail, password="wrong")) as box,
    ):
        box.open()
    with pytest.raises(ImapProblem, match="not trusted"), ImapMailbox(settings(mail, ca_file=None)) as box:
        box.open()
    with pytest.raises(ImapProblem, match="folder 'Nope'"), ImapMailbox(settings(mail, folder="Nope")) as box:
        box.open()
    with (
        pytest.raises(ImapProblem, match="unencrypted"),
        ImapMailbox(settings(mail, host="mail.example.org", security="none")) as box,
    ):
        box.open()
    # plain text is fine to this machine
    with ImapMailbox(settings(mail, port=mail.imap_port, security="none")) as box:
        assert box.open().idle


@pytest.mark.timeout(60)
def test_offline_is_a_state_and_the_test_button_says_what_worked(ctx: AppContext, mail: MailServers) -> None:
    configure(ctx, mail)
    assert "INBOX holds 0 message(s)" in inbox_service.test_connection(ctx)
    ctx.settings.set_text("imap.port", "1")  # nothing listens there
    report = InboxChecker(ctx).check_blocking()
    assert not report.online and report.reason == ""
    assert "could not be reached" in report.summary()
    with pytest.raises(TabmailError, match="cannot be reached"):
        inbox_service.test_connection(ctx)


@pytest.mark.slow_on_postgresql  # IMAP IDLE's timing, not the store
@pytest.mark.timeout(60)
def test_idle_wakes_up_when_a_message_arrives(ctx: AppContext, mail: MailServers) -> None:
    configure(ctx, mail)
    watcher = InboxWatcher(InboxChecker(ctx))
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(watcher.idle(30)))
    thread.start()
    # Deliver until the IDLE connection reports new mail (a message that lands before IDLE has
    # started is not news to it); give up after a deadline
    deadline = time.monotonic() + 20
    sent = 0
    while thread.is_alive() and time.monotonic() < deadline:
        mail.append("tab", big_reply()[:2000] + b"\r\n")
        sent += 1
        thread.join(0.5)
    assert woke == [True], f"IDLE did not report any of {sent} delivered message(s)"


@pytest.mark.timeout(60)
def test_mail_that_lands_between_a_check_and_idle_is_news_at_once(ctx: AppContext, mail: MailServers) -> None:
    """IDLE announces only what arrives after it starts: a reply that lands after the check read
    the mailbox but before the IDLE connection opened used to wait for the next timed check."""
    configure(ctx, mail)
    checker = InboxChecker(ctx)
    watcher = InboxWatcher(checker)
    assert checker.check_blocking().ok
    mail.append("tab", big_reply()[:2000] + b"\r\n")
    started = time.monotonic()
    assert watcher.idle(10) is True
    assert time.monotonic() - started < 5
    assert checker.check_blocking().read == 1
    assert watcher.idle(1) is False  # nothing new after that check: IDLE waits as before
