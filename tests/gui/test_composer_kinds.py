"""Issue 12 in the window: every kind in the composer, "Send Private URLs…" from the tournament's
menu, and the confirmation before unreleased motions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from sqlalchemy import delete, update

from tabmail.compose.changes import Change
from tabmail.domain.notification import Audience, Event
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer import ComposeDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Theme
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv
from tabmail.store.models import DebateRow, PersonRow, RoundRow, TournamentRow
from tests.conftest import data_path

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _loop(qloop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    return qloop  # the composer's work runs through run_op on the qasync loop


@pytest.fixture
def two_team(ctx: AppContext) -> AppContext:
    import_csv(ctx, data_path("two-team-csv"), "Two Team")
    ctx.settings.set_text("from_address", "tab@example.org")
    ctx.settings.set_text("backend", "file")
    t = ctx.tournaments.get("two-team")
    with ctx.db.session() as s:  # as if from a Tabbycat site: keys for all but Ann Weir
        s.execute(
            update(TournamentRow).where(TournamentRow.id == t.id).values(source_url="https://tab.example")
        )
        for i, name in enumerate(["Ana Ruiz", "Aki Sato", "Ben Cole", "Bob Hale", "Cat Diaz"]):
            s.execute(update(PersonRow).where(PersonRow.name == name).values(url_key=f"key{i}"))
    return ctx


@pytest.fixture
def bridge(two_team: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(two_team.bus)
    yield b
    b.detach()


def _dialog(
    qtbot: QtBot, ctx: AppContext, bridge: EventBridge, kind: tuple[Event, Audience | None]
) -> ComposeDialog:
    t = ctx.tournaments.get("two-team")
    dialog = ComposeDialog(ctx, bridge, None, t, ctx.tournaments.get_round(t.id, 1), kind=kind, theme=Theme())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    return dialog


def _rows(dialog: ComposeDialog) -> dict[str, tuple[str, bool, str]]:
    """name -> (status, ticked, note column text)."""
    out = {}
    model = dialog.recipients
    for row in range(model.rowCount()):
        name = model.index(row, 0).data()
        out[name] = (
            model.index(row, 0).data(Roles.STATUS),
            model.index(row, 0).data(Roles.ID) in model.selected_keys(),
            model.index(row, 3).data() or "",
        )
    return out


def test_the_composer_offers_every_kind(qtbot: QtBot, two_team: AppContext, bridge: EventBridge) -> None:
    dialog = _dialog(qtbot, two_team, bridge, (Event.DRAW, Audience.ALL))
    kinds = {dialog.event.itemData(i)[0] for i in range(dialog.event.count())}
    assert kinds == set(Event)
    for i in range(dialog.event.count()):
        event, _audience = dialog.event.itemData(i)
        if i == dialog.event.currentIndex():
            continue
        with qtbot.waitSignal(dialog.plan_loaded, timeout=10000):
            dialog.event.setCurrentIndex(i)
        assert dialog.round.isEnabled() == (event.per_round or event is Event.CUSTOM)


def test_private_urls_composer_marks_keys_and_sends(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge
) -> None:
    dialog = _dialog(qtbot, two_team, bridge, (Event.URLS, None))
    assert dialog.event.currentText() == "Private URLs" and not dialog.round.isEnabled()
    rows = _rows(dialog)
    assert rows["Ana Ruiz"] == ("ok", True, "")
    assert rows["Ann Weir"][:2] == ("no_key", False) and rows["Ann Weir"][2] == "No private URL"
    assert dialog.recipients.selected_count() == 5
    assert "without a private URL" in dialog.count_label.text()
    qtbot.waitUntil(lambda: "privateurls/key" in dialog.preview.text.toPlainText(), timeout=10000)


def test_motions_leave_adjudicators_unticked_and_ask_before_unreleased_ones(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge
) -> None:
    t = two_team.tournaments.get("two-team")
    with two_team.db.session() as s:
        s.execute(
            update(RoundRow)
            .where(RoundRow.tournament_id == t.id, RoundRow.seq == 2)
            .values(motions_released=False)
        )
    dialog = _dialog(qtbot, two_team, bridge, (Event.MOTIONS, None))
    rows = _rows(dialog)
    assert rows["Ann Weir"] == ("ok", False, "Unticked by default")
    assert rows["Ana Ruiz"][:2] == ("ok", True)
    dialog.round.setCurrentIndex(dialog.round.findData(2))
    qtbot.waitUntil(lambda: dialog.unreleased_box is not None, timeout=10000)
    box = dialog.unreleased_box
    assert box is not None and "not released on the site" in box.text()
    assert dialog.plan is None and not dialog.send_button.isEnabled()
    go = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
    go.click()
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    assert "close all zoos" in dialog.plan.recipients[0].recipient.context["MOTIONS"]


def test_points_composer_shows_each_teams_wins(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge
) -> None:
    dialog = _dialog(qtbot, two_team, bridge, (Event.POINTS, None))
    dialog.round.setCurrentIndex(dialog.round.findData(2))
    qtbot.waitUntil(
        lambda: dialog.plan is not None and dialog.plan.round is not None and dialog.plan.round.seq == 2,
        timeout=10000,
    )
    qtbot.waitUntil(
        lambda: (
            "wins after Round 2" in dialog.preview.subject.text()
            or "win after Round 2" in dialog.preview.subject.text()
        ),
        timeout=10000,
    )
    assert dialog.event.currentText() == "Team points / wins"


def test_send_private_urls_from_the_tournaments_context_menu(
    qtbot: QtBot, two_team: AppContext, tmp_path: Path
) -> None:
    window = MainWindow(two_team, qsettings=QSettings(str(tmp_path / "q.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    t = two_team.tournaments.get("two-team")
    index = window.navigator.model.find(("tournament", t.id))
    menu = window.navigator.context_menu(index)
    assert menu is not None
    (action,) = [a for a in menu.actions() if a.objectName() == "send-private-urls"]
    action.trigger()
    qtbot.waitUntil(lambda: window.composer is not None and window.composer.plan is not None, timeout=10000)
    assert window.composer is not None and window.composer.current_event() == (Event.URLS, None)
    assert window.menus.send_urls_action.isEnabled()
    window.composer.close()
    # The plan matches the service's for the same kind.
    plan = notify.plan(two_team, "two-team", Event.URLS)
    assert len(plan.default_selection()) == 5


def test_changes_only_marks_changed_unchanged_and_removed(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge
) -> None:
    notify.enqueue(
        two_team, notify.plan(two_team, "two-team", Event.DRAW, round_seq=1, audience=Audience.ALL)
    )
    t = two_team.tournaments.get("two-team")
    draw = two_team.tournaments.draw(t.id, 1)
    hall2 = next(d for d in draw.debates if draw.venues[d.venue_id or 0].name == "Hall 2")
    with two_team.db.session() as s:  # the corrected draw drops the Hall 2 debate
        s.execute(delete(DebateRow).where(DebateRow.id == hall2.id))
    dialog = _dialog(qtbot, two_team, bridge, (Event.DRAW, Audience.ALL))
    assert dialog.changes_only.isVisible()
    with qtbot.waitSignal(dialog.plan_loaded, timeout=10000):
        dialog.changes_only.setChecked(True)
    rows = _rows(dialog)
    assert rows["Ana Ruiz"] == ("unchanged", False, "Unchanged")
    assert rows["Gil Marsh"] == ("ok", True, "Removed")
    assert rows["Dan Orr"] == ("ok", True, "Removed")
    assert "Dee Park" not in rows  # never told (no address), so no removal notice either
    assert dialog.recipients.selected_count() == 4
    assert "unchanged since the previous email" in dialog.count_label.text()


def test_the_removal_notice_is_edited_previewed_kept_and_sent(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge
) -> None:
    """Changes-only: "Template:" switches the editor to the removal notice, whose preview is a
    removed person's; kept for the tournament and used for those removed; the draw's own
    template is untouched."""
    notify.enqueue(
        two_team, notify.plan(two_team, "two-team", Event.DRAW, round_seq=1, audience=Audience.ALL)
    )
    t = two_team.tournaments.get("two-team")
    draw = two_team.tournaments.draw(t.id, 1)
    hall2 = next(d for d in draw.debates if draw.venues[d.venue_id or 0].name == "Hall 2")
    with two_team.db.session() as s:
        s.execute(delete(DebateRow).where(DebateRow.id == hall2.id))
    dialog = _dialog(qtbot, two_team, bridge, (Event.DRAW, Audience.ALL))
    panel = dialog.template_panel
    assert not panel.choice_row.isVisible()  # a plain draw release has one template
    draw_templates = dialog.editor.templates()
    with qtbot.waitSignal(dialog.plan_loaded, timeout=10000):
        dialog.changes_only.setChecked(True)
    assert panel.choice_row.isVisible()
    with qtbot.waitSignal(dialog.preview_updated, timeout=10000):
        panel.choice.setCurrentIndex(1)
    assert dialog.editor.templates() == notify.shipped_templates(Event.DRAW, Audience.ALL, removal=True)
    variables = {
        dialog.editor.variables_model.item(i, 0).text()
        for i in range(dialog.editor.variables_model.rowCount())
    }
    assert "PREVIOUS" in variables and "VENUE" not in variables
    who = dialog.preview_recipient()
    assert who is not None and who.recipient.name in ("Gil Marsh", "Dan Orr")
    assert "no longer in the draw" in dialog.preview.subject.text()
    # Someone who gets the draw is not previewed with the removal notice.
    kept_row = next(i for i, p in enumerate(dialog.recipients.recipients) if p.change is not Change.REMOVED)
    with qtbot.waitSignal(dialog.preview_updated, timeout=10000):
        dialog.table.setCurrentIndex(
            dialog.recipients_proxy.mapFromSource(dialog.recipients.index(kept_row, 0))
        )
    assert dialog.preview.subject.text() == ""
    assert "gets the draw, not the removal notice" in dialog.preview.text.toPlainText()
    removed_row = dialog.recipients.row_of(who.key)
    assert removed_row is not None
    with qtbot.waitSignal(dialog.preview_updated, timeout=10000):
        dialog.table.setCurrentIndex(
            dialog.recipients_proxy.mapFromSource(dialog.recipients.index(removed_row, 0))
        )
    assert "no longer in the draw" in dialog.preview.subject.text()

    with qtbot.waitSignal(dialog.preview_updated, timeout=10000):
        dialog.editor.subject.setText("{{ ROUND }}: ignore our draw email, {{ USER }}")
    assert dialog.preview.subject.text() == f"Round 1: ignore our draw email, {who.recipient.name}"
    dialog.save_templates_for_tournament()
    kept = notify.templates_for(two_team, t.id, Event.DRAW, Audience.ALL, removal=True)
    assert kept.subject == "{{ ROUND }}: ignore our draw email, {{ USER }}"
    assert notify.templates_for(two_team, t.id, Event.DRAW, Audience.ALL) == draw_templates
    assert "removal notice" in dialog.notice.text()

    # An unknown variable in the removal notice blocks the send, even while the draw is shown.
    dialog.editor.subject.setText("{{ ROUND }}: {{ NOPE }}")
    with qtbot.waitSignal(dialog.preview_updated, timeout=10000):
        panel.choice.setCurrentIndex(0)
    assert dialog.editor.templates() == draw_templates
    dialog.send()
    qtbot.waitUntil(lambda: bool(dialog.problems), timeout=10000)
    assert panel.removal_shown  # the send check shows the template to fix
    assert "NOPE" in dialog.problems_strip.text() and dialog.confirm_box is None
    dialog.editor.subject.setText("{{ ROUND }}: not in the draw, {{ USER }}")
    qtbot.waitUntil(lambda: not dialog.problems and dialog.send_button.isEnabled(), timeout=10000)
    dialog.send()
    qtbot.waitUntil(lambda: dialog.confirm_box is not None, timeout=10000)
    box = dialog.confirm_box
    assert box is not None
    (go,) = [b for b in box.buttons() if b.text() == "Send"]
    go.click()
    qtbot.waitUntil(lambda: dialog.sending, timeout=10000)
    batches = [b.batch for b in two_team.notifications.batches()]
    removal_batch = next(b for b in batches if b.templates.subject.startswith("{{ ROUND }}: not in"))
    names = {m.recipient_name for m in two_team.notifications.messages(batch_id=removal_batch.id)}
    assert dialog.plan is not None
    removed = {p.recipient.name for p in dialog.plan.recipients if p.change is Change.REMOVED}
    assert {"Gil Marsh", "Dan Orr"} <= removed and names == removed
    dialog.close()


def test_the_removal_notice_with_nobody_removed_says_so(
    qtbot: QtBot, two_team: AppContext, bridge: EventBridge
) -> None:
    notify.enqueue(
        two_team, notify.plan(two_team, "two-team", Event.DRAW, round_seq=1, audience=Audience.ALL)
    )
    dialog = _dialog(qtbot, two_team, bridge, (Event.DRAW, Audience.ALL))
    with qtbot.waitSignal(dialog.plan_loaded, timeout=10000):
        dialog.changes_only.setChecked(True)
    with qtbot.waitSignal(dialog.preview_updated, timeout=10000):
        dialog.template_panel.choice.setCurrentIndex(1)
    assert dialog.preview.subject.text() == ""
    assert "Nobody gets the removal notice now" in dialog.preview.text.toPlainText()
    dialog.close()
