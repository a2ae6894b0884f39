"""Practice mode in the window, offline, on the qasync loop: a fresh database opens the demo in
practice mode (labelled as such), a draw release is composed and sent, the fates play out as the
clock moves, a bounce appears in the round view and the Problems count, the address is corrected
in place and resent, the resend is delivered and the original shows resolved."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from tabmail.domain.practice import LABEL, SPAN, Fate, fate_of
from tabmail.domain.problems import Category
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.roles import Roles
from tabmail.services.context import AppContext
from tabmail.services.tracking import Poller
from tests.gui.test_e2e_dashboard import (
    close_dialog,
    compose_and_send,
    correct_in_place_and_resend,
    first_round,
    open_window,
)
from tests.practice_support import FakeTime, outbox

pytestmark = pytest.mark.gui


def test_send_watch_fix_resend_resolved_in_practice_mode(
    qtbot: QtBot, practice_demo: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    ctx, t = practice_demo, FakeTime()
    worker = BackgroundWorker(
        ctx, outbox=outbox(ctx, t), poller_factory=lambda c: Poller(c, clock=t.clock, sleep=t.sleep)
    )
    window = open_window(qtbot, ctx, qsettings, worker)
    window.start_background(poll=False)  # F5 polls below, once the clock has moved
    assert window.status.backend.text() == f"Backend: {LABEL}"
    assert window.status.online.text.text() == "No network needed"
    window.select_round(first_round(ctx))
    view = window.round_view

    questions: list[str] = []

    window.menus.compose_action.trigger()
    assert window.composer is not None  # the dialog itself says so, not only the last question
    assert window.composer.practice_banner.isVisible() and window.composer.practice_banner.text() == LABEL
    close_dialog(qtbot, window, window.composer)
    dialog, n = compose_and_send(qtbot, window, on_confirm=lambda box: questions.append(box.text()))
    assert questions and LABEL in questions[0]  # the last question says nothing leaves this computer
    close_dialog(qtbot, window, dialog)
    qtbot.waitUntil(lambda: view.model.message_count() == n, timeout=5000)
    assert "Practice" in view.model.index(0, 2).data()  # the batch row: via Practice — …

    def check(seconds: float) -> None:
        t.advance(seconds)
        before = window.status.last_poll.text()
        window.menus.poll_action.trigger()
        qtbot.waitUntil(
            lambda: window.menus.poll_action.isEnabled() and window.status.last_poll.text() != before,
            timeout=15000,
        )

    check(13)  # deferrals have happened, nothing has bounced yet
    messages = ctx.notifications.messages()
    deferred = [m.id for m in messages if fate_of(m.address) is Fate.DEFERRED]
    qtbot.waitUntil(lambda: all(view.model.status_of(m) == "deferred" for m in deferred), timeout=5000)

    check(SPAN.total_seconds())
    bounced = next(m for m in messages if fate_of(m.address) is Fate.BOUNCED)
    qtbot.waitUntil(lambda: view.model.status_of(bounced.id) == "bounced", timeout=5000)
    assert view.model.category_of(bounced.id) is Category.BOUNCED
    assert "bounced" in view.model.index(0, 3).data()  # the batch's counts
    bad = (Fate.BOUNCED, Fate.BLOCKED, Fate.DROPPED, Fate.SPAM)
    problems_before = sum(1 for m in messages if fate_of(m.address) in bad)
    assert problems_before >= 5
    qtbot.waitUntil(lambda: window.problems_hub.total == problems_before, timeout=10000)
    assert window.windowTitle().startswith(f"({problems_before} problems)")
    assert "Practice" in window.status.last_poll.text()

    fixed = "corrected." + bounced.address
    assert bounced.person_id is not None
    address_before = ctx.tournaments.get_person(bounced.person_id).email
    new_id = correct_in_place_and_resend(qtbot, view, bounced.id, fixed)
    # the fix is practice only: the resend goes to the corrected address, Participants keep theirs
    assert view.model.message(new_id).address == fixed  # type: ignore[union-attr]
    assert ctx.tournaments.get_person(bounced.person_id).email == address_before
    assert "practice only" in view.notice.text()
    qtbot.waitUntil(lambda: view.model.status_of(new_id) == "sent", timeout=15000)
    check(SPAN.total_seconds() + timedelta(seconds=5).total_seconds())
    qtbot.waitUntil(lambda: view.model.status_of(new_id) == "delivered", timeout=5000)
    qtbot.waitUntil(lambda: not view.model.is_problem(bounced.id), timeout=5000)
    assert "resolved" in view.model.index_of_message(bounced.id, 3).data()
    view.problems_only.setChecked(True)
    shown = {
        view.proxy.index(r, 0, view.proxy.index(0, 0)).data(Roles.ID)
        for r in range(view.proxy.rowCount(view.proxy.index(0, 0)))
    }
    assert bounced.id not in shown
    qtbot.waitUntil(lambda: window.problems_hub.total == problems_before - 1, timeout=10000)
    window.close()
    qtbot.waitUntil(lambda: not worker.outbox_running, timeout=5000)
    ctx.settings.set_text("backend", "file")  # leaving practice: nothing of the fix stays
    assert ctx.tournaments.get_person(bounced.person_id).email == address_before
