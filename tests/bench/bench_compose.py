"""Compose: ``tabmail send draw --queue-only`` for a 400-team BP round (1,150 recipients).

- The director's wait: a fresh ``tabmail send draw --tournament bench-bp --round 1
  --queue-only --yes`` process, start to exit, on a copy of a prepared SQLite database (so every
  run queues the whole round: plan, render and validate all 1,150, build the exact bytes, write
  the batch in one transaction). Target < 1.0 s. Best (median) of ``TABMAIL_BENCH_RUNS``
  (default 7) after one warm-up run.
- Where the time goes: the same steps timed one by one in a child process (imports, plan,
  render every recipient, build the messages, write the batch).

The machine's speed is shown beside the figures (bench_startup's calibration: a fixed pure-Python
loop), and ``python -c pass`` is the interpreter's own start. The keyring is the fail backend, as
on a headless machine: tabmail then makes a thread-anchor key for the run.
Run: ``python -m tests.bench compose``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench.bench_send import bp_round
from tests.bench.bench_startup import REPO, RUNS, calibration_seconds, child_env, timed

TARGET_SECONDS = 1.0
COMMAND = ["send", "draw", "--tournament", "bench-bp", "--round", "1", "--queue-only", "--yes"]


def prepare(db: Path) -> None:
    from tabmail.services.context import AppContext
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        ctx.settings.set_text("from_address", "tab@example.org")
        ctx.settings.set_text("backend", "file")
        ctx.tournaments.apply_import(bp_round())
    finally:
        ctx.close()


def fresh_runs(prepared: Path, work: Path, env: dict[str, str]) -> tuple[list[float], str]:
    """Warm-up, then RUNS timed processes, each on its own copy of the prepared database."""
    times: list[float] = []
    output = ""
    for n in range(RUNS + 1):
        db = work / f"run{n}.sqlite3"
        shutil.copyfile(prepared, db)
        argv = [sys.executable, "-m", "tabmail", "--db", str(db), *COMMAND]
        elapsed = timed(argv, env)
        if n == 0:
            output = subprocess.run(
                [sys.executable, "-m", "tabmail", "--db", str(db), "outbox", "--json"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        else:
            times.append(elapsed)
        db.unlink()
    return sorted(times), output


STEPS = """
import json, sys, time
from datetime import UTC, datetime
t0 = time.perf_counter()
from tabmail.compose.templates import render_all
from tabmail.domain.notification import Audience, Event
from tabmail.services import notify
from tabmail.services.context import AppContext
t1 = time.perf_counter()
ctx = AppContext.open(sys.argv[1])
plan = notify.plan(ctx, "bench-bp", Event.DRAW, round_seq=1, audience=Audience.ALL)
t2 = time.perf_counter()
chosen = [p for p in plan.recipients if p.mark.sendable]
rendered, problems = render_all(plan.templates, [p.recipient for p in chosen], tournament_name=plan.tournament.name)
t3 = time.perf_counter()
assert not problems
sender = notify.sender_for(ctx, plan.tournament)
messages = [
    notify.build_message(sender, plan.tournament.slug, p.recipient, parts, now=datetime.now(UTC))
    for p, parts in zip(chosen, rendered)
]
t4 = time.perf_counter()
from tabmail.store.notifications import NewBatch
ctx.notifications.create_batch(
    NewBatch(
        tournament_id=plan.tournament.id, round_id=plan.round.id, event=plan.event, audience=plan.audience,
        templates=plan.templates, backend="file", triggered_by="bench", reroute_to=None,
    ),
    messages,
)
t5 = time.perf_counter()
ctx.close()
print(json.dumps({"imports": t1 - t0, "open + plan": t2 - t1, "render and check every recipient": t3 - t2,
                  "build the exact bytes": t4 - t3, "write the batch (one transaction)": t5 - t4,
                  "messages": len(messages)}))
"""


def steps(prepared: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    db = work / "steps.sqlite3"
    shutil.copyfile(prepared, db)
    done = subprocess.run(
        [sys.executable, "-c", STEPS, str(db)], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the steps child failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> str:
    calibration = calibration_seconds()
    with tempfile.TemporaryDirectory(prefix="tabmail-bench-compose-") as tmp:
        work = Path(tmp)
        env = child_env(work)
        prepared = work / "prepared.sqlite3"
        prepare(prepared)
        interpreter = sorted(timed([sys.executable, "-c", "pass"], env) for _ in range(RUNS))
        times, outbox = fresh_runs(prepared, work, env)
        queued = len(json.loads(outbox))
        breakdown = steps(prepared, work, env)
    best, median = times[0], times[len(times) // 2]
    verdict = "ok" if best < TARGET_SECONDS else "MISSED"
    lines = [
        f"compose: tabmail send draw --queue-only, 400-team BP round, fresh processes: best (median) of {RUNS}",
        f"calibration: a fixed pure-Python loop (3M multiply-adds) takes {calibration:.3f} s here",
        "",
        f"| {'measure':<58} | {'target':<8} | {'best':>7} | {'median':>7} |",
        f"|{'-' * 60}|{'-' * 10}|{'-' * 9}|{'-' * 9}|",
        f"| {'python -c pass (the interpreter alone)':<58} | {'—':<8} | {interpreter[0]:6.3f}s | "
        f"{interpreter[len(interpreter) // 2]:6.3f}s |",
        f"| {f'send draw --queue-only ({queued} messages queued)':<58} | {'< 1.0 s':<8} | {best:6.3f}s | "
        f"{median:6.3f}s | {verdict}",
        "",
        f"where the time goes (one child process, {int(breakdown.pop('messages'))} messages):",
    ]
    for name, seconds in breakdown.items():
        lines.append(f"  {name:<40} {seconds:6.3f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
