"""Live across laptops (issue #13 items 4 and 6), below the window: on a real PostgreSQL, another
process's changes arrive on this process's bus as the events it publishes for its own; its own
are not echoed; a server stopped and started again is reported lost and found, and a write
while it is away fails with one line and changes nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tabmail.domain.events import (
    AddressFlagsChanged,
    DatabaseLinkChanged,
    MessageStateChanged,
    PersonChanged,
    RepliesReceived,
    StatusesChanged,
    TournamentImported,
)
from tabmail.domain.notification import Audience, Event
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.live import LiveChanges
from tabmail.store.db import DatabaseUnreachable
from tabmail.store.live import Change, parse
from tests.keyrings import MemoryKeyring
from tests.outbox_support import cli_env
from tests.servers.postgres import PostgresServer, find_bin_dir

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]
E = TypeVar("E")


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> float:
    """Seconds until ``condition()`` holds; fails naming ``what`` after ``seconds``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


class Heard:
    """Everything published on a context's bus, from any thread."""

    def __init__(self, ctx: AppContext) -> None:
        self.events: list[object] = []
        ctx.bus.subscribe(None, self.events.append)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in list(self.events) if isinstance(e, kind)]


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.fresh_database()
    yield url
    postgres_server.drop(url)


def send_to_files(ctx: AppContext, folder: Path) -> None:
    """Really send (to .eml files): practice mode keeps corrected addresses out of Participants."""
    ctx.settings.set_text("backend", "file")
    ctx.settings.set_text("file.directory", str(folder))


@pytest.fixture
def here(pg_url: str, tmp_path: Path) -> Iterator[AppContext]:
    """This laptop: the demo loaded, sending to files."""
    ctx = AppContext.open(pg_url, keyring_backend=MemoryKeyring())
    assert load_demo_if_empty(ctx) is not None
    send_to_files(ctx, tmp_path / "sent")
    yield ctx
    ctx.close()


@pytest.fixture
def live(here: AppContext) -> Iterator[LiveChanges]:
    changes = LiveChanges(here, retry_every=0.5)
    assert changes.start()
    wait_for(lambda: changes.online, 10, "the listener to connect")
    yield changes
    changes.stop()


def tabmail(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabmail", "--db", url, *args],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_notification_is_read_and_our_own_is_skipped() -> None:
    assert parse('{"k": "p", "o": "laptop-2", "i": [4, 5]}', "laptop-1") == Change("p", (4, 5))
    assert parse('{"k": "m", "o": "x", "i": [["id", 3, "sent"]]}', "y") == Change("m", (("id", 3, "sent"),))
    assert parse('{"k": "p", "o": "laptop-1", "i": [4]}', "laptop-1") is None  # our own
    assert parse("not json", "laptop-1") is None
    assert parse('{"k": "?", "o": "x", "i": [1]}', "laptop-1") is None


def test_sqlite_has_nothing_to_listen_to(ctx: AppContext) -> None:
    assert LiveChanges(ctx).start() is False


def test_another_processs_send_and_corrected_address_arrive_on_this_bus(
    here: AppContext, live: LiveChanges, pg_url: str
) -> None:
    """Process A (the CLI) sends a draw and resends one message to a corrected address: this
    process hears the new messages, their states and the person's new address; its own
    changes are not echoed back."""
    heard = Heard(here)
    slug = here.tournaments.list_all()[0].slug
    sent = tabmail(pg_url, "send", "draw", "--tournament", slug, "--round", "1", "--yes")
    assert sent.returncode == 0, sent.stderr
    batch = here.notifications.batches(tournament_id=here.tournaments.list_all()[0].id)[0].batch
    ids = {m.id for m in here.notifications.messages(batch_id=batch.id)}
    assert len(ids) > 20

    def states_heard() -> set[str]:
        return {e.message_id for e in heard.of(MessageStateChanged) if e.batch_id == batch.id}

    wait_for(lambda: states_heard() >= ids, 5, "every message of A's batch heard")
    final = {m.id: m.state.value for m in here.notifications.messages(batch_id=batch.id)}
    last_heard = {e.message_id: e.state for e in heard.of(MessageStateChanged)}
    assert {mid: last_heard[mid] for mid in final} == final  # the last word heard is the stored state

    original = here.notifications.messages(batch_id=batch.id)[0]
    assert original.person_id is not None
    heard.events.clear()
    resent = tabmail(pg_url, "resend", original.id, "--to", "fixed@example.net", "--yes", "--queue-only")
    assert resent.returncode == 0, resent.stderr
    assert here.tournaments.get_person(original.person_id).email == "fixed@example.net"
    wait_for(lambda: PersonChanged(original.person_id) in heard.events, 2, "A's corrected address")
    wait_for(
        lambda: any(
            e.batch_id == batch.id and e.message_id not in ids for e in heard.of(MessageStateChanged)
        ),
        2,
        "A's resend",
    )

    heard.events.clear()
    here.tournaments.set_person_email(original.person_id, "mine@example.org", source="test")
    time.sleep(1.0)  # our own change: the window that made it has already redrawn
    assert heard.of(PersonChanged) == []


def test_a_change_to_more_rows_than_one_notification_holds_is_heard_whole(
    here: AppContext, live: LiveChanges, pg_url: str
) -> None:
    """Notifications hold at most 8,000 bytes: the triggers send long lists in chunks."""
    from sqlalchemy import text

    heard = Heard(here)
    slug = here.tournaments.list_all()[0].slug
    other = AppContext.open(pg_url, keyring_backend=MemoryKeyring())  # another laptop's process
    try:
        for seq in (1, 2):
            notify.enqueue(other, notify.plan(other, slug, Event.DRAW, round_seq=seq, audience=Audience.ALL))
        with other.db.session() as s:
            changed = s.execute(text("UPDATE messages SET state = 'skipped' RETURNING id")).scalars().all()
    finally:
        other.close()
    assert len(changed) > 60  # more than one chunk (migration 0007: 60 messages a notification)
    skipped = lambda: {e.message_id for e in heard.of(MessageStateChanged) if e.state == "skipped"}  # noqa: E731
    wait_for(lambda: skipped() == set(changed), 2, "every message of the one UPDATE")


def test_a_resolution_a_flag_and_a_reply_elsewhere_are_heard(
    here: AppContext, live: LiveChanges, pg_url: str
) -> None:
    """What the poller and the inbox reader of another laptop write, and the director's
    "marked resolved" there, reach this bus as the events its own would publish."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from tabmail.domain.addresses import address_key
    from tabmail.domain.notification import FlagKind
    from tabmail.services import problems

    heard = Heard(here)
    slug = here.tournaments.list_all()[0].slug
    other = AppContext.open(pg_url, keyring_backend=MemoryKeyring())
    try:
        batch = notify.enqueue(
            other, notify.plan(other, slug, Event.DRAW, round_seq=1, audience=Audience.ALL)
        )
        first, second = other.notifications.messages(batch_id=batch.batch_id)[:2]
        with other.db.session() as s:  # as a send that failed for good leaves it
            s.execute(text("UPDATE messages SET state = 'failed' WHERE id = :id"), {"id": first.id})
        problems.mark_resolved(other, first.id, "phoned them")
        other.flags.add(second.address, FlagKind.HARD, "550 no such user", source="test")
        other.inbox.add(
            [
                {
                    "key": "reply-1",
                    "kind": "reply",
                    "message_id": second.id,
                    "processed_at": datetime.now(UTC),
                    "subject": "Re: draw",
                    "detail": {},
                }
            ]
        )
    finally:
        other.close()
    wait_for(lambda: StatusesChanged((first.id,)) in heard.events, 2, "the resolution")
    wait_for(lambda: AddressFlagsChanged((address_key(second.address),)) in heard.events, 2, "the flag")
    wait_for(lambda: RepliesReceived((second.id,)) in heard.events, 2, "the reply")


def test_an_import_elsewhere_is_heard(here: AppContext, live: LiveChanges, pg_url: str) -> None:
    from tests.gui.conftest import sample_bundle

    heard = Heard(here)
    other = AppContext.open(pg_url, keyring_backend=MemoryKeyring())  # another laptop's process
    try:
        tid = other.tournaments.apply_import(sample_bundle()).tournament_id
        plan = notify.plan(other, "spring", Event.DRAW, round_seq=1, audience=Audience.ALL)
        notify.enqueue(other, plan)
    finally:
        other.close()
    wait_for(lambda: TournamentImported(tid) in heard.events, 2, "the import")


# -- item 6: the server lost and found ---------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, to stop and start without disturbing the others."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (tools/system-deps.sh)")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


def test_a_stopped_server_is_reported_writes_refuse_and_it_reconnects(own_server: PostgresServer) -> None:
    url = own_server.fresh_database()
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    assert load_demo_if_empty(ctx) is not None
    heard = Heard(ctx)
    live = LiveChanges(ctx, retry_every=0.5)
    try:
        live.start()
        wait_for(lambda: live.online, 10, "the listener to connect")
        person = ctx.tournaments.people(ctx.tournaments.list_all()[0].id)[0]

        own_server.halt()
        wait_for(lambda: heard.of(DatabaseLinkChanged), 5, "the lost server reported")
        lost = heard.of(DatabaseLinkChanged)[0]
        assert not lost.online and lost.since
        with pytest.raises(DatabaseUnreachable) as info:
            ctx.tournaments.set_person_email(person.id, "while-away@example.org", source="test")
        line = str(info.value)
        assert "\n" not in line and "cannot be reached" in line and "nothing was changed" in line

        own_server.resume()
        wait_for(lambda: len(heard.of(DatabaseLinkChanged)) == 2, 10, "the server found again")
        assert heard.of(DatabaseLinkChanged)[1].online
        assert ctx.tournaments.get_person(person.id).email == person.email  # nothing half-written
        ctx.tournaments.set_person_email(person.id, "after@example.org", source="test")  # works again
        assert ctx.tournaments.get_person(person.id).email == "after@example.org"
    finally:
        live.stop()
        ctx.close()


def test_the_outbox_connecting_while_the_server_is_gone_says_one_line(own_server: PostgresServer) -> None:
    """The outbox keeps a server connection of its own between commits and makes a new one after
    a failure. Made while the server is stopped, that connection's failure is the same one plain
    line as any other write's (the window and the CLI show it), not the driver's raw error."""
    from datetime import UTC, datetime, timedelta

    from tabmail.store.outbox_state import Claim

    url = own_server.fresh_database()
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    try:
        assert load_demo_if_empty(ctx) is not None
        slug = ctx.tournaments.list_all()[0].slug
        batch = notify.enqueue(ctx, notify.plan(ctx, slug, Event.DRAW, round_seq=1, audience=Audience.ALL))
        ids = [m.id for m in ctx.notifications.messages(batch_id=batch.batch_id)][:2]
        claim = Claim("test:1:x", datetime.now(UTC) + timedelta(minutes=1), ctx.settings.get("backend"))
        own_server.halt()
        try:
            for _ in range(2):  # no connection yet; then after the failure dropped it
                with pytest.raises(DatabaseUnreachable) as info:
                    ctx.notifications.outbox.claim(ids, claim)
                assert "\n" not in str(info.value) and "cannot be reached" in str(info.value)
        finally:
            own_server.resume()
        granted, _skipped = ctx.notifications.outbox.claim(ids, claim)  # connects again by itself
        assert granted == [True, True]
    finally:
        ctx.close()


def test_the_cli_says_one_line_when_the_server_is_gone(own_server: PostgresServer) -> None:
    url = own_server.fresh_database()
    own_server.halt()
    try:
        done = tabmail(url, "tournaments")
    finally:
        own_server.resume()
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "database server" in lines[0]


def test_a_reply_attached_by_hand_and_detached_elsewhere_is_heard(
    here: AppContext, live: LiveChanges, pg_url: str
) -> None:
    """Another laptop's director attaches an unmatched reply to a message, then undoes it: both
    reach this bus as that message's replies changing (this laptop's badges count them again)."""
    from datetime import UTC, datetime

    from tabmail.services import replies

    heard = Heard(here)
    slug = here.tournaments.list_all()[0].slug
    other = AppContext.open(pg_url, keyring_backend=MemoryKeyring())
    try:
        batch = notify.enqueue(
            other, notify.plan(other, slug, Event.DRAW, round_seq=1, audience=Audience.ALL)
        )
        target = other.notifications.messages(batch_id=batch.batch_id)[0]
        other.inbox.add(
            [
                {
                    "key": "stranger-1",
                    "kind": "reply",
                    "message_id": None,
                    "processed_at": datetime.now(UTC),
                    "from_address": "coach@elsewhere.example",
                    "subject": "Re: draw",
                    "detail": {},
                }
            ]
        )
        (entry,) = replies.unmatched(other)
        attached = replies.attach(other, entry, target.id)
        wait_for(lambda: RepliesReceived((target.id,)) in heard.events, 2, "the attachment")
        heard.events.clear()
        replies.detach(other, attached)
    finally:
        other.close()
    wait_for(lambda: RepliesReceived((target.id,)) in heard.events, 2, "the detachment")
