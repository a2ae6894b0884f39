"""End to end with a real Postfix and Dovecot: spam reports shaped exactly like real feedback
loops' (Sisimai's samples: Return Path's ARF report, whose original hides its recipient, and
Microsoft's JMRP complaint) are delivered through Postfix into the tab mailbox about two of our
messages; `tabmail inbox check --once` flags exactly those addresses as spam reports, the CLI
says so, and the window shows them as spam reports in the round view and the Problems view."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from tabmail.gui.navigator import BADGE, ROUND
from tabmail.services.context import AppContext
from tests.datafiles import data_path
from tests.gui.test_e2e_dashboard import assert_highlighted, first_round, open_window
from tests.servers.mailserver import MailServers
from tests.test_inbox_e2e import UNKNOWN, cli, configure, deliver, send_draw

pytestmark = [pytest.mark.gui, pytest.mark.timeout(180)]


def our_headers(ctx: AppContext, message_id: str) -> str:
    """The header block of one of our messages as it was sent (LF line ends)."""
    raw = ctx.notifications.raw(message_id).decode().replace("\r\n", "\n")
    return raw.split("\n\n", 1)[0]


def returnpath_report(ctx: AppContext, message_id: str) -> bytes:
    """Sisimai's arf-15 (Return Path FBL) with its returned original replaced by ours, whose To
    the loop hides as the real one did: only our Message-ID names the recipient."""
    sample = data_path("sisimai-arf", "arf-15.eml").read_text()
    head, _original = sample.split("Content-Type: message/rfc822\n\n", 1)
    headers = "\n".join(
        'To: "undisclosed"' if line.startswith("To:") else line
        for line in our_headers(ctx, message_id).split("\n")
    )
    return (head + "Content-Type: message/rfc822\n\n" + headers + "\n\nRound 1\n").encode()


def dated_now(report: bytes) -> bytes:
    """The sample's own Date is years old; a feedback loop dates its report when it sends it."""
    head, body = report.split(b"\n\n", 1)
    lines = [
        f"Date: {formatdate()}".encode() if line.startswith(b"Date:") else line for line in head.split(b"\n")
    ]
    return b"\n".join(lines) + b"\n\n" + body


def jmrp_report(ctx: AppContext, message_id: str, address: str) -> bytes:
    """Sisimai's arf-23 (Microsoft JMRP) with its returned original replaced by ours."""
    sample = data_path("sisimai-arf", "arf-23.eml").read_text()
    head, rest = sample.split("Content-Disposition: inline\n\n", 1)
    boundary_end = rest[rest.rindex("\n--F0000EEE2") :]
    original = f"X-HmXmrOriginalRecipient: {address}\n{our_headers(ctx, message_id)}\n\nRound 1\n"
    return (head + "Content-Disposition: inline\n\n" + original + boundary_end).encode()


def test_real_spam_report_formats_through_postfix_flag_the_address_in_cli_and_window(
    qtbot: QtBot, ctx: AppContext, mail: MailServers, qsettings: QSettings
) -> None:
    configure(ctx, mail)
    sent = send_draw(ctx, mail)
    mail.wait_for_messages("tab", len(UNKNOWN))  # Postfix's DSNs for the unknown users
    alice, bob = mail.address("alice"), mail.address("bob")
    deliver(mail, dated_now(returnpath_report(ctx, sent[alice])), "carol")
    deliver(mail, dated_now(jmrp_report(ctx, sent[bob], bob)), "carol")
    mail.wait_for_messages("tab", len(UNKNOWN) + 2)

    done = cli(ctx, "inbox", "check", "--once")
    assert done.returncode == 0, done.stderr
    assert "3 delivery report(s), 2 spam report(s)" in done.stdout, done.stdout
    assert "5 address(es) flagged" in done.stdout and "matched none" not in done.stdout, done.stdout
    flags = {f["address"]: f for f in json.loads(cli(ctx, "flags", "--json").stdout)}
    assert sorted(flags) == sorted([alice, bob, *(mail.address(x) for x in UNKNOWN)])
    assert (flags[alice]["kind"], flags[alice]["source"]) == ("spam", "inbox")
    assert (flags[bob]["kind"], flags[bob]["source"]) == ("spam", "inbox")
    status = json.loads(cli(ctx, "status", "--tournament", "demo-open", "--round", "1", "--json").stdout)
    rows = {m["address"]: m for b in status["batches"] for m in b["messages"]}
    for address in (alice, bob):
        assert (rows[address]["status"], rows[address]["status_source"]) == ("spam_report", "inbox")
        assert rows[address]["address_flagged"] is True
    assert {e.message_id for e in ctx.inbox.entries(kinds=("feedback",))} == {sent[alice], sent[bob]}

    window = open_window(qtbot, ctx, qsettings)
    assert window.select_round(first_round(ctx))
    view = window.round_view
    for address in (alice, bob):
        assert_highlighted(view, sent[address], "spam_report")
    node = window.navigator.model.find((ROUND, first_round(ctx)))
    qtbot.waitUntil(lambda: node.data(BADGE) == 5, timeout=10000)  # 3 bounced, 2 spam reports
    window.close()
