"""Batches with no round (private URLs) shown under the tournament's "Tournament messages" node,
through the same round view and model as a round's batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import update

from tabmail.domain.notification import TOURNAMENT_WIDE_NAME, DeliveryStatus, Event, MessageState
from tabmail.gui.main_window import MainWindow
from tabmail.gui.navigator import BADGE, TOURNAMENT, TOURNAMENT_WIDE
from tabmail.gui.problems.model import Column
from tabmail.gui.roles import Roles
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv
from tabmail.store.models import PersonRow, TournamentRow
from tests.conftest import data_path
from tests.gui.test_export import owner_only, pdf_text, read_csv, shown_round_rows
from tests.gui.test_rounds_model import report, send

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


def _bounced_url_batch(ctx: AppContext) -> tuple[int, list[str]]:
    """The private URLs sent; the first one bounced (the provider said so)."""
    queued = notify.enqueue(ctx, notify.plan(ctx, "two-team", Event.URLS))
    ids = send(ctx, queued.batch_id)
    report(ctx, ids[0], DeliveryStatus.BOUNCED, 3, "550 5.1.1 user unknown")
    return queued.batch_id, ids


def test_resend_a_bounced_private_url_from_tournament_messages(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    batch, ids = _bounced_url_batch(two_team)
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_tournament_wide(t.id)
    page = window.round_view
    assert page.select_message(ids[0])
    assert page.model.message(ids[0]).address != "fixed@example.org"  # type: ignore[union-attr]
    assert page.model.set_draft(ids[0], "fixed@example.org") is None
    assert page.select_batch(batch)
    page.batch_panel.resend_button.click()
    box = page.findChild(QMessageBox, "confirm-resend-corrected")
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Resend").click()
    qtbot.waitUntil(lambda: bool(page.model.resent_as(ids[0])), timeout=10000)
    (new_id,) = page.model.resent_as(ids[0])
    resent = two_team.notifications.get(new_id)
    assert resent.address == "fixed@example.org"
    # The resend is a private-URL message too: it stays under Tournament messages, with no round.
    new_batch = two_team.notifications.get_batch(resent.batch_id)
    assert new_batch.event is Event.URLS and new_batch.round_id is None
    assert page.model.tournament_wide == t.id
    assert page.notice.text().startswith("Queued a resend to fixed@example.org")
    window.quit_without_asking()


def test_export_tournament_messages_as_csv_and_pdf(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    _bounced_url_batch(two_team)
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_tournament_wide(t.id)
    assert window.exporter.export_action.isEnabled() and window.exporter.print_action.isEnabled()
    expected = shown_round_rows(window)
    assert len(expected) == len(KEYED)

    target = tmp_path / "wide.csv"
    assert window.exporter.export_to(target)
    assert owner_only(target)
    headers, rows = read_csv(target)
    assert headers == ["Batch", "Recipient", "Role", "Address", "Status", "Reason", "Last event"]
    assert [[r[0], r[1], r[2], r[3], r[4], r[6]] for r in rows] == expected
    assert [r[4] for r in rows].count("Bounced") == 1

    pdf = tmp_path / "wide.pdf"
    assert window.exporter.export_to(pdf)
    text = pdf_text(pdf)
    assert f"{TOURNAMENT_WIDE_NAME} · Two Team" in text and f"{len(rows)} rows" in text
    squeezed = "".join(text.split())
    assert all(row[3] in squeezed for row in rows)
    window.quit_without_asking()


def test_cancel_a_scheduled_private_url_batch_from_tournament_messages(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    at = datetime.now(UTC) + timedelta(hours=2)
    queued = notify.enqueue(two_team, notify.plan(two_team, "two-team", Event.URLS), scheduled_at=at)
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_tournament_wide(t.id)
    page = window.round_view
    assert page.select_batch(queued.batch_id)
    panel = page.batch_panel
    assert panel.schedule.isVisible() and "Scheduled for" in panel.schedule.text()
    assert panel.cancel_schedule_button.isVisible()
    box = page.row_actions.cancel_scheduled(queued.batch_id)
    next(b for b in box.buttons() if b.text() == "Cancel the Batch").click()

    def states() -> set[MessageState]:
        return {m.state for m in two_team.notifications.messages(batch_id=queued.batch_id)}

    qtbot.waitUntil(lambda: states() == {MessageState.SKIPPED}, timeout=10000)
    qtbot.waitUntil(lambda: not panel.cancel_schedule_button.isVisible(), timeout=10000)
    window.quit_without_asking()


def test_go_to_round_from_problems_reaches_tournament_messages(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    _batch, ids = _bounced_url_batch(two_team)
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_problems(t.id)
    page = window.problems_page
    qtbot.waitUntil(lambda: page.model.row_of(ids[0]) is not None, timeout=10000)
    assert page.select_message(ids[0])
    row = page.model.row_of(ids[0])
    assert row is not None
    assert page.model.index(row, Column.ROUND).data() == TOURNAMENT_WIDE_NAME  # was "No round"
    assert page.go_button.text() == "Go to Tournament Messages"
    page.go_to_current()
    assert window.stack.currentWidget() is window.round_view
    assert window.navigator.selected_key() == (TOURNAMENT_WIDE, t.id)
    assert window.round_view.model.tournament_wide == t.id
    assert window.round_view.current_message_id() == ids[0]
    window.quit_without_asking()


def test_the_tournament_messages_label_is_not_cut_short(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    _bounced_url_batch(two_team)  # with its problem badge, as a director sees it
    t = two_team.tournaments.get("two-team")
    window = _window(qtbot, two_team, tmp_path)
    view = window.navigator.view
    node = window.navigator.model.find((TOURNAMENT_WIDE, t.id))
    qtbot.waitUntil(lambda: node.data(BADGE) == 1, timeout=10000)
    rect = view.visualRect(node)
    metrics = view.fontMetrics()
    needed = view.iconSize().width() + metrics.horizontalAdvance(TOURNAMENT_WIDE_NAME) + 2 * metrics.height()
    assert rect.width() >= needed, (rect.width(), needed)
    window.quit_without_asking()


def test_compose_from_tournament_messages_opens_on_private_urls(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    """ "Tournament messages" lists what belongs to no round; its Compose button opened the
    composer on a round's draw release, a batch that node never shows."""
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_tournament_wide(two_team.tournaments.get("two-team").id)
    window.menus.compose_action.trigger()
    dialog = window.composer
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.current_event() == (Event.URLS, None)
    dialog.close()
    window.select_round(two_team.tournaments.get_round(two_team.tournaments.get("two-team").id, 1).id)
    window.menus.compose_action.trigger()
    assert window.composer is not None and window.composer.current_event()[0] is Event.DRAW
    window.composer.close()


def test_the_problems_view_shows_tournament_messages_in_full(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    """The Round column of "All problems" cut a private URL's problem to "Tournamen…"."""
    _bounced_url_batch(two_team)
    window = _window(qtbot, two_team, tmp_path)
    assert window.select_problems(None)
    table = window.problems_page.table
    qtbot.waitUntil(lambda: window.problems_page.model.rowCount() == 1, timeout=10000)
    index = window.problems_page.proxy.index(0, Column.ROUND)
    assert index.data() == TOURNAMENT_WIDE_NAME
    assert table.columnWidth(Column.ROUND) >= table.fontMetrics().horizontalAdvance(TOURNAMENT_WIDE_NAME) + 12
    window.quit_without_asking()
