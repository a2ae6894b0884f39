"""The benchmark's fast SMTP sink (tests/bench/fastsink.py) receives what smtplib sends."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Iterator

import pytest

from tests.bench.fastsink import Sink

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    loop = asyncio.new_event_loop()
    sink = Sink(keep=True)
    server = loop.run_until_complete(asyncio.start_server(sink.session, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        yield sink, port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def test_the_sink_receives_each_message_whole_with_dots_unstuffed(sink: tuple[Sink, int]) -> None:
    server, port = sink
    first = b"Subject: one\r\n\r\nHello,\r\n.\r\n..two dots\r\n.leading dot\r\nbye\r\n"
    second = b"Subject: two\r\n\r\nSecond.\r\n"
    with smtplib.SMTP("127.0.0.1", port, local_hostname="test.tabmail") as smtp:
        assert smtp.ehlo()[0] == 250
        assert smtp.noop()[0] == 250
        smtp.sendmail("tab@example.org", ["a@example.org", "b@example.org"], first)
        smtp.rset()
        smtp.sendmail("tab@example.org", ["c@example.org"], second)
    assert server.received == [first, second]
    assert server.messages == 2
    assert server.bytes == len(first) + len(second)


def test_an_unknown_command_gets_500_and_the_session_goes_on(sink: tuple[Sink, int]) -> None:
    _, port = sink
    with smtplib.SMTP("127.0.0.1", port, local_hostname="test.tabmail") as smtp:
        assert smtp.docmd("VRFY", "x")[0] == 500
        assert smtp.noop()[0] == 250


def test_the_sink_offers_pipelining_unless_told_not_to() -> None:
    async def ehlo(sink: Sink) -> bytes:
        server = await asyncio.start_server(sink.session, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(b"EHLO test.tabmail\r\n")
        lines = [await reader.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(await reader.readline())
        writer.close()
        server.close()
        await server.wait_closed()
        return b"".join(lines)

    assert b"PIPELINING" in asyncio.run(ehlo(Sink()))
    assert b"PIPELINING" not in asyncio.run(ehlo(Sink(pipelining=False)))
