"""The main window: navigation tree, round slot, shortcuts, status bar, ops and geometry."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from pytestqt.qtbot import QtBot

from tabmail.domain.events import PollFinished, TournamentImported
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.main_window import GEOMETRY_KEY, MainWindow
from tabmail.gui.navigator import PARTICIPANTS, PROBLEMS, ROUND, TOURNAMENT, TOURNAMENT_WIDE
from tabmail.gui.roles import Roles
from tabmail.gui.run_op import run_op, running_ops
from tabmail.services import tracking
from tabmail.services.context import AppContext
from tests.gui.conftest import sample_bundle

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot: QtBot, ctx: AppContext, tournament_id: int, qsettings: QSettings) -> MainWindow:
    win = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def _children(window: MainWindow, tournament_id: int) -> list[tuple[str, str]]:
    model = window.navigator.model
    parent = model.find((TOURNAMENT, tournament_id))
    assert parent.isValid()
    return [
        (model.index(r, 0, parent).data(Roles.KIND), model.index(r, 0, parent).data())
        for r in range(model.rowCount(parent))
    ]


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_rounds_tree_lists_the_tournaments_rounds(window: MainWindow, tournament_id: int) -> None:
    assert _children(window, tournament_id) == [
        (PARTICIPANTS, "Participants"),
        (PROBLEMS, "Problems"),
        (TOURNAMENT_WIDE, "Tournament messages"),
        (ROUND, "Round 1"),
        (ROUND, "Round 2"),
    ]
    # The first tournament is selected on start, showing its participants.
    assert window.stack.currentWidget() is window.participants_page
    assert window.participants_page.model.rowCount() == 7


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_selecting_a_round_shows_the_round_view(
    window: MainWindow, ctx: AppContext, tournament_id: int
) -> None:
    round_2 = ctx.tournaments.get_round(tournament_id, 2)
    assert window.select_round(round_2.id)
    view = window.round_view
    assert window.stack.currentWidget() is view
    assert view.stack.currentWidget() is view.placeholder  # nothing sent for this round yet
    assert view.placeholder.title.text() == "Round 2"
    assert "Round 2" in window.windowTitle()
    window.select_round(ctx.tournaments.get_round(tournament_id, 1).id)
    assert window.stack.currentWidget() is view  # one view, reused
    assert view.round is not None and view.round.seq == 1


def test_an_empty_round_summarises_the_draw(window: MainWindow, ctx: AppContext, tournament_id: int) -> None:
    window.select_round(ctx.tournaments.get_round(tournament_id, 1).id)
    text = window.round_view.placeholder.draw_summary.text()
    assert "1 debate" in text and "2 teams" in text and "1 adjudicator" in text


def test_actions_have_their_shortcuts(window: MainWindow) -> None:
    expected = {
        window.menus.import_action: "Ctrl+I",
        window.menus.compose_action: "Ctrl+N",
        window.menus.settings_action: "Ctrl+,",
        window.menus.poll_action: "F5",
        window.menus.find_action: QKeySequence(QKeySequence.StandardKey.Find).toString(),
        window.menus.quit_action: "Ctrl+Q",
    }
    for action, keys in expected.items():
        assert action.shortcut().toString() == keys, action.text()
    assert window.menus.compose_action.isEnabled()  # a tournament is selected


def test_find_focuses_the_participants_search(qtbot: QtBot, window: MainWindow) -> None:
    window.activateWindow()
    window.menus.find_action.trigger()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.participants_page.search, timeout=2000)


def test_test_mode_banner_follows_the_setting(
    qtbot: QtBot, ctx: AppContext, tournament_id: int, qsettings: QSettings
) -> None:
    banner_off = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(banner_off)
    assert banner_off.status.test_mode.isHidden()

    ctx.settings.set_text("test_mode.reroute_to", "director@example.org")
    banner_on = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(banner_on)
    assert not banner_on.status.test_mode.isHidden()
    assert "director@example.org" in banner_on.status.test_mode.text()


def test_status_bar_shows_backend_poll_result_and_online_state(window: MainWindow, ctx: AppContext) -> None:
    assert window.status.backend.text() == "Backend: Files (dry run)"
    assert window.status.online_state is None
    ctx.bus.publish(PollFinished(ok=False, online=False, summary="SendGrid unreachable"))
    assert "SendGrid unreachable" in window.status.last_poll.text()
    assert window.status.online_state is False
    assert window.status.online.text.text() == "Offline"
    ctx.bus.publish(PollFinished(ok=True, online=True, summary="12 new events"))
    assert window.status.online.text.text() == "Online"


def test_settings_saved_updates_the_status_bar(window: MainWindow, ctx: AppContext) -> None:
    dialog = window.open_settings_dialog()
    combo = dialog.fields["backend"].editor
    combo.setCurrentIndex(combo.findData("sendgrid"))  # type: ignore[union-attr]
    dialog.accept()
    assert ctx.settings.get("backend") == "sendgrid"
    assert window.status.backend.text() == "Backend: SendGrid API"


def test_an_import_elsewhere_refreshes_the_tree(window: MainWindow, ctx: AppContext) -> None:
    result = ctx.tournaments.apply_import(sample_bundle("autumn", "Autumn Cup"))
    ctx.bus.publish(TournamentImported(result.tournament_id))
    assert window.navigator.model.find((TOURNAMENT, result.tournament_id)).isValid()
    assert window.navigator.model.rowCount() == 3  # "Problems in every tournament" and the two


def test_empty_database_shows_the_welcome_page(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> None:
    win = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(win)
    assert win.stack.currentWidget() is win.welcome_page
    assert win.navigator.view.isHidden()
    assert not win.navigator.empty_label.isHidden()


def test_poll_action_runs_the_workers_poll_through_run_op(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext, tournament_id: int, qsettings: QSettings
) -> None:
    release = asyncio.Event()
    calls: list[str] = []

    class WaitingPoller:
        async def poll_once(self) -> None:
            calls.append("poll")
            await release.wait()

    worker = BackgroundWorker(ctx, poller_factory=lambda c: WaitingPoller())
    window = MainWindow(ctx, qsettings=qsettings, worker=worker)
    qtbot.addWidget(window)
    window.menus.poll_action.trigger()
    qtbot.waitUntil(lambda: calls == ["poll"], timeout=5000)
    assert not window.menus.poll_action.isEnabled()
    assert window.status.last_poll.text() == "Checking delivery statuses…"
    release.set()
    qtbot.waitUntil(window.menus.poll_action.isEnabled, timeout=5000)


def test_closing_cancels_running_ops_and_saves_geometry(
    qtbot: QtBot, qloop: asyncio.AbstractEventLoop, ctx: AppContext, tournament_id: int, qsettings: QSettings
) -> None:
    win = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(win)
    win.resize(760, 520)  # the offscreen screen is small; the width may grow to the minimum
    win.show()
    qtbot.waitExposed(win)

    async def forever() -> None:
        await asyncio.Event().wait()

    op = run_op(win, forever)
    with qtbot.waitSignal(op.cancelled, timeout=5000):
        win.close()
    assert running_ops(win) == []
    assert qsettings.contains(GEOMETRY_KEY)

    again = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(again)
    assert again.height() == 520  # not the 800 of a first start


def test_import_dialog_opens_from_the_action(qtbot: QtBot, window: MainWindow) -> None:
    window.menus.import_action.trigger()
    dialog = window.findChild(QWidget, "import-dialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.findChild(QLabel) is not None
    dialog.close()


def test_the_last_check_of_a_previous_session_is_shown(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings
) -> None:
    ctx.settings.set_state(
        tracking.STATE + "last_poll",
        {"at": "2026-03-01T09:30:00+00:00", "ok": True, "online": True, "summary": "4 new events"},
    )
    win = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(win)
    assert "4 new events" in win.status.last_poll.text()
    assert win.status.online_state is None  # a past session's connection says nothing about now
