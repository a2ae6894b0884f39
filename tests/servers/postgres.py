"""A throwaway PostgreSQL server for the tests, from Debian's postgresql package.

Started once per test session in a temporary directory with initdb/pg_ctl (no systemd), listening
only on a unix socket inside that directory. initdb refuses to run as root, so as root the server
runs as the ``postgres`` system user (created by the Debian package) and the directory is theirs;
where /dev/null is root's alone (some sandboxes), PostgreSQL cannot run as another user, so it
runs in a user namespace instead, where root appears as an ordinary uid (``unshare``).
Each test gets a fresh database copied from a migrated template (CREATE DATABASE ... TEMPLATE),
which is much faster than running the migrations per test.

``tls=True``: the server also listens on 127.0.0.1 (a free port) with TLS only, a certificate for
127.0.0.1 and localhost from a throwaway CA (trustme; ``ca_file``), and scram-sha-256 passwords
for every TCP connection (``add_login``); the unix socket stays trust for the tests' own setup.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

TEMPLATE = "tabmail_template"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name))
    for d in reversed(dirs):
        if Path(d, "initdb").exists():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path, *, tls: bool = False) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="tabmail-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        root = os.geteuid() == 0
        others_write_null = os.stat("/dev/null").st_mode & 0o002
        self.wrap: list[str] = []
        if root and others_write_null:
            self.wrap = ["runuser", "-u", "postgres", "--"]
            self.owner: str | None = "postgres"
        elif root:
            self.wrap = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
            self.owner = None
        else:
            self.owner = None
        self.user = "tabmail"
        self.tls = tls
        self.port = 5432  # libpq's default; with tls=True a free port (the socket's name has it too)
        self.ca_file = self.root / "tls" / "ca.pem"
        self._opts = ""

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        cmd = [*self.wrap, *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    def start(self) -> None:
        self.socket_dir.mkdir()
        if self.owner:
            shutil.chown(self.root, self.owner)
            shutil.chown(self.socket_dir, self.owner)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        self._opts = f"-c listen_addresses='' -k {self.socket_dir} -c fsync=off -c full_page_writes=off"
        if self.tls:
            self._opts = self._tls_options()
        self.resume()

    def resume(self) -> None:
        """Start the server on its existing data directory (after ``start``, or ``halt``)."""
        opts = self._opts
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def halt(self) -> None:
        """Stop the server as an administrator would (connections closed), keeping its data:
        ``resume`` starts it again. For tests of a server lost and found mid-session."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _tls_options(self) -> str:
        """Certificates and pg_hba.conf for TLS + scram-sha-256 on 127.0.0.1; the options."""
        import trustme

        folder = self.ca_file.parent
        folder.mkdir()
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        cert, key = folder / "server.crt", folder / "server.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)  # PostgreSQL refuses a key others can read
        # Only TLS over TCP, and only with a password; the socket is for the tests' own setup.
        hba = self.data / "pg_hba.conf"
        hba.write_text("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        if self.owner:
            for path in (folder, cert, key, hba):
                shutil.chown(path, self.owner)
        self.port = _free_port()
        return (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.socket_dir} -c fsync=off "
            f"-c full_page_writes=off -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key} "
            "-c password_encryption=scram-sha-256"
        )

    def add_login(self, role: str, password: str, dbname: str) -> str:
        """A role that logs in with ``password`` (scram) and owns a new, empty database; returns
        the database's URL over TCP with TLS verified against ``ca_file`` (no password in it)."""
        self.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        self.admin(f"CREATE DATABASE {dbname} OWNER {role}")
        return (
            f"postgresql+psycopg://{role}@127.0.0.1:{self.port}/{dbname}"
            f"?sslmode=verify-full&sslrootcert={self.ca_file}"
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{dbname}?host={self.socket_dir}" + (
            f"&port={self.port}" if self.tls else ""
        )

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as c:
            c.execute(sql)  # type: ignore[arg-type]

    def connect(self, url: str) -> psycopg.Connection[Any]:
        """A plain psycopg connection (autocommit) to the database of ``url`` (tests read rows
        with it, no tabmail code involved)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=self.user,
            dbname=self.dbname(url),
            autocommit=True,
        )

    @staticmethod
    def dbname(url: str) -> str:
        """The database name of a URL made by ``url`` (before the ?host=… query)."""
        return url.split("?")[0].rsplit("/", 1)[-1]

    def make_template(self) -> None:
        from tabmail.store.db import Database

        self.admin(f"CREATE DATABASE {TEMPLATE}")
        db = Database(self.url(TEMPLATE))
        db.migrate()
        db.dispose()

    def fresh_database(self) -> str:
        """A new database with the migrated schema; returns its URL (no password: trust auth)."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def drop(self, url: str) -> None:
        name = self.dbname(url)
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
