from __future__ import annotations

import os
import tempfile

# Before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.pop("TABMAIL_DB", None)
# Logs of the test run (and of its subprocesses) never go to the developer's real log folder.
os.environ["TABMAIL_LOG_DIR"] = tempfile.mkdtemp(prefix="tabmail-test-logs-")

from collections.abc import Iterator
from pathlib import Path

import pytest

from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.store.db import Database
from tests.datafiles import data_path
from tests.keyrings import MemoryKeyring
from tests.servers.mailserver import MailServers, unavailable_reason
from tests.servers.postgres import PostgresServer, find_bin_dir
from tests.servers.smtp import SmtpTestServer

__all__ = ["REPO", "data_path"]

# On CI a skip without a reason CI cannot meet fails the run (tests/ci_skips.py).
pytest_plugins = ["tests.ci_skips"]

REPO = Path(__file__).resolve().parents[1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with ``BOTH_ENGINES = True``, or a test marked ``both_engines``, runs its db/ctx
    tests on SQLite and on PostgreSQL (``slow_on_postgresql``: the latter under make test-slow)."""
    wanted = getattr(metafunc.module, "BOTH_ENGINES", False) or metafunc.definition.get_closest_marker(
        "both_engines"
    )
    if "engine" in metafunc.fixturenames and wanted:
        # A long test whose PostgreSQL variant adds little: that variant goes to make test-slow.
        slow = metafunc.definition.get_closest_marker("slow_on_postgresql") is not None
        postgresql = pytest.param("postgresql", marks=pytest.mark.slow) if slow else "postgresql"
        metafunc.parametrize("engine", ["sqlite", postgresql])


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session (tests/servers/postgres.py), stopped at the end.
    Missing binaries: a failure under CI=true, a skip elsewhere."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb; tools/system-deps.sh)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bin_dir)
    server.start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


@pytest.fixture
def db_target(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where this test's database is: a SQLite file, or a fresh migrated PostgreSQL database."""
    if engine == "sqlite":
        yield str(tmp_path / "tabmail.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    yield url
    server.drop(url)


@pytest.fixture
def db(db_target: str) -> Iterator[Database]:
    database = Database(db_target)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def keyring_backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def ctx(db_target: str, keyring_backend: MemoryKeyring) -> Iterator[AppContext]:
    context = AppContext.open(db_target, keyring_backend=keyring_backend)
    yield context
    context.close()


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    """A real SMTP server on loopback that records what it receives (tests/servers/smtp.py)."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def practice_demo(ctx: AppContext) -> AppContext:
    """A fresh database as `make run` opens it: the demo loaded, and so the practice backend."""
    assert load_demo_if_empty(ctx) is not None
    return ctx


@pytest.fixture
def smtp_demo(ctx: AppContext, smtp: SmtpTestServer) -> AppContext:
    """The demo tournament loaded, sending through the loopback SMTP server."""
    assert load_demo_if_empty(ctx) is not None
    for key, value in {
        "backend": "smtp",
        "smtp.host": smtp.host,
        "smtp.port": str(smtp.port),
        "smtp.security": "none",
        "smtp.connections": "3",
        "from_address": "tab@example.org",
        "reply_to": "tab@example.org",
    }.items():
        ctx.settings.set_text(key, value)
    return ctx


# Mailboxes of the loopback Postfix + Dovecot (tests/servers/mailserver.py): "tab" is the tab
# room's own; the others are participants that exist (any other local part is an unknown user).
MAILBOXES = ("tab", "alice", "bob", "carol", "dave", "erin", "frank", "stuck")


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    """A real Postfix and Dovecot on loopback for the whole session (stopped at the end).
    Missing binaries or no root: a failure under CI=true (CI must run these), a skip elsewhere."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the Postfix/Dovecot tests: {reason}", pytrace=False)
        pytest.skip(reason)
    with MailServers(MAILBOXES) as servers:
        yield servers


@pytest.fixture
def mail(mail_servers: MailServers) -> MailServers:
    """The session's mail servers with every mailbox empty and Postfix's queue drained."""
    mail_servers.wait_queue_empty()
    mail_servers.empty_mailboxes()
    return mail_servers
