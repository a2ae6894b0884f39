"""Quitting: asked when mail is still waiting, told on the next start that it resumed, and never
a crash on the way out (the app quit 30 times in a row, in fresh processes)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import Audience, Event
from tabmail.gui.background import BackgroundWorker
from tabmail.gui.main_window import MainWindow
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tests.keyrings import MemoryKeyring

pytestmark = pytest.mark.gui
READY = "window shown; tabmail is running"


def queue_a_draw(ctx: AppContext, folder: Path) -> int:
    """The demo's round-1 draw queued for the file backend; returns how many messages."""
    assert load_demo_if_empty(ctx) is not None
    ctx.settings.set_text("backend", "file")
    ctx.settings.set_text("file.directory", str(folder))
    slug = ctx.tournaments.list_all()[0].slug
    return notify.enqueue(ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ALL)).queued


def button(box: QMessageBox, text: str) -> None:
    next(b for b in box.buttons() if b.text() == text).click()


@pytest.mark.timeout(60)
def test_quitting_with_mail_waiting_asks_and_keep_open_keeps_it_open(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, tmp_path: Path
) -> None:
    queued = queue_a_draw(ctx, tmp_path / "eml")
    window = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(window)
    window.show()

    window.close()
    box = window.quitting.box
    assert box is not None and box.isVisible() and window.isVisible()
    assert f"{queued} messages are not sent yet ({queued} queued)" in box.text()
    assert "sent when tabmail next starts" in box.informativeText()
    button(box, "Keep tabmail Open")
    qtbot.waitUntil(lambda: window.quitting.box is None, timeout=5000)
    assert window.isVisible()

    window.close()
    box = window.quitting.box
    assert box is not None
    button(box, "Quit, Send Later")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert ctx.notifications.pending_count() == queued  # kept for the next start


@pytest.mark.timeout(60)
def test_nothing_waiting_quits_without_a_question(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings
) -> None:
    window = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(window)
    window.show()
    window.close()
    assert window.quitting.box is None and not window.isVisible()


@pytest.mark.timeout(60)
def test_the_next_start_says_it_resumed(
    qtbot: QtBot, ctx: AppContext, qsettings: QSettings, qloop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    queued = queue_a_draw(ctx, tmp_path / "eml")
    window = MainWindow(ctx, qsettings=qsettings, worker=BackgroundWorker(ctx))
    qtbot.addWidget(window)
    window.show()
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    window.start_background(poll=False)
    assert f"Resumed {queued} messages left unsent when tabmail last closed: sending now." in said
    # Every message sent, not only none pending: the last one claimed is 'sending' (and not
    # pending) until its file is written and its result recorded.
    qtbot.waitUntil(lambda: {m.state.value for m in ctx.notifications.messages()} == {"sent"}, timeout=30000)
    assert len(list((tmp_path / "eml").rglob("*.eml"))) == queued
    window.close()


class _Pinger(QObject):
    ping = Signal(object)


@pytest.mark.timeout(60)
def test_emitting_signals_keeps_every_reference(qapp: object) -> None:
    """PySide6 6.12.0 dropped a reference to True on every Signal.emit(); on Python 3.11 the
    interpreter then aborted ("bool_dealloc ... refcount error"), often at quit."""
    pinger = _Pinger()
    pinger.ping.connect(lambda _value: None)
    before = sys.getrefcount(True)
    for i in range(500):
        pinger.ping.emit(i)
    assert sys.getrefcount(True) >= before - 5


def _prepare(folder: Path) -> Path:
    template = folder / "template.sqlite3"
    ctx = AppContext.open(template, keyring_backend=MemoryKeyring())
    try:
        queue_a_draw(ctx, folder / "eml")
    finally:
        ctx.close()
    return template


def _quit_once(template: Path, folder: Path, n: int) -> tuple[int, str, str]:
    """Start tabmail on a copy of ``template`` (a draw queued), wait for its window, Ctrl+C while
    the outbox sends, and return (exit code, stderr, log)."""
    db = folder / f"run-{n}.sqlite3"
    shutil.copy(template, db)
    logs = folder / f"logs-{n}"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TABMAIL_LOG_DIR": str(logs)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", str(db)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log_file = logs / "tabmail.log"
    deadline = time.monotonic() + 40
    try:
        while not (log_file.exists() and READY in log_file.read_text()):
            assert proc.poll() is None, f"tabmail exited before its window showed: {proc.stderr.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the window did not show within 40 s"
            time.sleep(0.05)  # polling a log file for a condition, with a deadline
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, log_file.read_text()


def _quit_repeatedly(tmp_path: Path, times: int) -> None:
    template = _prepare(tmp_path)
    for n in range(times):
        code, err, log = _quit_once(template, tmp_path, n)
        assert "Fatal Python error" not in err and "Traceback" not in err, f"run {n}: {err}"
        assert code == 0, f"run {n} exited with {code}: {err}"
        assert "Resumed" in log and "left unsent" in log


@pytest.mark.timeout(300)
def test_quitting_ten_times_in_a_row_never_crashes(tmp_path: Path) -> None:
    _quit_repeatedly(tmp_path, 10)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quitting_thirty_times_in_a_row_never_crashes(tmp_path: Path) -> None:
    _quit_repeatedly(tmp_path, 30)
