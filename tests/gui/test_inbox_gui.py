"""The inbox in the window: the Settings "Inbox" page and its Test button against the real
Dovecot, and a participant's reply shown in the message view (text, whole message, Reply)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import pytest
from PySide6.QtWidgets import QComboBox, QLineEdit
from pytestqt.qtbot import QtBot

from tabmail.gui.bridge import EventBridge
from tabmail.gui.message.view import MessageView
from tabmail.gui.rounds.model import RoundMessagesModel
from tabmail.gui.rounds.nodes import Column
from tabmail.gui.settings.dialog import SettingsDialog
from tabmail.gui.theme import Theme
from tabmail.services.context import AppContext
from tabmail.services.inbox import InboxChecker
from tests.servers.mailserver import MailServers
from tests.test_inbox_e2e import EXISTING, configure, deliver, reply_to, send_draw

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]


def type_in(dialog: SettingsDialog, key: str, text: str) -> None:
    editor = dialog.fields[key].editor
    if isinstance(editor, QComboBox):
        editor.setCurrentIndex(editor.findData(text))
    else:
        assert isinstance(editor, QLineEdit)
        editor.setText(text)


def run_inbox_test(qtbot: QtBot, dialog: SettingsDialog) -> str:
    box = dialog.inbox_box
    box.test_button.click()
    op = dialog.test_op
    assert op is not None
    qtbot.waitUntil(lambda: not op.is_running() and box.test_button.isEnabled(), timeout=30000)
    return box.test_result.text()


def test_inbox_page_tests_typed_values_and_says_what_failed(
    qtbot: QtBot, ctx: AppContext, mail: MailServers, qloop: asyncio.AbstractEventLoop
) -> None:
    dialog = SettingsDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.tabs.tabText(dialog.tabs.count() - 1) == "Inbox"
    for key, value in {
        "imap.host": "127.0.0.1",
        "imap.port": str(mail.imaps_port),
        "imap.security": "ssl",
        "imap.username": "tab",
        "tls.ca_file": str(mail.ca_file),
    }.items():
        type_in(dialog, key, value)
    dialog.secret_fields["imap-password"].edit.setText("wrong")
    assert "refused the login for 'tab'" in run_inbox_test(qtbot, dialog)
    dialog.secret_fields["imap-password"].edit.setText(mail.password)
    result = run_inbox_test(qtbot, dialog)
    assert result.startswith("✓ Logged in to 127.0.0.1 as tab; INBOX holds 0 message(s)"), result
    assert ctx.settings.get("imap.host") == ""  # a test saves nothing
    assert dialog.apply()
    assert ctx.settings.get("imap.port") == mail.imaps_port
    assert ctx.secrets.get("imap-password") == mail.password


def test_a_reply_is_shown_folded_with_the_whole_message_and_reply_one_click_away(
    qtbot: QtBot, ctx: AppContext, mail: MailServers
) -> None:
    configure(ctx, mail)
    # In a thread of its own: send_draw's asyncio.run must not leave this (GUI) thread without
    # an event loop for the tests that follow
    with ThreadPoolExecutor(1) as pool:
        sent = pool.submit(send_draw, ctx, mail).result(timeout=60)
    alice = sent[mail.address(EXISTING[0])]
    body = "Yes, I can chair.\n\nOn Tue, Tab Room <tab@tab.example> wrote:\n> Round 1: you are the chair\n"
    deliver(mail, reply_to(ctx, mail, alice, EXISTING[0], subject="Re: Round 1", body=body), EXISTING[0])
    mail.wait_for_messages("tab", 4)  # 3 DSNs and the reply
    # the round view, open while the mailbox is read, marks the row in place
    bridge = EventBridge(ctx.bus)
    rounds = RoundMessagesModel(ctx, Theme(), bridge)
    tournament = ctx.tournaments.get("demo-open")
    rounds.load(ctx.tournaments.get_round(tournament.id, 1).id)
    row = rounds.index_of_message(alice, Column.RECIPIENT)
    assert "✉" not in rounds.data(row)
    assert InboxChecker(ctx).check_blocking().reply_message_ids == [alice]
    assert rounds.data(row).endswith("✉ 1 reply (1 new)")
    assert rounds.reply_totals() == (1, 1)

    view = MessageView(ctx)
    qtbot.addWidget(view)
    view.show()
    message = ctx.notifications.get(alice)
    view.show_message(message, status=message.delivery_status.value)
    tab = view.tabs.indexOf(view.replies)
    assert view.tabs.tabText(tab) == "Replies (1, 1 new)"
    panel = view.replies
    assert panel.text.toPlainText() == "Yes, I can chair."
    assert ctx.inbox.entries(kinds=("reply",))[0].read_at is None  # on another tab: not seen yet
    view.tabs.setCurrentIndex(tab)
    assert ctx.inbox.entries(kinds=("reply",))[0].read_at is not None  # seen: read
    assert view.tabs.tabText(tab) == "Replies (1)"
    assert panel.model.index(0, 2).data() == "Reply"  # no longer "Reply · new"
    qtbot.waitUntil(lambda: rounds.reply_totals() == (1, 0), timeout=5000)  # told through the bus
    assert rounds.data(row).endswith("✉ 1 reply") and rounds.reply_totals() == (1, 0)
    panel.raw_button.setChecked(True)
    assert "> Round 1: you are the chair" in panel.text.toPlainText()
    assert "In-Reply-To:" in panel.text.toPlainText()
    url = panel.reply_url()
    assert url is not None and url.startswith(f"mailto:{mail.address(EXISTING[0])}?subject=Re%3A%20Round%201")
    inbound_id = ctx.inbox.entries(kinds=("reply",))[0].header_message_id
    assert f"In-Reply-To={inbound_id}" in unquote(url)
