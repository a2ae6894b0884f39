"""Helpers for the outbox tests: fake time, lease owners of dead processes, a held write lock."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tabmail.store.notifications import Claim


class FakeTime:
    """The outbox's injected clock and sleep: sleeping advances the clock, nothing really waits.
    ``limit``: total seconds of sleep after which the test fails (a run that never ends)."""

    def __init__(self, limit: float = 30 * 86400) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        self.slept: list[float] = []
        self.limit = limit

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        if sum(self.slept) > self.limit:
            raise AssertionError(
                f"the outbox kept waiting: {len(self.slept)} sleeps, {sum(self.slept):.0f} s"
            )


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def dead_claim(backend: str) -> Claim:
    """A claim as a process on this host that has since died would have made it."""
    owner = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    return Claim(owner, datetime.now(UTC) + timedelta(seconds=60), backend)


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding SQLite's write lock on ``path`` (BEGIN IMMEDIATE) until closed."""
    con = sqlite3.connect(str(path), isolation_level=None, timeout=5)
    con.execute("BEGIN IMMEDIATE")
    return con
