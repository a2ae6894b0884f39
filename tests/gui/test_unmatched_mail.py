"""The "Unmatched Mail" window: replies, bounces and spam reports that matched none of our
messages, each with its folded text and the whole message as plain text; a reply attached by
hand (who and when recorded, Edit → Undo detaches it); reachable from the menu and from the
round view's unmatched events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QPlainTextEdit
from pytestqt.qtbot import QtBot

from tabmail.domain.inbox import InboxEntry
from tabmail.gui.inbox import UnmatchedMailDialog
from tabmail.gui.inbox.attach import AttachDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.navigator import REPLY_BADGE, ROUND
from tabmail.services import replies
from tabmail.services.context import AppContext
from tests.inbox_support import add_inbox, two_team_sent

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

STRANGER = "coach.parent@elsewhere.example"


@pytest.fixture(autouse=True)
def _loop(qloop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    return qloop


@pytest.fixture
def mailbox(ctx: AppContext) -> dict[str, object]:
    sent = two_team_sent(ctx)
    draw = sent["draw"]
    add_inbox(ctx, draw[0])  # matched: not listed
    reply = add_inbox(ctx, None, sender=STRANGER, subject="Re: Round 1 draw", text="Our speaker is ill.")
    bounce = add_inbox(
        ctx,
        None,
        kind="dsn",
        sender="MAILER-DAEMON@mx.example",
        subject="Undelivered Mail Returned to Sender",
        detail={
            "recipients": [
                {
                    "address": "old@school.example",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnostic": "no such user",
                }
            ]
        },
    )
    report = add_inbox(
        ctx,
        None,
        kind="feedback",
        sender="abuse@126.example.com",
        subject="DMARC test message",
        detail={
            "feedback_type": "auth-failure",
            "recipients": [
                {"address": "k@example.org", "action": "reported", "status": "", "diagnostic": "auth-failure"}
            ],
        },
    )
    return {"draw": draw, "reply": reply, "bounce": bounce, "report": report}


def window_for(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> MainWindow:
    window = MainWindow(ctx, qsettings=QSettings(str(tmp_path / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def rows(dialog: UnmatchedMailDialog) -> list[tuple[str, str, str]]:
    m = dialog.model
    return [(m.index(r, 1).data(), m.index(r, 2).data(), m.index(r, 3).data()) for r in range(m.rowCount())]


def test_unmatched_mail_lists_shows_and_attaches_by_hand_with_undo(
    qtbot: QtBot, ctx: AppContext, mailbox: dict[str, object], tmp_path: Path
) -> None:
    window = window_for(qtbot, ctx, tmp_path)
    assert window.menus.unmatched_mail_action in window.menus.notifications_menu.actions()
    window.menus.unmatched_mail_action.trigger()
    dialog = window.unmatched_mail
    assert isinstance(dialog, UnmatchedMailDialog) and dialog.isVisible()
    assert sorted(rows(dialog)) == sorted(
        [
            (STRANGER, "Re: Round 1 draw", "Reply"),
            ("MAILER-DAEMON@mx.example", "Undelivered Mail Returned to Sender", "Bounce"),
            ("abuse@126.example.com", "DMARC test message", "Report (auth-failure)"),
        ]
    )
    assert dialog.note.text().startswith("3 messages from the tab room's mailbox matched none")

    # a bounce: its recipients, the reason it matched nothing; never attached by hand
    assert dialog.select_entry(int(mailbox["bounce"]))  # type: ignore[call-overload]
    assert dialog.text.toPlainText() == "old@school.example: Bounce — 5.1.1 no such user"
    assert "returns none of our messages" in dialog.why.text()
    assert not dialog.attach_button.isEnabled()

    # a reply: folded text; the whole message as plain text, its remote image never loaded
    assert dialog.select_entry(int(mailbox["reply"]))  # type: ignore[call-overload]
    assert isinstance(dialog.text, QPlainTextEdit)
    assert dialog.text.toPlainText() == "Our speaker is ill."
    dialog.raw_button.setChecked(True)
    whole = dialog.text.toPlainText()
    assert "> quoted history" in whole and '<img src="https://tracker.example/p.gif">' in whole
    assert f"From: {STRANGER}" in whole
    dialog.raw_button.setChecked(False)
    assert dialog.text.toPlainText() == "Our speaker is ill."
    assert dialog.attach_button.isEnabled()

    # attach it by hand to Ana's draw message, picked in the attach dialog
    t = ctx.tournaments.get("two-team")
    round_node = window.navigator.model.find((ROUND, ctx.tournaments.get_round(t.id, 1).id))
    unread_before = round_node.data(REPLY_BADGE)
    target = ctx.notifications.get(mailbox["draw"][1])  # type: ignore[index]
    picked: list[AttachDialog] = []
    seen: list[str] = []

    def picker(entry: InboxEntry) -> AttachDialog:
        d = AttachDialog(ctx, entry, dialog)
        picked.append(d)

        def choose() -> None:
            seen.append(d.search.text())  # the stranger got nothing from us: everything listed
            d.search.setText(target.recipient_name)
            d.reload()  # their draw and private URL messages: the draw's row is clicked
            ids = [c.id for c in d.choices]
            if target.id in ids:
                d.list.setCurrentIndex(d.model.index(ids.index(target.id), 0))
            d.accept()  # whatever was found: checked below, never left waiting

        QTimer.singleShot(0, choose)
        return d

    dialog.attach_dialog_factory = picker
    assert dialog.attach_current()
    assert seen == [""] and picked[0].chosen() is not None
    assert picked[0].chosen().id == target.id  # type: ignore[union-attr]
    assert len(rows(dialog)) == 2
    assert "Attached the reply from" in dialog.result.text() and "Edit → Undo" in dialog.result.text()
    (entry,) = ctx.inbox.entries(entry_id=int(mailbox["reply"]))  # type: ignore[call-overload]
    assert (entry.message_id, entry.matched_by) == (target.id, replies.BY_HAND)
    assert entry.person_id == target.person_id and entry.different_sender
    assert entry.detail["by_hand"]["by"] == (ctx.user or "the director") and entry.detail["by_hand"]["at"]
    qtbot.waitUntil(lambda: round_node.data(REPLY_BADGE) == (unread_before or 0) + 1, timeout=5000)
    assert window.menus.undo_action.text() == f"&Undo Attach the reply from {STRANGER}"

    # the message view says it was attached by hand
    assert window.select_round(ctx.tournaments.get_round(t.id, 1).id)
    assert window.round_view.select_message(target.id)
    panel = window.round_view.message_view.replies
    assert "Attached by hand by" in panel.note.text()

    # Edit → Undo detaches it: unmatched again, the badge back; Redo attaches it again
    window.undo_stack.undo()
    (entry,) = ctx.inbox.entries(entry_id=int(mailbox["reply"]))  # type: ignore[call-overload]
    assert (entry.message_id, entry.matched_by, entry.person_id) == (None, None, None)
    assert "by_hand" not in entry.detail
    qtbot.waitUntil(lambda: len(rows(dialog)) == 3, timeout=5000)
    qtbot.waitUntil(lambda: (round_node.data(REPLY_BADGE) or 0) == (unread_before or 0), timeout=5000)
    window.undo_stack.redo()
    assert ctx.inbox.entries(entry_id=int(mailbox["reply"]))[0].message_id == target.id  # type: ignore[call-overload]
    qtbot.waitUntil(lambda: len(rows(dialog)) == 2, timeout=5000)


def test_a_bounce_is_never_attached_by_hand(ctx: AppContext, mailbox: dict[str, object]) -> None:
    (bounce,) = ctx.inbox.entries(entry_id=int(mailbox["bounce"]))  # type: ignore[call-overload]
    with pytest.raises(Exception, match="only a reply or an auto-reply can be attached by hand"):
        replies.attach(ctx, bounce, mailbox["draw"][0])  # type: ignore[index]
    assert ctx.inbox.entries(entry_id=bounce.id)[0].message_id is None


@pytest.mark.qt_log_ignore("This plugin does not support raise")  # offscreen: raising is a no-op
def test_the_round_views_unmatched_events_lead_to_the_unmatched_mail(
    qtbot: QtBot, ctx: AppContext, mailbox: dict[str, object], tmp_path: Path
) -> None:
    window = window_for(qtbot, ctx, tmp_path)
    events = window.round_view.show_unmatched()
    events.mail_button.click()
    assert isinstance(window.unmatched_mail, UnmatchedMailDialog) and window.unmatched_mail.isVisible()
    assert len(rows(window.unmatched_mail)) == 3
    window.menus.unmatched_mail_action.trigger()  # one window: raised, not a second one
    assert len([w for w in window.findChildren(UnmatchedMailDialog) if w.isVisible()]) == 1

    # closed (and deleted), it no longer answers the mailbox's news
    dialog = window.unmatched_mail
    dialog.close()
    qtbot.waitUntil(lambda: not shiboken6.isValid(dialog), timeout=5000)
    add_inbox(ctx, None, sender="late@elsewhere.example")
    window.bridge.replies_changed.emit([])  # would raise on a deleted window
    window.menus.unmatched_mail_action.trigger()
    assert len(rows(window.unmatched_mail)) == 4


def test_an_empty_list_says_why_it_is_empty(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> None:
    """Found walking the window: with no mailbox set up, the empty list said every message read
    from the mailbox had matched, when nothing had been read at all."""
    sent = two_team_sent(ctx)
    window = window_for(qtbot, ctx, tmp_path)
    window.menus.unmatched_mail_action.trigger()
    dialog = window.unmatched_mail
    assert isinstance(dialog, UnmatchedMailDialog)
    assert rows(dialog) == []
    assert dialog.note.text().startswith("No mailbox is set up (Settings → Inbox)")

    ctx.settings.set("imap.host", "imap.example.org")
    dialog.reload()
    assert dialog.note.text() == "Nothing has been read from the tab room's mailbox yet."

    add_inbox(ctx, sent["draw"][0])  # read, and matched
    dialog.reload()
    assert dialog.note.text() == (
        "Every message read from the tab room's mailbox matched one of ours: nothing to show."
    )
