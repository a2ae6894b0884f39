"""Two tabmail processes on one database (issue 9 items 5 and 6), all real: `tabmail outbox run`
and `tabmail send` as subprocesses, the SMTP server in a process of its own, and a second SQLite
connection holding the write lock (BEGIN IMMEDIATE) on the same file.

Item 5 runs on SQLite and on PostgreSQL; item 6 is about SQLite's one write lock per file, which
PostgreSQL does not have (its row locks and concurrent claims: tests/test_postgres.py).

- A second `outbox run` never marks the first one's in-flight messages uncertain (leases).
- Another process holding the write lock: tabmail says it waits, and after the bound fails with
  one clear line (no SQL, no template text), leaving no message 'sending'."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tabmail.domain.imported import ImportBundle, PersonData, TournamentData
from tabmail.domain.notification import Event, Templates
from tabmail.domain.tournament import Role
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.store.db import WAITING_FOR_LOCK
from tests.keyrings import MemoryKeyring
from tests.outbox_support import (
    REPO,
    cli_env,
    hold_write_lock,
    lock_for,
    smtp_server_process,
    states,
    wait_until,
)
from tests.servers.smtp import iter_recorded

SUBJECT = "Secret template text {{ USER }} zq7"
BOTH_ENGINES = True  # the tests taking db_target also run on PostgreSQL (tests/conftest.py)


def setup_db(db: Path | str, port: int, people: int, *, queue: bool = True, connections: int = 1) -> None:
    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        bundle = ImportBundle(
            TournamentData("two", "Two Open", "Two"),
            people=[
                PersonData(f"p{i}", f"Person {i:03d}", Role.SPEAKER, email=f"person{i}@example.org")
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
            "from_address": "tab@example.org",
        }.items():
            ctx.settings.set_text(key, value)
        if queue:
            plan = notify.plan(ctx, "two", Event.CUSTOM, templates=Templates(SUBJECT, "Hello.\n"))
            assert notify.enqueue(ctx, plan).queued == people
    finally:
        ctx.close()


def tabmail(db: Path | str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tabmail", "--db", str(db), *args],
        cwd=REPO,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def accepted(record: Path) -> Counter[str]:
    return Counter(str(meta.get("tabmail_id")) for meta, _raw in iter_recorded(record))


# -- item 5 ------------------------------------------------------------------------------------


@pytest.mark.slow_on_postgresql  # PostgreSQL's several senders: tests/test_postgres.py and the three-process tests
@pytest.mark.timeout(120)
def test_a_second_outbox_run_leaves_the_first_ones_messages_alone(tmp_path: Path, db_target: str) -> None:
    record = tmp_path / "received"
    db = db_target
    with smtp_server_process(record, data_delay=0.4) as port:
        setup_db(db, port, people=8)
        first = tabmail(db, "outbox", "run")
        wait_until(lambda: "sending" in states(db).values(), 30, "the first run to be sending")
        second = tabmail(db, "outbox", "run")
        out2, err2 = second.communicate(timeout=60)
        seen_by_second = states(db)
        _out1, err1 = first.communicate(timeout=60)

    assert second.returncode == 0, err2
    assert first.returncode == 0, err1
    assert "marked uncertain" not in out2, out2
    assert "uncertain" not in seen_by_second.values()
    final = states(db)
    assert set(final.values()) == {"sent"}
    assert accepted(record) == Counter(dict.fromkeys(final, 1))  # each exactly once, between them


@pytest.mark.slow_on_postgresql  # PostgreSQL: the crash test's quick loop and the killed-laptop tests
@pytest.mark.timeout(60)
def test_a_dead_processs_messages_become_uncertain_at_the_next_run(tmp_path: Path, db_target: str) -> None:
    """The other side of leases: the crash test's guarantee stays (see test_outbox_crash.py)."""
    import signal

    record = tmp_path / "received"
    db = db_target
    with smtp_server_process(record, data_delay=2.0) as port:
        setup_db(db, port, people=3)
        first = tabmail(db, "outbox", "run")
        wait_until(lambda: "sending" in states(db).values(), 30, "the first run to be sending")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        in_flight = [m for m, s in states(db).items() if s == "sending"]
        second = tabmail(db, "outbox", "run", "--no-wait")
        out, _err = second.communicate(timeout=40)
    assert in_flight
    assert f"{len(in_flight)} message(s) were being sent when tabmail last stopped" in out
    after = states(db)
    assert {after[m] for m in in_flight} == {"uncertain"}


# -- item 6 ------------------------------------------------------------------------------------


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("tabmail: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr and "SELECT" not in stderr and "INSERT" not in stderr
    assert "zq7" not in stderr  # no template text
    return errors[0]


@pytest.mark.timeout(60)
def test_outbox_run_waits_visibly_for_a_locked_database_then_fails_in_one_line(tmp_path: Path) -> None:
    record = tmp_path / "received"
    db = tmp_path / "two.sqlite3"
    with smtp_server_process(record, data_delay=0.0) as port:
        setup_db(db, port, people=4)
        lock = hold_write_lock(db)
        try:
            run = tabmail(db, "outbox", "run", TABMAIL_LOCK_WAIT="1")
            _out, err = run.communicate(timeout=40)
        finally:
            lock.rollback()
            lock.close()
    assert run.returncode != 0
    assert WAITING_FOR_LOCK in err
    error = one_error_line(err)
    assert "stayed locked by another process" in error and "stay queued" in error
    assert set(states(db).values()) == {"queued"}
    assert accepted(record) == Counter()


@pytest.mark.timeout(60)
def test_send_waits_visibly_for_a_locked_database_then_fails_without_sql_or_template_text(
    tmp_path: Path,
) -> None:
    record = tmp_path / "received"
    db = tmp_path / "two.sqlite3"
    body = tmp_path / "body.txt"
    body.write_text("Hello {{ USER }}, template body zq7.\n", encoding="utf-8")
    with smtp_server_process(record, data_delay=0.0) as port:
        setup_db(db, port, people=4, queue=False)
        lock = hold_write_lock(db)
        try:
            send = tabmail(
                db,
                *("send", "custom", "--tournament", "two", "--subject", SUBJECT),
                *("--body-file", str(body), "--yes"),
                TABMAIL_LOCK_WAIT="1",
            )
            _out, err = send.communicate(timeout=40)
        finally:
            lock.rollback()
            lock.close()
    assert send.returncode != 0
    assert WAITING_FOR_LOCK in err
    assert "stayed locked by another process" in one_error_line(err)
    assert states(db) == {}  # nothing half-queued


@pytest.mark.timeout(90)
def test_a_lock_taken_mid_send_is_waited_out_and_nothing_is_left_sending(tmp_path: Path) -> None:
    """The lock outlasts the wait for the next claim but not the (longer) wait for the results of
    messages already handed over: sending stops in one clear line, every handed-over message is
    recorded as sent, the rest stay queued, none is left 'sending' or 'uncertain'."""
    record = tmp_path / "received"
    db = tmp_path / "two.sqlite3"
    with smtp_server_process(record, data_delay=0.3) as port:
        setup_db(db, port, people=10, connections=2)
        run = tabmail(db, "outbox", "run", TABMAIL_LOCK_WAIT="1")
        wait_until(lambda: (record / "1.eml").exists(), 30, "the first message to arrive")
        lock_for(db, 2.0).wait(timeout=30)
        out, err = run.communicate(timeout=40)
    assert run.returncode != 0, out + err
    assert WAITING_FOR_LOCK in err
    assert "stayed locked by another process" in one_error_line(err)
    final = states(db)
    assert "sending" not in final.values() and "uncertain" not in final.values(), final
    got = accepted(record)
    assert set(got.values()) == {1}
    assert {m for m, s in final.items() if s == "sent"} == set(got)
    assert "queued" in final.values()


@pytest.mark.timeout(90)
def test_a_short_lock_mid_send_is_waited_out_visibly_and_the_run_completes(tmp_path: Path) -> None:
    record = tmp_path / "received"
    db = tmp_path / "two.sqlite3"
    with smtp_server_process(record, data_delay=0.2) as port:
        setup_db(db, port, people=8)
        run = tabmail(db, "outbox", "run", TABMAIL_LOCK_WAIT="20")
        wait_until(lambda: (record / "1.eml").exists(), 30, "the first message to arrive")
        lock_for(db, 1.5).wait(timeout=30)
        _out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert WAITING_FOR_LOCK in err
    final = states(db)
    assert set(final.values()) == {"sent"}
    assert accepted(record) == Counter(dict.fromkeys(final, 1))
