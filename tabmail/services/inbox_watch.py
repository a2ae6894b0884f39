"""How long the mailbox watcher waits after trouble, and the words that say so.

Bad Wi-Fi is the norm in a tab room: an IDLE connection drops, the server restarts or kicks
idle clients, a check cannot reach the server. The next try comes after a few seconds
(``FIRST_RETRY``), twice as long each time the trouble repeats, never longer than the poll
interval: once there, the mailbox is simply read every ``imap.poll_seconds``, as for a server
without IDLE, and no faster. A round that ends cleanly (an IDLE wait that returned, a timed
check) starts again from a few seconds. Each wait is announced (``InboxWaiting`` on the bus):
the window's status bar and ``tabmail inbox check`` say what the inbox waits for, and until when.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabmail.domain.events import InboxWaiting

FIRST_RETRY = 2.0  # seconds before the first try after trouble


@dataclass(slots=True)
class Reconnect:
    """Consecutive troubles, and the wait they call for."""

    first: float = FIRST_RETRY
    failures: int = 0

    def trouble(self, problem: str, detail: str, cap: float) -> InboxWaiting:
        """One more trouble: the wait before the next try (``cap``: the poll interval)."""
        self.failures += 1
        seconds = min(max(cap, self.first), self.first * 2.0 ** min(self.failures - 1, 30))
        return InboxWaiting(problem=problem, detail=detail, seconds=seconds)

    def clear(self) -> None:
        self.failures = 0


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.0f} min"


def waiting_short(event: InboxWaiting) -> str:
    """ "connection lost; retrying in 4 s" (a status bar's width)."""
    return f"{event.problem}; retrying in {_seconds(event.seconds)}"


def waiting_words(event: InboxWaiting) -> str:
    """The whole sentence, with what the server or the connection said."""
    detail = f" ({event.detail})" if event.detail else ""
    return f"Mailbox {event.problem}{detail}; retrying in {_seconds(event.seconds)}."
