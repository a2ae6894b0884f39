"""Several `tabmail outbox run` processes on one database (issue 13 item 2): a queued batch, the
processes themselves, and the messages' rows read with psycopg (no tabmail code involved)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tabmail.domain.imported import ImportBundle, PersonData, TournamentData
from tabmail.domain.notification import Event, Templates
from tabmail.domain.tournament import Role
from tabmail.services import notify
from tabmail.services.context import AppContext
from tests.keyrings import MemoryKeyring
from tests.outbox_support import REPO, cli_env
from tests.servers.postgres import PostgresServer


def queue_batch(db: str, port: int, people: int, *, connections: int) -> None:
    """A tournament of ``people`` speakers and one custom batch to all of them, queued for the
    SMTP server on 127.0.0.1:``port`` with ``connections`` connections per process."""
    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        bundle = ImportBundle(
            TournamentData("room", "Room Open", "Room"),
            people=[
                PersonData(f"p{i}", f"Person {i:04d}", Role.SPEAKER, email=f"person{i}@example.org")
                for i in range(people)
            ],
        )
        ctx.tournaments.apply_import(bundle)
        for key, value in {
            "backend": "smtp",
            "smtp.host": "127.0.0.1",
            "smtp.port": str(port),
            "smtp.security": "none",
            "smtp.connections": str(connections),
            "smtp.messages_per_connection": "10000",
            "from_address": "tab@example.org",
        }.items():
            ctx.settings.set_text(key, value)
        plan = notify.plan(ctx, "room", Event.CUSTOM, templates=Templates("Room change", "Hello.\n"))
        assert notify.enqueue(ctx, plan).queued == people
    finally:
        ctx.close()


def outbox_run(db: str, *args: str, **env: str) -> subprocess.Popen[str]:
    """`tabmail --db DB outbox run ARGS` as a process of its own (a laptop of the tab room)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", db, "outbox", "run", *args],
        cwd=REPO,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def sent_count(stdout: str) -> int:
    """The 'sent N' of `outbox run`'s summary line."""
    found = re.search(r"^sent (\d+),", stdout, re.M)
    assert found, stdout
    return int(found.group(1))


@dataclass(frozen=True, slots=True)
class Row:
    state: str
    lease_owner: str | None
    lease_expires_at: datetime | None  # naive UTC, as stored

    @property
    def machine(self) -> str:
        return (self.lease_owner or "").partition(":")[0]


def rows(server: PostgresServer, url: str) -> dict[str, Row]:
    """Each message's state and lease, read straight from PostgreSQL."""
    with server.connect(url) as con:
        found: list[Any] = con.execute(
            "SELECT id, state, lease_owner, lease_expires_at FROM messages"
        ).fetchall()
    return {r[0]: Row(r[1], r[2], r[3]) for r in found}
