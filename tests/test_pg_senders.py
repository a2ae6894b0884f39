"""Several senders on one PostgreSQL database (issue 13 item 2), all real: three `tabmail outbox
run` processes (each playing another laptop of the tab room, TABMAIL_MACHINE), the loopback SMTP
server in a process of its own recording every message it accepts, and a PostgreSQL server.

- Every message is handed over exactly once (counted at the SMTP server by X-Tabmail-Id), and
  the work is shared: each process sent some.
- A laptop that vanishes mid-send (SIGKILL while it holds claims, another machine name) leaves
  its claimed messages 'sending' while its lease runs; another laptop's run does not touch them
  then, and marks them uncertain once the lease has expired; none is sent again.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.outbox_support import smtp_server_process, wait_until
from tests.senders_support import outbox_run, queue_batch, rows, sent_count
from tests.servers.postgres import PostgresServer
from tests.servers.smtp import iter_recorded


def received(record: Path) -> Counter[str]:
    """How many times the SMTP server accepted each message (by X-Tabmail-Id)."""
    return Counter(str(meta.get("tabmail_id")) for meta, _raw in iter_recorded(record))


def three_senders(postgres_server: PostgresServer, tmp_path: Path, people: int) -> None:
    url = postgres_server.fresh_database()
    record = tmp_path / "received"
    try:
        # 20 ms before each 250 (a relay's latency), 2 connections per laptop: one laptop alone
        # would need people / 100 seconds, so the three overlap.
        with smtp_server_process(record, data_delay=0.02) as port:
            queue_batch(url, port, people, connections=2)
            runs = [outbox_run(url, TABMAIL_MACHINE=f"tabroom-{n}") for n in (1, 2, 3)]
            outs = [run.communicate(timeout=300) for run in runs]
        final = rows(postgres_server, url)
    finally:
        postgres_server.drop(url)
    for run, (out, err) in zip(runs, outs, strict=True):
        assert run.returncode == 0, out + err
    assert len(final) == people
    assert {r.state for r in final.values()} == {"sent"}
    assert received(record) == Counter(dict.fromkeys(final, 1))  # each exactly once
    by_machine = Counter(r.machine for r in final.values())
    assert sorted(by_machine) == ["tabroom-1", "tabroom-2", "tabroom-3"], by_machine
    said = [sent_count(out) for out, _err in outs]
    assert sum(said) == people and min(said) > 0, said  # the work was shared
    assert sorted(said) == sorted(by_machine.values())


@pytest.mark.timeout(240)
def test_three_senders_share_a_batch_and_send_each_message_exactly_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    three_senders(postgres_server, tmp_path, people=300)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_three_senders_on_a_2000_message_batch_send_each_exactly_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    three_senders(postgres_server, tmp_path, people=2000)


def utcnow_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.mark.timeout(240)
def test_a_vanished_laptops_claims_wait_for_their_lease_then_become_uncertain(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    lease = 20.0  # long enough for the other laptops to finish and one more run to look
    url = postgres_server.fresh_database()
    record = tmp_path / "received"
    env = {"TABMAIL_LEASE_SECONDS": str(lease)}
    try:
        with smtp_server_process(record, data_delay=0.05) as port:
            queue_batch(url, port, 200, connections=3)
            laptop = outbox_run(url, TABMAIL_MACHINE="laptop-a", **env)

            def laptop_holds_claims() -> bool:
                return any(
                    r.state == "sending" and r.machine == "laptop-a"
                    for r in rows(postgres_server, url).values()
                )

            others = [outbox_run(url, TABMAIL_MACHINE=f"laptop-{n}", **env) for n in "bc"]
            wait_until(laptop_holds_claims, 60, "laptop-a to hold claims")
            laptop.send_signal(signal.SIGKILL)
            laptop.wait(timeout=10)
            killed_at = utcnow_naive()
            held = {m: r for m, r in rows(postgres_server, url).items() if r.state == "sending"}
            held = {m: r for m, r in held.items() if r.machine == "laptop-a"}
            outs = [run.communicate(timeout=120) for run in others]

            # Within the lease: another laptop's run leaves laptop-a's claims alone.
            early = outbox_run(url, "--no-wait", TABMAIL_MACHINE="laptop-d", **env)
            early_out, early_err = early.communicate(timeout=60)
            checked_by = utcnow_naive()
            during = rows(postgres_server, url)

            # After the lease: the next run marks them uncertain, and sends none of them again.
            expiry = max(r.lease_expires_at or killed_at for r in held.values())
            time.sleep(max(0.0, (expiry - utcnow_naive()).total_seconds()) + 0.5)
            late = outbox_run(url, "--no-wait", TABMAIL_MACHINE="laptop-d", **env)
            late_out, late_err = late.communicate(timeout=60)
        after = rows(postgres_server, url)
    finally:
        postgres_server.drop(url)

    assert held, "laptop-a held no claim when it was killed"
    for run, (out, err) in zip(others, outs, strict=True):
        assert run.returncode == 0, out + err
    assert early.returncode == 0, early_out + early_err
    assert checked_by < expiry, f"the check came {checked_by - killed_at} after the kill, after the lease"
    assert "marked uncertain" not in early_out, early_out
    assert {during[m].state for m in held} == {"sending"}
    assert {during[m].lease_owner for m in held} == {r.lease_owner for r in held.values()}
    assert late.returncode == 0, late_out + late_err
    assert f"{len(held)} message(s) were being sent when tabmail last stopped" in late_out, late_out
    assert {after[m].state for m in held} == {"uncertain"}
    assert {r.state for m, r in after.items() if m not in held} == {"sent"}
    got = received(record)
    assert all(got[m] <= 1 for m in held), got  # handed over at most once, never resent
    assert all(got[m] == 1 for m in after if m not in held)
    assert sum(got.values()) - sum(got[m] for m in held) == len(after) - len(held)
    assert expiry - killed_at <= timedelta(seconds=lease + 1)  # the lease was the one asked for
