"""The round page: empty state, detail panels, filters with expansion, drafts, resend all corrected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, DeliveryStatus
from tabmail.domain.tournament import Round, Tournament
from tabmail.gui.bridge import EventBridge
from tabmail.gui.roles import Roles
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.theme import Theme, Tone
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.status.events import ProviderEvent, derive_status
from tests.gui.test_rounds_model import T0, queue, report, send

pytestmark = pytest.mark.gui


@pytest.fixture
def demo(ctx: AppContext) -> AppContext:
    """The demo, with a backend of real mail (not practice, whose corrections are practice only):
    these tests report the providers' outcomes themselves."""
    assert load_demo_if_empty(ctx) is not None
    ctx.settings.set_text("backend", "file")
    return ctx


@pytest.fixture
def bridge(demo: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(demo.bus)
    yield b
    b.detach()


@pytest.fixture
def page(qtbot: QtBot, demo: AppContext, bridge: EventBridge) -> RoundMessagesPage:
    p = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    qtbot.waitExposed(p)
    return p


def round_1(ctx: AppContext) -> tuple[Tournament, Round]:
    t = ctx.tournaments.list_all()[0]
    return t, ctx.tournaments.get_round(t.id, 1)


def test_an_empty_round_shows_the_placeholder_until_a_batch_is_queued(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage
) -> None:
    page.show_round(*round_1(demo))
    assert page.stack.currentWidget() is page.placeholder
    assert page.placeholder.title.text() == "Round 1"
    batch = queue(demo, Audience.ADJUDICATORS)
    qtbot.waitUntil(lambda: page.stack.currentWidget() is page.list_page, timeout=3000)
    assert page.model.batch_ids() == [batch]
    assert page.tree.isExpanded(page.proxy.index(0, 0))  # new batches arrive expanded
    assert page.summary.text().startswith("1 batch · ")


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_the_detail_panel_follows_the_selection(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage
) -> None:
    batch = queue(demo, Audience.TEAMS)
    ids = send(demo, batch, failed=1)
    report(demo, ids[0], DeliveryStatus.BOUNCED, 3, "550 5.1.1 user unknown")
    page.show_round(*round_1(demo))
    assert page.select_batch(batch)
    assert page.detail.currentWidget() is page.batch_panel
    assert "1 bounced · 1 failed" in page.batch_panel.counts.text()
    assert page.batch_panel.advice.isVisible() and page.batch_panel.resend_button.isEnabled()
    assert not page.row_actions.resend_action.isEnabled()
    assert page.select_message(ids[0])
    assert page.detail.currentWidget() is page.message_view
    assert page.message_view.status_label.text() == "Bounced"
    assert page.row_actions.resend_action.isEnabled() and page.message_view.resend_row.isVisible()
    assert page.select_message(ids[3])
    assert not page.row_actions.resend_action.isEnabled() and not page.message_view.resend_row.isVisible()
    # the context menu offers the row's actions; a batch row only the batch's
    menu = page.row_actions.context_menu(page.tree.currentIndex())
    assert [a.text() for a in menu.actions() if a.text()] == [
        "&Resend", "&Correct Address…", "Copy &Address", "Copy Message &Id", "Resend &All Corrected"
    ]  # fmt: skip
    menu.deleteLater()
    batch_menu = page.row_actions.context_menu(page.proxy.index(0, 0))
    assert [a.text() for a in batch_menu.actions()] == ["Resend &All Corrected"]
    batch_menu.deleteLater()


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_filters_keep_what_the_director_collapsed_and_a_bad_address_is_said_inline(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage
) -> None:
    older = queue(demo, Audience.ADJUDICATORS)
    send(demo, older, failed=1)
    newer = queue(demo, Audience.TEAMS)
    ids = send(demo, newer, failed=2)
    page.show_round(*round_1(demo))
    older_index = page.proxy.mapFromSource(page.model.index_of_batch(older))
    page.tree.collapse(older_index)
    page.problems_only.setChecked(True)
    assert page.proxy.rowCount() == 2
    page.problems_only.setChecked(False)
    assert not page.tree.isExpanded(page.proxy.mapFromSource(page.model.index_of_batch(older)))
    assert page.tree.isExpanded(page.proxy.mapFromSource(page.model.index_of_batch(newer)))

    page.search.setText(ids[-1][-10:])
    assert page.proxy.rowCount() == 1
    batch = page.proxy.index(0, 0)
    assert page.proxy.rowCount(batch) == 1 and page.proxy.index(0, 0, batch).data(Roles.ID) == ids[-1]
    page.search.clear()

    page.select_message(ids[-1])
    page.message_view.address.setText("not an address")
    page.message_view.address.editingFinished.emit()
    assert (
        page.notice.isVisible()
        and page.notice.tone is Tone.BAD
        and "not a usable address" in page.notice.text()
    )
    assert page.model.draft(ids[-1]) is None


def test_resend_all_corrected_takes_drafts_and_addresses_corrected_in_participants(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage, qloop: asyncio.AbstractEventLoop
) -> None:
    batch = queue(demo, Audience.TEAMS)
    ids = send(demo, batch)
    for mid in ids[:3]:
        report(demo, mid, DeliveryStatus.BOUNCED, 3, "550 5.1.1 user unknown")
    page.show_round(*round_1(demo))
    # one corrected here, one in Participants, one not at all
    assert page.model.set_draft(ids[0], "first.fixed@example.org") is None
    person = demo.notifications.get(ids[1]).person_id
    assert person is not None
    demo.tournaments.set_person_email(person, "second.fixed@example.org", source="director")
    page.select_batch(batch)
    assert "1 corrected here" in page.batch_panel.advice.text()
    page.batch_panel.resend_button.click()
    box = page.findChild(QMessageBox, "confirm-resend-corrected")  # it asks first
    assert box is not None and "2 here" not in box.text()
    assert page.model.resent_as(ids[0]) == []
    box.button(QMessageBox.StandardButton.Cancel)  # the question offers a way out
    next(b for b in box.buttons() if b.text() == "Resend").click()
    qtbot.waitUntil(
        lambda: bool(page.model.resent_as(ids[0]) and page.model.resent_as(ids[1])), timeout=10000
    )
    assert not page.model.resent_as(ids[2])  # same address: it would bounce again
    new = {page.model.message(page.model.resent_as(i)[0]).address for i in ids[:2]}  # type: ignore[union-attr]
    assert new == {"first.fixed@example.org", "second.fixed@example.org"}
    assert page.model.draft(ids[0]) is None  # used up
    assert page.notice.text() == "Queued 2 resends: first.fixed@example.org, second.fixed@example.org."
    assert page.model.index_of_batch(batch).data(Roles.PROBLEM) is True  # the originals stay bounced


def test_unmatched_events_are_counted_in_the_summary(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage
) -> None:
    batch = queue(demo, Audience.ADJUDICATORS)
    send(demo, batch)
    page.show_round(*round_1(demo))
    assert "unmatched" not in page.summary.text()
    ev = ProviderEvent(
        "stray-1", "bounce", DeliveryStatus.BOUNCED, T0, tabmail_id="01NOSUCHMESSAGE", source="test"
    )
    result = demo.tracking.ingest([ev], derive=derive_status)
    assert result.unmatched == 1
    from tabmail.domain.events import StatusesChanged

    demo.bus.publish(StatusesChanged((), unmatched=1))
    assert "1 unmatched event" in page.summary.text()
    assert "tabmail events --unmatched" in page.summary.toolTip()
    assert page.summary.styleSheet() == ""  # no bounce in the round itself
    assert Theme().text_style(Tone.BAD) != ""


def test_unmatched_events_are_listed_from_the_round_view(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from tabmail.gui.rounds.unmatched import UnmatchedEventsDialog
    from tabmail.store.models import StatusEventRow

    with demo.db.engine.begin() as conn:
        conn.execute(
            insert(StatusEventRow),
            [
                {
                    "message_id": None,
                    "provider": "sendgrid",
                    "provider_event_id": f"late-{n}",
                    "event": "bounce",
                    "status": "bounced",
                    "source": "suppressions",
                    "event_time": datetime(2026, 11, 24, 9, n, tzinfo=UTC),
                    "received_at": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
                    "address": f"stranger{n}@example.org",
                    "address_key": f"stranger{n}@example.org",
                    "reason": "550 5.1.1 no such user",
                    "raw": {"event": "bounce"},
                }
                for n in range(3)
            ],
        )
    page.show_round(*round_1(demo))
    page._refresh_unmatched()
    assert not page.header.unmatched_button.isHidden()
    assert "3 unmatched events" in page.summary.text()
    dialog = page.show_unmatched()
    assert isinstance(dialog, UnmatchedEventsDialog)
    model = dialog.model
    assert model.rowCount() == 3
    addresses = {model.index(r, 2).data() for r in range(3)}
    assert addresses == {"stranger0@example.org", "stranger1@example.org", "stranger2@example.org"}
    assert model.index(0, 3).data() == "550 5.1.1 no such user"
    dialog.close()


def test_clearing_a_narrow_search_paints_the_tree_once(
    qtbot: QtBot, demo: AppContext, page: RoundMessagesPage
) -> None:
    """From a few rows back to a round that needs scrolling: the scroll bar appeared, the
    viewport shrank and the tree was painted a second time for the same keystroke (on a
    2,000-message round, a quarter of the keystroke's time)."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    class Paints(QObject):
        count = 0

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.count += 1
            return False

    send(demo, queue(demo, Audience.TEAMS))
    page.show_round(*round_1(demo))
    page.splitter.setSizes([200, 600])  # room for a few rows only: the round needs scrolling
    first = page.model.message(page.model.message_ids(page.model.batch_ids()[0])[0])
    assert first is not None
    page.search.setText(first.address)
    qtbot.waitUntil(lambda: page.proxy.rowCount(page.proxy.index(0, 0)) == 1, timeout=3000)
    for _ in range(3):
        QApplication.processEvents()
    paints = Paints()
    page.tree.viewport().installEventFilter(paints)
    page.search.setText("")
    for _ in range(5):
        QApplication.processEvents()
    assert page.proxy.rowCount(page.proxy.index(0, 0)) == page.model.message_count() > 10
    assert page.tree.verticalScrollBar().maximum() > 0
    assert paints.count == 1
