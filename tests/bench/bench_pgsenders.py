"""Three senders on one batch, on PostgreSQL (issue 13): 2,000 messages queued once, then sent
by one `tabmail outbox run` process, or by three started together (three laptops of a tab room),
against tests/bench/fastsink.py with 20 ms before each end-of-DATA reply (a relay's latency).

Each process opens ``CONNECTIONS`` SMTP connections (a laptop's setting); the sending is bound by
the relay's latency, so three laptops should finish at least 2x sooner than one. The wall time is
from starting the processes to the last one's exit (start-up included). Every run is checked:
all 2,000 messages 'sent', the processes' 'sent N' adding up to 2,000, and each process sent some
(exactly-once delivery itself is tests/test_pg_senders.py's, counted at a recording server).
The PostgreSQL server is tests/servers/postgres.py (fsync off, unix socket), each run on a fresh
copy of the queued database (CREATE DATABASE … TEMPLATE). Best of ``TABMAIL_BENCH_RUNS``
(default 2), one and three alternating.
Run: ``python -m tests.bench pgsenders``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.bench_startup import REPO, calibration_seconds, child_env
from tests.bench.fastsink import sink_process
from tests.senders_support import queue_batch, sent_count
from tests.servers.postgres import PostgresServer, find_bin_dir

RUNS = int(os.environ.get("TABMAIL_BENCH_RUNS", "2"))
MESSAGES = 2000
CONNECTIONS = 4
LATENCY = 0.020
PREPARED = "bench_prepared"


def senders(server: PostgresServer, n: int, run: int, env: dict[str, str]) -> tuple[float, float, list[int]]:
    """(wall seconds, sending span: first to last sent_at, 'sent N' of each process) for ``n``
    processes on a fresh copy."""
    name = f"bench_run_{n}_{run}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE {PREPARED}")
    url = server.url(name)
    try:
        argv = [sys.executable, "-m", "tabmail", "--db", url, "outbox", "run", "--no-wait"]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                argv,
                cwd=REPO,
                env=env | {"TABMAIL_MACHINE": f"tabroom-{i + 1}"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(n)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        wall = time.perf_counter() - start
        for p, (out, err) in zip(procs, outs, strict=True):
            if p.returncode != 0:
                raise RuntimeError(f"outbox run failed ({p.returncode}): {out}{err}")
        with server.connect(url) as con:
            states = dict(con.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall())
            first, last = con.execute("SELECT min(sent_at), max(sent_at) FROM messages").fetchone() or (0, 0)
        if states != {"sent": MESSAGES}:
            raise RuntimeError(f"not every message was sent: {states}")
        said = [sent_count(out) for out, _err in outs]
        if sum(said) != MESSAGES or min(said) == 0:
            raise RuntimeError(f"the processes' counts do not add up or one sent nothing: {said}")
        return wall, (last - first).total_seconds(), said
    finally:
        server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> str:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (tools/system-deps.sh)")
    load = os.getloadavg()
    calibration = calibration_seconds()
    server = PostgresServer(bin_dir)
    server.start()
    try:
        server.make_template()
        with tempfile.TemporaryDirectory(prefix="tabmail-bench-pgsenders-") as tmp:
            env = child_env(Path(tmp))
            with sink_process(LATENCY) as port:
                server.admin(f"CREATE DATABASE {PREPARED} TEMPLATE tabmail_template")
                queue_batch(server.url(PREPARED), port, MESSAGES, connections=CONNECTIONS)
                best: dict[int, tuple[float, float, list[int]]] = {}
                for run in range(RUNS):
                    for n in (1, 3):
                        result = senders(server, n, run, env)
                        if n not in best or result[0] < best[n][0]:
                            best[n] = result
    finally:
        server.stop()
    one, three = best[1][0], best[3][0]
    speedup = one / three
    verdict = "ok" if speedup >= 2.0 else "MISSED"
    lines = [
        f"pgsenders: one batch of {MESSAGES} messages on PostgreSQL, fast sink with "
        f"{LATENCY * 1000:.0f} ms before each end-of-DATA reply, {CONNECTIONS} SMTP connections per "
        f"process; best of {RUNS}, one and three senders alternating",
        f"calibration: a fixed pure-Python loop (3M multiply-adds) takes {calibration:.3f} s here; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
        f"| {'senders (tabmail outbox run processes)':<40} | {'wall s':>8} | {'span s':>8} | {'msg/s':>6} | "
        f"{'sent by each':<18} |",
        f"|{'-' * 42}|{'-' * 10}|{'-' * 10}|{'-' * 8}|{'-' * 20}|",
    ]
    for n in (1, 3):
        wall, span, said = best[n]
        lines.append(
            f"| {n:<40} | {wall:8.3f} | {span:8.3f} | {MESSAGES / wall:6.0f} | {' / '.join(map(str, said)):<18} |"
        )
    lines += [
        "",
        f"three senders are {speedup:.2f}x faster than one, start to last exit (target: at least 2x): "
        f"{verdict}; sending span alone: {best[1][1] / best[3][1]:.2f}x",
        "wall: from starting the processes to the last exit (start-up included); span: first to "
        "last message's durable sent_at",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
