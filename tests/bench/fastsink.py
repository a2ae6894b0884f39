"""A minimal asyncio SMTP responder fast enough to show a client's own cost (a test double).

aiosmtpd parses and dispatches every line through a general-purpose session and tops out near
the client's speed here; this sink does only what a benchmark needs: EHLO/HELO, MAIL, RCPT, DATA
(end detected on the dot line; the body is counted, not kept), RSET, NOOP, QUIT, and an optional
delay before the end-of-DATA reply (a real server's latency). It counts accepted messages. It
offers PIPELINING (RFC 2920), as Postfix and the big providers do, unless told not to.

Run in its own process: ``python -m tests.bench.fastsink [--port 0] [--latency 0.02]
[--no-pipelining]`` prints
``PORT n`` and serves until killed; ``python -m tests.bench.fastsink --self-measure`` prints the
messages/s it takes from 8 smtplib connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Sink:
    def __init__(self, latency: float = 0.0, keep: bool = False, pipelining: bool = True) -> None:
        self.latency = latency
        self.ehlo = b"250-fastsink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n" + (
            b"250 PIPELINING\r\n" if pipelining else b"250 HELP\r\n"
        )
        self.keep = keep  # keep the unstuffed bodies (for the sink's own test)
        self.received: list[bytes] = []
        self.messages = 0
        self.bytes = 0

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fastsink ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(self.ehlo)
                elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    size = 0
                    lines: list[bytes] = []
                    while True:
                        body = await reader.readline()
                        if not body:
                            return
                        if body == b".\r\n" or body == b".\n":
                            break
                        if body.startswith(b".."):
                            body = body[1:]
                        size += len(body)
                        if self.keep:
                            lines.append(body)
                    if self.latency:
                        await asyncio.sleep(self.latency)
                    self.messages += 1
                    self.bytes += size
                    if self.keep:
                        self.received.append(b"".join(lines))
                    writer.write(b"250 OK queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 Bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"500 command not recognized\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def serve(port: int, latency: float, pipelining: bool = True) -> None:
    sink = Sink(latency, pipelining=pipelining)
    server = await asyncio.start_server(sink.session, "127.0.0.1", port, limit=1 << 20)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def sink_process(latency: float = 0.0, pipelining: bool = True) -> Iterator[int]:
    """The sink in its own process (its own GIL, as a real server would be); yields its port.
    ``pipelining``: offer PIPELINING in EHLO (as Postfix and the big providers do)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.bench.fastsink", "--port", "0", "--latency", str(latency)]
    if not pipelining:
        cmd.append("--no-pipelining")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the fast SMTP sink did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def smtplib_send(port: int, raws: list[bytes], threads: int = 8) -> float:
    """8 bare smtplib connections (threads) sending the given bytes; returns seconds."""
    lock = threading.Lock()
    todo = list(reversed(raws))
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
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"smtplib loop failed: {errors[0]!r}")
    return elapsed


def self_measure(count: int = 3000) -> float:
    raw = b"Subject: x\r\n\r\n" + b"Room 12, Lecture Theatre B. Chair: Alex Example.\r\n" * 40
    with sink_process(0.0) as port:
        smtplib_send(port, [raw] * 200)
        return count / smtplib_send(port, [raw] * count)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fastsink")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--self-measure", action="store_true")
    parser.add_argument("--no-pipelining", action="store_true", help="do not offer PIPELINING")
    args = parser.parse_args(argv)
    if args.self_measure:
        print(f"fastsink takes {self_measure():.0f} messages/s from 8 smtplib connections")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # nothing to flush: counts only
    asyncio.run(serve(args.port, args.latency, pipelining=not args.no_pipelining))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
