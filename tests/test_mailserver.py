"""The loopback Postfix + Dovecot fixture does what the inbox tests rely on."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient

from tests.servers.mailserver import MailServers


def _message(to: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "tab@tab.example"
    msg["To"] = to
    msg["Subject"] = "Round 1"
    msg["Message-ID"] = message_id
    msg.set_content("hello")
    return msg.as_bytes()


def test_relay_accepts_unknown_users_and_bounces_them_to_the_sender(mail: MailServers) -> None:
    with smtplib.SMTP("127.0.0.1", mail.relay_port, timeout=10) as smtp:
        refused = smtp.sendmail(
            "tab@tab.example",
            ["alice@tab.example", "ghost@tab.example"],
            _message("alice@tab.example", "<m1@tab.example>"),
        )
    assert refused == {}
    mail.wait_for_messages("alice", 1)
    mail.wait_for_messages("tab", 1)
    context = ssl.create_default_context(cafile=str(mail.ca_file))
    with IMAPClient("127.0.0.1", port=mail.imaps_port, ssl=True, ssl_context=context, timeout=10) as imap:
        imap.login("tab", mail.password)
        imap.select_folder("INBOX", readonly=True)
        uids = imap.search("ALL")
        assert len(uids) == 1
        raw = imap.fetch(uids, ["RFC822"])[uids[0]][b"RFC822"]
    assert b"report-type=delivery-status" in raw
    assert b"ghost@tab.example" in raw and b"Status: 5.1.1" in raw
    assert b"<m1@tab.example>" in raw  # the original comes back whole


def test_strict_port_refuses_unknown_users_at_rcpt(mail: MailServers) -> None:
    with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as smtp:
        refused = smtp.sendmail(
            "tab@tab.example",
            ["bob@tab.example", "ghost@tab.example"],
            _message("bob@tab.example", "<m2@tab.example>"),
        )
    assert refused["ghost@tab.example"][0] == 550
    mail.wait_for_messages("bob", 1)


def test_imap_starttls_verifies_against_the_test_ca_only(mail: MailServers) -> None:
    context = ssl.create_default_context(cafile=str(mail.ca_file))
    with IMAPClient("127.0.0.1", port=mail.imap_port, ssl=False, timeout=10) as imap:
        imap.starttls(context)
        imap.login("tab", mail.password)
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            "127.0.0.1", port=mail.imaps_port, ssl=True, ssl_context=ssl.create_default_context(), timeout=10
        )


def test_tabmail_pipelines_to_postfix_and_keeps_step_when_a_recipient_is_refused(mail: MailServers) -> None:
    # Real Postfix offers PIPELINING: MAIL FROM, RCPT TO and DATA go in one write. A refused
    # recipient's pipelined DATA is answered "554 no valid recipients"; the connection carries on.
    import asyncio

    from tabmail.backends.base import Outcome
    from tabmail.backends.smtp import SmtpBackend, SmtpConfig
    from tests.test_backend_smtp import RecordingHooks, make_message

    with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("pipelining")
    messages = [
        make_message(1, to="alice@tab.example"),
        make_message(2, to="ghost@tab.example"),
        make_message(3, to="bob@tab.example"),
    ]
    backend = SmtpBackend(
        SmtpConfig("127.0.0.1", mail.smtp_port, "none", connections=1, local_hostname="laptop.tab.example")
    )
    hooks = RecordingHooks()

    asyncio.run(backend.send(messages, hooks))

    sent, ghost, also_sent = (hooks.results[m.id] for m in messages)
    assert sent.outcome is also_sent.outcome is Outcome.SENT
    assert (ghost.outcome, ghost.code, ghost.flag_address) == (Outcome.PERMANENT, 550, True)
    assert ghost.detail.startswith("recipient refused: 550 5.1.1")
    mail.wait_for_messages("alice", 1)
    mail.wait_for_messages("bob", 1)
