"""End to end, in process, on the qasync loop: the demo tournament, a draw release composed in the
dialog and sent through a loopback server, the problem row highlighted in the round view, the
address corrected in place, resent with Ctrl+R, and the resend seen through — once through the
loopback SMTP server, once through the loopback SendGrid-compatible server with polling."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLineEdit, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, Event
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.composer import ComposeDialog
from tabmail.gui.main_window import MainWindow
from tabmail.gui.roles import Roles
from tabmail.gui.rounds import Column
from tabmail.gui.rounds.page import RoundMessagesPage
from tabmail.gui.theme import Tone
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.outbox import Outbox
from tabmail.services.sending import build_backend
from tabmail.services.tracking import Poller
from tests.servers import sendgrid
from tests.servers.smtp import SmtpTestServer

pytestmark = pytest.mark.gui

FIXED = "corrected.address@example.net"


def click(box: QMessageBox, text: str) -> None:
    button = next(b for b in box.buttons() if b.text().replace("&", "") == text)
    assert isinstance(button, QPushButton)
    button.click()


def open_window(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, worker: BackgroundWorker | None = None
) -> MainWindow:
    window = MainWindow(ctx, EventBridge(ctx.bus), qsettings=qsettings, worker=worker)
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    window.activateWindow()
    qtbot.waitActive(window)  # window shortcuts (Ctrl+R, F5) need an active window
    return window


def first_round(ctx: AppContext) -> int:
    return ctx.tournaments.get_round(ctx.tournaments.list_all()[0].id, 1).id


def planned_addresses(ctx: AppContext) -> list[str]:
    plan = notify.plan(
        ctx, ctx.tournaments.list_all()[0].slug, Event.DRAW, round_seq=1, audience=Audience.ALL
    )
    return [p.recipient.address or "" for p in plan.recipients if p.selected_by_default]


def compose_and_send(
    qtbot: QtBot, window: MainWindow, on_confirm: Callable[[QMessageBox], None] | None = None
) -> tuple[ComposeDialog, int]:
    assert window.menus.compose_action.isEnabled()
    window.menus.compose_action.trigger()
    dialog = window.composer
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    assert dialog.current_event() == (Event.DRAW, Audience.ALL) and dialog.round.currentText() == "Round 1"
    n = dialog.recipients.selected_count()
    dialog.send_button.click()
    qtbot.waitUntil(lambda: dialog.confirm_box is not None, timeout=10000)
    assert dialog.confirm_box is not None and f"Send {n} emails" in dialog.confirm_box.text()
    if on_confirm is not None:
        on_confirm(dialog.confirm_box)
    click(dialog.confirm_box, "Send")
    qtbot.waitUntil(lambda: dialog.send_progress.label.text().startswith("Done"), timeout=30000)
    return dialog, n


def close_dialog(qtbot: QtBot, window: MainWindow, dialog: ComposeDialog) -> None:
    dialog.close()
    window.activateWindow()  # a window manager would hand activation back; offscreen, we do
    qtbot.waitActive(window)


def row_of(view: RoundMessagesPage, address: str) -> str:
    batch = view.model.index(0, 0)
    for r in range(view.model.rowCount(batch)):
        m = view.model.index(r, 0, batch).data(Roles.OBJECT)
        if m.address == address:
            return str(m.id)
    raise AssertionError(f"no row for {address}")


def correct_in_place_and_resend(qtbot: QtBot, view: RoundMessagesPage, mid: str, address: str) -> str:
    """Double-click-edit the address cell (F2 here), type, Enter, then Ctrl+R. Returns the new id."""
    assert view.select_message(mid)
    view.tree.setFocus()
    qtbot.keyClick(view.tree, Qt.Key.Key_F2)
    editor = view.tree.findChild(QLineEdit, "address-editor")
    assert editor is not None and editor.isVisible()
    editor.setText(address)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.model.draft(mid) == address, timeout=3000)  # the delegate commits queued
    assert view.model.index_of_message(mid, Column.ADDRESS).data() == address
    assert view.message_view.address.text() == address  # the detail panel follows
    qtbot.keyClick(view.tree, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(view.model.resent_as(mid)), timeout=10000)
    return view.model.resent_as(mid)[0]


def assert_highlighted(view: RoundMessagesPage, mid: str, status: str) -> None:
    index = view.model.index_of_message(mid)
    theme = view._theme
    assert index.data(Roles.STATUS) == status and index.data(Roles.PROBLEM) is True
    assert index.data(Qt.ItemDataRole.BackgroundRole) == theme.background(Tone.BAD)
    batch = index.parent()
    assert batch.data(Roles.PROBLEM) is True
    assert batch.data(Qt.ItemDataRole.BackgroundRole) == theme.background(Tone.BAD)
    # in the widgets: "problems only" leaves exactly the problem rows, the batch kept for them
    view.problems_only.setChecked(True)
    proxy = view.proxy
    assert proxy.rowCount() == 1
    shown = {
        proxy.index(r, 0, proxy.index(0, 0)).data(Roles.ID) for r in range(proxy.rowCount(proxy.index(0, 0)))
    }
    assert mid in shown
    view.problems_only.setChecked(False)
    assert "bounced" in view.summary.text() or "failed" in view.summary.text()


def test_smtp_compose_send_fail_correct_resend(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    assert load_demo_if_empty(ctx) is not None
    with SmtpTestServer() as smtp:
        for key, value in {
            "backend": "smtp",
            "smtp.host": smtp.host,
            "smtp.port": str(smtp.port),
            "smtp.security": "none",
            "from_address": "tab@example.org",
        }.items():
            ctx.settings.set_text(key, value)
        wrong = planned_addresses(ctx)[2]
        smtp.script(wrong, rcpt=f"550 5.1.1 <{wrong}>: Recipient address rejected: User unknown")
        window = open_window(qtbot, ctx, qsettings)
        window.start_background()
        assert window.select_round(first_round(ctx))
        view = window.round_view
        assert view.stack.currentWidget() is view.placeholder

        dialog, n = compose_and_send(qtbot, window)
        assert "1 failed" in dialog.send_progress.label.text()
        close_dialog(qtbot, window, dialog)
        qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5000)
        assert view.stack.currentWidget() is view.list_page
        assert view.model.message_count() == n
        mid = row_of(view, wrong)
        qtbot.waitUntil(lambda: view.model.status_of(mid) == "failed", timeout=5000)
        assert_highlighted(view, mid, "failed")
        view.select_message(mid)
        assert view.message_view.status_label.text() == "Failed"
        assert "User unknown" in view.message_view.problem.text()

        new_id = correct_in_place_and_resend(qtbot, view, mid, FIXED)
        new = view.model.index_of_message(new_id)
        assert new.parent().data(Roles.ID) == view.model.index_of_message(mid).parent().data(Roles.ID)
        qtbot.waitUntil(lambda: view.model.status_of(new_id) == "sent", timeout=15000)
        assert [m.envelope_to for m in smtp.messages if m.tabmail_id == new_id] == [(FIXED,)]
        # plain SMTP reports nothing after accepting: the accepted resend settles the failure
        qtbot.waitUntil(
            lambda: view.model.index_of_message(mid, Column.STATUS).data() == "Failed · resolved",
            timeout=5000,
        )
        assert not view.model.index_of_message(mid).data(Roles.PROBLEM)
        assert view.model.index_of_message(new_id, Column.STATUS).data() == "Sent"
        assert "Queued a resend" in view.notice.text()
        person = next(p for p in ctx.tournaments.people(ctx.tournaments.list_all()[0].id) if p.email == FIXED)
        assert person is not None

        # F5: with plain SMTP there is nothing to ask; the status bar says so.
        window.menus.poll_action.trigger()
        qtbot.waitUntil(lambda: "tracking is off" in window.status.last_poll.text(), timeout=5000)
        window.close()


def test_sendgrid_compose_send_poll_bounce_correct_resend_delivered(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    assert load_demo_if_empty(ctx) is not None
    clock = sendgrid.FakeClock()

    def now() -> datetime:
        return datetime.fromtimestamp(clock.now(), UTC)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    with sendgrid.SendGridTestServer(clock=clock) as server:
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", server.url)
        ctx.settings.set("from_address", "tab@demo-open.example")
        ctx.secrets.set("sendgrid-api-key", sendgrid.DEFAULT_KEY)
        addresses = planned_addresses(ctx)
        first, second = addresses[1], addresses[4]
        server.script(first, sendgrid.bounced("bounce"))
        server.script(second, sendgrid.bounced("bounce"))

        outbox = Outbox(
            ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus, clock=now
        )
        worker = BackgroundWorker(
            ctx, outbox=outbox, poller_factory=lambda c: Poller(c, clock=now, sleep=sleep)
        )
        window = open_window(qtbot, ctx, qsettings, worker)
        window.start_background(poll=False)  # F5 polls below; the timer would only add noise
        window.select_round(first_round(ctx))
        view = window.round_view

        dialog, n = compose_and_send(qtbot, window)
        close_dialog(qtbot, window, dialog)
        qtbot.waitUntil(
            lambda: {view.model.status_of(m.id) for m in ctx.notifications.messages()} == {"sent"},
            timeout=5000,
        )
        assert view.model.message_count() == n

        def poll() -> None:
            server.advance(600)
            before = window.status.last_poll.text()
            window.menus.poll_action.trigger()
            qtbot.waitUntil(
                lambda: window.menus.poll_action.isEnabled() and window.status.last_poll.text() != before,
                timeout=15000,
            )

        poll()
        one, two = row_of(view, first), row_of(view, second)
        qtbot.waitUntil(lambda: view.model.status_of(one) == "bounced", timeout=5000)
        assert view.model.status_of(two) == "bounced"
        assert_highlighted(view, one, "bounced")
        assert window.status.online_state is True
        assert window.status.last_poll.text().startswith("Last check")
        others = {view.model.status_of(m.id) for m in ctx.notifications.messages() if m.id not in (one, two)}
        assert others == {"delivered"}
        # the flagged address is marked in the address cell too
        assert (
            view.model.index_of_message(one, Column.ADDRESS).data(Qt.ItemDataRole.DecorationRole) is not None
        )

        new_one = correct_in_place_and_resend(qtbot, view, one, FIXED)
        qtbot.waitUntil(lambda: view.model.status_of(new_one) == "sent", timeout=15000)

        # The second address is fine after all (the mailbox was full): resend it as it is, from
        # the detail panel. SendGrid keeps it on its bounce list, so the director is asked.
        server.script(second, sendgrid.delivered())
        questions: list[QMessageBox] = []
        view.row_actions.resender.suppression_question_opened.connect(questions.append)
        view.select_message(two)
        view.message_view.resend_button.click()
        qtbot.waitUntil(lambda: bool(questions), timeout=10000)
        assert second in questions[0].text() and not view.model.resent_as(two)
        click(questions[0], "Remove and Resend")
        qtbot.waitUntil(lambda: bool(view.model.resent_as(two)), timeout=10000)
        new_two = view.model.resent_as(two)[0]
        qtbot.waitUntil(lambda: view.model.status_of(new_two) == "sent", timeout=15000)
        assert server.suppressions("bounces") == [] or second not in {
            r["email"] for r in server.suppressions("bounces")
        }

        poll()
        qtbot.waitUntil(lambda: view.model.status_of(new_one) == "delivered", timeout=5000)
        qtbot.waitUntil(lambda: view.model.status_of(new_two) == "delivered", timeout=5000)
        assert view.model.index_of_message(new_one, Column.STATUS).data() == "Delivered"
        assert view.model.index_of_message(one, Column.STATUS).data() == "Bounced · resolved"
        view.select_message(new_one)
        timeline = view.message_view.timeline_model
        assert timeline.rowCount() >= 1
        assert timeline.index(timeline.rowCount() - 1, 1).data() == "Delivered"
        assert "Resend of" in view.message_view.chain.text()
        assert server.validation_errors == []
        window.close()
        qtbot.waitUntil(lambda: not worker.outbox_running, timeout=5000)


def test_sendgrid_every_kind_of_problem_counted_as_shown_then_fixed_and_resolved(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    """Issue 10: bounce, block, drop, invalid and spam recipients through the SendGrid-compatible
    server; the counts per category equal the rows; fix → resend → delivered → the original
    shows resolved, "Problems only" and the Problems view no longer list it."""
    assert load_demo_if_empty(ctx) is not None
    clock = sendgrid.FakeClock()

    def now() -> datetime:
        return datetime.fromtimestamp(clock.now(), UTC)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    with sendgrid.SendGridTestServer(clock=clock) as server:
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", server.url)
        ctx.settings.set("from_address", "tab@demo-open.example")
        ctx.secrets.set("sendgrid-api-key", sendgrid.DEFAULT_KEY)
        addresses = planned_addresses(ctx)
        scripted = {
            "Bounced": (addresses[1], sendgrid.bounced(
                "bounce", reason="550 5.2.1 The email account is disabled", status="5.2.1",
                classification="Mailbox Unavailable",
            )),
            "Blocked": (addresses[2], sendgrid.bounced("blocked")),
            "Dropped": (addresses[3], sendgrid.dropped("Bounced Address")),
            "Invalid address": (addresses[4], sendgrid.invalid_address()),
            "Spam report": (addresses[5], sendgrid.spam_report(after=120)),
        }  # fmt: skip
        for address, timeline in scripted.values():
            server.script(address, timeline)

        outbox = Outbox(
            ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus, clock=now
        )
        worker = BackgroundWorker(
            ctx, outbox=outbox, poller_factory=lambda c: Poller(c, clock=now, sleep=sleep)
        )
        window = open_window(qtbot, ctx, qsettings, worker)
        window.problems_hub.tray_available = lambda: False
        alerts: list[tuple[str, str]] = []
        window.problems_hub.alert_raised.connect(lambda title, text: alerts.append((title, text)))
        window.start_background(poll=False)
        window.select_round(first_round(ctx))
        view = window.round_view
        dialog, n = compose_and_send(qtbot, window)
        close_dialog(qtbot, window, dialog)
        qtbot.waitUntil(
            lambda: {view.model.status_of(m.id) for m in ctx.notifications.messages()} == {"sent"},
            timeout=5000,
        )

        def poll() -> None:
            server.advance(600)
            before = window.status.last_poll.text()
            window.menus.poll_action.trigger()
            qtbot.waitUntil(
                lambda: window.menus.poll_action.isEnabled() and window.status.last_poll.text() != before,
                timeout=15000,
            )

        poll()
        rows = {label: row_of(view, address) for label, (address, _) in scripted.items()}
        for label, mid in rows.items():
            qtbot.waitUntil(
                lambda mid=mid, label=label: view.model.index_of_message(mid, Column.STATUS).data() == label,
                timeout=5000,
            )
        batch = view.model.index(0, 0)
        labels = Counter(
            view.model.index(r, Column.STATUS, batch).data() for r in range(view.model.rowCount(batch))
        )
        assert labels == Counter({**{label: 1 for label in scripted}, "Delivered": n - 5})
        bar = batch.siblingAtColumn(Column.STATUS).data()
        assert bar == (
            f"1 bounced · 1 invalid address · 1 blocked · 1 dropped · 1 spam report · {n - 5} delivered"
        )
        assert "1 bounced · 1 invalid address · 1 blocked · 1 dropped · 1 spam report" in view.summary.text()
        view.problems_only.setChecked(True)
        assert view.proxy.rowCount(view.proxy.index(0, 0)) == 5
        view.problems_only.setChecked(False)
        # the alert named how many and which round, once for the poll
        qtbot.waitUntil(lambda: bool(alerts), timeout=5000)
        assert alerts[0][0].startswith("5 new problems in Round 1")
        window.problems_hub.recount()
        assert window.windowTitle().startswith("(5 problems) ")

        bounced = rows["Bounced"]
        new = correct_in_place_and_resend(qtbot, view, bounced, FIXED)
        qtbot.waitUntil(lambda: view.model.status_of(new) == "sent", timeout=15000)
        poll()
        qtbot.waitUntil(lambda: view.model.status_of(new) == "delivered", timeout=5000)
        original = view.model.index_of_message(bounced, Column.STATUS)
        assert original.data() == "Bounced · resolved"
        assert original.data(Qt.ItemDataRole.BackgroundRole) is None
        assert batch.siblingAtColumn(Column.STATUS).data() == (
            f"1 invalid address · 1 blocked · 1 dropped · 1 spam report · 1 resolved · {n - 4} delivered"
        )
        view.problems_only.setChecked(True)
        shown = {
            view.proxy.index(r, 0, view.proxy.index(0, 0)).data(Roles.ID)
            for r in range(view.proxy.rowCount(view.proxy.index(0, 0)))
        }
        assert bounced not in shown and len(shown) == 4
        view.problems_only.setChecked(False)
        assert window.select_problems(None)
        assert window.problems_page.model.row_of(bounced) is None
        assert window.problems_page.model.rowCount() == 4
        window.problems_hub.recount()
        assert window.windowTitle().startswith("(4 problems) ")
        assert server.validation_errors == []
        window.close()
        qtbot.waitUntil(lambda: not worker.outbox_running, timeout=5000)


@pytest.fixture
def polling_world(ctx: AppContext) -> Iterator[AppContext]:
    ctx.settings.set("backend", "sendgrid")
    ctx.secrets.set("sendgrid-api-key", "SG.test")
    yield ctx


def test_the_worker_polls_on_its_timer_and_stops_on_close(
    qtbot: QtBot, polling_world: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    class CountingPoller:
        calls = 0

        async def poll_once(self) -> str:
            type(self).calls += 1
            return "report"

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    worker = BackgroundWorker(polling_world, poller_factory=lambda c: CountingPoller(), poll_interval=0.05)
    window = open_window(qtbot, polling_world, qsettings, worker)
    window.start_background()
    qtbot.waitUntil(lambda: CountingPoller.calls >= 3, timeout=5000)
    task = worker._poll_task
    assert task is not None and not task.done()
    window.close()
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.cancelled() and worker._poll_task is None
