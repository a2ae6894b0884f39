"""Helpers for the outbox tests: fake time, lease owners of dead processes, a held write lock."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


REPO = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a tabmail subprocess: no keyring (secrets from TABMAIL_* variables)."""
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["PYTHONPATH"] = str(REPO)
    env["TABMAIL_THREAD_KEY"] = "ab" * 32  # no keyring here: without it, a warning says so
    env.update(extra)
    return env


@contextmanager
def smtp_server_process(record: Path, data_delay: float) -> Iterator[int]:
    """tests/servers/smtp.py in a process of its own, recording to ``record``; yields its port."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.servers.smtp", "--port", "0"),
            *("--record-dir", str(record), "--data-delay", str(data_delay)),
        ],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Check ``predicate`` until it holds (a condition on files or the database), or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def states(db: Path | str) -> dict[str, str]:
    """Each message's state, read straight from the SQLite file or the PostgreSQL database
    (no tabmail code involved)."""
    if str(db).startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(str(db))
        with psycopg.connect(
            host=url.query.get("host") or url.host, port=url.port, user=url.username, dbname=url.database
        ) as pg:
            return {str(i): str(s) for i, s in pg.execute("SELECT id, state FROM messages").fetchall()}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return dict(con.execute("SELECT id, state FROM messages").fetchall())
    finally:
        con.close()


_HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
con.execute("BEGIN IMMEDIATE")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))  # the other program's long write
con.execute("ROLLBACK")
"""


def lock_for(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes SQLite's write lock on ``path``, holds it ``seconds``, and
    ends; returns once the lock is held."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "LOCKED"
    return proc
