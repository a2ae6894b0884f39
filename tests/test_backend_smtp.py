"""SmtpBackend against a real aiosmtpd server on loopback, with real TLS (trustme certificates)."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import trustme

from tabmail.backends.base import ClaimTicket, Outcome, OutgoingMessage, SendResult
from tabmail.backends.smtp import (
    _DOT_ATOM_ADDRESS,
    RateLimiter,
    SmtpBackend,
    SmtpConfig,
    SmtpConfigError,
    SmtpConnectionError,
    _quoted_unchanged,
    is_loopback_host,
    refuse_unsafe_settings,
)
from tabmail.backends.smtp_pacing import DailyCap, Slot
from tabmail.domain.errors import TabmailError
from tests.servers.smtp import SmtpTestServer, iter_recorded

REPO = Path(__file__).resolve().parents[1]

USER, PASSWORD = "tab@tournament.test", "correct-horse-battery"


def make_message(n: int, to: str | None = None) -> OutgoingMessage:
    to = to or f"judge{n}@example.org"
    msg = EmailMessage()
    msg["From"] = "Nationals Tab Room <tab@tournament.test>"
    msg["To"] = to
    msg["Subject"] = f"Round 3 draw: you are judging in room {n}"
    msg["Message-ID"] = make_msgid(domain="tournament.test")
    msg["X-Tabmail-Id"] = f"m{n:05d}"
    # A line starting with "." (dot-stuffing) and non-ASCII text (8BITMIME) must survive exactly.
    msg.set_content(f"Hello judge {n},\n.This line starts with a dot.\nRoom: Lecture Théâtre {n}\n")
    return OutgoingMessage(
        id=f"m{n:05d}",
        envelope_from="bounces@tournament.test",
        envelope_to=to,
        message=msg,
        raw=msg.as_bytes(policy=policy.SMTP),
    )


class RecordingHooks:
    """The outbox's side of the protocol, in memory."""

    def __init__(self, skip: Sequence[str] = (), clock: Callable[[], float] | None = None) -> None:
        self.skip = set(skip)
        self.clock = clock
        self.handed: list[str] = []
        self.handed_at: list[float] = []
        self.results: dict[str, SendResult] = {}
        self.withdrawn: list[str] = []
        self._lock = threading.Lock()  # connections' threads call the thread-side methods

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        return self.handing_over_from_thread(ids)

    async def finished(self, result: SendResult) -> None:
        self.finished_from_thread(result)

    def handing_over_from_thread(self, ids: Sequence[str]) -> Sequence[bool]:
        with self._lock:
            self.handed.extend(ids)
            if self.clock is not None:
                self.handed_at.append(self.clock())
        return [i not in self.skip for i in ids]

    def finished_from_thread(self, result: SendResult) -> None:
        with self._lock:
            assert result.message_id not in self.results, "two results for one message"
            self.results[result.message_id] = result

    def claim_ahead_from_thread(self, ids: Sequence[str]) -> ClaimTicket:
        return ClaimTicket(ids, self.handing_over_from_thread(ids))

    def claimed_from_thread(self, ticket: ClaimTicket) -> Sequence[bool]:
        assert ticket.answer is not None
        return ticket.answer

    def withdraw_from_thread(self, ids: Sequence[str]) -> None:
        with self._lock:
            self.withdrawn.extend(ids)

    def outcomes(self) -> Counter[Outcome]:
        return Counter(r.outcome for r in self.results.values())


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def config(server: SmtpTestServer, **changes: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "local_hostname": "laptop.tabmail.test",
        "timeout": 10,
    }
    values.update(changes)
    return SmtpConfig(**values)


def send(
    backend: SmtpBackend, messages: Sequence[OutgoingMessage], hooks: RecordingHooks | None = None
) -> RecordingHooks:
    hooks = hooks or RecordingHooks()
    asyncio.run(backend.send(messages, hooks))
    return hooks


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def client_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def start_server() -> Iterator[Callable[..., SmtpTestServer]]:
    servers: list[SmtpTestServer] = []

    def start(**kwargs: Any) -> SmtpTestServer:
        servers.append(SmtpTestServer(**kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelining"])
def server(start_server: Callable[..., SmtpTestServer], request: pytest.FixtureRequest) -> SmtpTestServer:
    """The server, offering PIPELINING or not: every transaction path runs both ways."""
    return start_server(pipelining=request.param)


def test_sends_each_message_once_with_exact_bytes_over_three_parallel_connections(
    start_server: Callable[..., SmtpTestServer],
) -> None:
    server = start_server(data_delay=0.01)
    messages = [make_message(i) for i in range(30)]
    backend = SmtpBackend(config(server, connections=3, local_hostname=None))

    hooks = send(backend, messages)

    assert hooks.outcomes() == {Outcome.SENT: 30}
    assert all(r.code == 250 and r.detail.startswith("250 2.0.0 Ok") for r in hooks.results.values())
    received = server.messages
    assert Counter(m.tabmail_id for m in received) == Counter({m.id: 1 for m in messages})
    by_id = {m.tabmail_id: m for m in received}
    for msg in messages:
        got = by_id[msg.id]
        assert got.raw == msg.raw
        assert (got.envelope_from, got.envelope_to) == (msg.envelope_from, (msg.envelope_to,))
    assert server.connections == 3
    assert server.max_concurrent == 3
    assert len({m.connection_id for m in received}) == 3
    server.wait_for(lambda s: s.active == 0)  # every connection was closed at the end


@pytest.mark.parametrize("pipelining", [False, True])
def test_mail_rcpt_and_data_go_in_one_write_when_the_server_offers_pipelining(
    start_server: Callable[..., SmtpTestServer], pipelining: bool
) -> None:
    server = start_server(pipelining=pipelining)
    messages = [make_message(i) for i in range(20)]

    hooks = send(SmtpBackend(config(server, connections=2)), messages)

    assert hooks.outcomes() == {Outcome.SENT: 20}
    assert sorted(m.raw for m in server.messages) == sorted(m.raw for m in messages)
    # RFC 2920: one round trip for MAIL FROM, RCPT TO and DATA, only where it is offered.
    assert server.transactions == (20, 20 if pipelining else 0)


def test_a_refused_sender_is_permanent_and_the_connection_carries_on(server: SmtpTestServer) -> None:
    reply = "553 5.7.1 <bounces@tournament.test>: Sender address rejected: not owned by user"
    server.script("bounces@tournament.test", mail=reply, times=1)

    hooks = send(SmtpBackend(config(server, connections=1)), [make_message(0), make_message(1)])

    result = hooks.results["m00000"]
    assert (result.outcome, result.code, result.flag_address) == (Outcome.PERMANENT, 553, False)
    assert result.detail == f"sender refused: {reply}"
    assert hooks.results["m00001"].outcome is Outcome.SENT
    assert [m.tabmail_id for m in server.received] == ["m00001"]
    assert server.connections == 1  # the refused transaction's replies were all read, then RSET


def test_a_pipelined_data_the_server_takes_despite_a_refused_recipient_carries_no_message(
    start_server: Callable[..., SmtpTestServer],
) -> None:
    # RFC 2920 3.1: a server should refuse DATA when no recipient was accepted; one that says
    # 354 anyway gets an empty message's ending, so it refuses it, and the stream stays in step.
    server = start_server(pipelining=True)
    reply = "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    server.script(
        "nobody@example.org", rcpt=reply, data="554 5.5.1 No valid recipients", data_despite_refusal=True
    )

    hooks = send(
        SmtpBackend(config(server, connections=1)),
        [make_message(0, to="nobody@example.org"), make_message(1)],
    )

    result = hooks.results["m00000"]
    assert (result.outcome, result.flag_address, result.detail) == (
        Outcome.PERMANENT,
        True,
        f"recipient refused: {reply}",
    )
    assert [(m.raw, m.reply) for m in server.received if m.tabmail_id is None] == [
        (b"", "554 5.5.1 No valid recipients")
    ]
    assert hooks.results["m00001"].outcome is Outcome.SENT
    assert [m.tabmail_id for m in server.messages] == ["m00001"]
    assert server.connections == 1


def test_connections_the_server_turns_away_leave_the_others_sending(
    start_server: Callable[..., SmtpTestServer],
) -> None:
    server = start_server(max_connections=2, data_delay=0.005)

    hooks = send(SmtpBackend(config(server, connections=4)), [make_message(i) for i in range(12)])

    assert hooks.outcomes() == {Outcome.SENT: 12}
    assert Counter(m.tabmail_id for m in server.messages) == Counter(f"m{i:05d}" for i in range(12))
    assert len({m.connection_id for m in server.messages}) == 2
    assert server.connections == 4  # two were answered 421 at EHLO and their workers retired


def test_cancelling_a_run_stops_it_and_closes_its_connections(
    start_server: Callable[..., SmtpTestServer],
) -> None:
    server = start_server(data_delay=0.3)
    hooks = RecordingHooks()

    async def main() -> None:
        both_handed_over = asyncio.Event()
        loop = asyncio.get_running_loop()
        handing_over = hooks.handing_over_from_thread

        def signalling(ids: Sequence[str]) -> Sequence[bool]:
            answer = handing_over(ids)
            if len(hooks.handed) == 2:
                loop.call_soon_threadsafe(both_handed_over.set)
            return answer

        hooks.handing_over_from_thread = signalling  # type: ignore[method-assign]
        backend = SmtpBackend(config(server, connections=2))
        task = asyncio.create_task(backend.send([make_message(i) for i in range(6)], hooks))
        await asyncio.wait_for(both_handed_over.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())

    # A transaction already running finishes and is reported with the server's answer before the
    # cancellation goes on; a message claimed ahead and not started is withdrawn (queued again);
    # then both connections are closed.
    server.wait_for(lambda s: s.active == 0)
    assert len(hooks.handed) == 2
    received = {m.tabmail_id for m in server.received}
    assert received <= set(hooks.handed)
    assert set(hooks.handed) == received | set(hooks.withdrawn)
    assert set(hooks.results) == received
    assert {r.outcome for r in hooks.results.values()} <= {Outcome.SENT}
    assert server.connections == 2


def test_reconnects_after_messages_per_connection(server: SmtpTestServer) -> None:
    backend = SmtpBackend(config(server, connections=1, messages_per_connection=4))

    hooks = send(backend, [make_message(i) for i in range(10)])

    assert hooks.outcomes() == {Outcome.SENT: 10}
    assert server.connections == 3
    assert sorted(Counter(m.connection_id for m in server.messages).values()) == [2, 4, 4]


@pytest.mark.parametrize(
    ("reply", "connections"),
    [("451 4.3.0 Mailbox busy, try again later", 1), ("421 4.7.0 Too many messages, closing connection", 2)],
)
def test_temporary_refusal_at_rcpt_is_transient(server: SmtpTestServer, reply: str, connections: int) -> None:
    server.script("busy@example.org", rcpt=reply)
    messages = [make_message(0, to="busy@example.org"), make_message(1), make_message(2)]

    hooks = send(SmtpBackend(config(server, connections=1)), messages)

    result = hooks.results["m00000"]
    assert result.outcome is Outcome.TRANSIENT
    assert result.code == int(reply[:3])
    assert reply[4:] in result.detail
    assert not result.flag_address
    assert hooks.results["m00001"].outcome is hooks.results["m00002"].outcome is Outcome.SENT
    assert {m.tabmail_id for m in server.messages} == {"m00001", "m00002"}
    assert server.connections == connections  # 421 closes the connection; 451 keeps it


@pytest.mark.parametrize(
    ("reply", "flag"),
    [
        ("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown", True),
        ("551 User not local; please try <judge@other.example>", True),
        ("553 5.1.3 Bad recipient address syntax", True),
        ("550 Requested action not taken: mailbox unavailable (generated by mx.example.org)", True),
        ("550 5.7.1 Relaying denied", False),
        ("554 5.7.1 Rejected by local policy", False),
    ],
)
def test_permanent_refusal_at_rcpt(server: SmtpTestServer, reply: str, flag: bool) -> None:
    server.script("nobody@example.org", rcpt=reply)
    messages = [make_message(0, to="nobody@example.org"), make_message(1)]

    hooks = send(SmtpBackend(config(server, connections=1)), messages)

    result = hooks.results["m00000"]
    assert (result.outcome, result.code, result.flag_address) == (Outcome.PERMANENT, int(reply[:3]), flag)
    assert result.detail == f"recipient refused: {reply}"
    assert hooks.results["m00001"].outcome is Outcome.SENT
    assert server.connections == 1  # RSET, and the same connection carried on


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("554 5.6.0 Message rejected: spam content", Outcome.PERMANENT),
        ("452 4.3.1 Insufficient system storage", Outcome.TRANSIENT),
    ],
)
def test_refusal_at_end_of_data(server: SmtpTestServer, reply: str, outcome: Outcome) -> None:
    server.script("judge0@example.org", data=reply)

    hooks = send(SmtpBackend(config(server)), [make_message(0), make_message(1)])

    result = hooks.results["m00000"]
    assert (result.outcome, result.code, result.flag_address) == (outcome, int(reply[:3]), False)
    assert reply[4:] in result.detail
    assert [(m.tabmail_id, m.reply) for m in server.received if m.tabmail_id == "m00000"] == [
        ("m00000", reply)
    ]
    assert [m.tabmail_id for m in server.messages] == ["m00001"]


@pytest.mark.parametrize(
    "address",
    [
        "judge@example.org\r\nRCPT TO:<other@example.org>",
        "judge@example.org, other@example.org",
        "Judge <j@x.org>",
    ],
)
def test_an_envelope_address_smtplib_would_rewrite_is_refused(server: SmtpTestServer, address: str) -> None:
    good = make_message(0)
    bad = OutgoingMessage(good.id, good.envelope_from, address, None, good.raw)

    hooks = send(SmtpBackend(config(server, connections=1)), [bad, make_message(1)])

    result = hooks.results["m00000"]
    assert (result.outcome, result.flag_address) == (Outcome.PERMANENT, True)
    assert "is not a single plain address" in result.detail
    assert [(m.tabmail_id, m.envelope_to) for m in server.received] == [("m00001", ("judge1@example.org",))]


def test_connection_dropped_before_data_is_transient(server: SmtpTestServer) -> None:
    server.script("judge0@example.org", drop="at_data_command")

    hooks = send(SmtpBackend(config(server, connections=1)), [make_message(0), make_message(1)])

    result = hooks.results["m00000"]
    assert result.outcome is Outcome.TRANSIENT
    assert "before the message was sent (at DATA)" in result.detail
    assert [m.tabmail_id for m in server.received] == ["m00001"]  # no payload ever reached it
    assert hooks.results["m00001"].outcome is Outcome.SENT
    assert server.connections == 2


def test_connection_dropped_after_payload_is_uncertain_and_not_retried(server: SmtpTestServer) -> None:
    server.script("judge0@example.org", drop="after_data")
    messages = [make_message(0), make_message(1)]

    hooks = send(SmtpBackend(config(server, connections=1)), messages)

    result = hooks.results["m00000"]
    assert result.outcome is Outcome.UNCERTAIN
    assert "may or may not be delivered" in result.detail
    dropped = [m for m in server.received if m.tabmail_id == "m00000"]
    assert [(m.raw, m.reply) for m in dropped] == [(messages[0].raw, "dropped")]
    # m00001 was claimed ahead on the broken connection: withdrawn, then claimed again and sent
    # on a new one.
    assert hooks.handed == ["m00000", "m00001", "m00001"]
    assert hooks.withdrawn == ["m00001"]
    assert hooks.results["m00001"].outcome is Outcome.SENT


def test_starttls_with_a_verified_certificate_and_login(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, client_ctx: ssl.SSLContext
) -> None:
    server = start_server(tls="starttls", cert=leaf, auth=(USER, PASSWORD))
    cfg = config(server, security="starttls", username=USER, password=PASSWORD, ssl_context=client_ctx)
    backend = SmtpBackend(cfg)

    assert asyncio.run(backend.check()) == f"Logged in to 127.0.0.1:{server.port} (STARTTLS) as {USER}"
    hooks = send(backend, [make_message(i) for i in range(5)])

    assert hooks.outcomes() == {Outcome.SENT: 5}
    assert [m.tls for m in server.messages] == [True] * 5


def test_implicit_tls(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, client_ctx: ssl.SSLContext
) -> None:
    server = start_server(tls="implicit", cert=leaf, auth=(USER, PASSWORD))
    cfg = config(server, security="tls", username=USER, password=PASSWORD, ssl_context=client_ctx)
    backend = SmtpBackend(cfg)

    assert asyncio.run(backend.check()) == f"Logged in to 127.0.0.1:{server.port} (TLS) as {USER}"
    hooks = send(backend, [make_message(i) for i in range(3)])

    assert hooks.outcomes() == {Outcome.SENT: 3}
    assert [m.tls for m in server.messages] == [True] * 3


def assert_refused_before_anything_was_sent(
    backend: SmtpBackend, server: SmtpTestServer, words: str, outcome: Outcome = Outcome.SETUP_REFUSED
) -> SmtpConnectionError:
    """``outcome``: SETUP_REFUSED for what only a setting can fix, TRANSIENT for the rest."""
    with pytest.raises(SmtpConnectionError) as caught:
        asyncio.run(backend.check())
    assert words in str(caught.value)
    assert caught.value.permanent is (outcome is Outcome.SETUP_REFUSED)
    hooks = send(backend, [make_message(i) for i in range(3)])
    assert hooks.handed == []
    assert hooks.outcomes() == {outcome: 3}
    assert all(words in r.detail for r in hooks.results.values())
    assert all(r.attempted for r in hooks.results.values())
    assert server.received == []
    return caught.value


@pytest.mark.parametrize("problem", ["wrong host", "untrusted CA"])
def test_unverifiable_certificate_is_refused(
    start_server: Callable[..., SmtpTestServer],
    ca: trustme.CA,
    leaf: trustme.LeafCert,
    client_ctx: ssl.SSLContext,
    problem: str,
) -> None:
    if problem == "wrong host":
        server = start_server(tls="starttls", cert=ca.issue_cert("mail.example.org"))
        backend = SmtpBackend(config(server, security="starttls", ssl_context=client_ctx))
        expected = "address mismatch, certificate is not valid for '127.0.0.1')"
    else:  # the system's default trust store does not know the test CA
        server = start_server(tls="implicit", cert=leaf)
        backend = SmtpBackend(config(server, security="tls"))
        expected = "certificate"
    error = assert_refused_before_anything_was_sent(backend, server, "could not be verified")
    assert expected in str(error)


def test_server_without_starttls_is_refused_and_nothing_goes_in_plain(server: SmtpTestServer) -> None:
    backend = SmtpBackend(config(server, security="starttls", username=USER, password=PASSWORD))
    error = assert_refused_before_anything_was_sent(backend, server, "does not offer STARTTLS")
    assert PASSWORD not in str(error)


def test_starttls_refused_by_the_server(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, client_ctx: ssl.SSLContext
) -> None:
    server = start_server(tls="starttls", cert=leaf)
    server.refuse_starttls("454 4.7.0 TLS not available due to temporary reason")
    backend = SmtpBackend(config(server, security="starttls", ssl_context=client_ctx))
    error = assert_refused_before_anything_was_sent(
        backend, server, "refused STARTTLS: 454 4.7.0 TLS not available", Outcome.TRANSIENT
    )
    assert error.code == 454


def test_failed_login_has_the_servers_words_and_never_the_password(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, client_ctx: ssl.SSLContext
) -> None:
    server = start_server(tls="starttls", cert=leaf, auth=(USER, PASSWORD))
    wrong = "hunter2-not-the-password"
    cfg = config(
        server, security="starttls", username=USER, password=wrong, ssl_context=client_ctx, connections=4
    )
    backend = SmtpBackend(cfg)

    error = assert_refused_before_anything_was_sent(
        backend, server, "535 5.7.8 Authentication credentials invalid"
    )

    assert f"the SMTP server {server.host}:{server.port} refused the login for {USER}" in str(error)
    assert error.code == 535
    # one login for check(), and one for the whole send of three messages over four connections
    assert server.logins == 2
    shown = "".join(traceback.format_exception(error)) + repr(cfg) + backend.info.description
    assert wrong not in shown


def test_plain_login_to_a_remote_host_is_refused_without_connecting() -> None:
    cfg = SmtpConfig("smtp.example.org", 25, "none", username=USER, password=PASSWORD)
    backend = SmtpBackend(cfg)
    hooks = RecordingHooks()

    with pytest.raises(SmtpConfigError, match="clear text"):
        asyncio.run(backend.check())
    with pytest.raises(SmtpConfigError, match="clear text"):
        asyncio.run(backend.send([make_message(0)], hooks))
    assert (hooks.handed, hooks.results) == ([], {})
    refuse_unsafe_settings(SmtpConfig("smtp.example.org", 587, "starttls", username=USER))
    refuse_unsafe_settings(SmtpConfig("smtp.example.org", 25, "none"))  # no login: nothing to leak


def test_settings_that_skip_certificate_checks_are_refused() -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(SmtpConfigError, match="verify"):
        refuse_unsafe_settings(SmtpConfig("smtp.example.org", 465, "tls", ssl_context=unverified))
    with pytest.raises(SmtpConfigError, match="starttls, tls or none"):
        SmtpConfig("smtp.example.org", 465, "ssl")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("smtp.example.org", False),
        ("10.0.0.1", False),
        ("127.example.org", False),
        ("localhost.example.org", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_plain_login_to_loopback_is_allowed(start_server: Callable[..., SmtpTestServer]) -> None:
    server = start_server(auth=(USER, PASSWORD), auth_require_tls=False)
    backend = SmtpBackend(config(server, username=USER, password=PASSWORD))

    assert asyncio.run(backend.check()) == f"Logged in to 127.0.0.1:{server.port} (no encryption) as {USER}"
    assert send(backend, [make_message(0)]).outcomes() == {Outcome.SENT: 1}


def test_rate_limit_spaces_messages_with_the_injected_clock(server: SmtpTestServer) -> None:
    clock = FakeClock()
    backend = SmtpBackend(config(server, connections=1, rate_per_minute=60), clock=clock, sleep=clock.sleep)

    hooks = send(backend, [make_message(i) for i in range(4)], RecordingHooks(clock=clock))

    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert hooks.handed_at == [1000.0, 1001.0, 1002.0, 1003.0]
    assert hooks.outcomes() == {Outcome.SENT: 4}


def test_rate_limiter_gives_concurrent_callers_evenly_spaced_slots() -> None:
    now = 1000.0
    wake_at: list[float] = []

    async def sleep(seconds: float) -> None:
        wake_at.append(now + seconds)

    async def main() -> None:
        limiter = RateLimiter(30, lambda: now, sleep)
        await asyncio.gather(*(limiter.acquire() for _ in range(5)))

    asyncio.run(main())
    assert wake_at == [1002.0, 1004.0, 1006.0, 1008.0]


def test_daily_cap(server: SmtpTestServer) -> None:
    # Two connections, 3 of 5 left today. The refused message is answered late, so the other
    # connection asks for slots while it is still in its transaction: that must not refuse a
    # message "daily limit reached" (the refused message gives its slot back).
    today = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)
    now = [today]
    cfg = config(server, connections=2, daily_cap=5, sent_today=2)
    backend = SmtpBackend(cfg, utcnow=lambda: now[0])
    server.script("nobody@example.org", data="550 5.1.1 User unknown", delay=1.0)
    messages = [make_message(0, to="nobody@example.org"), *(make_message(i) for i in range(1, 6))]

    hooks = send(backend, messages)

    assert hooks.outcomes() == {Outcome.PERMANENT: 1, Outcome.SENT: 3, Outcome.TRANSIENT: 2}
    assert hooks.results["m00000"].outcome is Outcome.PERMANENT
    capped = [r for r in hooks.results.values() if r.outcome is Outcome.TRANSIENT]
    assert all(r.retry_after == 3600.0 and "daily limit of 5" in r.detail for r in capped)
    assert not {r.message_id for r in capped} & set(hooks.handed)  # never offered to the server
    assert len(server.messages) == 3
    assert backend.sent_today == 5  # the refused message did not count

    now[0] = datetime(2025, 3, 2, 0, 0, 1, tzinfo=UTC)
    again = send(backend, [m for m in messages if m.id in {r.message_id for r in capped}])
    assert again.outcomes() == {Outcome.SENT: 2}
    assert backend.sent_today == 2


def test_cancelling_while_a_connection_waits_for_the_daily_cap(server: SmtpTestServer) -> None:
    # 3 of 5 left today. Connection A: m0 in its transaction (refused after 2 s), m1 claimed
    # ahead. Connection B sends m2, then waits: the cap is reached only if m0 counts. Cancelled
    # then, B takes nothing more and the run ends as soon as m0 is answered.
    hooks = RecordingHooks()
    server.script("nobody@example.org", data="550 5.1.1 User unknown", delay=2.0)
    messages = [make_message(0, to="nobody@example.org"), *(make_message(i) for i in range(1, 6))]
    backend = SmtpBackend(config(server, connections=2, daily_cap=5, sent_today=2))
    took: list[float] = []

    async def main() -> None:
        task = asyncio.create_task(backend.send(messages, hooks))
        await asyncio.to_thread(server.wait_for, lambda s: len(s.messages) == 1)
        await asyncio.sleep(0.5)  # B is waiting by now
        cancelled = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took.append(time.monotonic() - cancelled)

    asyncio.run(main())

    sent = {m.tabmail_id for m in server.messages}  # m2 (m1 if B was first to claim ahead)
    assert len(sent) == 1
    assert {m.tabmail_id for m in server.received} == {"m00000"} | sent
    assert len(hooks.handed) == 3 and len(hooks.withdrawn) == 1  # A's message claimed ahead
    assert set(hooks.handed) == {"m00000"} | sent | set(hooks.withdrawn)
    assert {i: r.outcome for i, r in hooks.results.items()} == {
        "m00000": Outcome.PERMANENT,
        **dict.fromkeys(sent, Outcome.SENT),
    }
    assert took[0] < 3.0  # m0's answer (at most 1.5 s away), then nothing more
    assert backend.sent_today == 3


def test_daily_cap_is_full_only_when_settled_sends_reach_it() -> None:
    now = [datetime(2025, 3, 1, 23, 59, tzinfo=UTC)]
    cap = DailyCap(4, 1, utcnow=lambda: now[0])
    assert [cap.try_reserve() for _ in range(3)] == [Slot.GRANTED] * 3
    assert (cap.try_reserve(), cap.exhausted(), cap.count) == (Slot.UNDECIDED, False, 4)
    cap.release()  # refused by the server
    assert cap.try_reserve() is Slot.GRANTED
    cap.settle()
    cap.settle()
    assert (cap.try_reserve(), cap.exhausted(), cap.count) == (Slot.UNDECIDED, False, 4)
    cap.settle()
    assert (cap.try_reserve(), cap.exhausted(), cap.count) == (Slot.FULL, True, 4)
    assert cap.reserve(lambda: False) is Slot.FULL  # decided: no wait
    now[0] = datetime(2025, 3, 2, 0, 0, 1, tzinfo=UTC)
    assert (cap.exhausted(), cap.count) == (False, 0)
    assert DailyCap(0, 9, utcnow=lambda: now[0]).try_reserve() is Slot.GRANTED  # no cap


def test_waiting_for_the_daily_cap_decides_when_a_message_in_flight_settles() -> None:
    cap = DailyCap(2, 0, utcnow=lambda: datetime(2025, 3, 1, tzinfo=UTC))
    assert [cap.try_reserve(), cap.try_reserve()] == [Slot.GRANTED, Slot.GRANTED]
    answers: list[Slot | None] = []
    waiting = threading.Thread(target=lambda: answers.append(cap.reserve(lambda: False)))
    waiting.start()
    time.sleep(0.3)
    assert answers == []  # undecided while both are in flight
    cap.release()
    waiting.join(timeout=5)
    assert answers == [Slot.GRANTED]
    assert cap.count == 2

    stop = threading.Event()
    waiting = threading.Thread(target=lambda: answers.append(cap.reserve(stop.is_set)))
    waiting.start()
    time.sleep(0.3)
    stopped = time.monotonic()
    stop.set()  # nothing in flight will ever settle: the stop alone ends the wait
    waiting.join(timeout=5)
    assert answers == [Slot.GRANTED, None]
    assert time.monotonic() - stopped < 1.0
    assert cap.count == 2


def test_handing_over_false_skips_the_message(server: SmtpTestServer) -> None:
    messages = [make_message(i) for i in range(4)]

    hooks = send(SmtpBackend(config(server, connections=2)), messages, RecordingHooks(skip=["m00002"]))

    assert sorted(hooks.handed) == [m.id for m in messages]
    assert sorted(hooks.results) == ["m00000", "m00001", "m00003"]
    assert hooks.outcomes() == {Outcome.SENT: 3}
    assert sorted(m.tabmail_id or "" for m in server.received) == ["m00000", "m00001", "m00003"]


def test_server_that_cannot_be_reached(server: SmtpTestServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    backend = SmtpBackend(config(server, port=closed_port, connections=3))
    assert_refused_before_anything_was_sent(backend, server, "connection refused", Outcome.TRANSIENT)


def test_info() -> None:
    relay = SmtpBackend(
        SmtpConfig("smtp.sendgrid.net", 587, "starttls", username="apikey", password="SG.secret")
    )
    assert relay.info.name == "smtp"
    assert relay.info.is_sendgrid
    assert relay.info.description == "smtp.sendgrid.net:587 (STARTTLS) as apikey"
    assert "SG.secret" not in repr(relay.config)
    lookalike = SmtpBackend(SmtpConfig("sendgrid.net.example.org", 25, "none"))
    assert not lookalike.info.is_sendgrid
    assert lookalike.info.description == "sendgrid.net.example.org:25 (no encryption) without login"


def test_server_process_records_accepted_messages_to_disk(tmp_path: Path) -> None:
    record_dir = tmp_path / "received"
    cmd = [sys.executable, "-m", "tests.servers.smtp", "--port", "0", "--record-dir", str(record_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().removeprefix("PORT "))
        cfg = SmtpConfig("127.0.0.1", port, "none", local_hostname="laptop.tabmail.test", connections=2)
        messages = [make_message(i) for i in range(3)]

        hooks = send(SmtpBackend(cfg), messages)

        assert hooks.outcomes() == {Outcome.SENT: 3}
        recorded = {meta["tabmail_id"]: (meta, raw) for meta, raw in iter_recorded(record_dir)}
        assert sorted(recorded) == [m.id for m in messages]
        for msg in messages:
            meta, raw = recorded[msg.id]
            assert raw == msg.raw
            assert meta["envelope_to"] == [msg.envelope_to]
        assert sorted(p.name for p in record_dir.iterdir()) == sorted(
            f"{n}.{ext}" for n in (1, 2, 3) for ext in ("eml", "json")
        )
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_tls_ca_file_setting_is_trusted_by_the_smtp_backend(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, ca: trustme.CA, tmp_path: Path
) -> None:
    """An institution's own CA: ``tls.ca_file`` (shared with IMAP) makes its certificate trusted."""
    from tabmail.services.context import AppContext
    from tabmail.services.sending import build_backend
    from tests.keyrings import MemoryKeyring

    server = start_server(tls="starttls", cert=leaf)
    ca_file = tmp_path / "institution-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = AppContext.open(tmp_path / "t.sqlite3", keyring_backend=MemoryKeyring())
    try:
        for key, value in {
            "backend": "smtp",
            "smtp.host": server.host,
            "smtp.port": str(server.port),
        }.items():
            ctx.settings.set_text(key, value)
        with pytest.raises(TabmailError, match="certificate"):
            asyncio.run(build_backend(ctx).check())
        ctx.settings.set_text("tls.ca_file", str(ca_file))
        assert "STARTTLS" in asyncio.run(build_backend(ctx).check())
    finally:
        ctx.close()


def test_the_quick_address_check_accepts_only_what_smtplib_would_put_on_the_wire_unchanged() -> None:
    """Every address the quick pattern (dot-atom at a host name) accepts, smtplib's quoteaddr()
    also gives back as <address> (the full check the pattern saves for ~1,150 recipients)."""
    rng = random.Random(21)
    atext = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
    other = ' ."(),:;<>@[]\\\té\n'
    matched = 0
    for _ in range(20_000):
        local = "".join(
            rng.choice(atext + "." + other[rng.randrange(len(other))]) for _ in range(rng.randint(1, 8))
        )
        domain = "".join(
            rng.choice("ab-.9" + other[rng.randrange(len(other))]) for _ in range(rng.randint(1, 8))
        )
        address = f"{local}@{domain}"
        if _DOT_ATOM_ADDRESS.fullmatch(address):
            matched += 1
            assert _quoted_unchanged(address), address
    assert matched > 2_000


def test_after_the_first_connection_is_set_up_the_others_are_set_up_together(server: SmtpTestServer) -> None:
    """The first connection of a run is set up alone (a refused login is tried once per run);
    the others then connect at the same time, not one after another (8 TLS + AUTH handshakes
    in a row delayed the whole send)."""
    server.ehlo_delay = 0.3
    server.data_delay = 0.2  # the first connection is still sending while the others connect
    hooks = send(SmtpBackend(config(server, connections=4)), [make_message(i) for i in range(12)])

    started = server.ehlo_started
    assert len(started) == 4
    assert started[1] - started[0] >= 0.25, started  # the first alone
    assert started[3] - started[1] < 0.2, started  # one after another: >= 0.6
    assert hooks.outcomes() == Counter({Outcome.SENT: 12})
