"""The window reopens where it was: page, search text, Problems only, selected message or person."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import DeliveryStatus
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.main_window import MainWindow
from tabmail.gui.session import NODE
from tabmail.services.context import AppContext
from tests.gui.conftest import sample_bundle
from tests.keyrings import MemoryKeyring
from tests.practice_support import FakeTime, play_out, send_demo_round

pytestmark = pytest.mark.gui


@pytest.fixture
def played(practice_demo: AppContext) -> AppContext:
    t = FakeTime()
    send_demo_round(practice_demo, t)
    play_out(practice_demo, t)
    return practice_demo


def open_window(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> MainWindow:
    win = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def reopen(qtbot: QtBot, ctx: AppContext, qsettings: QSettings, window: MainWindow) -> MainWindow:
    window.close()
    qsettings.sync()
    again = QSettings(qsettings.fileName(), QSettings.Format.IniFormat)  # as a new process reads it
    return open_window(qtbot, ctx, again)


def test_the_round_filters_and_message_come_back(
    qtbot: QtBot, played: AppContext, qsettings: QSettings
) -> None:
    tournament = played.tournaments.list_all()[0]
    round_1 = played.tournaments.get_round(tournament.id, 1)
    bounced = next(m for m in played.notifications.messages() if m.delivery_status is DeliveryStatus.BOUNCED)
    window = open_window(qtbot, played, qsettings)
    assert window.stack.currentWidget() is window.participants_page  # a first start: the first tournament
    assert window.select_round(round_1.id)
    page = window.round_view
    page.problems_only.setChecked(True)
    page.search.setText("example.org")
    assert page.select_message(bounced.id)

    window = reopen(qtbot, played, qsettings, window)
    page = window.round_view
    assert window.stack.currentWidget() is page and page.round is not None and page.round.id == round_1.id
    assert page.search.text() == "example.org"
    assert page.problems_only.isChecked()
    assert page.current_message_id() == bounced.id
    assert page.proxy.rowCount() == 1  # the filters are applied, not just shown


def test_the_problems_view_and_its_selection_come_back(
    qtbot: QtBot, played: AppContext, qsettings: QSettings
) -> None:
    tournament = played.tournaments.list_all()[0]
    window = open_window(qtbot, played, qsettings)
    assert window.select_problems(tournament.id)
    page = window.problems_page
    qtbot.waitUntil(lambda: page.proxy.rowCount() > 2, timeout=5000)
    page.table.selectRow(2)
    chosen = page.current_message_id()
    assert chosen

    window = reopen(qtbot, played, qsettings, window)
    page = window.problems_page
    assert window.stack.currentWidget() is page
    assert page.current_message_id() == chosen


def test_a_participant_and_the_search_come_back(
    qtbot: QtBot, played: AppContext, qsettings: QSettings
) -> None:
    tournament = played.tournaments.list_all()[0]
    person = next(p for p in played.tournaments.people(tournament.id) if p.name.startswith("Céline"))
    window = open_window(qtbot, played, qsettings)
    assert window.select_participants(tournament.id)
    window.participants_page.search.setText("Novak")
    assert window.participants_page.select_person(person.id)

    window = reopen(qtbot, played, qsettings, window)
    page = window.participants_page
    assert window.stack.currentWidget() is page
    assert page.search.text() == "Novak"
    assert page.selected_person_id() == person.id


def test_a_page_that_is_gone_opens_as_usual(qtbot: QtBot, played: AppContext, qsettings: QSettings) -> None:
    window = open_window(qtbot, played, qsettings)
    key = window.session._key(NODE)
    window.close()
    qsettings.setValue(key, "round:999999")
    window = open_window(qtbot, played, qsettings)
    assert window.stack.currentWidget() is window.participants_page
    qsettings.setValue(key, "nonsense")
    window = reopen(qtbot, played, qsettings, window)
    assert window.stack.currentWidget() is window.participants_page


def test_another_database_keeps_its_own_place(
    qtbot: QtBot, played: AppContext, qsettings: QSettings, tmp_path: Path
) -> None:
    tournament = played.tournaments.list_all()[0]
    window = open_window(qtbot, played, qsettings)
    assert window.select_problems(tournament.id)
    window.close()
    other = AppContext.open(tmp_path / "other.sqlite3", keyring_backend=MemoryKeyring())
    try:
        other.tournaments.apply_import(sample_bundle())
        second = open_window(qtbot, other, qsettings)
        assert second.stack.currentWidget() is second.participants_page  # not the first one's page
        second.close()
    finally:
        other.close()
    window = open_window(qtbot, played, qsettings)
    assert window.stack.currentWidget() is window.problems_page


def test_tournament_messages_and_their_search_come_back(
    qtbot: QtBot, played: AppContext, qsettings: QSettings
) -> None:
    """ "Tournament messages" was not remembered: the window reopened on the page before it."""
    tournament = played.tournaments.list_all()[0]
    window = open_window(qtbot, played, qsettings)
    assert window.select_problems(tournament.id)
    assert window.select_tournament_wide(tournament.id)
    window.round_view.search.setText("nobody")
    window = reopen(qtbot, played, qsettings, window)
    page = window.round_view
    assert window.stack.currentWidget() is page
    assert page.round is None and page.tournament is not None and page.tournament.id == tournament.id
    assert page.title.text() == "Tournament messages"
    assert page.search.text() == "nobody"
