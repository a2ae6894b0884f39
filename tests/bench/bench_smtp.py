"""SMTP backend throughput against the loopback test server running as its own process.

(a) 20 ms before each end-of-DATA reply (a real server's latency): SmtpBackend with 8 connections
    vs one smtplib connection sending in sequence, as Tabbycat does. Target: >= 5x faster.
(b) no added latency: SmtpBackend vs a bare smtplib loop over the same number of connections
    (threads). Target: no more than 1.5x slower (the cost of hooks, threads and classification).
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

from tabmail.backends.base import Outcome, OutgoingMessage, SendResult
from tabmail.backends.smtp import SmtpBackend, SmtpConfig

REPO = Path(__file__).resolve().parents[2]
COUNT = 2000
CONNECTIONS = 8
LATENCY = 0.020
EHLO_NAME = "bench.tabmail.test"


def render(count: int) -> list[OutgoingMessage]:
    paragraph = "Room 12, Lecture Theatre B. Chair: Alex Example; panellists: Sam, Kim. " * 5
    messages = []
    for n in range(count):
        msg = EmailMessage()
        msg["From"] = "Nationals 2025 Tab Room <tab@tournament.test>"
        msg["To"] = f"Judge {n} <judge{n}@example.org>"
        msg["Subject"] = f"Round 3 draw: you are judging in room {n % 60}"
        msg["Message-ID"] = f"<m{n:06d}.r3@tournament.test>"
        msg["X-Tabmail-Id"] = f"m{n:06d}"
        msg.set_content(f"Hello Judge {n},\n\n" + "\n".join([paragraph] * 7) + "\n\n-- \nTab Room\n")
        raw = msg.as_bytes(policy=policy.SMTP)
        messages.append(
            OutgoingMessage(f"m{n:06d}", "bounces@tournament.test", f"judge{n}@example.org", msg, raw)
        )
    return messages


@contextmanager
def server_process(data_delay: float) -> Iterator[int]:
    """The test SMTP server in its own process (its own GIL), as a real server would be."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.servers.smtp", "--port", "0", "--data-delay", str(data_delay)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the SMTP test server did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class CountingHooks:
    def __init__(self) -> None:
        self.results: list[SendResult] = []

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        return [True] * len(ids)

    async def finished(self, result: SendResult) -> None:
        self.results.append(result)


def with_backend(port: int, messages: Sequence[OutgoingMessage]) -> None:
    config = SmtpConfig("127.0.0.1", port, "none", connections=CONNECTIONS, local_hostname=EHLO_NAME)
    hooks = CountingHooks()
    asyncio.run(SmtpBackend(config).send(messages, hooks))
    failed = [r for r in hooks.results if r.outcome is not Outcome.SENT]
    if len(hooks.results) != len(messages) or failed:
        raise RuntimeError(f"SmtpBackend: {len(failed)} failed, first: {failed[:1]}")


def with_smtplib(port: int, messages: Sequence[OutgoingMessage], threads: int) -> None:
    """The plainest correct code: each thread one connection, sendmail() per message."""
    lock = threading.Lock()
    todo = list(reversed(messages))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname=EHLO_NAME) as smtp:
                while True:
                    with lock:
                        if not todo:
                            return
                        msg = todo.pop()
                    smtp.sendmail(msg.envelope_from, [msg.envelope_to], msg.raw)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"smtplib loop failed: {errors[0]!r}")


@dataclass
class Row:
    case: str
    seconds: float
    ratio: str = ""
    target: str = ""


def timed(func: Callable[[], None]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> str:
    messages = render(COUNT)
    size = sum(len(m.raw) for m in messages) / len(messages)
    rows: list[Row] = []
    with server_process(LATENCY) as port:
        ours = timed(lambda: with_backend(port, messages))
        theirs = timed(lambda: with_smtplib(port, messages, threads=1))
    speedup = theirs / ours
    rows.append(Row("(a) 20 ms latency: one smtplib connection, sequential", theirs))
    verdict = "ok" if speedup >= 5 else "MISSED"
    rows.append(
        Row(
            f"(a) 20 ms latency: SmtpBackend, {CONNECTIONS} connections",
            ours,
            f"{speedup:.1f}x faster",
            f">= 5x ({verdict})",
        )
    )
    with server_process(0.0) as port:
        with_smtplib(port, messages[:100], threads=CONNECTIONS)  # warm up both sides
        bare = timed(lambda: with_smtplib(port, messages, threads=CONNECTIONS))
        ours = timed(lambda: with_backend(port, messages))
    slowdown = ours / bare
    rows.append(Row(f"(b) no latency: bare smtplib, {CONNECTIONS} threads", bare))
    verdict = "ok" if slowdown <= 1.5 else "MISSED"
    rows.append(
        Row(
            f"(b) no latency: SmtpBackend, {CONNECTIONS} connections",
            ours,
            f"{slowdown:.2f}x time",
            f"<= 1.5x ({verdict})",
        )
    )
    return table(rows, size)


def table(rows: Sequence[Row], size: float) -> str:
    header = ("case", "messages", "seconds", "msgs/s", "ratio", "target")
    lines = [
        (r.case, str(COUNT), f"{r.seconds:.2f}", f"{COUNT / r.seconds:.0f}", r.ratio, r.target) for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = [f"SMTP backend, {COUNT} messages of {size / 1024:.1f} KB each, loopback server in its own process"]
    for row in [header, *lines]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out)


if __name__ == "__main__":
    print(main())
