"""A scriptable SMTP server on 127.0.0.1 (aiosmtpd in a thread) for tests, benchmarks and crash tests.

It records every message whose payload it read (envelope, exact bytes, X-Tabmail-Id, connection
id, reply given), counts connections and the most open at once, and can be scripted per recipient
address: answer RCPT or the end of DATA with any reply, drop the connection at the DATA command or
after reading the payload (before replying), or wait before answering the end of DATA. It can also
refuse STARTTLS and turn away connections beyond a limit (421 at EHLO). TLS (STARTTLS or implicit)
uses a trustme certificate; AUTH PLAIN/LOGIN checks one user and password.

As a process, for crash tests and benchmarks:
    python -m tests.servers.smtp --port 0 --record-dir DIR [--data-delay SECONDS]
prints ``PORT <n>`` and writes each accepted message to DIR/<n>.eml (n = 1, 2, ...) atomically,
before answering 250, with the envelope in DIR/<n>.json; runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

if TYPE_CHECKING:
    import trustme

log = logging.getLogger(__name__)

TlsMode = Literal["none", "starttls", "implicit"]
Drop = Literal["at_data_command", "after_data"]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    connection_id: int
    envelope_from: str
    envelope_to: tuple[str, ...]
    raw: bytes
    tabmail_id: str | None
    tls: bool
    reply: str  # what the server answered, or "dropped"

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("2")


@dataclass(slots=True)
class Script:
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 User unknown"; a 421 also closes the connection
    mail_reply: str | None = None  # the answer to MAIL FROM with this address as the sender
    data_reply: str | None = None  # the answer to the end of DATA, e.g. "554 5.6.0 Rejected"
    drop: Drop | None = None
    delay: float = 0.0  # seconds before answering the end of DATA
    times: int | None = None  # applies to the next N messages for the address; None: always
    # A broken server: a refused recipient still counts, so a DATA that follows gets 354.
    data_despite_refusal: bool = False


class _State:
    """Everything shared between the server thread and the test, behind one condition."""

    def __init__(self, record_dir: Path | None) -> None:
        self.cond = threading.Condition()
        self.record_dir = record_dir
        self.received: list[ReceivedMessage] = []
        self.scripts: dict[str, Script] = {}
        self.transactions = 0  # MAIL FROM commands
        self.pipelined = 0  # MAIL FROM commands that arrived with their RCPT TO and DATA
        self.connections = 0
        self.login_connections: set[int] = set()  # connections that tried AUTH
        self.active = 0
        self.max_active = 0
        self._ids = itertools.count(1)

    def next_connection_id(self) -> int:
        with self.cond:
            return next(self._ids)

    def opened(self) -> int:
        """Count a new connection; returns how many are open now, this one included."""
        with self.cond:
            self.connections += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.cond.notify_all()
            return self.active

    def closed(self) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def take_script(self, address: str) -> Script | None:
        with self.cond:
            script = self.scripts.get(address.lower())
            if script is not None and script.times is not None:
                script.times -= 1
                if script.times <= 0:
                    del self.scripts[address.lower()]
            return script

    def record(self, message: ReceivedMessage) -> None:
        with self.cond:
            if self.record_dir is not None and message.accepted:
                self._write(len([m for m in self.received if m.accepted]) + 1, message)
            self.received.append(message)
            self.cond.notify_all()

    def _write(self, n: int, message: ReceivedMessage) -> None:
        assert self.record_dir is not None
        meta = {
            "connection_id": message.connection_id,
            "envelope_from": message.envelope_from,
            "envelope_to": list(message.envelope_to),
            "tabmail_id": message.tabmail_id,
        }
        for name, data in ((f"{n}.json", json.dumps(meta).encode()), (f"{n}.eml", message.raw)):
            tmp = self.record_dir / f".{name}.tmp"
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.record_dir / name)


def _abort(server: SMTP) -> None:
    assert isinstance(server.transport, asyncio.Transport)
    server.transport.abort()


async def _hang() -> None:
    """Wait for the connection_lost that follows an abort (it cancels the session task)."""
    await asyncio.Event().wait()


class _ScriptedSMTP(SMTP):
    def __init__(self, handler: _Handler, state: _State, implicit_tls: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.state = state
        self.connection_id = state.next_connection_id()
        self.implicit_tls = implicit_tls
        self.current: Script | None = None
        self.open_at_start = 0
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._open and self._original_transport is None:
            self._open = True
            self.open_at_start = self.state.opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._open:
            self._open = False
            self.state.closed()
        super().connection_lost(error)

    @property
    def is_tls(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    async def smtp_EHLO(self, hostname: str) -> None:
        self.event_handler.ehlo_started.append(time.monotonic())
        if self.event_handler.ehlo_delay:
            await asyncio.sleep(self.event_handler.ehlo_delay)  # a slow handshake (TLS, AUTH)
        limit = self.event_handler.max_connections
        if limit is not None and self.open_at_start > limit:
            await self.push("421 4.7.0 Too many concurrent SMTP connections; try again later")
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_EHLO(hostname)

    async def smtp_STARTTLS(self, arg: str) -> None:
        reply = self.event_handler.starttls_reply
        if reply is not None:
            await self.push(reply)
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        # What the client sent after MAIL FROM before waiting for its reply (RFC 2920).
        waiting = bytes(self._reader._buffer).upper()  # type: ignore[attr-defined]
        with self.state.cond:
            self.state.transactions += 1
            if waiting.startswith(b"RCPT TO:") and b"\r\nDATA\r\n" in waiting:
                self.state.pipelined += 1
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if self.current is not None and self.current.drop == "at_data_command":
            _abort(self)
            await _hang()
        await super().smtp_DATA(arg)


class _Handler:
    def __init__(self, state: _State, data_delay: float, auth: tuple[str, str] | None) -> None:
        self.state = state
        self.data_delay = data_delay
        self.auth = auth
        self.starttls_reply: str | None = None
        self.max_connections: int | None = None
        self.ehlo_delay = 0.0
        self.ehlo_started: list[float] = []  # time.monotonic() as each EHLO came in
        self.on_message: Callable[[str | None], None] | None = None
        self.pipelining = False
        self._queue_ids = itertools.count(1)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self.state.take_script(address)
        if script is not None and script.mail_reply is not None:
            return script.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        with self.state.cond:
            # smtplib tries each mechanism offered (PLAIN, then LOGIN): one login, several AUTHs
            self.state.login_connections.add(getattr(server, "connection_id", 0))
            self.state.cond.notify_all()
        if (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login, auth_data.password) == (self.auth[0].encode(), self.auth[1].encode())
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Authentication credentials invalid"
        )

    async def handle_exception(self, error: Exception) -> str:
        # A client refusing our certificate is a tested path, not a server bug: no traceback.
        if not isinstance(error, TLSSetupException):
            log.exception("SMTP test server: session failed")
        return f"500 Error: ({type(error).__name__}) {error}"

    async def handle_RCPT(
        self, server: _ScriptedSMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self.state.take_script(address)
        server.current = script
        if script is not None and script.rcpt_reply is not None:
            if script.rcpt_reply.startswith("421"):
                await server.push(script.rcpt_reply)
                assert server.transport is not None
                server.transport.close()
                await _hang()
            if script.data_despite_refusal:
                envelope.rcpt_tos.append(address)
            return script.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _ScriptedSMTP, session: Session, envelope: Envelope) -> str:
        script = server.current or Script()
        delay = script.delay or self.data_delay
        if delay:
            await asyncio.sleep(delay)
        raw = envelope.original_content or b""
        reply = "dropped" if script.drop == "after_data" else script.data_reply
        if reply is None:
            reply = f"250 2.0.0 Ok: queued as Q{next(self._queue_ids):08d}"
        tabmail_id = BytesHeaderParser().parsebytes(raw).get("X-Tabmail-Id")
        if self.on_message is not None:
            self.on_message(str(tabmail_id) if tabmail_id is not None else None)
        self.state.record(
            ReceivedMessage(
                connection_id=server.connection_id,
                envelope_from=envelope.mail_from or "",
                envelope_to=tuple(envelope.rcpt_tos),
                raw=raw,
                tabmail_id=str(tabmail_id) if tabmail_id is not None else None,
                tls=server.is_tls,
                reply=reply,
            )
        )
        if script.drop == "after_data":
            _abort(server)
            await _hang()
        return reply


class _Controller(Controller):
    def __init__(self, handler: _Handler, state: _State, implicit_tls: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.state = state
        self.implicit_tls = implicit_tls

    def factory(self) -> SMTP:
        return _ScriptedSMTP(self.handler, self.state, self.implicit_tls, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before aiosmtpd pokes the server.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpTestServer:
    """A real SMTP server on 127.0.0.1 and an ephemeral port (or ``port``)."""

    def __init__(
        self,
        *,
        tls: TlsMode = "none",
        cert: trustme.LeafCert | None = None,
        auth: tuple[str, str] | None = None,
        auth_require_tls: bool = True,
        data_delay: float = 0.0,
        max_connections: int | None = None,
        record_dir: Path | None = None,
        port: int = 0,
        pipelining: bool = False,
    ) -> None:
        """``max_connections``: answer EHLO with 421 and close on any connection beyond this many
        open at once (as Gmail does). ``pipelining``: offer PIPELINING (RFC 2920) in EHLO, as
        Postfix and the big providers do."""
        if tls != "none" and cert is None:
            raise ValueError("TLS needs a certificate (a trustme LeafCert)")
        self.host = "127.0.0.1"
        self.port = port
        self.tls = tls
        self._state = _State(record_dir)
        self._handler = _Handler(self._state, data_delay, auth)
        self._handler.max_connections = max_connections
        self._handler.pipelining = pipelining
        server_ctx: ssl.SSLContext | None = None
        if cert is not None:
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(server_ctx)
        kwargs: dict[str, Any] = {"hostname": self.host, "port": port, "server_hostname": "mx.test"}
        if tls == "implicit":
            kwargs["ssl_context"] = server_ctx
        elif tls == "starttls":
            kwargs["tls_context"] = server_ctx
        if auth is not None:
            # aiosmtpd only counts STARTTLS as encryption; implicit TLS is encrypted anyway. It
            # warns when AUTH is required but not TLS, so then AUTH is offered, not required.
            require_tls = auth_require_tls and tls != "implicit"
            kwargs.update(authenticator=self._handler.authenticate, auth_require_tls=require_tls)
            kwargs["auth_required"] = require_tls
        self._controller = _Controller(self._handler, self._state, tls == "implicit", **kwargs)
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SmtpTestServer:
        self._controller.start()
        self.port = self._controller.port
        self._started = True
        # Forget aiosmtpd's own start-up probe connection.
        self.wait_for(lambda s: s._state.active == 0, timeout=10)
        with self._state.cond:
            self._state.connections = 0
            self._state.max_active = 0
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()

    # -- scripting ----------------------------------------------------------------------------
    def script(
        self,
        address: str,
        *,
        rcpt: str | None = None,
        data: str | None = None,
        drop: Drop | None = None,
        delay: float = 0.0,
        times: int | None = None,
        mail: str | None = None,
        data_despite_refusal: bool = False,
    ) -> None:
        """Script how the server treats messages to ``address`` (case-insensitive); ``mail``:
        the answer to MAIL FROM from ``address``."""
        with self._state.cond:
            self._state.scripts[address.lower()] = Script(
                rcpt, mail, data, drop, delay, times, data_despite_refusal
            )

    def refuse_starttls(self, reply: str = "454 4.7.0 TLS not available due to temporary reason") -> None:
        self._handler.starttls_reply = reply

    @property
    def on_message(self) -> Callable[[str | None], None] | None:
        """Called in the server's thread with each message's X-Tabmail-Id, before the reply."""
        return self._handler.on_message

    @on_message.setter
    def on_message(self, call: Callable[[str | None], None] | None) -> None:
        self._handler.on_message = call

    @property
    def ehlo_delay(self) -> float:
        """Seconds before answering each EHLO (a slow connection set-up)."""
        return self._handler.ehlo_delay

    @ehlo_delay.setter
    def ehlo_delay(self, seconds: float) -> None:
        self._handler.ehlo_delay = seconds

    @property
    def ehlo_started(self) -> list[float]:
        """``time.monotonic()`` as each EHLO came in, in order."""
        return list(self._handler.ehlo_started)

    @property
    def data_delay(self) -> float:
        return self._handler.data_delay

    @data_delay.setter
    def data_delay(self, seconds: float) -> None:
        self._handler.data_delay = seconds

    # -- observations -------------------------------------------------------------------------
    @property
    def received(self) -> list[ReceivedMessage]:
        """Every payload read completely, whatever the reply."""
        with self._state.cond:
            return list(self._state.received)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """The messages the server accepted (answered 2xx)."""
        return [m for m in self.received if m.accepted]

    @property
    def connections(self) -> int:
        with self._state.cond:
            return self._state.connections

    @property
    def logins(self) -> int:
        """Logins the server saw, accepted or refused: connections that sent AUTH."""
        with self._state.cond:
            return len(self._state.login_connections)

    @property
    def transactions(self) -> tuple[int, int]:
        """(MAIL FROM commands, those that came with their RCPT TO and DATA in one go)."""
        with self._state.cond:
            return self._state.transactions, self._state.pipelined

    @property
    def max_concurrent(self) -> int:
        with self._state.cond:
            return self._state.max_active

    @property
    def active(self) -> int:
        with self._state.cond:
            return self._state.active

    def wait_for(self, predicate: Callable[[SmtpTestServer], bool], timeout: float = 10) -> None:
        """Block until ``predicate(self)`` holds (checked on every server event), or fail."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the SMTP test server did not reach the expected state")
                self._state.cond.wait(left)


@dataclass
class _Args:
    host: str
    port: int
    record_dir: Path | None
    data_delay: float


def _parse(argv: list[str]) -> _Args:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.smtp", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record-dir", type=Path, default=None)
    parser.add_argument("--data-delay", type=float, default=0.0)
    ns = parser.parse_args(argv)
    return _Args("127.0.0.1", ns.port, ns.record_dir, ns.data_delay)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.record_dir is not None:
        args.record_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with SmtpTestServer(port=args.port, record_dir=args.record_dir, data_delay=args.data_delay) as server:
        print(f"PORT {server.port}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def closed_port() -> int:
    """A loopback port nothing listens on (connecting is refused)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def iter_recorded(record_dir: Path) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The messages a server process recorded, in order: (envelope metadata, raw bytes)."""
    numbers = sorted(int(p.stem) for p in record_dir.glob("*.eml") if p.stem.isdigit())
    for n in numbers:
        yield json.loads((record_dir / f"{n}.json").read_text()), (record_dir / f"{n}.eml").read_bytes()


if __name__ == "__main__":
    raise SystemExit(main())
