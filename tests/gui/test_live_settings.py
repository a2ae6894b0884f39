"""What the window says about sending is true now: saved settings reach the running outbox,
poller and status bar at once, and the connection state follows the last sends and checks."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from tabmail.domain.events import PollFinished
from tabmail.domain.notification import Audience, Event
from tabmail.domain.practice import LABEL as PRACTICE_LABEL
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.main_window import MainWindow
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tests.servers.sendgrid import DEFAULT_KEY, SendGridTestServer
from tests.servers.smtp import SmtpTestServer

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]


def open_window(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> MainWindow:
    window = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(window)
    window.show()
    return window


def check_now(qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.bridge.poll_finished, timeout=20000):
        window.menus.poll_action.trigger()
    qtbot.waitUntil(window.menus.poll_action.isEnabled, timeout=5000)


def test_a_new_sendgrid_address_is_used_by_the_very_next_check(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    ctx.settings.set("backend", "sendgrid")
    ctx.secrets.set("sendgrid-api-key", DEFAULT_KEY)
    with SendGridTestServer() as old, SendGridTestServer() as new:
        ctx.settings.set_text("sendgrid.base_url", old.url)
        window = open_window(qtbot, ctx, qsettings)
        check_now(qtbot, window)
        assert old.requests and not new.requests
        assert window.status.online_state is True

        dialog = window.open_settings_dialog()
        editor = dialog.fields["sendgrid.base_url"].editor
        assert isinstance(editor, QLineEdit)
        editor.setText(new.url)
        dialog.accept()
        asked_old = len(old.requests)
        assert window.status.online_state is None  # the old server's answer says nothing now

        check_now(qtbot, window)
        assert len(old.requests) == asked_old  # not one more request to the old server
        assert new.requests_to("/v3/scopes")  # the new account's permissions were read afresh
        assert window.status.online_state is True
        window.close()


def test_a_backend_change_reaches_the_status_bar_and_the_next_send(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop, tmp_path: object
) -> None:
    assert load_demo_if_empty(ctx) is not None
    slug = ctx.tournaments.list_all()[0].slug
    with SmtpTestServer() as server:
        window = open_window(qtbot, ctx, qsettings)
        assert window.status.backend.text() == f"Backend: {PRACTICE_LABEL}"  # the demo practises
        dialog = window.open_settings_dialog()
        for key, text in (("smtp.host", server.host), ("smtp.port", str(server.port))):
            editor = dialog.fields[key].editor
            assert isinstance(editor, QLineEdit)
            editor.setText(text)
        combos = {"backend": "smtp", "smtp.security": "none"}
        for key, value in combos.items():
            combo = dialog.fields[key].editor
            combo.setCurrentIndex(combo.findData(value))  # type: ignore[union-attr]
        dialog.accept()
        assert window.status.backend.text() == f"Backend: SMTP · {server.host}"

        result = notify.enqueue(ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ALL))
        window.worker.run_outbox(result.batch_id)
        qtbot.waitUntil(lambda: len(server.messages) == result.queued, timeout=20000)
        qtbot.waitUntil(lambda: window.status.online_state is True, timeout=5000)
        window.close()


def test_the_status_bar_is_not_online_while_every_send_is_refused(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop
) -> None:
    assert load_demo_if_empty(ctx) is not None
    slug = ctx.tournaments.list_all()[0].slug
    with SmtpTestServer() as server:
        port = server.port
    for key, value in {"backend": "smtp", "smtp.host": "127.0.0.1", "smtp.port": str(port)}.items():
        ctx.settings.set_text(key, value)
    ctx.settings.set_text("smtp.security", "none")
    window = open_window(qtbot, ctx, qsettings)
    ctx.bus.publish(PollFinished(ok=True, online=True, summary="0 new events"))  # an earlier check
    assert window.status.online.text.text() == "Online"

    result = notify.enqueue(ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ALL))
    window.worker.run_outbox(result.batch_id)

    qtbot.waitUntil(lambda: window.status.online_state is False, timeout=20000)
    assert window.status.online.text.text() == "Offline · sending fails"
    assert "connection refused" in window.status.online.toolTip()
    ctx.bus.publish(PollFinished(ok=True, online=True, summary="0 new events"))
    assert window.status.online_state is False  # a good check does not hide failing sends
    window.close()
