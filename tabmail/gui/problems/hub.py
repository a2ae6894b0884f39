"""Problem counts at a glance, and an alert when new problems arrive.

``ProblemsHub`` keeps the navigator's badges and the window title's count of unresolved problems
current: a moment after the bridge reports changes it re-reads every unresolved problem in small
slices between the window's other work (a few hundred ms on a season's database in all, never in
one block) and hands the list to the Problems view too (``problems``, ``problems_changed``). It raises one alert per poll
(or per burst of outbox failures) naming how many new bounces or failures arrived and in which
round: a desktop notification where a system tray exists, otherwise a status-bar message and
the window's urgency hint.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Generator

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QSystemTrayIcon

from tabmail.domain.addresses import address_key
from tabmail.domain.errors import TabmailError
from tabmail.domain.problems import ALERT_CATEGORIES, category_of, counts_text
from tabmail.gui.bridge import EventBridge
from tabmail.gui.navigator import NavigatorPanel
from tabmail.services import problems as service
from tabmail.services.context import AppContext

log = logging.getLogger(__name__)

RECOUNT_DELAY_MS = 500
FAILURE_ALERT_DELAY_MS = 1500  # outbox failures arrive one by one: one alert for the burst
ALERT_STATUS_MS = 60_000
# Messages per slice of the re-read. Each slice runs between two turns of the event loop, so a
# keystroke that lands meanwhile waits for one or two: 300 made slices of 7-17 ms on a season's
# database (a third of a filter keystroke's time); 100 makes them 2-8 ms for the same total.
STEP_MESSAGES = 100


class ProblemsHub(QObject):
    counts_changed = Signal(int)  # unresolved problems in every tournament
    problems_changed = Signal()  # ``problems`` was re-read
    alert_raised = Signal(str, str)  # title, text (what the notification said)

    def __init__(
        self,
        ctx: AppContext,
        bridge: EventBridge,
        navigator: NavigatorPanel,
        window: QMainWindow,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._navigator = navigator
        self._window = window
        self.total = 0
        self.counts = service.ProblemCounts(Counter(), Counter(), 0)
        self.problems: list[service.Problem] | None = None  # every unresolved problem, once read
        self.fresh = False  # False while changes wait to be counted
        self._steps: Generator[None, None, list[service.Problem]] | None = None
        self._again = False
        self._stopped = False
        self.tray: QSystemTrayIcon | None = None
        self.tray_available: Callable[[], bool] = QSystemTrayIcon.isSystemTrayAvailable
        self._pending: set[str] = set()  # messages reported since the last alert
        self._alerted: set[str] = set()
        self._step_timer = QTimer(self)
        self._step_timer.setInterval(0)  # one slice per turn of the event loop
        self._step_timer.timeout.connect(self._on_step_timer_timeout)
        self._recount_timer = self._timer(RECOUNT_DELAY_MS, self.recount_in_background)
        self._alert_timer = self._timer(FAILURE_ALERT_DELAY_MS, self.flush_alerts)
        bridge.statuses_changed.connect(self._on_bridge_statuses_changed)
        bridge.message_state_changed.connect(self._on_bridge_message_state_changed)
        bridge.flags_changed.connect(self.schedule_recount)
        bridge.tournament_imported.connect(self.schedule_recount)
        bridge.poll_finished.connect(self._on_bridge_poll_finished)

    def _timer(self, ms: int, slot: Callable[[], object]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    # -- counts -----------------------------------------------------------------------------------
    def schedule_recount(self, *_: object) -> None:
        """Re-read the problems in the background, shortly (changes come in bursts)."""
        self.fresh = False
        if not self._recount_timer.isActive():
            self._recount_timer.start()

    def recount_in_background(self) -> None:
        """Re-read the problems in slices on this thread (``services.problems.unresolved_steps``),
        one slice per event-loop turn: the window keeps answering in between. Not a worker
        thread: a Python thread busy with thousands of rows makes every Qt callback on the GUI
        thread wait for the GIL, which blocked the window longer than reading here does."""
        self._recount_timer.stop()
        if self._stopped:
            return
        if self._steps is not None:
            self._again = True  # one more pass once this one is in
            return
        self._again = False
        self.fresh = False
        self._steps = service.unresolved_steps(self._ctx, chunk=STEP_MESSAGES)
        self._step_timer.start()

    def _on_step_timer_timeout(self) -> None:
        steps = self._steps
        if steps is None:
            self._step_timer.stop()
            return
        try:
            next(steps)
            return
        except StopIteration as done:
            problems: list[service.Problem] = done.value
        except TabmailError as exc:
            log.warning("counting problems failed: %s", exc)
            problems = []
        self._step_timer.stop()
        self._steps = None
        if self._again:
            self.recount_in_background()
            return
        self._apply(problems)

    def recount(self) -> int:
        """Count now, on this thread (tests, and where the caller needs the number at once)."""
        self._recount_timer.stop()
        self._apply(service.unresolved(self._ctx))
        return self.total

    def _apply(self, problems: list[service.Problem]) -> None:
        self.problems = problems
        self.fresh = not self._recount_timer.isActive()
        self.counts = service.counts_of(problems)
        self.reapply()
        if self.counts.total != self.total:
            self.total = self.counts.total
            self.counts_changed.emit(self.total)
        self.problems_changed.emit()

    def stop(self) -> None:
        """No more counting (the window is closing)."""
        self._stopped = True
        self._recount_timer.stop()
        self._step_timer.stop()
        steps, self._steps = self._steps, None
        if steps is not None:
            steps.close()  # closes its database session

    def reapply(self) -> None:
        """Put the last counts back on the navigator (after it was rebuilt)."""
        self._navigator.model.set_problem_counts(
            self.counts.by_round, self.counts.by_tournament, self.counts.without_round
        )

    # -- alerts -----------------------------------------------------------------------------------
    def _on_bridge_statuses_changed(self, ids: list[str]) -> None:
        self._pending.update(ids)
        self.schedule_recount()

    def _on_bridge_message_state_changed(self, message_id: str, _batch_id: int, state: str) -> None:
        if state == "failed":
            self._pending.add(message_id)
            self._alert_timer.start()
        self.schedule_recount()

    def _on_bridge_poll_finished(self, *_: object) -> None:
        self.flush_alerts()  # once per poll

    def flush_alerts(self) -> str | None:
        """Alert about the problems that arrived since the last alert. Returns the text shown."""
        self._alert_timer.stop()
        ids, self._pending = self._pending - self._alerted, set()
        if not ids:
            return None
        messages = self._ctx.notifications.messages(ids=sorted(ids))
        keys = [k for k in {address_key(m.address) for m in messages} if k]
        flags = service.flag_kinds(self._ctx.flags.active(keys)) if keys else {}
        fresh = [
            m for m in messages if category_of(m, flags.get(address_key(m.address) or "")) in ALERT_CATEGORIES
        ]
        resolved = self._ctx.problems.resolutions([m.id for m in fresh])
        fresh = [m for m in fresh if m.id not in resolved]
        if not fresh:
            return None
        self._alerted.update(m.id for m in fresh)
        where: Counter[str] = Counter()
        kinds: Counter[object] = Counter()
        for m in fresh:
            where[self._round_words(m.batch_id)] += 1
            kinds[category_of(m, flags.get(address_key(m.address) or ""))] += 1
        n = len(fresh)
        places = ", ".join(
            f"{place} ({count})" if len(where) > 1 else place for place, count in where.most_common()
        )
        title = f"{n} new problem{'s' if n != 1 else ''} in {places}"
        text = f"{counts_text(kinds)}. Open the Problems view to fix {'them' if n != 1 else 'it'}."  # type: ignore[arg-type]
        self._notify(title, text)
        return f"{title}: {text}"

    def _round_words(self, batch_id: int) -> str:
        try:
            batch = self._ctx.notifications.get_batch(batch_id)
            tournament = self._ctx.tournaments.get_by_id(batch.tournament_id)
        except TabmailError:  # a deleted tournament still had its messages: say what we know
            return "an earlier batch"
        rnd = next((r for r in self._ctx.tournaments.rounds(tournament.id) if r.id == batch.round_id), None)
        return f"{rnd.name} ({tournament.name})" if rnd else tournament.name

    def _notify(self, title: str, text: str) -> None:
        self.alert_raised.emit(title, text)
        if self.tray_available():
            if self.tray is None:
                self.tray = QSystemTrayIcon(self._window.windowIcon(), self)
                self.tray.setToolTip("tabmail")
                self.tray.messageClicked.connect(self._raise_window)
            self.tray.show()
            self.tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, 15000)
        else:
            self._window.statusBar().showMessage(f"{title}: {text}", ALERT_STATUS_MS)
        QApplication.alert(self._window)  # the urgency hint: the taskbar entry asks for attention

    def _raise_window(self) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()
