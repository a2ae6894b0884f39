"""Live across laptops, in the window (issue #13 items 4 and 6), on a real PostgreSQL: another
process (the CLI) sends a draw, corrects an address and resends; this window shows each change
within 2 s with no refresh. The server stopped mid-test: the status bar says so, what was shown
stays, writing is refused with one line; started again: the window reconnects by itself and
reads what changed while it was away."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, Event
from tabmail.gui.bridge import EventBridge
from tabmail.gui.db_link import say_unreachable_in_status_bar
from tabmail.gui.main_window import MainWindow
from tabmail.gui.participants.model import Column as PeopleColumn
from tabmail.gui.roles import Roles
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.live import LiveChanges
from tabmail.store.db import DatabaseUnreachable
from tests.keyrings import MemoryKeyring
from tests.outbox_support import cli_env
from tests.servers.postgres import PostgresServer, find_bin_dir
from tests.servers.smtp import SmtpTestServer

pytestmark = [pytest.mark.gui, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]
SEEN_WITHIN_MS = 2000


def tabmail(qtbot: QtBot, url: str, *args: str) -> float:
    """Run the CLI in a process of its own while the window keeps running; returns when it
    ended (time.monotonic()): its changes were committed before."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", url, *args],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60000)
    ended = time.monotonic()
    _out, err = proc.communicate()
    assert proc.returncode == 0, err
    return ended


def open_window(qtbot: QtBot, ctx: AppContext, qsettings: QSettings) -> MainWindow:
    window = MainWindow(ctx, EventBridge(ctx.bus), qsettings=qsettings)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    return window


@pytest.fixture
def pg_ctx(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[AppContext]:
    """The demo on PostgreSQL, really sent (to .eml files): practice mode keeps a corrected
    address out of Participants."""
    url = postgres_server.fresh_database()
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    assert load_demo_if_empty(ctx) is not None
    ctx.settings.set_text("backend", "file")
    ctx.settings.set_text("file.directory", str(tmp_path / "sent"))
    yield ctx
    ctx.close()
    postgres_server.drop(url)


def shown_address(window: MainWindow, person_id: int) -> str:
    model = window.participants_page.model
    row = model.row_of(person_id)
    assert row is not None
    return str(model.index(row, PeopleColumn.EMAIL).data())


def test_another_laptops_send_correction_and_resend_appear_within_2_s(
    qtbot: QtBot, pg_ctx: AppContext, qsettings: QSettings, qloop: object
) -> None:
    ctx = pg_ctx
    url = ctx.db.url
    tournament = ctx.tournaments.list_all()[0]
    window = open_window(qtbot, ctx, qsettings)
    live = LiveChanges(ctx, retry_every=0.5)
    try:
        assert live.start()
        qtbot.waitUntil(lambda: live.online is True, timeout=10000)
        assert window.select_round(ctx.tournaments.get_round(tournament.id, 1).id)
        model = window.round_view.model
        assert model.rowCount() == 0  # nothing sent yet

        # Laptop A releases the draw: the batch appears here, its messages in their states.
        ended = tabmail(qtbot, url, "send", "draw", "--tournament", tournament.slug, "--round", "1", "--yes")
        batch = ctx.notifications.batches(tournament_id=tournament.id)[0]
        stored = {m.id: m.state for m in ctx.notifications.messages(batch_id=batch.batch.id)}

        def batch_shown() -> bool:
            if model.rowCount() != 1:
                return False
            parent = model.index(0, 0)
            rows = [model.index(r, 0, parent).data(Roles.OBJECT) for r in range(model.rowCount(parent))]
            return {m.id: m.state for m in rows} == stored

        qtbot.waitUntil(batch_shown, timeout=SEEN_WITHIN_MS)
        seen_batch = time.monotonic() - ended

        # Laptop A resends one message to a corrected address: the person's address changes
        # in Participants, the resend row appears under the batch.
        original = next(iter(ctx.notifications.messages(batch_id=batch.batch.id)))
        assert original.person_id is not None
        window.select_participants(tournament.id)
        assert shown_address(window, original.person_id) == original.address
        ended = tabmail(
            qtbot, url, "resend", original.id, "--to", "fixed@example.net", "--yes", "--queue-only"
        )
        qtbot.waitUntil(
            lambda: shown_address(window, original.person_id or 0) == "fixed@example.net",
            timeout=SEEN_WITHIN_MS,
        )
        seen_address = time.monotonic() - ended
        parent = model.index(0, 0)
        qtbot.waitUntil(lambda: model.rowCount(parent) == len(stored) + 1, timeout=SEEN_WITHIN_MS)
        assert seen_batch < 2 and seen_address < 2
    finally:
        live.stop()
        window.quit_without_asking()


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, to stop and start without disturbing the others."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (tools/system-deps.sh)")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


def test_the_window_says_the_server_is_gone_refuses_writes_and_catches_up_when_back(
    qtbot: QtBot, own_server: PostgresServer, qsettings: QSettings, qloop: object
) -> None:
    url = own_server.fresh_database()
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    other: AppContext | None = None
    assert load_demo_if_empty(ctx) is not None
    tournament = ctx.tournaments.list_all()[0]
    person = ctx.tournaments.people(tournament.id)[0]
    window = open_window(qtbot, ctx, qsettings)
    # Slow retries: the change below is made after the server is back and before this window
    # has reconnected, so only reading everything again on reconnecting can show it.
    live = LiveChanges(ctx, retry_every=5.0)
    try:
        live.start()
        qtbot.waitUntil(lambda: live.online is True, timeout=10000)
        window.select_participants(tournament.id)
        banner = window.status.database
        assert not banner.isVisible() and window.menus.compose_action.isEnabled()
        shown_before = window.participants_page.model.rowCount()
        assert shown_before > 0

        own_server.halt()
        qtbot.waitUntil(banner.isVisible, timeout=5000)
        text = banner.text()
        assert text.startswith("Database unreachable — showing what was last read at ")
        assert text.endswith("; reconnecting…")
        assert not window.menus.compose_action.isEnabled() and not window.menus.poll_action.isEnabled()
        assert not window.navigator.isEnabled()  # another page would need the server: this one stays
        assert window.status.backend.isHidden() and window.status.last_poll.isHidden()  # room for it
        assert window.participants_page.model.rowCount() == shown_before  # what was read stays
        assert shown_address(window, person.id) == person.email
        # An address edit while away: refused with one line, nothing kept as if saved.
        failures: list[str] = []
        window.participants_page.model.edit_failed.connect(failures.append)
        assert not window.participants_page.model.apply_address(person.id, "while-away@example.org")
        assert len(failures) == 1 and "cannot be reached" in failures[0] and "\n" not in failures[0]
        assert shown_address(window, person.id) == person.email
        # Selecting a tournament again does not enable composing while the server is away.
        window.menus.compose_action.setEnabled(True)
        assert not window.menus.compose_action.isEnabled()

        own_server.resume()
        other = AppContext.open(url, keyring_backend=MemoryKeyring())  # another laptop, at once
        other.tournaments.set_person_email(person.id, "changed-meanwhile@example.org", source="test")
        assert live.online is False  # not yet reconnected: no notification can carry this change
        qtbot.waitUntil(lambda: not banner.isVisible(), timeout=15000)
        assert window.menus.compose_action.isEnabled() and window.navigator.isEnabled()
        assert not window.status.backend.isHidden() and not window.status.last_poll.isHidden()
        qtbot.waitUntil(
            lambda: shown_address(window, person.id) == "changed-meanwhile@example.org", timeout=5000
        )
        assert "Database reachable again" in window.statusBar().currentMessage()
        assert ctx.tournaments.get_person(person.id).email == "changed-meanwhile@example.org"
    finally:
        live.stop()
        window.quit_without_asking()
        if other is not None:
            other.close()
        ctx.close()


def test_a_read_the_window_started_while_away_is_one_line_in_the_status_bar(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings
) -> None:
    """What a slot leaves unhandled while the server is away (a person's history read on a
    click) is said in the status bar, not printed as a traceback; anything else still is."""
    window = open_window(qtbot, ctx, qsettings)
    saved = sys.excepthook
    seen: list[BaseException] = []
    sys.excepthook = lambda _kind, exc, _tb: seen.append(exc)
    try:
        say_unreachable_in_status_bar(window)
        gone = DatabaseUnreachable(
            "the database server cannot be reached (Connection refused); nothing was changed."
        )
        sys.excepthook(DatabaseUnreachable, gone, None)
        assert window.statusBar().currentMessage() == str(gone) and seen == []
        other = RuntimeError("a bug")
        sys.excepthook(RuntimeError, other, None)
        assert seen == [other]
    finally:
        sys.excepthook = saved


def test_sending_when_the_server_goes_away_stops_and_resumes_without_a_message_twice(
    qtbot: QtBot,
    own_server: PostgresServer,
    qsettings: QSettings,
    qloop: object,
    smtp: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outbox is sending a draw through the loopback SMTP server when PostgreSQL stops:
    sending stops (nothing more is handed over while no result could be recorded), the window
    says why; when the server is back the outbox resumes by itself, and no message reaches the
    SMTP server twice — one whose result was lost is 'uncertain', never silently resent."""
    monkeypatch.setenv("TABMAIL_LEASE_SECONDS", "2")
    url = own_server.fresh_database()
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    assert load_demo_if_empty(ctx) is not None
    for key, value in {
        "backend": "smtp",
        "smtp.host": smtp.host,
        "smtp.port": str(smtp.port),
        "smtp.security": "none",
        "smtp.connections": "1",
        "from_address": "tab@example.org",
    }.items():
        ctx.settings.set_text(key, value)
    smtp.data_delay = 0.1
    slug = ctx.tournaments.list_all()[0].slug
    batch = notify.enqueue(ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ALL))
    window = open_window(qtbot, ctx, qsettings)
    live = LiveChanges(ctx, retry_every=0.5)
    try:
        live.start()
        qtbot.waitUntil(lambda: live.online is True, timeout=10000)
        stopped: list[str] = []
        window.worker.outbox_failed.connect(stopped.append)
        window.start_background(poll=False)
        qtbot.waitUntil(lambda: len(smtp.messages) >= 5, timeout=20000)
        own_server.halt()
        qtbot.waitUntil(window.status.database.isVisible, timeout=5000)
        qtbot.waitUntil(lambda: not window.worker.outbox_running, timeout=20000)
        handed_over = len(smtp.messages)
        assert len(stopped) == 1 and "cannot be reached" in stopped[0] and "\n" not in stopped[0]
        assert handed_over < batch.queued  # it stopped part-way
        qtbot.wait(1500)
        assert len(smtp.messages) == handed_over  # nothing handed over while nothing is recorded

        own_server.resume()
        qtbot.waitUntil(lambda: not window.status.database.isVisible(), timeout=15000)

        def settled() -> bool:
            states = [m.state.value for m in ctx.notifications.messages(batch_id=batch.batch_id)]
            return all(s in ("sent", "uncertain") for s in states)

        qtbot.waitUntil(settled, timeout=60000)
        qtbot.waitUntil(lambda: not window.worker.outbox_running, timeout=20000)
        accepted = Counter(m.tabmail_id for m in smtp.messages if m.accepted)
        assert max(accepted.values()) == 1  # never twice
        messages = ctx.notifications.messages(batch_id=batch.batch_id)
        assert {m.id for m in messages if m.state.value == "sent"} <= set(accepted)
        assert len(accepted) > handed_over  # the rest went out after reconnecting
    finally:
        live.stop()
        window.quit_without_asking()
        ctx.close()
