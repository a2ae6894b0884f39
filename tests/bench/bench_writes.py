"""What each of the outbox's durable writes costs on SQLite (issue 9 item 21), with no network.

The 400-team BP round of bench_send (1,150 messages) is queued in a real SQLite file (WAL,
synchronous=NORMAL, as tabmail opens it), then every message is claimed and its result written
through ``OutboxStore.commit`` exactly as the outbox does:
- one by one: each commit carries one claim and the previous message's result (what one
  connection does);
- in groups of 2, 4 and 8: the claims and results that eight connections finishing together
  hand to one group commit (services/outbox.py).
Wall and CPU time per message (= one claim + one result); a write is half of that. Best of
``TABMAIL_BENCH_RUNS`` (default 3). Run: ``python -m tests.bench writes``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.bench_send import bp_round
from tests.bench.bench_startup import calibration_seconds

RUNS = int(os.environ.get("TABMAIL_BENCH_RUNS", "3"))
GROUPS = (1, 2, 4, 8)


def queued(db: Path) -> None:
    from tabmail.domain.notification import Audience, Event
    from tabmail.services import notify
    from tabmail.services.context import AppContext
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        ctx.settings.set_text("backend", "file")
        ctx.settings.set_text("from_address", "tab@example.org")
        ctx.tournaments.apply_import(bp_round())
        plan = notify.plan(ctx, "bench-bp", Event.DRAW, round_seq=1, audience=Audience.ALL)
        notify.enqueue(ctx, plan)
    finally:
        ctx.close()


def one_pass(prepared: Path, work: Path, group: int) -> tuple[int, float, float]:
    """(messages, wall seconds, CPU seconds) to claim and settle every message in groups."""
    from tabmail.domain.notification import MessageState
    from tabmail.services.context import AppContext
    from tabmail.store.notifications import Claim, StateUpdate
    from tests.keyrings import MemoryKeyring

    db = work / f"writes-{group}.sqlite3"
    shutil.copyfile(prepared, db)
    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        store = ctx.notifications.outbox
        items = store.due(datetime.now(UTC), 5000)
        ids = [i.id for i in items]
        by = Claim("bench:1:writes", datetime.now(UTC), items[0].backend)
        pending: list[StateUpdate] = []
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(0, len(ids), group):
            chunk = ids[k : k + group]
            ok, _skipped = store.commit(pending, claim=chunk, by=by)
            assert all(ok), "a claim was refused"
            now = datetime.now(UTC)
            pending = [StateUpdate(i, MessageState.SENT, sent_at=now) for i in chunk]
        store.commit(pending, by=by)
        return len(ids), time.perf_counter() - wall, time.process_time() - cpu
    finally:
        ctx.close()
        db.unlink()


def main() -> str:
    load = os.getloadavg()
    calibration = calibration_seconds()
    with tempfile.TemporaryDirectory(prefix="tabmail-bench-writes-") as tmp:
        work = Path(tmp)
        prepared = work / "queued.sqlite3"
        queued(prepared)
        rows = []
        for group in GROUPS:
            runs = [one_pass(prepared, work, group) for _ in range(RUNS)]
            count = runs[0][0]
            rows.append((group, count, min(r[1] for r in runs), min(r[2] for r in runs)))
    lines = [
        f"writes: the outbox's durable writes on SQLite (WAL, synchronous=NORMAL), {rows[0][1]} messages,"
        f" each one claim + one result; best of {RUNS}",
        f"calibration: a fixed pure-Python loop (3M multiply-adds) takes {calibration:.3f} s here; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
        f"| {'claims per commit':<18} | {'commits':>7} | {'wall/msg':>9} | {'CPU/msg':>9} | {'CPU/write':>9} |",
        f"|{'-' * 20}|{'-' * 9}|{'-' * 11}|{'-' * 11}|{'-' * 11}|",
    ]
    for group, count, wall, cpu in rows:
        commits = -(-count // group) + 1
        lines.append(
            f"| {group:<18} | {commits:>7} | {wall / count * 1e6:7.0f}us | {cpu / count * 1e6:7.0f}us"
            f" | {cpu / count / 2 * 1e6:7.0f}us |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
