"""Issue 10: one vocabulary, counts equal to the rows they describe, resolved problems, the
Problems view, badges, the window title, alerts, Retry now / Cancel, and the smaller defects."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tabmail.cli.main import main as cli_main
from tabmail.domain.events import StatusesChanged
from tabmail.domain.notification import Audience, DeliveryStatus, FlagKind, MessageState
from tabmail.domain.problems import Category
from tabmail.gui.bridge import EventBridge
from tabmail.gui.main_window import MainWindow
from tabmail.gui.navigator import BADGE, PROBLEMS, ROUND
from tabmail.gui.roles import Roles
from tabmail.gui.rounds import Column, RoundMessagesModel
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.rounds.words import RESOLVED, batch_title, local_time
from tabmail.gui.theme import Theme, Tone
from tabmail.services import problems as service
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.status.events import ProviderEvent, derive_status, stable_event_id
from tests.gui.test_rounds_model import T0, queue, send

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qapp")]


def event(ctx: AppContext, mid: str, name: str, status: DeliveryStatus, minutes: float, **kw: object) -> None:
    kw.setdefault("address", ctx.notifications.get(mid).address)
    ev = ProviderEvent(
        provider_event_id=stable_event_id(name, mid, minutes),
        name=name,
        status=status,
        event_time=T0 + timedelta(minutes=minutes),
        tabmail_id=mid,
        source="test",
        **kw,  # type: ignore[arg-type]
    )
    ctx.tracking.ingest([ev], derive=derive_status, now=T0 + timedelta(hours=1))


@pytest.fixture
def demo(ctx: AppContext) -> AppContext:
    assert load_demo_if_empty(ctx) is not None
    return ctx


@pytest.fixture
def mixed(demo: AppContext) -> dict[str, object]:
    """A teams batch with every kind of problem: 2 bounced, 1 invalid, 1 blocked, 1 dropped,
    1 spam report, 1 unsubscribed, 1 failed; the rest delivered (the spam report and the
    unsubscribe were delivered first)."""
    ctx = demo
    ctx.settings.set("backend", "sendgrid")
    batch = queue(ctx, Audience.TEAMS)
    ids = send(ctx, batch, failed=1)
    kinds = {
        "bounced": ids[0:2],
        "invalid": ids[2:3],
        "blocked": ids[3:4],
        "dropped": ids[4:5],
        "spam_report": ids[5:6],
        "unsubscribed": ids[6:7],
        "failed": ids[-1:],
    }
    for mid in ids[:-1]:
        if mid not in kinds["bounced"] + kinds["invalid"] + kinds["blocked"] + kinds["dropped"]:
            event(ctx, mid, "delivered", DeliveryStatus.DELIVERED, 1)
    for mid in kinds["bounced"]:
        event(ctx, mid, "bounce", DeliveryStatus.BOUNCED, 2, reason="550 5.2.1 mailbox disabled")
    for mid in kinds["invalid"]:
        event(
            ctx,
            mid,
            "bounce",
            DeliveryStatus.BOUNCED,
            2,
            reason="5.1.2 domain unknown",
            flag=FlagKind.INVALID,
        )
    for mid in kinds["blocked"]:
        event(
            ctx,
            mid,
            "bounce",
            DeliveryStatus.BLOCKED,
            2,
            reason="554 5.7.1 rejected as spam",
            bounce_type="blocked",
        )
    for mid in kinds["dropped"]:
        event(ctx, mid, "dropped", DeliveryStatus.DROPPED, 2, reason="Bounced Address")
    for mid in kinds["spam_report"]:
        event(ctx, mid, "spamreport", DeliveryStatus.SPAM_REPORT, 3, flag=FlagKind.SPAM)
    for mid in kinds["unsubscribed"]:
        event(ctx, mid, "unsubscribe", DeliveryStatus.UNSUBSCRIBED, 3)
    round_id = ctx.tournaments.get_round(ctx.tournaments.list_all()[0].id, 1).id
    return {"batch": batch, "ids": ids, "kinds": kinds, "round": round_id}


@pytest.fixture
def bridge(demo: AppContext) -> Iterator[EventBridge]:
    b = EventBridge(demo.bus)
    yield b
    b.detach()


@pytest.fixture
def model(demo: AppContext, bridge: EventBridge, mixed: dict[str, object]) -> RoundMessagesModel:
    m = RoundMessagesModel(demo, Theme(), bridge)
    m.load(mixed["round"])  # type: ignore[arg-type]
    return m


def rows_by_label(model: RoundMessagesModel, batch_id: int) -> Counter[str]:
    parent = model.index_of_batch(batch_id)
    return Counter(model.index(r, Column.STATUS, parent).data() for r in range(model.rowCount(parent)))


# -- defect 3: one vocabulary; counts equal the rows --------------------------------------------
@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_each_kind_of_problem_has_its_own_word_and_the_counts_equal_the_rows(
    model: RoundMessagesModel, mixed: dict[str, object]
) -> None:
    batch = mixed["batch"]
    kinds: dict[str, list[str]] = mixed["kinds"]  # type: ignore[assignment]
    labels = {
        kind: {model.index_of_message(m, Column.STATUS).data() for m in ids} for kind, ids in kinds.items()
    }
    assert labels == {
        "bounced": {"Bounced"},
        "invalid": {"Invalid address"},
        "blocked": {"Blocked"},
        "dropped": {"Dropped"},
        "spam_report": {"Spam report"},
        "unsubscribed": {"Unsubscribed"},
        "failed": {"Failed"},
    }
    rows = rows_by_label(model, batch)  # type: ignore[arg-type]
    counts = model.batch_counts(batch)  # type: ignore[arg-type]
    assert counts[Category.BOUNCED] == rows["Bounced"] == 2
    assert counts[Category.INVALID] == rows["Invalid address"] == 1
    assert counts[Category.BLOCKED] == rows["Blocked"] == 1
    assert counts[Category.DROPPED] == rows["Dropped"] == 1
    assert counts[Category.SPAM_REPORT] == rows["Spam report"] == 1  # not counted as delivered
    assert counts[Category.UNSUBSCRIBED] == rows["Unsubscribed"] == 1
    assert counts[Category.FAILED] == rows["Failed"] == 1
    assert counts[Category.DELIVERED] == rows["Delivered"]
    bar = model.index_of_batch(batch).siblingAtColumn(Column.STATUS).data()  # type: ignore[arg-type]
    assert bar == (
        f"2 bounced · 1 invalid address · 1 blocked · 1 dropped · 1 failed · 1 spam report · "
        f"1 unsubscribed · {rows['Delivered']} delivered"
    )


def test_the_banner_and_the_batch_panel_use_the_same_words(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, mixed: dict[str, object]
) -> None:
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))
    summary = page.summary.text()
    assert (
        "2 bounced · 1 invalid address · 1 blocked · 1 dropped · 1 failed · 1 spam report · 1 unsubscribed"
        in summary
    )
    page.select_batch(mixed["batch"])  # type: ignore[arg-type]
    advice = page.batch_panel.advice.text()
    assert advice.startswith("8 messages need attention: 2 bounced · 1 invalid address")
    assert "did not reach" not in advice  # the spam report and the unsubscribe did reach them
    page.problems_only.setChecked(True)
    batch = page.proxy.index(0, 0)
    assert page.proxy.rowCount(batch) == 8  # exactly the rows the counts describe


def test_the_resend_question_names_what_happened(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, mixed: dict[str, object]
) -> None:
    """A spam report's resend dialog said "since it bounced" and "spam_reports"."""
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))
    spam = mixed["kinds"]["spam_report"][0]  # type: ignore[index]
    result = service_result(demo, spam)
    box = page.row_actions.resender._ask_unsuppress([result], lambda: None)
    assert "spam-report list" in box.text() and "spam_reports" not in box.text()
    assert "since the recipient reported it as spam" in box.informativeText()
    assert "bounced" not in box.informativeText()
    box.close()


def service_result(ctx: AppContext, mid: str) -> object:
    from tabmail.services.resend import ResendOutcome, ResendResult

    m = ctx.notifications.get(mid)
    return ResendResult(
        mid, ResendOutcome.SUPPRESSED, m.address, m.batch_id, "", suppressed_on=("spam_reports",)
    )


@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_status_json_has_the_categories_and_their_counts_equal_the_messages(
    demo: AppContext, mixed: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    slug = demo.tournaments.list_all()[0].slug
    from tabmail.cli.status_cmds import status_data

    data = status_data(demo, slug, 1)
    batch = next(b for b in data["batches"] if b["id"] == mixed["batch"])
    per_message = Counter(m["category"] for m in batch["messages"] if not m["resolved"])
    assert batch["categories"] == {k: v for k, v in per_message.items()}
    assert batch["categories"]["spam_report"] == 1 and batch["categories"]["invalid"] == 1
    json.dumps(data)  # plain JSON


# -- defect 4: resolved problems ------------------------------------------------------------------
def resend_delivered(ctx: AppContext, original: str, address: str) -> str:
    from tabmail.services.resend import resend

    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the tests' current loop
    try:
        result = loop.run_until_complete(resend(ctx, original, address))
    finally:
        loop.close()
    new = result.new_message_id
    assert new is not None
    ctx.notifications.mark_sent(new, f"x-{new}", "250 ok", T0)
    event(ctx, new, "delivered", DeliveryStatus.DELIVERED, 10)
    return new


def test_a_delivered_resend_resolves_the_original(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, mixed: dict[str, object]
) -> None:
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))
    model = page.model
    original = mixed["kinds"]["bounced"][0]  # type: ignore[index]
    before = model.batch_counts(mixed["batch"])  # type: ignore[arg-type]
    new = resend_delivered(demo, original, "fixed.address@example.org")
    demo.bus.publish(StatusesChanged((new,)))
    qtbot.waitUntil(lambda: model.resolution(original) is not None, timeout=5000)
    assert model.resolution(original).resend_id == new  # type: ignore[union-attr]
    index = model.index_of_message(original, Column.STATUS)
    assert index.data() == "Bounced · resolved"
    assert index.data(Qt.ItemDataRole.BackgroundRole) is None  # not red any more
    assert index.data(Roles.PROBLEM) is False
    after = model.batch_counts(mixed["batch"])  # type: ignore[arg-type]
    assert after[Category.BOUNCED] == before[Category.BOUNCED] - 1 and after[RESOLVED] == 1
    page.problems_only.setChecked(True)
    shown = {
        page.proxy.index(r, 0, page.proxy.index(0, 0)).data(Roles.ID)
        for r in range(page.proxy.rowCount(page.proxy.index(0, 0)))
    }
    assert original not in shown
    # the detail panel links to the resend that got there
    page.problems_only.setChecked(False)
    page.select_message(original)
    assert "reached the recipient" in page.message_view.problem.text()
    assert f"message:{new}" in page.message_view.chain.text()
    assert all(p.message.id != original for p in service.unresolved(demo))


def test_the_director_marks_a_problem_resolved_with_a_reason_and_can_undo_it(
    qtbot: QtBot, demo: AppContext, mixed: dict[str, object], qsettings: QSettings
) -> None:
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    assert window.select_round(mixed["round"])  # type: ignore[arg-type]
    page = window.round_view
    mid = mixed["kinds"]["unsubscribed"][0]  # type: ignore[index]
    assert page.row_actions.resolve(mid, "") is False and "say why" in page.notice.text()
    assert page.row_actions.resolve(mid, "phoned her; she will check the website")
    qtbot.waitUntil(lambda: page.model.resolution(mid) is not None, timeout=5000)
    assert page.model.index_of_message(mid, Column.STATUS).data() == "Unsubscribed · resolved"
    assert (
        window.menus.undo_action.text()
        == f"&Undo mark {page.model.message(mid).recipient_name}'s problem resolved"
    )  # type: ignore[union-attr]
    window.menus.undo_action.trigger()
    qtbot.waitUntil(lambda: page.model.resolution(mid) is None, timeout=5000)
    assert page.model.index_of_message(mid, Column.STATUS).data() == "Unsubscribed"
    window.menus.redo_action.trigger()
    qtbot.waitUntil(lambda: page.model.resolution(mid) is not None, timeout=5000)
    window.close()


# -- the Problems view, badges, the title ---------------------------------------------------------
@pytest.mark.both_engines  # the window on a PostgreSQL database too
def test_the_problems_view_lists_every_unresolved_problem_with_badges_and_title(
    qtbot: QtBot, demo: AppContext, mixed: dict[str, object], qsettings: QSettings
) -> None:
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    # counted in the background at start-up
    qtbot.waitUntil(lambda: window.windowTitle().startswith("(8 problems) "), timeout=5000)
    nav = window.navigator.model
    assert nav.find((ROUND, mixed["round"])).data(BADGE) == 8  # type: ignore[arg-type]
    tournament = demo.tournaments.list_all()[0]
    assert window.select_problems(tournament.id)
    page = window.problems_page
    assert window.stack.currentWidget() is page
    assert page.model.rowCount() == 8
    assert {page.model.index(r, 4).data() for r in range(8)} == {
        "Bounced", "Invalid address", "Blocked", "Dropped", "Spam report", "Unsubscribed", "Failed",
    }  # fmt: skip
    assert "8 unresolved problems" in page.summary.text()
    assert window.select_problems(None)
    assert not page.table.isColumnHidden(0) and page.model.rowCount() == 8
    assert nav.find((PROBLEMS, 0)).data(BADGE) == 8

    # fix one from here: correct the address, resend; then mark another resolved
    bounced = mixed["kinds"]["bounced"][0]  # type: ignore[index]
    assert page.select_message(bounced)
    row = page.model.row_of(bounced)
    assert not page.model.setData(page.model.index(row, 3), "not an address")  # type: ignore[arg-type]
    assert page.notice.tone is Tone.BAD
    assert page.model.setData(page.model.index(row, 3), "bounced.fixed@example.org")  # type: ignore[arg-type]
    failed = mixed["kinds"]["failed"][0]  # type: ignore[index]
    assert page.resolve(failed, "sent it by hand")
    qtbot.waitUntil(lambda: page.model.row_of(failed) is None, timeout=5000)
    window.problems_hub.recount()
    assert window.windowTitle().startswith("(7 problems) ")
    assert nav.find((ROUND, mixed["round"])).data(BADGE) == 7  # type: ignore[arg-type]
    # Go to Round opens the message in its round
    assert page.select_message(bounced)
    assert page.go_button.text() == "Go to Round"
    page.go_to_current()
    assert window.stack.currentWidget() is window.round_view
    assert window.round_view.current_message_id() == bounced
    window.close()


def test_an_alert_names_how_many_new_problems_and_which_round(
    qtbot: QtBot, demo: AppContext, qsettings: QSettings
) -> None:
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    hub = window.problems_hub
    hub.tray_available = lambda: False  # no tray here: status bar + urgency hint
    batch = queue(demo, Audience.TEAMS)
    ids = send(demo, batch)
    for mid in ids[:2]:
        event(demo, mid, "bounce", DeliveryStatus.BOUNCED, 2, reason="550 user unknown")
    event(demo, ids[2], "delivered", DeliveryStatus.DELIVERED, 2)
    demo.bus.publish(StatusesChanged(tuple(ids[:3])))
    with qtbot.waitSignal(hub.alert_raised, timeout=5000) as raised:
        window.bridge.poll_finished.emit(True, True, "3 new events")
    title, text = raised.args
    assert title == "2 new problems in Round 1 (" + demo.tournaments.list_all()[0].name + ")"
    assert text.startswith("2 bounced")
    assert title in window.statusBar().currentMessage()
    # once per poll: the same problems do not alert again
    demo.bus.publish(StatusesChanged(tuple(ids[:2])))
    assert hub.flush_alerts() is None
    window.close()


# -- Retry now, Cancel, next retry time -----------------------------------------------------------
def test_retry_now_and_cancel_per_message(qtbot: QtBot, demo: AppContext, bridge: EventBridge) -> None:
    batch = queue(demo, Audience.TEAMS)
    ids = [m.id for m in demo.notifications.messages(batch_id=batch)]
    later = datetime.now(UTC) + timedelta(minutes=7)
    demo.notifications.mark_unsent(ids[0], MessageState.RETRYING, "421 try later", later)
    demo.notifications.mark_unsent(ids[1], MessageState.FAILED, "550 no")
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    page.show()
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))

    page.select_message(ids[0])
    view = page.message_view
    assert view.retry_button.isVisible() and view.cancel_button.isVisible()
    assert view.next_retry.text().startswith(f"Next attempt {local_time(later, seconds=True)}")
    page.select_message(ids[2])  # queued: cancel only
    assert view.cancel_button.isVisible() and not view.retry_button.isVisible()

    page.row_actions.cancel_message(ids[2])
    assert demo.notifications.get(ids[2]).state is MessageState.SKIPPED
    # the director's own choice: shown as skipped, not counted as a problem
    page.model.flush()
    assert page.model.index_of_message(ids[2], Column.STATUS).data() == "Skipped · resolved"
    assert not page.model.is_problem(ids[2])
    page.row_actions.retry_now(ids[0])
    assert demo.notifications.get(ids[0]).state is MessageState.QUEUED
    page.row_actions.retry_now(ids[1])
    assert demo.notifications.get(ids[1]).state is MessageState.QUEUED
    page.row_actions.retry_now(ids[2])  # skipped: refused, in words
    assert page.notice.tone is Tone.BAD and "only retrying or failed" in page.notice.text()


def test_cli_outbox_retry_and_cancel(demo: AppContext, capsys: pytest.CaptureFixture[str]) -> None:
    batch = queue(demo, Audience.TEAMS)
    ids = [m.id for m in demo.notifications.messages(batch_id=batch)]
    db = str(demo.db.path)
    assert cli_main(["--db", db, "outbox", "cancel", ids[0]]) == 0
    assert "now skipped" in capsys.readouterr().out
    assert demo.notifications.get(ids[0]).state is MessageState.SKIPPED
    assert cli_main(["--db", db, "outbox", "cancel", ids[0]]) != 0
    assert "only queued or retrying" in capsys.readouterr().err


# -- defect 9: the smaller ones -------------------------------------------------------------------
def test_a_batch_for_adjudicators_and_teams_is_not_named_everyone(demo: AppContext) -> None:
    batch = queue(demo, Audience.ALL)
    assert batch_title(demo.notifications.get_batch(batch)) == "Draw release · adjudicators and teams"


def test_a_search_with_no_match_says_so(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, mixed: dict[str, object]
) -> None:
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    page.show()
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))
    page.search.setText("nobody by this name")
    assert page.proxy.rowCount() == 0
    assert page.no_matches.isVisible() and page.no_matches.text() == "No matches"
    page.search.clear()
    assert not page.no_matches.isVisible()


def test_a_background_check_keeps_the_selected_row(
    qtbot: QtBot, demo: AppContext, mixed: dict[str, object], qsettings: QSettings
) -> None:
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    assert window.select_round(mixed["round"])  # type: ignore[arg-type]
    mid = mixed["kinds"]["blocked"][0]  # type: ignore[index]
    assert window.round_view.select_message(mid)
    window.refresh()  # what a finished check does (F5's on_success)
    assert window.round_view.current_message_id() == mid
    window.close()


def test_an_address_fixed_in_participants_shows_as_corrected_in_the_round(
    qtbot: QtBot, demo: AppContext, model: RoundMessagesModel, mixed: dict[str, object]
) -> None:
    from tabmail.domain.events import PersonChanged

    mid = mixed["kinds"]["bounced"][0]  # type: ignore[index]
    person = demo.notifications.get(mid).person_id
    assert person is not None
    demo.tournaments.set_person_email(person, "fixed.in.participants@example.org", source="director")
    demo.bus.publish(PersonChanged(person))
    assert model.draft(mid) == "fixed.in.participants@example.org"
    assert model.index_of_message(mid, Column.ADDRESS).data() == "fixed.in.participants@example.org"
    assert model.index_of_message(mid, Column.STATUS).data() == "Bounced · corrected"


@pytest.mark.parametrize("when", ["before", "while_open"])
def test_the_problems_view_resends_to_an_address_corrected_in_participants(
    qtbot: QtBot,
    demo: AppContext,
    mixed: dict[str, object],
    qsettings: QSettings,
    qloop: asyncio.AbstractEventLoop,
    when: str,
) -> None:
    """Found in the window, twice: after a bounced person's address was corrected in
    Participants (before the Problems view was built, then while it was open), the view still
    showed the old address and its one-click Resend went to it (flagged, "sending anyway, as
    asked") and bounced again. It shows the corrected address, as the round view does, and
    resends to it."""
    demo.settings.set("backend", "file")
    mid = mixed["kinds"]["bounced"][0]  # type: ignore[index]
    old = demo.notifications.get(mid)
    assert old.person_id is not None
    fixed = "fixed.in.participants@example.org"
    if when == "before":
        demo.tournaments.set_person_email(old.person_id, fixed, source="director")
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    tournament = demo.tournaments.list_all()[0]
    assert window.select_problems(tournament.id)
    page = window.problems_page
    row = page.model.row_of(mid)
    assert row is not None
    if when == "while_open":
        assert page.model.index(row, 3).data() == old.address
        participants = window.participants_page.model
        participants.load(tournament.id)
        assert participants.apply_address(old.person_id, fixed)  # what an edit in Participants does
    qtbot.waitUntil(lambda: page.model.index(page.model.row_of(mid) or 0, 3).data() == fixed, timeout=5000)
    assert page.model.draft(mid) == fixed
    assert page.select_message(mid)
    page.resend_current()
    qtbot.waitUntil(lambda: page.notice.text().startswith("Queued a resend"), timeout=10000)
    assert page.notice.text().startswith(f"Queued a resend to {fixed}")
    assert "sending anyway" not in page.notice.text()
    resent = next(m for m in demo.notifications.messages(batch_id=old.batch_id) if m.resend_of == mid)
    assert resent.address == fixed
    window.close()


def test_good_news_goes_away_by_itself(qtbot: QtBot) -> None:
    from tabmail.gui.widgets import MessageStrip

    strip = MessageStrip()
    qtbot.addWidget(strip)
    strip.GOOD_NEWS_MS = 50  # type: ignore[misc]
    strip.show_message("Saved Ada's address", Tone.GOOD)
    assert strip.isVisibleTo(strip.parentWidget() or strip) or strip.text()
    qtbot.waitUntil(lambda: strip.text() == "", timeout=2000)
    strip.show_message("Not saved: not an address", Tone.BAD)
    qtbot.wait(120)
    assert strip.text() == "Not saved: not an address"  # problems stay until replaced


def test_resend_notices_name_addresses_not_message_ids(
    qtbot: QtBot,
    demo: AppContext,
    bridge: EventBridge,
    mixed: dict[str, object],
    qloop: asyncio.AbstractEventLoop,
) -> None:
    demo.settings.set("backend", "file")
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))
    mid = mixed["kinds"]["dropped"][0]  # type: ignore[index]
    assert page.model.set_draft(mid, "dropped.fixed@example.org") is None
    page.row_actions.resend(mid)
    qtbot.waitUntil(lambda: bool(page.model.resent_as(mid)), timeout=10000)
    text = page.notice.text()
    assert text.startswith("Queued a resend to dropped.fixed@example.org")
    assert mid not in text and page.model.resent_as(mid)[0] not in text


def test_resend_all_corrected_and_restore_default_template_ask_first(
    qtbot: QtBot,
    demo: AppContext,
    mixed: dict[str, object],
    qsettings: QSettings,
    qloop: asyncio.AbstractEventLoop,
) -> None:
    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    assert window.select_round(mixed["round"])  # type: ignore[arg-type]
    page = window.round_view
    page.select_batch(mixed["batch"])  # type: ignore[arg-type]
    page.row_actions.resend_all_action.trigger()
    box = page.findChild(QMessageBox, "confirm-resend-corrected")
    assert box is not None and box.isVisible()
    box.reject()
    assert page.model.resent_as(mixed["kinds"]["bounced"][0]) == []  # type: ignore[index]

    dialog = window.open_composer()
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    subject = dialog.editor.subject  # type: ignore[attr-defined]
    subject.blockSignals(True)  # no preview to render after this test's loop is gone
    subject.setText("Changed subject")
    subject.blockSignals(False)
    question = dialog.ask_restore_defaults()
    assert question.isVisible() and "discarded" in question.text()
    question.reject()
    assert dialog.editor.subject.text() == "Changed subject"  # type: ignore[attr-defined]
    dialog.close()
    window.close()


def test_participants_sort_names_by_locale_and_name_each_kind_of_flag(
    qtbot: QtBot, demo: AppContext, mixed: dict[str, object]
) -> None:
    """Céline sorted after Chiara (code points); a spam report or a block read "Bouncing"."""
    from tabmail.gui.participants import Column as PColumn
    from tabmail.gui.participants import ParticipantsPage

    bridge = EventBridge(demo.bus)
    page = ParticipantsPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    page.set_tournament(demo.tournaments.list_all()[0])
    page.table.sortByColumn(PColumn.NAME, Qt.SortOrder.AscendingOrder)
    names = [page.proxy.index(r, PColumn.NAME).data() for r in range(page.proxy.rowCount())]
    assert names.index("Céline Novak") < names.index("Chiara Quiroga")
    spam = demo.notifications.get(mixed["kinds"]["spam_report"][0])  # type: ignore[index]
    row = page.model.row_of(spam.person_id)  # type: ignore[arg-type]
    assert row is not None
    assert page.model.index(row, PColumn.STATUS).data() == "Spam report"
    # The summary counts flagged addresses in the rows' words: it said "1 bouncing" for the
    # one address flagged by a spam report.
    statuses = [page.model.index(r, PColumn.STATUS).data() for r in range(page.model.rowCount())]
    flagged = {s: statuses.count(s) for s in set(statuses) - {"OK", "No address", "Invalid address"}}
    assert flagged.get("Spam report")
    summary = page.summary.text()
    for label, n in flagged.items():
        assert f"{n} {label.lower()}" in summary
    assert ("bouncing" in summary) == ("Bouncing" in flagged)
    bridge.detach()


def test_the_composer_names_each_kind_of_flag_and_sorts_by_locale(
    demo: AppContext, mixed: dict[str, object]
) -> None:
    from tabmail.domain.notification import Event
    from tabmail.gui.composer.recipients import RecipientColumn, RecipientsModel, RecipientsProxy
    from tabmail.services import notify

    plan = notify.plan(
        demo, demo.tournaments.list_all()[0].slug, Event.DRAW, round_seq=2, audience=Audience.TEAMS
    )
    model = RecipientsModel(Theme())
    model.set_recipients(plan.recipients, plan.default_selection())
    proxy = RecipientsProxy()
    proxy.setSourceModel(model)
    proxy.sort(RecipientColumn.NAME, Qt.SortOrder.AscendingOrder)
    names = [proxy.index(r, RecipientColumn.NAME).data() for r in range(proxy.rowCount())]
    assert names.index("Céline Novak") < names.index("Chiara Quiroga")
    notes = {
        proxy.index(r, RecipientColumn.NAME).data(): proxy.index(r, RecipientColumn.NOTE).data()
        for r in range(proxy.rowCount())
    }
    spam = demo.notifications.get(mixed["kinds"]["spam_report"][0]).recipient_name  # type: ignore[index]
    assert notes[spam] == "Spam report"

    # The count under the table uses the rows' words: it said "N flagged as bouncing" with a
    # spam report among them.
    from tabmail.gui.composer.recipient_panel import RecipientPanel

    panel = RecipientPanel(Theme())
    panel.model.set_recipients(plan.recipients, plan.default_selection())
    panel.update_counts()
    flagged = [r.recipient.name for r in plan.recipients if r.mark is notify.Mark.FLAGGED]
    words: dict[str, int] = {}
    for name in flagged:
        words[notes[name].lower()] = words.get(notes[name].lower(), 0) + 1
    assert "spam report" in words and len(flagged) > words["spam report"]
    text = panel.count_label.text()
    assert f"{len(flagged)} flagged: " in text and "as bouncing" not in text
    for label, n in words.items():
        assert f"{n} {label}" in text


def test_times_from_other_days_carry_their_date(qtbot: QtBot, demo: AppContext, qsettings: QSettings) -> None:
    """'Last event' / 'Last check' showed only a time for something that happened days ago."""
    from tabmail.gui.rounds.words import local_time

    window = MainWindow(demo, qsettings=qsettings)
    qtbot.addWidget(window)
    old = datetime.now(UTC) - timedelta(days=3)
    window.status.set_poll_result(old, True, "2 new events")
    day = old.astimezone().strftime("%d %b")
    assert day in window.status.last_poll.text()
    assert day in local_time(old) and local_time(datetime.now(UTC)).count(":") == 1
    window.close()


def test_problems_only_follows_a_resolution_as_it_happens(
    qtbot: QtBot, demo: AppContext, bridge: EventBridge, mixed: dict[str, object]
) -> None:
    page = RoundMessagesPage(demo, bridge, Theme())
    qtbot.addWidget(page)
    tournament = demo.tournaments.list_all()[0]
    page.show_round(tournament, demo.tournaments.get_round(tournament.id, 1))
    page.problems_only.setChecked(True)
    batch = page.proxy.index(0, 0)
    assert page.proxy.rowCount(batch) == 8
    assert page.row_actions.resolve(mixed["kinds"]["blocked"][0], "the venue's server; told them in person")  # type: ignore[index]
    qtbot.waitUntil(lambda: page.proxy.rowCount(page.proxy.index(0, 0)) == 7, timeout=5000)
