"""One poller at a time in a tab room (issue 13 item 3), all real: `tabmail poll` processes on
one PostgreSQL database (each playing another laptop, TABMAIL_MACHINE) against the
SendGrid-compatible test server.

- Two pollers: only the one holding the advisory lock polls; the other says it stands by.
- Kill the poller: the other takes over within one interval (the server ends the dead session
  and releases the lock), and records "last checked by" itself.
- The election itself (store/advisory.py through services/election.py) on both engines: on
  SQLite every process polls, as before; on PostgreSQL one Duty holder at a time.
- `tabmail status` says who last checked and when.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from tabmail.domain.imported import ImportBundle, PersonData, TournamentData
from tabmail.domain.tournament import Role
from tabmail.services.context import AppContext
from tabmail.services.election import INBOX, SENDGRID, Duty, LastCheck, ago, last_check
from tests.keyrings import MemoryKeyring
from tests.outbox_support import REPO, cli_env, wait_until
from tests.servers.postgres import PostgresServer
from tests.servers.sendgrid import DEFAULT_KEY, SendGridTestServer

BOTH_ENGINES = True
INTERVAL = 2.0


@pytest.fixture
def sendgrid() -> Iterator[SendGridTestServer]:
    with SendGridTestServer() as server:
        # The test server's clock stands still here; real pollers keep their own 6-a-minute
        # budget, so the server's per-minute window (which would never slide) is not needed.
        server.activity_rate_limit = None
        yield server


def configure(db: str, sendgrid: SendGridTestServer) -> None:
    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", sendgrid.url)
        ctx.settings.set("from_address", "tab@example.org")
        ctx.tournaments.apply_import(
            ImportBundle(
                TournamentData("room", "Room Open", "Room"),
                people=[PersonData("p1", "Person One", Role.SPEAKER, email="one@example.org")],
            )
        )
    finally:
        ctx.close()


def poller(db: str, machine: str, out: IO[str]) -> subprocess.Popen[str]:
    """`tabmail poll --interval 2` as a laptop of its own; its output goes to ``out``."""
    return subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", db, "poll", "--interval", str(INTERVAL)],
        cwd=REPO,
        env=cli_env(TABMAIL_MACHINE=machine, TABMAIL_SENDGRID_API_KEY=DEFAULT_KEY),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def recorded(db: str) -> LastCheck | None:
    ctx = AppContext.open(db, keyring_backend=MemoryKeyring(), migrate=False)
    try:
        return last_check(ctx, SENDGRID)
    finally:
        ctx.close()


def polls(path: Path) -> list[str]:
    """A poller's report lines (one per poll), not its standby line."""
    return [
        line for line in path.read_text().splitlines() if line[:1].isdigit() and "are checked by" not in line
    ]


@pytest.mark.timeout(120)
def test_two_pollers_only_one_polls_and_the_other_takes_over_within_an_interval(
    postgres_server: PostgresServer, sendgrid: SendGridTestServer, tmp_path: Path
) -> None:
    url = postgres_server.fresh_database()
    first_out, second_out = tmp_path / "tabroom-1.txt", tmp_path / "tabroom-2.txt"
    procs: list[subprocess.Popen[str]] = []
    try:
        configure(url, sendgrid)
        with first_out.open("w") as f1, second_out.open("w") as f2:
            first = poller(url, "tabroom-1", f1)
            procs.append(first)
            wait_until(lambda: (recorded(url) or LAST_NONE).by == "tabroom-1", 60, "tabroom-1's first poll")
            second = poller(url, "tabroom-2", f2)
            procs.append(second)
            wait_until(lambda: "are checked by" in second_out.read_text(), 60, "tabroom-2 to stand by")
            time.sleep(3 * INTERVAL)  # three intervals with both running
            first_polls, second_polls = polls(first_out), polls(second_out)
            requests_before = len(sendgrid.requests)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed = time.monotonic()
            wait_until(lambda: (recorded(url) or LAST_NONE).by == "tabroom-2", 30, "tabroom-2 to take over")
            took = time.monotonic() - killed
            standby = second_out.read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        postgres_server.drop(url)

    assert len(first_polls) >= 3, first_out.read_text()
    assert second_polls == [], standby  # the second laptop never polled while the first lived
    assert "delivery statuses are checked by tabroom-1 (last checked by tabroom-1," in standby
    assert "this one takes over if it stops" in standby
    # Takeover within one interval (the next try of the lock), plus the first poll itself.
    assert took < INTERVAL + 2.0, f"took {took:.1f} s"
    assert polls(second_out), second_out.read_text()
    assert len(sendgrid.requests) > requests_before


LAST_NONE = LastCheck(SENDGRID, datetime.now(UTC), None, False, False, "")


def test_one_duty_holder_at_a_time_on_postgresql_and_every_process_on_sqlite(
    engine: str, db_target: str
) -> None:
    contexts = [AppContext.open(db_target, keyring_backend=MemoryKeyring()) for _ in range(2)]
    try:
        one, two = (Duty(c, SENDGRID) for c in contexts)
        inbox_two = Duty(contexts[1], INBOX)
        if engine == "sqlite":
            assert not one.elected
            assert one.mine() and two.mine()  # one laptop: no election, as before
            return
        assert one.elected
        assert one.mine()
        assert not two.mine()
        assert one.mine()  # kept while held
        assert inbox_two.mine()  # another duty, another lock
        one.release()
        assert two.mine()
        assert not one.mine()
        two.release()
        inbox_two.release()
    finally:
        for c in contexts:
            c.close()


def test_status_says_who_last_checked_and_when(db_target: str, sendgrid: SendGridTestServer) -> None:
    configure(db_target, sendgrid)
    ctx = AppContext.open(db_target, keyring_backend=MemoryKeyring())
    try:
        at = datetime.now(UTC) - timedelta(seconds=12)
        record = {
            "at": at.isoformat(),
            "ok": True,
            "online": True,
            "summary": "nothing new",
            "by": "tabroom-2",
        }
        ctx.settings.set_state("poll.sendgrid.last_poll", record)
    finally:
        ctx.close()
    args = [sys.executable, "-m", "tabmail", "--db", db_target, "status", "--tournament", "room"]
    done = subprocess.run(
        args, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60, check=True
    )
    first = done.stdout.splitlines()[0]
    assert first.startswith("delivery statuses: last checked by tabroom-2, 1") and first.endswith(" s ago"), (
        first
    )
    as_json = subprocess.run(
        [*args, "--json"], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60, check=True
    )
    data = json.loads(as_json.stdout)
    assert data["last_checked"]["sendgrid"]["by"] == "tabroom-2"
    assert data["last_checked"]["inbox"] is None


def test_ago_words() -> None:
    assert [ago(s) for s in (0, 12.7, 59, 60, 3599, 3600, 86400 * 3)] == [
        "0 s ago",
        "12 s ago",
        "59 s ago",
        "1 min ago",
        "59 min ago",
        "1 h ago",
        "3 days ago",
    ]
