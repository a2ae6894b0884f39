"""PostgreSQL as tabmail's store (issue #13 item 1): the password never in the URL, and the
outbox's claim atomic under concurrent claimers on a real server (tests/servers/postgres.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from tabmail.domain.notification import Audience, Event, MessageState
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.store.db import Database, DatabaseError, DatabaseLocked
from tabmail.store.notifications import Claim
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.timeout(120)
BOTH_ENGINES = True  # the db/ctx tests here run on SQLite and on PostgreSQL (tests/conftest.py)


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


def test_two_concurrent_claimers_on_one_batch_claim_every_message_exactly_once(
    smtp_demo: AppContext, engine: str
) -> None:
    """Two processes' worth of claimers (each its own engine and connections), started together on
    the same queued batch in opposite orders: the compare-and-set claim hands each message to
    exactly one of them, on PostgreSQL as on SQLite."""
    demo = smtp_demo
    slug = demo.tournaments.list_all()[0].slug
    plan = notify.plan(demo, slug, Event.DRAW, round_seq=1, audience=Audience.ALL)
    batch = notify.enqueue(demo, plan)
    messages = demo.notifications.messages(batch_id=batch.batch_id)
    ids = [m.id for m in messages]
    assert len(ids) > 20
    backend = "smtp"  # what smtp_demo sends through, recorded on each queued message
    target = demo.db.url if demo.db.path is None else str(demo.db.path)
    start = threading.Barrier(2, timeout=30)
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(name: str, order: list[str]) -> None:
        try:
            ctx = AppContext.open(target, keyring_backend=MemoryKeyring())
            try:
                by = Claim(name, datetime.now(UTC) + timedelta(minutes=5), backend)
                start.wait()
                got = claimed.setdefault(name, [])
                for mid in order:
                    for _ in range(200):  # SQLite's write lock: the outbox's own retry, bounded
                        try:
                            ok, _skipped = ctx.notifications.outbox.claim([mid], by)
                            break
                        except DatabaseLocked:
                            continue
                    else:
                        raise AssertionError(f"{name} never got the write lock for {mid}")
                    if ok[0]:
                        got.append(mid)
            finally:
                ctx.close()
        except BaseException as exc:
            errors.append(exc)
            raise

    threads = [
        threading.Thread(target=claimer, args=("laptop-1", ids)),
        threading.Thread(target=claimer, args=("laptop-2", list(reversed(ids)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert not errors, errors
    both = claimed["laptop-1"] + claimed["laptop-2"]
    assert sorted(both) == sorted(ids)  # every message claimed, none twice
    states = {m.id: (m.state, m.attempts) for m in demo.notifications.messages(batch_id=batch.batch_id)}
    assert set(states.values()) == {(MessageState.SENDING, 1)}
