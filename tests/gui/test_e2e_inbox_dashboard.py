"""End to end through the window, with a real Postfix and Dovecot: a draw composed in the dialog
goes out through Postfix, Postfix's DSNs for the unknown users reach the tab room's mailbox, the
background worker (waiting in IMAP IDLE) reads them, and the round view shows exactly those rows
bounced and highlighted; a participant's reply shows as a marker on their row and in the
message view."""

from __future__ import annotations

import asyncio
import time

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, Event
from tabmail.gui.rounds import Column
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.inbox import InboxReport
from tests.gui.test_e2e_dashboard import (
    assert_highlighted,
    close_dialog,
    compose_and_send,
    first_round,
    open_window,
    row_of,
)
from tests.servers.mailserver import MailServers
from tests.test_inbox_e2e import configure, deliver, reply_to

pytestmark = [pytest.mark.gui, pytest.mark.timeout(180)]
GHOSTS = ("ghost.alpha", "ghost.beta")


def give_everyone_a_tab_example_address(ctx: AppContext, mail: MailServers) -> dict[str, str]:
    """Round 1's recipients get addresses Postfix knows (alice…erin; everyone else frank), except
    two that no mailbox has. Returns local part -> address for the named ones."""
    plan = notify.plan(ctx, "demo-open", Event.DRAW, round_seq=1, audience=Audience.ALL)
    people = sorted({p.recipient.person_id for p in plan.recipients if p.recipient.person_id is not None})
    named = ["alice", "bob", "carol", "dave", "erin", *GHOSTS]
    for i, person_id in enumerate(people):
        local = named[i] if i < len(named) else "frank"
        ctx.tournaments.set_person_email(person_id, mail.address(local), "test")
    return {local: mail.address(local) for local in named}


def test_postfix_dsns_and_a_reply_reach_the_round_view_through_idle(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop, mail: MailServers
) -> None:
    assert load_demo_if_empty(ctx) is not None
    configure(ctx, mail)
    addresses = give_everyone_a_tab_example_address(ctx, mail)
    window = open_window(qtbot, ctx, qsettings)
    window.start_background()  # the outbox, and the mailbox: checked, then IDLE
    assert window.select_round(first_round(ctx))
    view = window.round_view

    dialog, n = compose_and_send(qtbot, window)
    close_dialog(qtbot, window, dialog)
    qtbot.waitUntil(lambda: view.model.message_count() == n, timeout=10000)
    ghosts = [row_of(view, addresses[g]) for g in GHOSTS]
    others = [m.id for m in ctx.notifications.messages() if m.id not in ghosts]
    # Postfix bounces the two unknown users; the worker, in IDLE, reads the DSNs at once
    for mid in ghosts:
        qtbot.waitUntil(lambda mid=mid: view.model.status_of(mid) == "bounced", timeout=30000)
        assert_highlighted(view, mid, "bounced")
    assert {view.model.status_of(mid) for mid in others} == {"sent"}
    qtbot.waitUntil(lambda: window.status.inbox.isVisible(), timeout=5000)
    assert window.status.inbox.text().startswith("Inbox read ")
    assert (
        "delivery report(s)" in window.status.inbox.toolTip()
        or "new message(s)" in window.status.inbox.toolTip()
    )
    assert view.model.index_of_message(ghosts[0], Column.ADDRESS).data() == addresses[GHOSTS[0]]

    alice = row_of(view, addresses["alice"])
    deliver(
        mail, reply_to(ctx, mail, alice, "alice", subject="Re: Round 1", body="Running late, sorry."), "alice"
    )

    def recipient() -> str:  # looked up each time: a stored QModelIndex goes stale when rows change
        return str(view.model.index_of_message(alice, Column.RECIPIENT).data())

    qtbot.waitUntil(lambda: recipient().endswith("✉ 1 reply (1 new)"), timeout=30000)
    assert "1 reply (1 unread)" in view.summary.text()
    assert view.select_message(alice)
    assert view.message_view.replies.text.toPlainText() == "Running late, sorry."
    qtbot.wait(300)
    assert recipient().endswith("✉ 1 reply (1 new)")  # the Message tab is shown: not read yet
    view.message_view.tabs.setCurrentWidget(view.message_view.replies)
    qtbot.waitUntil(lambda: recipient().endswith("✉ 1 reply"), timeout=5000)  # seen: read
    # the person's panel lists it too, and their address is unchanged
    person_id = ctx.notifications.get(alice).person_id
    assert person_id is not None
    assert window.select_participants(ctx.tournaments.get("demo-open").id)
    people = window.participants_page
    assert people.select_person(person_id)
    assert "Reply: Running late, sorry." in people.replies.text() and "(new)" not in people.replies.text()
    assert ctx.tournaments.get_person(person_id).email == addresses["alice"]
    window.close()


def test_a_dropped_mailbox_connection_is_said_in_the_status_bar_and_mail_still_arrives(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop, mail: MailServers
) -> None:
    """The server drops the worker's IDLE connection: the status bar says what the inbox waits
    for, and a message delivered meanwhile is read within seconds, not after imap.poll_seconds."""
    configure(ctx, mail)
    ctx.settings.set_text("imap.poll_seconds", "300")
    window = open_window(qtbot, ctx, qsettings)
    reports: list[InboxReport] = []
    shown: list[str] = []
    window.worker.inbox_completed.connect(reports.append)
    window.worker.inbox_waiting.connect(lambda _e: shown.append(window.status.inbox.text()))
    window.start_background()
    qtbot.waitUntil(lambda: window.status.inbox.text().startswith("Inbox read "), timeout=15000)
    # the check's connection is closed before its result shows; a kick that comes before the
    # IDLE connection opens finds nothing to drop, so kick until one lands
    deadline = time.monotonic() + 15
    while not shown:
        assert time.monotonic() < deadline, "no kick ended the worker's IDLE wait"
        mail.kick("tab", none_ok=True)
        qtbot.wait(300)
    assert shown[0] == "Inbox: connection lost; retrying in 2 s"
    mail.append(
        "tab",
        b"From: someone@example.org\r\nTo: tab@tab.example\r\nSubject: hello\r\n"
        b"Message-ID: <dropped-1@example.org>\r\n\r\nhello\r\n",
    )
    qtbot.waitUntil(lambda: sum(r.new for r in reports) == 1, timeout=10000)
    qtbot.waitUntil(lambda: window.status.inbox.text().startswith("Inbox read "), timeout=5000)
    assert reports[-1].ok and len(shown) == 1
    window.close()


def test_a_refused_mailbox_login_waits_for_new_settings_and_says_so(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop, mail: MailServers
) -> None:
    """A refused login is not tried again every interval (a provider would lock the account):
    the status bar says the inbox waits for the settings, the next intervals do not log in, and
    the right password is used at the next interval after it is stored."""
    configure(ctx, mail)
    ctx.secrets.set("imap-password", "not-the-password")
    ctx.settings.set_text("imap.poll_seconds", "5")  # the window's shortest interval
    window = open_window(qtbot, ctx, qsettings)
    reports: list[InboxReport] = []
    window.worker.inbox_completed.connect(reports.append)
    window.start_background()
    waiting = "Inbox: cannot be read; waiting for the settings to change"
    qtbot.waitUntil(lambda: window.status.inbox.text() == waiting, timeout=15000)
    assert "refused the login" in window.status.inbox.toolTip()
    qtbot.wait(11000)  # two intervals: the loop looks at the settings, and does not log in
    assert len(reports) == 1 and reports[0].must_fix
    assert window.status.inbox.text() == waiting
    ctx.secrets.set("imap-password", mail.password)
    qtbot.waitUntil(lambda: window.status.inbox.text().startswith("Inbox read "), timeout=15000)
    assert len(reports) == 2 and reports[-1].ok
    window.close()
