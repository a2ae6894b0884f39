"""A tab room's PostgreSQL as it is really set up (issue #13 item 1): a role with a password
(scram-sha-256) over TCP on loopback, TLS verified against the server's CA (sslmode=verify-full).

The password comes from the keyring secret db-password (in-process, and through the CLI into
tools/with-keyring.sh's throwaway Secret Service) or from TABMAIL_DB_PASSWORD; a wrong password
and a certificate from another CA are each one line that names the problem; the password is in
no log, error message or table. The server: tests/servers/postgres.py with tls=True."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tabmail.services.context import AppContext
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer, find_bin_dir

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Tab-room pw 7&q=x%20"  # URL and conninfo special characters on purpose
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[PostgresServer]:
    """A second PostgreSQL for this module: TLS and scram on 127.0.0.1 (the session's own
    server is unix-socket and trust)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb; tools/system-deps.sh)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bin_dir, tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tabroom(tls_server: PostgresServer) -> str:
    """The URL of a database owned by a role that logs in with PASSWORD (no password in it)."""
    return tls_server.add_login("tabroom", PASSWORD.replace("'", "''"), "tabroom")


def cli(
    url: str, *args: str, password: str | None, stdin: str = "", keyring: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABMAIL_DB")}
    env["PYTHONPATH"] = str(REPO)
    if not keyring:
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    else:
        env.pop("PYTHON_KEYRING_BACKEND", None)
    if password is not None:
        env["TABMAIL_DB_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "tabmail", *(("--db", url) if url else ()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=90,
        check=False,
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed; never a traceback, never the password."""
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    return lines[0]


def test_the_keyrings_password_opens_the_database_over_verified_tls(tabroom: str) -> None:
    keyring = MemoryKeyring()
    keyring.set_password("tabmail", "db-password", PASSWORD)
    ctx = AppContext.open(tabroom, keyring_backend=keyring)
    try:
        assert ctx.db.current_revision() == ctx.db.head_revision()  # migrated by its first open
        with ctx.db.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT s.ssl, a.usename FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid "
                "WHERE s.pid = pg_backend_pid()"
            ).one()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            info = raw.info  # type: ignore[attr-defined]
        assert tuple(row) == (True, "tabroom")
        assert info.get_parameters()["sslmode"] == "verify-full"
        assert PASSWORD not in ctx.db.url and PASSWORD not in ctx.db.describe()
    finally:
        ctx.close()


def test_tabmail_db_password_in_the_environment_opens_it_from_the_cli(tabroom: str) -> None:
    done = cli(tabroom, "secret", "status", password=PASSWORD)
    assert done.returncode == 0, done.stderr
    done = cli(tabroom, "problems", password=PASSWORD)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "no unresolved problems" in done.stdout


def test_a_wrong_password_is_one_line_without_any_password(tabroom: str) -> None:
    wrong = "not-the-pw-" + PASSWORD[::-1]
    line = error_line(cli(tabroom, "problems", password=wrong))
    assert wrong not in line
    assert line.startswith("tabmail: error: the database server could not be used:"), line
    assert 'password authentication failed for user "tabroom"' in line, line
    assert "tabmail secret set db-password" in line, line


def test_no_password_at_all_is_one_line_that_says_where_to_put_it(tabroom: str) -> None:
    line = error_line(cli(tabroom, "problems", password=None))
    assert line.startswith("tabmail: error: the database server could not be used:"), line
    assert "no password supplied" in line and "tabmail secret set db-password" in line, line
    assert "TABMAIL_DB_PASSWORD" in line, line


def test_verify_full_with_another_ca_names_the_certificate_problem(tabroom: str, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    url = tabroom.replace(str(Path(tabroom.split("sslrootcert=")[1])), str(other))
    assert str(other) in url
    line = error_line(cli(url, "problems", password=PASSWORD))
    assert line.startswith("tabmail: error: the database server could not be used:"), line
    assert "certificate verify failed" in line, line


@pytest.mark.keyring_real
def test_the_password_from_the_real_keyring_through_the_cli(tabroom: str) -> None:
    """`tabmail secret set db-password` into tools/with-keyring.sh's throwaway Secret Service,
    then every command finds it there."""
    if os.environ.get("TABMAIL_REAL_KEYRING") != "1" or os.environ.get("TABMAIL_IN_KEYRING_SESSION") != "1":
        pytest.skip("needs the Secret Service of tools/with-keyring.sh (make unit runs the tests inside it)")
    stored = cli("", "secret", "set", "db-password", password=None, stdin=PASSWORD + "\n", keyring=True)
    assert (stored.returncode, stored.stderr) == (0, ""), stored.stderr
    assert PASSWORD not in stored.stdout
    try:
        done = cli(tabroom, "problems", password=None, keyring=True)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert "no unresolved problems" in done.stdout
    finally:
        deleted = cli("", "secret", "delete", "db-password", password=None, keyring=True)
        assert deleted.returncode == 0, deleted.stderr


def test_the_password_is_in_no_log_and_no_table(tabroom: str, tls_server: PostgresServer) -> None:
    """After commands that opened, migrated and read the database with the password (from the
    environment, and failing with a wrong one), neither tabmail's log files nor any table of
    the database hold it."""
    assert cli(tabroom, "problems", password=PASSWORD).returncode == 0
    done = cli(tabroom, "config", "set", "from_address", "tab@example.org", password=PASSWORD)
    assert done.returncode == 0, done.stderr
    shown = cli(tabroom, "config", "show", password=PASSWORD)
    assert "tab@example.org" in shown.stdout and PASSWORD not in shown.stdout + shown.stderr
    cli(tabroom, "problems", password=PASSWORD + "x")
    logs = Path(os.environ["TABMAIL_LOG_DIR"])
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert files, "tabmail wrote no log to look in"
    for path in [*files, tls_server.root / "log"]:  # tabmail's logs, and the server's own
        assert PASSWORD not in path.read_text(errors="replace"), path
    with tls_server.connect(tls_server.url("tabroom")) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        assert "messages" in [t.strip('"') for t in tables]
        for table in tables:
            for (row,) in conn.execute(f"SELECT t::text FROM {table} t"):  # type: ignore[call-overload]
                assert PASSWORD not in row, table
