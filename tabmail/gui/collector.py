"""Python's cyclic garbage collector, run on the GUI thread only.

Left to itself, the interpreter collects in whichever thread happens to allocate when a
generation's threshold is crossed: often a worker of ``asyncio.to_thread`` (a send, an IMAP
wait). Qt objects caught in reference cycles (a dialog and a lambda connected to its signal, a
timer owned by a Python object that refers to itself) are then destroyed on that thread: Qt
warns "Timers cannot be stopped from another thread", or the process crashes. So automatic
collection is switched off while the GUI runs, and a timer on the GUI thread collects instead,
generation by generation, with the interpreter's own thresholds (qutebrowser does the same).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 500  # how often the allocation counts are looked at (cheap: three integers)


class GuiThreadCollector(QObject):
    """Collects garbage on the thread it lives on; ``stop()`` hands collection back to Python."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_MS) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        gc.disable()
        self._timer.start()

    def check(self) -> int:
        """Collect the generations whose allocation counts passed their thresholds."""
        young, middle, old = gc.get_count()
        found = 0
        if young > self.threshold[0]:
            found = gc.collect(0)
            if middle > self.threshold[1]:
                found += gc.collect(1)
                if old > self.threshold[2]:
                    found += gc.collect(2)
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
