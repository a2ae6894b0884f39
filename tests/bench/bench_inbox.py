"""Inbox benchmark: a mailbox of 2,000 DSNs + 500 replies + 500 unrelated messages on the loopback
Dovecot (tests/servers/mailserver.py, needs root), read by ``InboxChecker`` from cold, then again
with nothing new.

Targets (issue #11): cold < 10 s, incremental nothing-new < 0.2 s, peak memory < 200 MB. The
checks run in a child process (``ru_maxrss`` of that process is the peak memory figure); the
parent builds the database (2,500 sent messages) and the Maildir.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from tabmail.compose.message import thread_anchor
from tabmail.domain.notification import Event, MessageState, Templates
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.sending import thread_key
from tabmail.store.notifications import NewBatch, NewMessage, StateUpdate
from tests.datafiles import data_path
from tests.keyrings import MemoryKeyring
from tests.servers.mailserver import MailServers

DSNS, REPLIES, UNRELATED = 2000, 500, 500
DOMAIN = "tab.example"
IDLE_ID = DSNS + REPLIES
GHOST = f"ghost-bench@{DOMAIN}"


def _tid(i: int) -> str:
    return f"01BENCH{i:019d}"[:26]


def _build(ctx: AppContext) -> list[NewMessage]:
    assert load_demo_if_empty(ctx) is not None
    tournament = ctx.tournaments.list_all()[0]
    batch = NewBatch(tournament.id, None, Event.CUSTOM, None, Templates("s", "t"), "smtp", "bench")
    messages = [
        NewMessage(
            id=_tid(i),
            person_id=None,
            recipient_name=f"Person {i}",
            role=None,
            address=f"p{i}@{DOMAIN}",
            address_key=f"p{i}@{DOMAIN}",
            envelope_from=f"tab@{DOMAIN}",
            envelope_to=f"p{i}@{DOMAIN}",
            subject="Round 1",
            context={},
            reasons=(),
            raw=b"Subject: Round 1\r\n\r\nhi\r\n",
            message_id_header=f"<{_tid(i)}@{DOMAIN}>",
        )
        for i in range(DSNS + REPLIES)
    ]
    # the IDLE measurement's message, to an address Postfix does not know
    messages.append(
        NewMessage(
            id=_tid(IDLE_ID),
            person_id=None,
            recipient_name="Ghost",
            role=None,
            address=GHOST,
            address_key=GHOST,
            envelope_from=f"tab@{DOMAIN}",
            envelope_to=GHOST,
            subject="Round 1",
            context={},
            reasons=(),
            raw=b"",
            message_id_header=f"<{_tid(IDLE_ID)}@{DOMAIN}>",
        )
    )
    ctx.notifications.create_batch(batch, messages)
    now = datetime.now(UTC)
    ctx.notifications.outbox.commit([StateUpdate(m.id, MessageState.SENT, sent_at=now) for m in messages])
    return messages


def _fill(mail: MailServers, key: bytes, slug: str) -> None:
    template = data_path("mail", "postfix-dsn-unknown-user.eml").read_bytes()
    old_id, old_rcpt = b"01M8VRDJZMCR7QSK0H1FS2W2W6", b"bjorn.carvalho"
    for i in range(DSNS):
        raw = template.replace(old_id, _tid(i).encode()).replace(old_rcpt, f"p{i}".encode())
        raw = raw.replace(b"B90F2176435", f"Q{i:010d}".encode())  # a distinct Message-ID per DSN
        mail.append("tab", raw)
    for j in range(REPLIES):
        i = DSNS + j
        anchor = thread_anchor(key, slug, f"p{i}@{DOMAIN}", DOMAIN)
        mail.append(
            "tab",
            (
                f"From: Person {i} <p{i}@{DOMAIN}>\r\nTo: tab@{DOMAIN}\r\nSubject: Re: Round 1\r\n"
                f"Message-ID: <reply{i}@client.example>\r\nIn-Reply-To: <{_tid(i)}@{DOMAIN}>\r\n"
                f"References: {anchor} <{_tid(i)}@{DOMAIN}>\r\n\r\nI can chair.\r\n\r\n"
                f"On Tue, Tab Room wrote:\r\n> Round 1\r\n"
            ).encode(),
        )
    for k in range(UNRELATED):
        mail.append(
            "tab",
            (
                f"From: someone{k}@elsewhere.example\r\nTo: tab@{DOMAIN}\r\nSubject: Lunch {k}\r\n"
                f"Message-ID: <other{k}@elsewhere.example>\r\n\r\nAre you free?\r\n"
            ).encode(),
        )


def child(db: str, port: int, ca: str, password: str, key_hex: str) -> None:
    """Run in a fresh process: a cold check, then a check with nothing new."""
    keyring = MemoryKeyring()
    ctx = AppContext.open(db, keyring_backend=keyring)
    ctx.secrets.set("imap-password", password)
    ctx.secrets.set("thread-key", key_hex)
    from tabmail.services.inbox import InboxChecker

    checker = InboxChecker(ctx)
    t0 = time.perf_counter()
    cold = checker.check_blocking()
    t1 = time.perf_counter()
    again = checker.check_blocking()
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "cold_s": t1 - t0,
                "incremental_s": t2 - t1,
                "cold_new": cold.new,
                "kinds": cold.kinds,
                "flagged": len(cold.flagged_keys),
                "unmatched": cold.unmatched,
                "again_new": again.new,
                "ok": cold.ok and again.ok,
                "reason": cold.reason,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    ctx.close()


def _idle_latency(db: Path, mail: MailServers, key: bytes) -> float:
    """Seconds from handing a message for an unknown user to Postfix until the inbox checker,
    waiting in IMAP IDLE, publishes that message's status change on the bus."""
    keyring = MemoryKeyring()
    ctx = AppContext.open(db, keyring_backend=keyring)
    ctx.secrets.set("imap-password", mail.password)
    ctx.secrets.set("thread-key", key.hex())
    from tabmail.domain.events import StatusesChanged
    from tabmail.services.inbox import InboxChecker
    from tabmail.services.inbox_watch import InboxWatcher

    seen = threading.Event()
    ctx.bus.subscribe(StatusesChanged, lambda e: seen.set() if _tid(IDLE_ID) in e.message_ids else None)
    watcher = InboxWatcher(InboxChecker(ctx))
    idling = threading.Event()
    runner = threading.Thread(
        target=lambda: asyncio.run(watcher.run_forever(max_checks=2, on_report=lambda _r: idling.set()))
    )
    runner.start()
    assert idling.wait(30), "the first check did not finish"
    time.sleep(1.0)  # let the IDLE command reach the server (not part of the measured time)
    msg = (
        f"From: tab@{DOMAIN}\r\nTo: {GHOST}\r\nSubject: Round 1\r\n"
        f"Message-ID: <{_tid(IDLE_ID)}@{DOMAIN}>\r\nX-Tabmail-Id: {_tid(IDLE_ID)}\r\n\r\nhi\r\n"
    ).encode()
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", mail.relay_port, timeout=10) as smtp:
        smtp.sendmail(f"tab@{DOMAIN}", [GHOST], msg)
    ok = seen.wait(30)
    elapsed = time.perf_counter() - t0
    watcher.stop()
    runner.join(30)
    ctx.close()
    return elapsed if ok else float("inf")


def main() -> str:
    with MailServers(("tab",)) as mail, tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
        for k, v in {
            "imap.host": "127.0.0.1",
            "imap.port": str(mail.imaps_port),
            "imap.security": "ssl",
            "imap.username": "tab",
            "tls.ca_file": str(mail.ca_file),
        }.items():
            ctx.settings.set_text(k, v)
        _build(ctx)
        key = thread_key(ctx)
        slug = ctx.tournaments.list_all()[0].slug
        ctx.close()
        _fill(mail, key, slug)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.bench.bench_inbox",
                "--child",
                str(db),
                str(mail.imaps_port),
                str(mail.ca_file),
                mail.password,
                key.hex(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        idle_s = _idle_latency(db, mail, key)
    rows = [
        ("mailbox", "-", f"{DSNS} DSNs + {REPLIES} replies + {UNRELATED} unrelated"),
        (
            "cold check",
            "< 10 s",
            f"{r['cold_s']:.2f} s ({r['cold_new']} new: {r['kinds']}; {r['flagged']} flagged, {r['unmatched']} unmatched)",
        ),
        ("incremental, nothing new", "< 0.2 s", f"{r['incremental_s'] * 1000:.0f} ms ({r['again_new']} new)"),
        ("peak memory (child ru_maxrss)", "< 200 MB", f"{r['peak_mb']:.0f} MB"),
        (
            "IDLE: Postfix DSN -> status change",
            "< 5 s",
            f"{idle_s:.2f} s (bus event; the round view redraws on it)",
        ),
    ]
    width = max(len(a) for a, _, _ in rows)
    lines = ["inbox benchmark (loopback Dovecot, imaps, SQLite)", ""]
    lines += [f"{a:<{width}}  {b:<9} {c}" for a, b, c in rows]
    if not r["ok"]:
        lines.append(f"NOT OK: {r['reason']}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        print(main())
