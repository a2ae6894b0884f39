"""Every window of a tab room shows who last checked (issue 13 item 3), on a real PostgreSQL:
while another laptop holds the polling duty, this window polls nothing and its status bar says
"Last checked by tabroom-2, 12 s ago"; when the duty comes free, this window polls itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from tabmail.domain.events import MessageStateChanged
from tabmail.domain.notification import MessageState
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.main_window import MainWindow
from tabmail.services.context import AppContext
from tabmail.services.election import SENDGRID, Duty
from tabmail.store.notifications import Claim
from tests.keyrings import MemoryKeyring
from tests.senders_support import queue_batch

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_window_that_does_not_poll_shows_who_last_checked_then_takes_over(
    qtbot: QtBot,
    qloop: asyncio.AbstractEventLoop,
    ctx: AppContext,
    db_target: str,
    tournament_id: int,
    qsettings: QSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TABMAIL_MACHINE", "tabroom-1")
    ctx.settings.set("backend", "sendgrid")
    ctx.secrets.set("sendgrid-api-key", "SG.test")
    other = AppContext.open(db_target, keyring_backend=MemoryKeyring())  # tabroom-2's laptop
    held = Duty(other, SENDGRID)
    assert held.mine()
    at = datetime.now(UTC) - timedelta(seconds=12)
    other.settings.set_state(
        "poll.sendgrid.last_poll",
        {"at": at.isoformat(), "ok": True, "online": True, "summary": "2 new events", "by": "tabroom-2"},
    )
    polls: list[str] = []

    class CountingPoller:
        async def poll_once(self) -> None:
            polls.append("poll")

    worker = BackgroundWorker(ctx, poller_factory=lambda c: CountingPoller(), poll_interval=0.2)
    window = MainWindow(ctx, qsettings=qsettings, worker=worker)
    qtbot.addWidget(window)
    try:
        label = window.status.last_poll
        assert label.text() == "Last checked by tabroom-2, 12 s ago: 2 new events"  # on opening
        worker.start(resume=False)
        qtbot.wait(1000)  # five intervals with tabroom-2 holding the duty
        assert polls == []
        assert (
            label.text().startswith("Last checked by tabroom-2, 1") and "s ago: 2 new events" in label.text()
        )
        at = datetime.now(UTC) - timedelta(seconds=75)
        other.settings.set_state(
            "poll.sendgrid.last_poll",
            {"at": at.isoformat(), "ok": True, "online": True, "summary": "1 new event", "by": "tabroom-2"},
        )
        qtbot.waitUntil(
            lambda: label.text() == "Last checked by tabroom-2, 1 min ago: 1 new event", timeout=5000
        )

        window.menus.poll_action.trigger()  # F5
        qtbot.wait(300)
        qtbot.waitUntil(window.menus.poll_action.isEnabled, timeout=5000)
        assert polls == []  # F5 on this laptop polls nothing either while tabroom-2 holds the duty

        held.release()  # tabroom-2 closes: this window takes over at its next try
        qtbot.waitUntil(lambda: bool(polls), timeout=5000)
        assert worker.sendgrid_duty.held
    finally:
        worker.stop()
        other.close()


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_window_that_polls_names_its_own_machine(
    qtbot: QtBot, ctx: AppContext, tournament_id: int, qsettings: QSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABMAIL_MACHINE", "tabroom-1")
    window = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(window)
    window.status_feed.on_poll_finished(True, True, "nothing new")
    assert window.status.last_poll.text() == "Last checked by tabroom-1, 0 s ago: nothing new"


@pytest.mark.parametrize("engine", ["postgresql"])
def test_an_open_window_marks_a_vanished_laptops_claims_uncertain_once_its_lease_has_passed(
    qtbot: QtBot,
    qloop: asyncio.AbstractEventLoop,
    db_target: str,
    qsettings: QSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TABMAIL_LEASE_SECONDS", "1")
    queue_batch(db_target, 9, 2, connections=1)  # nothing is sent: both are claimed below
    ctx = AppContext.open(db_target, keyring_backend=MemoryKeyring())
    try:
        vanished, alive = sorted(m.id for m in ctx.notifications.messages())
        changed: list[MessageStateChanged] = []
        ctx.bus.subscribe(MessageStateChanged, changed.append)
        worker = BackgroundWorker(ctx)
        window = MainWindow(ctx, qsettings=qsettings, worker=worker)
        qtbot.addWidget(window)
        # Claimed now, as laptops a and b did: a's lease ends in 3 s, b's in an hour.
        now = datetime.now(UTC)
        assert ctx.notifications.outbox.claim(
            [vanished], Claim("laptop-a:4242:dead", now + timedelta(seconds=3), "smtp")
        )[0] == [True]
        assert ctx.notifications.outbox.claim(
            [alive], Claim("laptop-b:4242:live", now + timedelta(hours=1), "smtp")
        )[0] == [True]
        worker.start(poll=False)
        try:
            qtbot.wait(1000)
            assert ctx.notifications.get(vanished).state is MessageState.SENDING  # its lease still runs
            qtbot.waitUntil(
                lambda: ctx.notifications.get(vanished).state is MessageState.UNCERTAIN, timeout=8000
            )
            assert ctx.notifications.get(alive).state is MessageState.SENDING  # laptop-b's lease holds
            qtbot.waitUntil(lambda: any(e.message_id == vanished for e in changed), timeout=3000)
            assert {(e.message_id, e.state) for e in changed} == {(vanished, "uncertain")}
        finally:
            worker.stop()
    finally:
        ctx.close()
