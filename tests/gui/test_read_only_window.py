"""A read-only database in the window (the offline review case): everything shows, the status
bar says "read-only: sending disabled", and nothing that sends or writes can be started."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, DeliveryStatus
from tabmail.gui.main_window import MainWindow
from tabmail.gui.rounds.model import Column
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tests.gui.test_rounds_model import queue, report, send
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.gui


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def reviewed(ctx: AppContext) -> tuple[Path, str]:
    """A database with a sent batch and one bounced message (resendable when writable)."""
    assert load_demo_if_empty(ctx) is not None
    batch = queue(ctx, Audience.TEAMS)
    ids = send(ctx, batch)
    report(ctx, ids[0], DeliveryStatus.BOUNCED, 3, "550 5.1.1 user unknown")
    assert ctx.db.path is not None
    return ctx.db.path, ids[0]


def open_window(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> MainWindow:
    window = MainWindow(ctx, qsettings=qsettings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.start_background()  # a read-only window starts neither the outbox nor the poller
    return window


def show_bounced(window: MainWindow, ctx: AppContext, message_id: str) -> None:
    tournament = ctx.tournaments.list_all()[0]
    assert window.select_round(ctx.tournaments.get_round(tournament.id, 1).id)
    assert window.round_view.select_message(message_id)


@pytest.mark.usefixtures("qloop")
def test_a_writable_database_offers_the_resend(
    qtbot: QtBot, ctx: AppContext, reviewed: tuple[Path, str], qsettings: QSettings
) -> None:
    """The counterpart of the read-only test: the same bounced message is resendable."""
    window = open_window(qtbot, ctx, qsettings)
    show_bounced(window, ctx, reviewed[1])
    assert window.status.read_only.isHidden()
    assert window.round_view.row_actions.resend_action.isEnabled() and window.menus.compose_action.isEnabled()


@pytest.mark.usefixtures("qloop")
def test_a_read_only_database_shows_everything_and_sends_nothing(
    qtbot: QtBot, ctx: AppContext, reviewed: tuple[Path, str], qsettings: QSettings
) -> None:
    path, bounced = reviewed
    ctx.close()
    before = digest(path)
    ro = AppContext.open(path, read_only=True, keyring_backend=MemoryKeyring())
    try:
        window = open_window(qtbot, ro, qsettings)
        banner = window.status.read_only
        assert banner.isVisible() and banner.text() == "read-only: sending disabled"
        assert str(path) in banner.toolTip()

        show_bounced(window, ro, bounced)  # the review itself works
        page = window.round_view
        assert page.message_view.status_label.text() == "Bounced"
        for action in (
            window.menus.compose_action,
            window.menus.import_action,
            window.menus.poll_action,
            window.menus.settings_action,
            page.row_actions.resend_action,
            page.row_actions.edit_address_action,
            page.row_actions.resend_all_action,
            page.row_actions.retry_action,
            page.row_actions.cancel_action,
            page.row_actions.resolve_action,
        ):
            assert not action.isEnabled(), action.text()
        assert not page.message_view.resend_row.isVisible()
        address = page.model.index_of_message(bounced, Column.ADDRESS)
        assert address.isValid() and not page.model.flags(address) & Qt.ItemFlag.ItemIsEditable
        problems = window.problems_page  # the bounce is listed there too, for review only
        problems.show_problems(None)
        assert problems.select_message(bounced)
        assert not problems.resend_action.isEnabled() and not problems.resolve_action.isEnabled()
        assert problems.go_action.isEnabled()
        assert not window.worker.outbox_running
        window.close()
    finally:
        ro.close()
    assert digest(path) == before
