"""What the background work reports, shown in the window's status bar (``MainWindow.status_feed``).

``StatusFeed`` connects the worker's and the bridge's reports (delivery checks, the inbox, the
tab room's other laptops, the outbox stopping or waiting, saved settings) to the status bar's
widgets (``StatusWidgets``), keeps "12 s ago" current, and shows the previous session's last
check at start so the bar is never blank after a restart.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QStatusBar

from tabmail.gui.background import BackgroundWorker
from tabmail.gui.bridge import EventBridge
from tabmail.gui.status_bar import StatusWidgets
from tabmail.services import poll_state as tracking  # the SendGrid client loads with the first check
from tabmail.services.context import AppContext
from tabmail.services.election import SENDGRID, LastCheck
from tabmail.services.machine import machine_name

log = logging.getLogger(__name__)

AGE_TICK_MS = 5_000  # how often "12 s ago" in the status bar is brought up to date


class StatusFeed(QObject):
    def __init__(
        self,
        ctx: AppContext,
        bridge: EventBridge,
        worker: BackgroundWorker,
        status: StatusWidgets,
        status_bar: QStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._worker = worker
        self._status = status
        self._bar = status_bar
        status.update_from_settings(ctx.settings.all())
        self._show_last_poll()
        bridge.poll_finished.connect(self.on_poll_finished)
        bridge.sending_connection_changed.connect(status.set_sending)
        worker.poll_started.connect(self._on_worker_poll_started)
        worker.inbox_completed.connect(self._on_worker_inbox_completed)
        worker.inbox_waiting.connect(self._on_worker_inbox_waiting)
        worker.room_checked.connect(self._on_worker_room_checked)
        worker.outbox_failed.connect(self._on_worker_outbox_failed)
        worker.outbox_waiting.connect(self._on_worker_outbox_waiting)
        self._age_timer = QTimer(self)  # "last checked by tabroom-2, 12 s ago" stays current
        self._age_timer.setInterval(AGE_TICK_MS)
        self._age_timer.timeout.connect(status.tick)
        self._age_timer.start()

    def settings_changed(self, keys: list[str]) -> None:
        """Saved settings show at once (backend, addresses); a changed connection is unknown
        again until the next check."""
        self._status.update_from_settings(self._ctx.settings.all())
        if tracking.CONNECTION_KEYS.intersection(keys) or "smtp.port" in keys:
            self._status.reset_connection()

    def on_poll_finished(self, ok: bool, online: bool, summary: str) -> None:
        by = machine_name() if self._worker.sendgrid_duty.elected else None
        self._status.set_poll_result(datetime.now(UTC), ok, summary, by)
        self._status.set_online(online)

    def _on_worker_poll_started(self) -> None:
        self._status.last_poll.setText("Checking delivery statuses…")

    def _on_worker_outbox_failed(self, why: str) -> None:
        self._bar.showMessage(f"Sending stopped: {why}", 15000)

    def _on_worker_outbox_waiting(self, what: str) -> None:
        self._bar.showMessage(what.rstrip(".…") + "…", 15000)

    def _on_worker_inbox_completed(self, report: Any) -> None:
        if report.enabled:
            by = machine_name() if self._worker.inbox_duty.elected else None
            self._status.set_inbox_result(report.started_at, report.ok, report.online, report.summary(), by)

    def _on_worker_inbox_waiting(self, event: Any) -> None:
        from tabmail.services.inbox_watch import waiting_short, waiting_words

        self._status.set_inbox_waiting(waiting_short(event), waiting_words(event))

    def _on_worker_room_checked(self, last: LastCheck) -> None:
        """Another laptop of the tab room holds a duty: show its last check, and by whom."""
        by = last.by or "another laptop"
        if last.duty == SENDGRID:
            self._status.set_poll_result(last.at, last.ok, last.summary, by)
        else:
            self._status.set_inbox_result(last.at, last.ok, last.online, last.summary, by)

    def _show_last_poll(self) -> None:
        """The previous session's last check, so the status bar is not blank after a restart;
        in a tab room sharing one database, the room's last checks and who made them."""
        if self._worker.sendgrid_duty.elected:
            for checked in self._worker.last_checks().values():
                self._on_worker_room_checked(checked)
            return
        last = tracking.last_poll(self._ctx)
        if not last:
            return
        try:
            when = datetime.fromisoformat(str(last["at"]))
            self._status.set_poll_result(when, bool(last["ok"]), str(last.get("summary") or ""))
        except (KeyError, ValueError):
            log.warning("ignoring an unreadable last-poll record: %r", last)
