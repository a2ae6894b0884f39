"""The navigator's "Unread replies" badges and the window title's count: computed from the store,
updated live when replies arrive and when the director reads one, always equal to the unread
rows of the round view."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from tabmail.domain.events import RepliesReceived
from tabmail.gui.main_window import MainWindow
from tabmail.gui.navigator import BADGE, REPLY_BADGE, ROUND, TOURNAMENT, TOURNAMENT_WIDE
from tabmail.services.context import AppContext
from tests.inbox_support import add_inbox, two_team_sent

ACCESSIBLE = Qt.ItemDataRole.AccessibleTextRole

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _loop(qloop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    return qloop


@pytest.fixture
def sent(ctx: AppContext) -> dict[str, list[str]]:
    return two_team_sent(ctx)


def window_for(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> MainWindow:
    window = MainWindow(ctx, qsettings=QSettings(str(tmp_path / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_unread_reply_badges_follow_arrivals_and_reading(
    qtbot: QtBot, ctx: AppContext, sent: dict[str, list[str]], tmp_path: Path
) -> None:
    draw, urls = sent["draw"], sent["urls"]
    add_inbox(ctx, draw[0])  # unread
    add_inbox(ctx, draw[0])  # a second unread reply to the same message
    add_inbox(ctx, draw[1], read=True)
    add_inbox(ctx, draw[2], kind="auto_reply")  # an out-of-office is no reply to read
    add_inbox(ctx, urls[0])  # a reply to a private URL: "Tournament messages"
    add_inbox(ctx, None)  # unmatched: in no round

    t = ctx.tournaments.get("two-team")
    rnd = ctx.tournaments.get_round(t.id, 1)
    window = window_for(qtbot, ctx, tmp_path)
    nav = window.navigator.model
    round_node = nav.find((ROUND, rnd.id))
    assert round_node.data(REPLY_BADGE) == 2
    assert nav.find((TOURNAMENT_WIDE, t.id)).data(REPLY_BADGE) == 1
    assert nav.find((TOURNAMENT, t.id)).data(REPLY_BADGE) == 3
    assert not round_node.data(BADGE)  # nothing failed: the problem badge stays off
    assert "Round 1: 2 unread replies" in str(round_node.data(ACCESSIBLE))
    qtbot.waitUntil(lambda: window.windowTitle().startswith("(3 unread replies) "), timeout=5000)

    # the round view's rows say the same as the badge
    assert window.select_round(rnd.id)
    model = window.round_view.model
    assert model.reply_totals() == (3, 2)

    # selecting the message shows it on the Message tab: nothing is read yet
    window.round_view.select_message(draw[0])
    view = window.round_view.message_view
    assert view.tabs.tabText(view.tabs.indexOf(view.replies)) == "Replies (2, 2 new)"
    qtbot.wait(200)
    assert round_node.data(REPLY_BADGE) == 2

    # the Replies tab shows the newest: read; the badge, the rows and the title follow
    view.tabs.setCurrentWidget(view.replies)
    qtbot.waitUntil(lambda: round_node.data(REPLY_BADGE) == 1, timeout=5000)
    assert model.reply_totals() == (3, 1)
    assert nav.find((TOURNAMENT, t.id)).data(REPLY_BADGE) == 2
    qtbot.waitUntil(lambda: window.windowTitle().startswith("(2 unread replies) "), timeout=5000)
    view.replies.list.setCurrentIndex(view.replies.model.index(1, 0))  # the other one
    qtbot.waitUntil(lambda: not round_node.data(REPLY_BADGE), timeout=5000)
    assert model.reply_totals() == (3, 0)
    assert str(round_node.data(ACCESSIBLE)) == "Round 1"

    # a reply read from the mailbox while the window is open shows at once
    add_inbox(ctx, draw[3])
    ctx.bus.publish(RepliesReceived((draw[3],)))
    qtbot.waitUntil(lambda: round_node.data(REPLY_BADGE) == 1, timeout=5000)
    assert model.reply_totals() == (4, 1)
    qtbot.waitUntil(lambda: window.windowTitle().startswith("(2 unread replies) "), timeout=5000)
    unread = [e for e in ctx.inbox.entries(kinds=("reply",)) if e.read_at is None and e.message_id]
    assert len(unread) == nav.find((TOURNAMENT, t.id)).data(REPLY_BADGE) == 2
