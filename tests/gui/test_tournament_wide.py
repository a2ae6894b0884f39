"""Batches with no round (private URLs) shown under the tournament's "Tournament messages" node,
through the same round view and model as a round's batches."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import update

from tabmail.domain.notification import Event
from tabmail.gui.main_window import MainWindow
from tabmail.gui.navigator import BADGE, TOURNAMENT, TOURNAMENT_WIDE, TOURNAMENT_WIDE_NAME
from tabmail.gui.roles import Roles
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv
from tabmail.store.models import PersonRow, TournamentRow
from tests.conftest import data_path
from tests.gui.test_rounds_model import send

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

KEYED = ["Ana Ruiz", "Aki Sato", "Ben Cole", "Bob Hale", "Cat Diaz"]


@pytest.fixture(autouse=True)
def _loop(qloop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    return qloop


@pytest.fixture
def two_team(ctx: AppContext) -> AppContext:
    import_csv(ctx, data_path("two-team-csv"), "Two Team")
    ctx.settings.set_text("from_address", "tab@example.org")
    ctx.settings.set_text("backend", "file")
    t = ctx.tournaments.get("two-team")
    with ctx.db.session() as s:  # as if from a Tabbycat site: private URL keys for five people
        s.execute(
            update(TournamentRow).where(TournamentRow.id == t.id).values(source_url="https://tab.example")
        )
        for i, name in enumerate(KEYED):
            s.execute(update(PersonRow).where(PersonRow.name == name).values(url_key=f"key{i}"))
    return ctx


def _window(qtbot: QtBot, ctx: AppContext, tmp_path: Path) -> MainWindow:
    window = MainWindow(ctx, qsettings=QSettings(str(tmp_path / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_private_url_batch_shows_under_tournament_messages(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    queued = notify.enqueue(two_team, notify.plan(two_team, "two-team", Event.URLS))
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)

    node = window.navigator.model.find((TOURNAMENT_WIDE, t.id))
    assert node.isValid() and node.data() == TOURNAMENT_WIDE_NAME
    assert node.parent().data(Roles.ID) == t.id
    assert window.select_tournament_wide(t.id)

    model = window.round_view.model
    assert window.stack.currentWidget() is window.round_view
    assert model.tournament_wide == t.id and model.round_id is None
    assert model.batch_ids() == [queued.batch_id]
    rows = model.message_ids(queued.batch_id)
    assert len(rows) == len(KEYED) == model.message_count()
    assert sum(model.batch_counts(queued.batch_id).values()) == len(rows)
    summary = two_team.notifications.batches(tournament_id=t.id, no_round=True)[0]
    assert summary.total == len(rows)
    qtmodeltester.check(model)

    # A batch queued while the node is shown appears live, like a round's.
    plan = notify.plan(two_team, "two-team", Event.URLS)  # everyone already sent: ticked by hand
    again = notify.enqueue(two_team, plan, selected=[p.key for p in plan.recipients])
    qtbot.waitUntil(lambda: again.batch_id in model.batch_ids(), timeout=10000)
    assert len(model.message_ids(again.batch_id)) == len(KEYED)
    qtmodeltester.check(model)


def test_round_batches_stay_out_of_tournament_messages(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_tournament_wide(t.id)
    model = window.round_view.model
    assert model.batch_ids() == []
    assert window.round_view.stack.currentWidget() is window.round_view.placeholder
    assert "Tournament messages" in window.round_view.placeholder.title.text()
    # A round's batch stays in its round; the tournament-wide one stays out of the round.
    drawn = notify.enqueue(two_team, notify.plan(two_team, "two-team", Event.DRAW, round_seq=1))
    wide = notify.enqueue(two_team, notify.plan(two_team, "two-team", Event.URLS))
    qtbot.waitUntil(lambda: model.batch_ids() == [wide.batch_id], timeout=10000)
    rnd = two_team.tournaments.get_round(t.id, 1)
    assert window.select_round(rnd.id)
    assert window.round_view.model.batch_ids() == [drawn.batch_id]
    assert window.round_view.model.round_id == rnd.id and window.round_view.model.tournament_wide is None


def test_tournament_messages_node_counts_its_problems(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    queued = notify.enqueue(two_team, notify.plan(two_team, "two-team", Event.URLS))
    send(two_team, queued.batch_id, failed=2)
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    node = window.navigator.model.find((TOURNAMENT_WIDE, t.id))
    qtbot.waitUntil(lambda: node.data(BADGE) == 2, timeout=10000)
    assert window.navigator.model.find((TOURNAMENT, t.id)).data(BADGE) == 2
    assert window.select_tournament_wide(t.id)
    model = window.round_view.model
    assert sum(1 for mid in model.message_ids(queued.batch_id) if model.message(mid).state == "failed") == 2
