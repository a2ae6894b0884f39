"""Issue 12 item 7 in the window: schedule from the composer, see it waiting with a countdown,
cancel it before it starts; the open app releases a due batch and asks about an overdue one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QDateTime, QSettings
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer import ComposeDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.theme import Theme
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv
from tests.conftest import data_path

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _loop(qloop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    return qloop


@pytest.fixture
def two_team(ctx: AppContext) -> AppContext:
    import_csv(ctx, data_path("two-team-csv"), "Two Team")
    ctx.settings.set_text("from_address", "tab@example.org")
    ctx.settings.set_text("backend", "file")
    return ctx


@pytest.fixture
def bridge(two_team: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(two_team.bus)
    yield b
    b.detach()


def _states(ctx: AppContext, batch_id: int) -> set[MessageState]:
    return {m.state for m in ctx.notifications.messages(batch_id=batch_id)}


def _click(box: QMessageBox, text: str) -> None:
    button = next(b for b in box.buttons() if b.text() == text)
    assert isinstance(button, QPushButton)
    button.click()


def _schedule(ctx: AppContext, at: datetime) -> int:
    plan = notify.plan(ctx, "two-team", Event.DRAW, round_seq=1, audience=Audience.ADJUDICATORS)
    chosen = notify.selection_for(plan, include_already_sent=True)
    return notify.enqueue(ctx, plan, selected=chosen, scheduled_at=at).batch_id


def test_schedule_from_the_composer_then_cancel_it_in_the_round_view(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge, tmp_path: Path
) -> None:
    t = two_team.tournaments.get("two-team")
    dialog = ComposeDialog(
        two_team,
        bridge,
        None,
        t,
        two_team.tournaments.get_round(t.id, 1),
        kind=(Event.DRAW, Audience.ALL),
        theme=Theme(),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    dialog.send_later.setChecked(True)
    dialog.send_at.setDateTime(QDateTime.currentDateTime().addSecs(2 * 3600))
    queued: list[int] = []
    dialog.batch_queued.connect(queued.append)
    qtbot.waitUntil(lambda: dialog.send_button.isEnabled(), timeout=10000)
    dialog.send()
    qtbot.waitUntil(lambda: dialog.confirm_box is not None, timeout=10000)
    assert dialog.confirm_box is not None
    _click(dialog.confirm_box, "Send")
    qtbot.waitUntil(lambda: bool(queued), timeout=10000)
    assert "Scheduled" in dialog.notice.text() and _states(two_team, queued[0]) == {MessageState.SCHEDULED}
    dialog.close()

    window = MainWindow(two_team, qsettings=QSettings(str(tmp_path / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    window.select_round(two_team.tournaments.get_round(t.id, 1).id)
    page = window.round_view
    assert page.select_batch(queued[0])
    panel = page.batch_panel
    assert (
        panel.schedule.isVisible()
        and "Scheduled for" in panel.schedule.text()
        and "in 2.0 h" in panel.schedule.text()
    )
    assert panel.cancel_schedule_button.isVisible()
    box = page.row_actions.cancel_scheduled(queued[0])
    _click(box, "Cancel the Batch")
    qtbot.waitUntil(lambda: _states(two_team, queued[0]) == {MessageState.SKIPPED}, timeout=10000)
    window.quit_without_asking()


def test_the_open_app_releases_a_due_batch_and_asks_about_an_overdue_one(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    due = _schedule(two_team, now - timedelta(seconds=30))
    overdue = _schedule(two_team, now - timedelta(minutes=30))
    window = MainWindow(two_team, qsettings=QSettings(str(tmp_path / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.worker.schedule_overdue, timeout=10000):
        window.worker.start(poll=False)
    qtbot.waitUntil(lambda: _states(two_team, due) == {MessageState.SENT}, timeout=10000)
    assert _states(two_team, overdue) == {MessageState.SCHEDULED}  # never without a yes
    box = window.overdue.box
    assert box is not None and f"batch {overdue} " in box.informativeText()
    _click(box, "Send Now")
    qtbot.waitUntil(lambda: _states(two_team, overdue) == {MessageState.SENT}, timeout=10000)
    window.quit_without_asking()
