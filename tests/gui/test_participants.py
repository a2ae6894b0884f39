"""The participants view: model checks, highlighting, address editing, search and flags."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QApplication, QLineEdit
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from tabmail.domain.events import AddressFlagsChanged, PersonChanged
from tabmail.domain.notification import FlagKind
from tabmail.domain.tournament import Person
from tabmail.gui.bridge import EventBridge
from tabmail.gui.participants import Column, ParticipantsModel, ParticipantsPage
from tabmail.gui.roles import Roles
from tabmail.gui.theme import Theme, Tone
from tabmail.services.context import AppContext
from tests.gui.conftest import INVALID_ADDRESS

pytestmark = pytest.mark.gui


def _person(ctx: AppContext, tournament_id: int, name: str) -> Person:
    return next(p for p in ctx.tournaments.people(tournament_id) if p.name == name)


@pytest.fixture
def page(qtbot: QtBot, ctx: AppContext, tournament_id: int) -> ParticipantsPage:
    bridge = EventBridge(ctx.bus)
    page = ParticipantsPage(ctx, bridge)
    bridge.setParent(page)
    qtbot.addWidget(page)
    page.set_tournament(ctx.tournaments.get_by_id(tournament_id))
    page.resize(1200, 700)
    page.show()
    qtbot.waitExposed(page)
    return page


def _source_row(page: ParticipantsPage, person_id: int) -> int:
    row = page.model.row_of(person_id)
    assert row is not None
    return row


def test_model_passes_qt_model_tester(
    qtmodeltester: ModelTester, ctx: AppContext, tournament_id: int
) -> None:
    model = ParticipantsModel(ctx)
    model.load(tournament_id)
    assert model.rowCount() == 7
    qtmodeltester.check(model)


def test_proxy_passes_qt_model_tester(qtmodeltester: ModelTester, page: ParticipantsPage) -> None:
    page.search.setText("a")
    qtmodeltester.check(page.proxy)


def test_invalid_and_missing_addresses_are_highlighted(
    page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    theme = Theme()
    model = page.model
    invalid = _person(ctx, tournament_id, "Edsger Dijkstra")
    missing = _person(ctx, tournament_id, "Donald Knuth")
    fine = _person(ctx, tournament_id, "Ada Lovelace")

    row = _source_row(page, invalid.id)
    email = model.index(row, Column.EMAIL)
    status = model.index(row, Column.STATUS)
    assert email.data(Roles.STATUS) == "invalid"
    assert email.data(Roles.PROBLEM) is True
    assert email.data(Qt.ItemDataRole.BackgroundRole) == theme.background(Tone.BAD)
    assert status.data(Qt.ItemDataRole.DisplayRole) == "Invalid address"  # words, not only colour
    assert status.data(Qt.ItemDataRole.DecorationRole) is not None
    assert "Not a valid address" in email.data(Qt.ItemDataRole.ToolTipRole)

    row = _source_row(page, missing.id)
    assert model.index(row, Column.STATUS).data(Roles.STATUS) == "missing"
    assert model.index(row, Column.EMAIL).data(Qt.ItemDataRole.BackgroundRole) == theme.background(
        Tone.WARNING
    )

    row = _source_row(page, fine.id)
    assert model.index(row, Column.STATUS).data(Roles.STATUS) == "ok"
    assert model.index(row, Column.EMAIL).data(Qt.ItemDataRole.BackgroundRole) is None
    assert "1 without an address" in page.summary.text()
    assert "1 with an invalid address" in page.summary.text()


def _edit_in_view(qtbot: QtBot, page: ParticipantsPage, person_id: int, text: str) -> None:
    page.edit_address(person_id)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit), "the address cell did not open an editor"
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_editing_an_address_in_the_view_updates_the_store_and_history(
    qtbot: QtBot, page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    person = _person(ctx, tournament_id, "Edsger Dijkstra")
    published: list[object] = []
    ctx.bus.subscribe(PersonChanged, published.append)

    with qtbot.waitSignal(page.model.address_edited, timeout=5000) as edited:
        _edit_in_view(qtbot, page, person.id, "edsger@example.org")

    assert edited.args == [person.id, True, ""]
    stored = ctx.tournaments.get_person(person.id)
    assert stored.email == "edsger@example.org"
    assert stored.email_valid
    history = ctx.tournaments.address_history(person.id)
    assert history[-1][1:4] == (INVALID_ADDRESS, "edsger@example.org", "director")
    assert published == [PersonChanged(person.id)]
    row = _source_row(page, person.id)
    assert page.model.index(row, Column.STATUS).data(Roles.STATUS) == "ok"
    assert page.message.tone == Tone.GOOD
    # The side panel follows the selection and shows the recorded change.
    assert page.panel.person is not None and page.panel.person.id == person.id
    assert "edsger@example.org" in page.panel.history.text()


def test_an_invalid_edit_is_refused_and_the_working_address_kept(
    qtbot: QtBot, page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    """Issue 10 defect 6: "bruno at example" typed in place replaced a working address."""
    person = _person(ctx, tournament_id, "Ada Lovelace")
    history_before = ctx.tournaments.address_history(person.id)
    with qtbot.waitSignal(page.model.edit_failed, timeout=5000) as failed:
        _edit_in_view(qtbot, page, person.id, "ada at example")
    assert "'ada at example' is not a usable address" in failed.args[0]
    assert "still ada@example.org" in failed.args[0]
    stored = ctx.tournaments.get_person(person.id)
    assert stored.email == "ada@example.org" and stored.email_valid  # the old value is kept
    assert ctx.tournaments.address_history(person.id) == history_before
    row = _source_row(page, person.id)
    assert page.model.index(row, Column.EMAIL).data() == "ada@example.org"
    assert page.message.tone == Tone.BAD and "not a usable address" in page.message.text()


def test_every_address_edit_is_undoable(
    qtbot: QtBot, page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    """Issue 10 defect 6: Ctrl+Z did nothing. Edit → Undo names what it undoes."""
    stack = QUndoStack(page)
    page.undo_stack = stack
    undo = stack.createUndoAction(page, "&Undo")
    person = _person(ctx, tournament_id, "Ada Lovelace")
    with qtbot.waitSignal(page.model.address_edited, timeout=5000):
        _edit_in_view(qtbot, page, person.id, "ada.lovelace@example.org")
    assert ctx.tournaments.get_person(person.id).email == "ada.lovelace@example.org"
    assert (
        undo.isEnabled() and undo.text() == "&Undo change Ada Lovelace's address to ada.lovelace@example.org"
    )
    with qtbot.waitSignal(page.model.address_edited, timeout=5000):
        stack.undo()
    assert ctx.tournaments.get_person(person.id).email == "ada@example.org"
    row = _source_row(page, person.id)
    assert page.model.index(row, Column.EMAIL).data() == "ada@example.org"
    stack.redo()
    assert ctx.tournaments.get_person(person.id).email == "ada.lovelace@example.org"


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_search_role_and_problem_filters(page: ParticipantsPage) -> None:
    assert page.proxy.rowCount() == 7
    page.search.setText("dale a")  # team name, case-insensitive
    assert page.proxy.rowCount() == 2
    page.search.setText("barbara@")
    assert page.proxy.rowCount() == 1
    page.search.clear()
    page.role_filter.setCurrentIndex(page.role_filter.findText("Adjudicators"))
    assert page.proxy.rowCount() == 3
    page.role_filter.setCurrentIndex(0)
    page.problems_only.setChecked(True)
    names = {page.proxy.index(r, Column.NAME).data() for r in range(page.proxy.rowCount())}
    assert names == {"Edsger Dijkstra", "Donald Knuth"}


def test_bounce_flags_highlight_the_address(
    page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    person = _person(ctx, tournament_id, "Grace Hopper")
    row = _source_row(page, person.id)
    assert page.model.index(row, Column.STATUS).data(Roles.STATUS) == "ok"
    assert ctx.flags.add("grace@example.org", FlagKind.HARD, "550 5.1.1 no such user", "test")
    ctx.bus.publish(AddressFlagsChanged(("grace@example.org",)))
    status = page.model.index(row, Column.STATUS)
    assert status.data(Roles.STATUS) == "flagged"
    assert status.data(Qt.ItemDataRole.DisplayRole) == "Bouncing"
    assert "550 5.1.1" in status.data(Qt.ItemDataRole.ToolTipRole)


def test_changes_from_elsewhere_update_the_row(
    page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    person = _person(ctx, tournament_id, "Donald Knuth")
    ctx.tournaments.set_person_email(person.id, "don@example.org", source="resend")
    ctx.bus.publish(PersonChanged(person.id))
    row = _source_row(page, person.id)
    assert page.model.index(row, Column.EMAIL).data() == "don@example.org"
    assert page.model.index(row, Column.TEAM).data() == ""  # names kept, not blanked
    assert page.model.index(row, Column.INSTITUTION).data() == "Dale"


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_the_panel_lists_what_the_person_was_sent(
    qtbot: QtBot, page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    from tabmail.domain.notification import Event, Templates
    from tabmail.services import notify

    ctx.settings.set_text("from_address", "tab@example.org")
    ada = _person(ctx, tournament_id, "Ada Lovelace")
    slug = ctx.tournaments.get_by_id(tournament_id).slug
    plan = notify.plan(ctx, slug, Event.CUSTOM, person_ids=[ada.id], templates=Templates("Hi", "Hello\n"))
    notify.enqueue(ctx, plan)
    assert page.select_person(ada.id)
    qtbot.waitUntil(lambda: "Custom message" in page.panel.sent.text(), timeout=3000)
    assert "ada@example.org" in page.panel.sent.text()
    assert "Queued" in page.panel.sent.text()
    edsger = _person(ctx, tournament_id, "Edsger Dijkstra")
    assert page.select_person(edsger.id)
    qtbot.waitUntil(lambda: "Nothing sent yet" in page.panel.sent.text(), timeout=3000)


def test_an_address_on_a_special_use_domain_is_accepted_and_marked_unusual(
    ctx: AppContext, tournament_id: int
) -> None:
    ada = _person(ctx, tournament_id, "Ada Lovelace")
    ctx.tournaments.set_person_email(ada.id, "ada@maths.uni.internal", "director")
    model = ParticipantsModel(ctx)
    model.load(tournament_id)
    row = model.row_of(ada.id)
    assert row is not None
    status = model.index(row, Column.STATUS)
    assert status.data(Roles.STATUS) == "ok" and status.data(Roles.PROBLEM) is False
    tip = status.data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Unusual domain: a private-network domain (.internal): only a mail server")
    assert model.index(row, Column.EMAIL).data(Qt.ItemDataRole.ToolTipRole).startswith("Unusual domain")


def test_the_history_and_the_sent_list_say_who_did_it_on_which_machine(
    qtbot: QtBot, page: ParticipantsPage, ctx: AppContext, tournament_id: int
) -> None:
    import socket

    from tabmail.domain.notification import Event, Templates
    from tabmail.services import notify

    ctx.settings.set_text("user.name", "Grace Tab")
    ctx.settings.set_text("from_address", "tab@example.org")
    ada = _person(ctx, tournament_id, "Ada Lovelace")
    ctx.tournaments.set_person_email(ada.id, "ada.new@example.org", source="director")
    slug = ctx.tournaments.get_by_id(tournament_id).slug
    plan = notify.plan(ctx, slug, Event.CUSTOM, person_ids=[ada.id], templates=Templates("Hi", "Hello\n"))
    notify.enqueue(ctx, plan)
    assert page.select_person(ada.id)
    qtbot.waitUntil(lambda: "Custom message" in page.panel.sent.text(), timeout=3000)
    who = f"by Grace Tab on {socket.gethostname()}"
    assert who in page.panel.history.text()
    assert who in page.panel.sent.text()


@pytest.mark.parametrize("width", [1000, 1400])
def test_the_address_column_stays_readable_in_a_narrow_window(
    qtbot: QtBot, page: ParticipantsPage, width: int
) -> None:
    """The address is what the director reads and fixes here: the window at its first-start size
    (the table ~650 px wide beside the person panel) once squeezed it to 60 px ("nail addre").
    Now the other columns give way first and every column stays in view; a wide window gives
    the address the room."""
    page.resize(width, 700)
    qtbot.wait(50)
    header = page.table.horizontalHeader()
    viewport = page.table.viewport().width()
    assert header.sectionSize(Column.EMAIL) >= (180 if width < 1200 else 240)
    assert header.sectionSize(Column.STATUS) >= 110
    assert sum(header.sectionSize(c) for c in Column) <= viewport  # no column out of view
    if width >= 1200:
        assert header.sectionSize(Column.INSTITUTION) == 150


def test_a_column_resized_by_hand_keeps_its_width(qtbot: QtBot, page: ParticipantsPage) -> None:
    header = page.table.horizontalHeader()
    header.resizeSection(Column.NAME, 250)  # as the director dragging its edge
    page.resize(1000, 700)
    qtbot.wait(50)
    assert header.sectionSize(Column.NAME) == 250
