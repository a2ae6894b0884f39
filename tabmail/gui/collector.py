"""Python's cyclic garbage collector, run on the GUI thread only.

Left to itself, the interpreter collects in whichever thread happens to allocate when a
generation's threshold is crossed: often a worker of ``asyncio.to_thread`` (a send, an IMAP
wait). Qt objects caught in reference cycles (a dialog and a lambda connected to its signal, a
timer owned by a Python object that refers to itself) are then destroyed on that thread: Qt
warns "Timers cannot be stopped from another thread", or the process crashes. So automatic
collection is switched off while the GUI runs, and a timer on the GUI thread collects instead,
generation by generation, with the interpreter's own thresholds (qutebrowser does the same).

The oldest generation holds everything a season's database puts in memory, and collecting it
blocks the GUI thread for ~100 ms. So it is collected when the app is quiet (fewer new objects
since the last look than the youngest generation's threshold), not in the middle of applying a
poll or loading a round; if the app is never quiet it is collected anyway after MAX_DEFER_S.
"""

from __future__ import annotations

import gc
import time

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 500  # how often the allocation counts are looked at (cheap: three integers)
MAX_DEFER_S = 10.0  # the oldest generation waits for a quiet moment at most this long


class GuiThreadCollector(QObject):
    """Collects garbage on the thread it lives on; ``stop()`` hands collection back to Python."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_MS) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self.oldest_due_since: float | None = None  # when the oldest generation passed its threshold
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        gc.disable()
        self._timer.start()

    def check(self) -> int:
        """Collect the generations whose allocation counts passed their thresholds; the oldest
        one only at a quiet moment (or once it has waited MAX_DEFER_S)."""
        young, middle, old = gc.get_count()
        quiet = young <= self.threshold[0]
        found = 0
        if not quiet:
            found = gc.collect(0)
            if middle > self.threshold[1]:
                found += gc.collect(1)
                if old > self.threshold[2] and self.oldest_due_since is None:
                    self.oldest_due_since = time.monotonic()
        due = self.oldest_due_since
        if due is not None and (quiet or time.monotonic() - due > MAX_DEFER_S):
            found += gc.collect(2)
            self.oldest_due_since = None
        return found

    def stop(self) -> None:
        """Collect what is left here, on this thread, then let Python collect by itself again."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()


def collect_on_gui_thread(parent: QObject) -> GuiThreadCollector:
    """Start collecting on ``parent``'s thread (the QApplication's: the GUI thread)."""
    return GuiThreadCollector(parent)
