"""Sending speed against a sink fast enough to show tabmail's own cost (issue 9 item 21).

The sink is tests/bench/fastsink.py in its own process (aiosmtpd is not fast enough to tell the
client's cost apart). Data: the 400-team BP round of bench_send (1,150 recipients), draw to all.

(a) 20 ms before each end-of-DATA reply, 8 connections: the director's whole wait, a fresh
    ``tabmail send draw --tournament bench-bp --round 1 --yes`` process from start to exit
    (start-up, compose, enqueue and the outbox included), vs the pure sending time of 8 bare
    smtplib connections (threads) sending the same stored bytes. Target: at most 1.3x.
(b) no latency: tabmail's sending span vs 8 bare smtplib connections sending the same bytes.
    Both spans are measured the same way, first delivered message to last delivered message:
    tabmail's from the messages' durable ``sent_at`` (written per message), smtplib's from the
    clock after each ``sendmail`` returns. Target: at most 1.5x.
The sink offers PIPELINING, as Postfix and the big providers do: tabmail then sends MAIL FROM,
RCPT TO and DATA in one write (smtplib's ``sendmail`` never does). (b) is also run against the
sink not offering it, where both clients make the same four round trips per message: that row
shows tabmail's own cost (claims, results, hand-offs) alone.
Runs alternate tabmail / smtplib; best of ``TABMAIL_BENCH_RUNS`` (default 3) each. The extra
cost per durable write is (tabmail span - smtplib span) / (2 writes x messages), against the
sink without PIPELINING: an upper bound, since it charges all of tabmail's extra work to the
claim and result writes.
Run: ``python -m tests.bench sendspeed``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from tests.bench.bench_send import bp_round
from tests.bench.bench_startup import REPO, calibration_seconds, child_env
from tests.bench.fastsink import sink_process

RUNS = int(os.environ.get("TABMAIL_BENCH_RUNS", "3"))
CONNECTIONS = 8
COMMAND = ["send", "draw", "--tournament", "bench-bp", "--round", "1", "--yes"]


def prepare(db: Path, port: int) -> None:
    from tabmail.services.context import AppContext
    from tests.keyrings import MemoryKeyring

    ctx = AppContext.open(db, keyring_backend=MemoryKeyring())
    try:
        for key, value in {
            "backend": "smtp",
            "smtp.host": "127.0.0.1",
            "smtp.port": str(port),
            "smtp.security": "none",
            "smtp.connections": str(CONNECTIONS),
            "smtp.messages_per_connection": "10000",
            "from_address": "tab@example.org",
        }.items():
            ctx.settings.set_text(key, value)
        ctx.tournaments.apply_import(bp_round())
    finally:
        ctx.close()


def tabmail_run(prepared: Path, work: Path, env: dict[str, str], n: int) -> tuple[float, Path]:
    db = work / f"run{n}.sqlite3"
    shutil.copyfile(prepared, db)
    argv = [sys.executable, "-m", "tabmail", "--db", str(db), *COMMAND]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return wall, db


def sent(db: Path) -> tuple[list[bytes], float]:
    """The stored bytes of the sent messages and the span of their sent_at (seconds)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT b.raw, m.sent_at FROM messages m JOIN message_bodies b ON b.message_id = m.id "
            "WHERE m.state = 'sent' ORDER BY m.sent_at"
        ).fetchall()
    finally:
        con.close()
    times = [datetime.fromisoformat(str(r[1])) for r in rows]
    return [bytes(r[0]) for r in rows], (times[-1] - times[0]).total_seconds()


def smtplib_span(port: int, raws: list[bytes]) -> tuple[float, float]:
    """(total seconds, first-to-last delivered span) of 8 bare smtplib connections."""
    import smtplib

    lock = threading.Lock()
    todo = list(reversed(raws))
    done: list[float] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.tabmail.test") as smtp:
                while True:
                    with lock:
                        if not todo:
                            return
                        raw = todo.pop()
                    smtp.sendmail("tab@example.org", ["someone@example.org"], raw)
                    done.append(time.perf_counter())
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(CONNECTIONS)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"smtplib loop failed: {errors[0]!r}")
    return total, max(done) - min(done)


def phase(latency: float, work: Path, env: dict[str, str], pipelining: bool = True) -> dict[str, float]:
    with sink_process(latency, pipelining) as port:
        prepared = work / f"prepared-{latency}-{pipelining}.sqlite3"
        prepare(prepared, port)
        tabmail_run(prepared, work, env, -1)[1].unlink()  # warm-up
        walls, spans, bare_totals, bare_spans = [], [], [], []
        count = 0
        for n in range(RUNS):
            wall, db = tabmail_run(prepared, work, env, n)
            raws, span = sent(db)
            db.unlink()
            count = len(raws)
            walls.append(wall)
            spans.append(span)
            total, bspan = smtplib_span(port, raws)
            bare_totals.append(total)
            bare_spans.append(bspan)
    return {
        "messages": count,
        "wall": min(walls),
        "span": min(spans),
        "bare_total": min(bare_totals),
        "bare_span": min(bare_spans),
    }


def main() -> str:
    load = os.getloadavg()
    calibration = calibration_seconds()
    with tempfile.TemporaryDirectory(prefix="tabmail-bench-sendspeed-") as tmp:
        work = Path(tmp)
        env = child_env(work)
        a = phase(0.020, work, env)
        b = phase(0.0, work, env)
        c = phase(0.0, work, env, pipelining=False)
    ra = a["wall"] / a["bare_total"]
    rb = b["span"] / b["bare_span"]
    rc = c["span"] / c["bare_span"]
    # Without PIPELINING both clients make the same round trips: the difference is tabmail's own.
    per_write_us = (c["span"] - c["bare_span"]) / (2 * c["messages"]) * 1e6

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    lines = [
        f"sendspeed: 400-team BP round, draw to all ({int(a['messages'])} messages), 8 connections, "
        f"fast sink in its own process; best of {RUNS}, tabmail and smtplib alternating",
        f"calibration: a fixed pure-Python loop (3M multiply-adds) takes {calibration:.3f} s here; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
        f"| {'measure':<66} | {'seconds':>8} | {'ratio':>6} | {'target':<7} |",
        f"|{'-' * 68}|{'-' * 10}|{'-' * 8}|{'-' * 9}|",
        f"| {'(a) 20 ms: tabmail send draw --yes, fresh process, start to exit':<66} | {a['wall']:8.3f} | "
        f"{ra:6.2f} | {'<= 1.3x':<7} | {verdict(ra <= 1.3)}",
        f"| {'(a) 20 ms: 8 bare smtplib connections, same bytes':<66} | {a['bare_total']:8.3f} | "
        f"{'':>6} | {'':<7} |",
        f"| {'(b) no latency: tabmail sending span (first to last sent_at)':<66} | {b['span']:8.3f} | "
        f"{rb:6.2f} | {'<= 1.5x':<7} | {verdict(rb <= 1.5)}",
        f"| {'(b) no latency: 8 bare smtplib, first to last delivered':<66} | {b['bare_span']:8.3f} | "
        f"{'':>6} | {'':<7} |",
        f"| {'(b) no latency: 8 bare smtplib, whole run':<66} | {b['bare_total']:8.3f} | {'':>6} | {'':<7} |",
        f"| {'(b) sink without PIPELINING: tabmail sending span':<66} | {c['span']:8.3f} | "
        f"{rc:6.2f} | {'<= 1.5x':<7} | {verdict(rc <= 1.5)}",
        f"| {'(b) sink without PIPELINING: 8 bare smtplib, first to last':<66} | {c['bare_span']:8.3f} | "
        f"{'':>6} | {'':<7} |",
        "",
        f"extra cost per durable write (claim or result), upper bound: {per_write_us:.0f} us "
        f"((tabmail span - smtplib span) / (2 x {int(c['messages'])}), sink without PIPELINING)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
