"""Sending over SMTP with smtplib: parallel connections, the exact stored bytes, and every failure
classified with the server's own words.

How a run goes: ``connections`` workers pull from one shared queue. Each worker owns one SMTP
connection and one thread (smtplib blocks), reuses the connection for up to
``messages_per_connection`` messages, then QUITs and reconnects. For each message a worker waits
for the shared rate limiter, awaits ``hooks.handing_over([id])`` right before the transaction,
runs MAIL FROM / RCPT TO / DATA with the message's ``raw`` bytes and reports one ``SendResult``.

Classification (``detail`` keeps the server's words, ``code`` its reply code):
- 2xx at the end of DATA: SENT;
- 4xx at any stage, or the connection breaking before the payload was handed over: TRANSIENT;
- 5xx for the sender, the recipient, DATA or the message: PERMANENT; ``flag_address`` for a
  550/551/553 "no such user"-style refusal of the recipient at RCPT;
- the connection breaking after the payload was handed over, before the server's reply: UNCERTAIN.

Choices the outbox should know about:
- Settings that can never work (AUTH over an unencrypted connection to a non-loopback host, an
  unverified TLS context) make ``send`` raise ``SmtpConfigError`` before anything is handed over:
  this is the one exception to "send never raises", because retrying cannot help and the director
  must change a setting.
- Until one connection of a run is set up, connections are opened one at a time, and the first
  failure ends the run's attempts: a refused login is tried once per run, not once per worker.
- A setup failure that only the director can fix (login refused with a 5xx, certificate not
  verified, TLS mismatch, no STARTTLS or AUTH offered, a 5xx greeting) stops the whole run: the
  other workers finish the transaction they are in and take nothing more, and every message not
  yet handed over gets a SETUP_REFUSED result with the server's words, without ``handing_over``.
- Any other setup failure (connection refused, unreachable, timeout, 4xx) retires the worker; the
  others carry on. When no worker is left, every message not yet handed over gets a TRANSIENT
  result carrying that error, without ``handing_over`` (the outbox counts it as an attempt).
- Messages beyond the daily cap get a TRANSIENT result with ``retry_after`` = seconds to the next
  UTC midnight, also without ``handing_over`` (nothing was offered to the server).
- If ``send`` is cancelled, a transaction already running in its thread finishes and is reported
  (the server's answer is known within the timeout) before the cancellation goes on; one not yet
  started is dropped. If a hook raises, a running transaction finishes in its thread unreported,
  so the outbox finds that message still 'sending' and must treat it as uncertain. Connections
  are then closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

from tabmail.backends.base import BackendInfo, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.domain.errors import TabmailError

Security = Literal["starttls", "tls", "none"]
SECURITY_LABELS: dict[str, str] = {"starttls": "STARTTLS", "tls": "TLS", "none": "no encryption"}

# A connection idle this long (rate limiting) is checked with NOOP before it carries a message,
# so a server-side idle timeout costs a reconnect rather than a failed message.
IDLE_CHECK_SECONDS = 30.0

T = TypeVar("T")


class SmtpConfigError(TabmailError, ValueError):
    """The SMTP settings can never work as given; found without connecting."""


class SmtpConnectionError(TabmailError):
    """Setting up a connection failed (connect, TLS, STARTTLS, login). ``code``: the SMTP reply code
    when the server gave one; ``permanent``: retrying cannot help until a setting changes."""

    def __init__(self, message: str, code: int | None = None, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


@dataclass
class SmtpConfig:
    host: str
    port: int
    security: Security
    username: str = ""
    password: str | None = field(default=None, repr=False)
    connections: int = 4
    messages_per_connection: int = 100
    rate_per_minute: int = 0  # 0: no limit
    daily_cap: int = 0  # 0: no cap
    sent_today: int = 0  # already sent today (UTC) through this account, counted against the cap
    timeout: float = 30
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    local_hostname: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_LABELS:
            raise SmtpConfigError(f"SMTP security must be starttls, tls or none; got {self.security!r}")
        checks = (
            (1 <= self.port <= 65535, "the SMTP port must be between 1 and 65535"),
            (self.connections >= 1, "there must be at least one SMTP connection"),
            (self.messages_per_connection >= 1, "messages per connection must be at least 1"),
            (self.rate_per_minute >= 0, "the rate limit cannot be negative"),
            (self.daily_cap >= 0 and self.sent_today >= 0, "the daily cap cannot be negative"),
            (self.timeout > 0, "the SMTP timeout must be positive"),
        )
        for ok, problem in checks:
            if not ok:
                raise SmtpConfigError(problem)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return SECURITY_LABELS[self.security]


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only places a password may go unencrypted."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refuse_unsafe_settings(config: SmtpConfig) -> None:
    """Raise SmtpConfigError when the settings would send a password in clear text or skip
    certificate verification. Never connects."""
    if config.username and config.security == "none" and not is_loopback_host(config.host):
        raise SmtpConfigError(
            f"Refusing to log in to {config.where} without encryption: the password would cross "
            "the network in clear text. Set SMTP security to starttls or tls."
        )
    ctx = config.ssl_context
    if ctx is not None and (ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname):
        raise SmtpConfigError("The TLS settings must verify the server's certificate and host name.")


def seconds_to_utc_midnight(now: datetime) -> float:
    tomorrow = (now.astimezone(UTC) + timedelta(days=1)).date()
    return (datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC) - now).total_seconds()


class RateLimiter:
    """Messages per minute, shared by all connections: a token bucket holding one token, so sends
    are evenly spaced 60/rate seconds apart. Each caller books the next free slot at once, then
    sleeps until it (slots are handed out in call order). ``rate_per_minute`` 0: no limit."""

    def __init__(
        self,
        rate_per_minute: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self._interval = 60.0 / rate_per_minute if rate_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None

    @property
    def limited(self) -> bool:
        return bool(self._interval)

    async def acquire(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        slot = now if self._next_slot is None else max(self._next_slot, now)
        self._next_slot = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


class DailyCap:
    """Messages per UTC day: ``sent_today`` plus every message handed over since, reserved before
    the transaction and given back unless it was SENT or UNCERTAIN (the provider may count those).
    The count restarts at 0 when the UTC date changes. ``cap`` 0: no cap. Safe from any thread
    (connections' threads reserve and release)."""

    def __init__(self, cap: int, sent_today: int, utcnow: Callable[[], datetime]) -> None:
        self.cap = cap
        self._utcnow = utcnow
        self._day: date = utcnow().date()
        self._count = sent_today
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        with self._lock:
            self._roll()
            return self._count

    def exhausted(self) -> bool:
        if not self.cap:
            return False
        with self._lock:
            self._roll()
            return self._count >= self.cap

    def try_reserve(self) -> bool:
        with self._lock:
            if self.cap:
                self._roll()
                if self._count >= self.cap:
                    return False
            self._count += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._count = max(0, self._count - 1)

    def refusal(self, message_id: str) -> SendResult:
        return SendResult(
            message_id,
            Outcome.TRANSIENT,
            detail=(
                f"not sent: the daily limit of {self.cap} messages for this SMTP account is reached; "
                "sending resumes after midnight UTC"
            ),
            retry_after=seconds_to_utc_midnight(self._utcnow()),
            attempted=False,
        )

    def _roll(self) -> None:
        today = self._utcnow().date()
        if today != self._day:
            self._day, self._count = today, 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _default_local_hostname() -> str:
    # What smtplib does for every connection; done once, as getfqdn() can take seconds.
    fqdn = socket.getfqdn()
    if "." in fqdn:
        return fqdn
    try:
        return f"[{socket.gethostbyname(socket.gethostname())}]"
    except OSError:
        return "[127.0.0.1]"


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


_ENHANCED_STATUS = re.compile(r"^[245]\.(\d{1,3})\.(\d{1,3})\b")
_NOT_ABOUT_THE_ADDRESS = re.compile(
    r"\b(?:relay\w*|spam\w*|polic(?:y|ies)|block\w*|blacklist\w*|reputation|rate|too many|authenticat\w*)\b",
    re.I,
)
_QUEUED_AS = re.compile(r"queued as\s+<?([\w.@-]+)", re.I)


def rejects_address(code: int, text: str) -> bool:
    """A 550/551/553 at RCPT that says the mailbox itself is bad (user unknown, bad domain), as
    opposed to relay, policy or spam refusals."""
    if code not in (550, 551, 553):
        return False
    status = _ENHANCED_STATUS.match(text)
    if status:
        return status.group(1) == "1" or status.groups() == ("2", "1")
    return not _NOT_ABOUT_THE_ADDRESS.search(text)


@functools.lru_cache(maxsize=4096)  # the sender is the same for every message of a run
def _plain_address(address: str) -> bool:
    """One bare address that goes on the wire unchanged as ``<address>``: smtplib's quoteaddr()
    would otherwise silently keep the first of two addresses, or the part before a line break."""
    return (
        "@" in address
        and address.isprintable()
        and not any(c.isspace() for c in address)
        and smtplib.quoteaddr(address) == f"<{address}>"
    )


def _dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload: a line starting with "." gets another, then the ending line. (The same
    bytes as smtplib's regular expression, at a sixth of its cost.)"""
    payload = raw.replace(b"\n.", b"\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


@dataclass
class _Connection:
    smtp: smtplib.SMTP
    last_used: float
    used: int = 0


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _noop_ok(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


class SmtpBackend:
    """The Backend protocol over SMTP. See the module docstring for the contract details.

    ``clock`` (monotonic seconds) and ``sleep`` drive the rate limiter; ``utcnow`` the daily cap.
    Both are injectable so tests never wait."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        utcnow: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        who = f"as {config.username}" if config.username else "without login"
        host = config.host.rstrip(".").lower()
        self.info = BackendInfo(
            name="smtp",
            description=f"{config.where} ({config.label}) {who}",
            is_sendgrid=host == "sendgrid.net" or host.endswith(".sendgrid.net"),
            extra={"host": config.host, "port": str(config.port), "security": config.security},
        )
        self._clock = clock
        self._limiter = RateLimiter(config.rate_per_minute, clock, sleep)
        self._cap = DailyCap(config.daily_cap, config.sent_today, utcnow)
        self._local_hostname = config.local_hostname
        self._ssl_context: ssl.SSLContext | None = config.ssl_context

    @property
    def sent_today(self) -> int:
        """Messages counted against the daily cap today (UTC), ``sent_today`` included."""
        return self._cap.count

    async def check(self) -> str:
        """Connect, secure, log in, QUIT. Raises SmtpConfigError or SmtpConnectionError."""
        refuse_unsafe_settings(self.config)
        await self._prepare()
        smtp = await asyncio.to_thread(self._open)
        await asyncio.to_thread(_quit_quietly, smtp)
        cfg = self.config
        if cfg.username:
            return f"Logged in to {cfg.where} ({cfg.label}) as {cfg.username}"
        return f"Connected to {cfg.where} ({cfg.label}); no login configured"

    async def send(self, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        """Send every message, one result each through ``hooks``. Raises only SmtpConfigError
        (before anything is handed over), an error raised by ``hooks``, or CancelledError."""
        refuse_unsafe_settings(self.config)
        if not messages:
            return
        await self._prepare()
        await _Run(self, messages, hooks).execute()

    async def close(self) -> None:
        """Nothing is held between runs: every connection is closed when its run ends."""

    async def _prepare(self) -> None:
        if self._ssl_context is None and self.config.security != "none":
            self._ssl_context = await asyncio.to_thread(ssl.create_default_context)
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(_default_local_hostname)

    # -- below: blocking, run in a worker's thread ----------------------------------------------

    def _open(self) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS or implicit TLS, EHLO, AUTH. Raises SmtpConnectionError."""
        cfg = self.config
        smtp: smtplib.SMTP | None = None
        stage = "the connection"
        try:
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    local_hostname=self._local_hostname,
                    timeout=cfg.timeout,
                    context=self._ssl_context,
                )
            else:
                smtp = smtplib.SMTP(
                    cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout
                )
            stage = "EHLO"
            smtp.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpConnectionError(
                        f"{cfg.where} does not offer STARTTLS, and tabmail never sends without "
                        "encryption when STARTTLS is chosen. If the server expects TLS from the "
                        "start (usually port 465), set SMTP security to tls.",
                        permanent=True,
                    )
                stage = "STARTTLS"
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo()
            if cfg.username:
                stage = "the login"
                smtp.login(cfg.username, cfg.password or "")
            return smtp
        except BaseException as exc:
            if smtp is not None:
                smtp.close()
            if isinstance(exc, SmtpConnectionError):
                raise
            if isinstance(exc, Exception):
                raise self._explain(exc, stage) from None
            raise

    def _explain(self, exc: Exception, stage: str) -> SmtpConnectionError:
        cfg = self.config
        where = cfg.where
        if isinstance(exc, smtplib.SMTPResponseException):
            words = self._scrub(_text(exc.smtp_error))
            code = exc.smtp_code
            permanent = 500 <= code < 600
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                said = f"the SMTP server {where} refused the login for {cfg.username}: {code} {words}"
            elif isinstance(exc, smtplib.SMTPConnectError):
                said = f"the SMTP server {where} refused the connection: {code} {words}"
            else:
                said = f"the SMTP server {where} refused {stage}: {code} {words}"
            return SmtpConnectionError(said, code, permanent=permanent)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return SmtpConnectionError(
                f"{where} does not offer a login (AUTH) on this connection; check the security setting",
                permanent=True,
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return SmtpConnectionError(f"{where} closed the connection while it was being set up ({exc})")
        if isinstance(exc, smtplib.SMTPException):
            return SmtpConnectionError(f"{where}: {self._scrub(str(exc))}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return SmtpConnectionError(
                f"The TLS certificate of {where} could not be verified "
                f"({str(exc.verify_message).rstrip('.')}); "
                "tabmail only sends over verified connections.",
                permanent=True,
            )
        if isinstance(exc, ssl.SSLError):
            return SmtpConnectionError(
                f"TLS with {where} failed ({exc.reason or exc}); check that port {cfg.port} "
                f"expects {cfg.label}.",
                permanent=True,
            )
        if isinstance(exc, socket.gaierror):
            return SmtpConnectionError(f"Cannot find the SMTP server {cfg.host}: {exc.strerror}")
        if isinstance(exc, ConnectionRefusedError):
            return SmtpConnectionError(f"Cannot connect to {where}: connection refused")
        if isinstance(exc, TimeoutError):
            return SmtpConnectionError(f"Cannot connect to {where}: no answer within {cfg.timeout:g} s")
        if isinstance(exc, OSError):
            return SmtpConnectionError(f"Cannot connect to {where}: {exc.strerror or exc}")
        return SmtpConnectionError(f"Cannot set up SMTP with {where}: {self._scrub(str(exc))}")

    def _scrub(self, text: str) -> str:
        password = self.config.password
        return text.replace(password, "***") if password else text

    def _transact(self, smtp: smtplib.SMTP, msg: OutgoingMessage) -> tuple[SendResult, bool]:
        """One MAIL/RCPT/DATA transaction. Returns the result and whether the connection can be
        used again. Never raises."""
        for role, address in (("sender", msg.envelope_from), ("recipient", msg.envelope_to)):
            if not _plain_address(address):
                detail = f"not sent: the {role} address {address!r} is not a single plain address"
                return SendResult(msg.id, Outcome.PERMANENT, detail, flag_address=role == "recipient"), True
        stage = "MAIL FROM"
        payload_sent = False
        try:
            options = ["SIZE=" + str(len(msg.raw))] if smtp.has_extn("size") else []
            if not msg.raw.isascii() and smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            if not (msg.envelope_from + msg.envelope_to).isascii():
                if not smtp.has_extn("smtputf8"):
                    detail = "the address is not plain ASCII and the server does not accept such addresses (no SMTPUTF8)"
                    return SendResult(msg.id, Outcome.PERMANENT, detail=detail), True
                options.append("SMTPUTF8")
            # What smtp.mail() and smtp.rcpt() send, without parsing each address again: both
            # are plain (checked above), so smtplib's quoteaddr() would give <address>.
            if "SMTPUTF8" in options:
                smtp.command_encoding = "utf-8"
            smtp.putcmd("mail", f"FROM:<{msg.envelope_from}>{' ' + ' '.join(options) if options else ''}")
            code, reply = smtp.getreply()
            if code != 250:
                return self._refused(smtp, msg, "sender refused", code, reply)
            stage = "RCPT TO"
            smtp.putcmd("rcpt", f"TO:<{msg.envelope_to}>")
            code, reply = smtp.getreply()
            if code not in (250, 251):
                return self._refused(smtp, msg, "recipient refused", code, reply)
            stage = "DATA"
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                return self._refused(smtp, msg, "DATA refused", code, reply)
            stage = "sending the message"
            # If send() fails, the final "." never left: the server cannot have accepted it.
            smtp.send(_dot_stuffed(msg.raw))
            payload_sent = True
            code, reply = smtp.getreply()
        except Exception as exc:
            smtp.close()
            why = self._scrub(str(exc) or type(exc).__name__)
            if payload_sent:
                detail = (
                    "the connection broke after the message was handed over, before the server "
                    f"confirmed it: it may or may not be delivered ({why})"
                )
                return SendResult(msg.id, Outcome.UNCERTAIN, detail=detail), False
            detail = f"the connection broke before the message was sent (at {stage}): {why}"
            return SendResult(msg.id, Outcome.TRANSIENT, detail=detail), False
        words = self._scrub(_text(reply))
        if 200 <= code < 300:
            queued = _QUEUED_AS.search(words) if self.info.is_sendgrid else None
            provider_id = queued.group(1) if queued else None
            return SendResult(msg.id, Outcome.SENT, f"{code} {words}", code, provider_id), True
        if 400 <= code < 500:
            return SendResult(
                msg.id, Outcome.TRANSIENT, f"message deferred: {code} {words}", code
            ), code != 421
        if 500 <= code < 600:
            return SendResult(msg.id, Outcome.PERMANENT, f"message refused: {code} {words}", code), True
        detail = f"unexpected reply after the message was handed over: {code} {words}"
        return SendResult(msg.id, Outcome.UNCERTAIN, detail, code), False

    def _refused(
        self, smtp: smtplib.SMTP, msg: OutgoingMessage, what: str, code: int, reply: bytes
    ) -> tuple[SendResult, bool]:
        words = self._scrub(_text(reply))
        detail = f"{what}: {code} {words}"
        if 500 <= code < 600:
            flag = what == "recipient refused" and rejects_address(code, words)
            result = SendResult(msg.id, Outcome.PERMANENT, detail, code, flag_address=flag)
        else:  # 4xx, or nonsense: the server did not take the message, so it can be retried
            result = SendResult(msg.id, Outcome.TRANSIENT, detail, code)
        if code == 421:  # the server is closing the connection
            smtp.close()
            return result, False
        try:
            usable = smtp.rset()[0] == 250
        except (smtplib.SMTPException, OSError):
            usable = False
        if not usable:
            smtp.close()
        return result, usable


class _Run:
    """One ``send`` call: the shared queue and the workers pulling from it."""

    def __init__(self, backend: SmtpBackend, messages: Sequence[OutgoingMessage], hooks: SendHooks) -> None:
        self.backend = backend
        self.hooks = hooks
        self.queue: deque[OutgoingMessage] = deque(messages)
        self.workers_left = 0
        self.last_error: SmtpConnectionError | None = None
        self.refused: SmtpConnectionError | None = None  # a setting must change: stop the run
        self.connected = False  # one connection of this run has been set up
        self.stopping = False  # cancelled: threads take nothing more
        self._first = asyncio.Lock()  # until then, connections are opened one at a time

    async def execute(self) -> None:
        count = min(self.backend.config.connections, len(self.queue))
        self.workers_left = count
        tasks = [asyncio.create_task(self._worker(), name=f"tabmail-smtp-{i}") for i in range(count)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _worker(self) -> None:
        lane = _Lane()
        try:
            await self._drain(lane)
            if lane.conn is not None:
                await lane.run(_quit_quietly, lane.conn.smtp)
        except BaseException:
            if lane.conn is not None:  # queued behind any transaction still in the thread
                lane.submit(lane.conn.smtp.close)
            raise
        finally:
            lane.conn = None
            lane.close()
            self.workers_left -= 1
        if self.workers_left == 0 and self.queue:
            await self._fail_remaining()

    async def _drain(self, lane: _Lane) -> None:
        """Set up the lane's connection on the event loop (the first of a run alone: its failure
        decides the run), then let the lane's thread send from the shared queue by itself
        (``_send_from_thread``) until it needs the loop again: a new connection, the rate
        limiter's next slot, or an empty queue."""
        backend, cap = self.backend, self.backend._cap
        paced = backend._limiter.limited
        while self.queue and self.refused is None and not self.stopping:
            if cap.exhausted():  # nothing to connect for
                await self.hooks.finished(cap.refusal(self.queue.popleft().id))
                continue
            if paced:
                await backend._limiter.acquire()
                if not self.queue:
                    return
            try:
                await self._ready(lane)
            except SmtpConnectionError as exc:
                if exc.permanent:
                    self.refused = self.refused or exc
                self.last_error = exc
                return
            if not self.queue or self.refused is not None:
                return
            job = lane.run(self._send_from_thread, lane, paced)
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                # Cancelled: the thread takes nothing more; a transaction it has claimed or
                # started finishes and is reported (the server's answer comes within the
                # timeout, and a known answer beats an 'uncertain' message). Then it goes on.
                self.stopping = True
                while not job.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(job)  # cancelled again: still wait for it
                raise

    def _send_from_thread(self, lane: _Lane, once: bool) -> None:
        """In the lane's thread: take, claim, send and report messages on the lane's connection
        until the queue is empty, the run stops, or the connection must be replaced (one message
        when ``once``: the rate limiter paces each). Each claim is durable before its
        transaction starts; each result is handed to the outbox before the next claim is asked
        for, so it is written no later than that claim. No event-loop round trip per message."""
        backend, hooks, cap = self.backend, self.hooks, self.backend._cap
        limit = backend.config.messages_per_connection
        while not self.stopping and self.refused is None:
            conn = lane.conn
            if conn is None or conn.used >= limit:
                return
            try:
                msg = self.queue.popleft()
            except IndexError:
                return
            if not cap.try_reserve():
                hooks.finished_from_thread(cap.refusal(msg.id))
                continue
            if not hooks.handing_over_from_thread([msg.id])[0]:
                cap.release()
                continue
            result, usable = backend._transact(conn.smtp, msg)
            conn.used += 1
            conn.last_used = backend._clock()
            if not usable:
                lane.conn = None
            if result.outcome not in (Outcome.SENT, Outcome.UNCERTAIN):
                cap.release()
            hooks.finished_from_thread(result)
            if once:
                return

    async def _ready(self, lane: _Lane) -> None:
        backend = self.backend
        conn = lane.conn
        if conn is not None and conn.used >= backend.config.messages_per_connection:
            lane.conn = None
            await lane.run(_quit_quietly, conn.smtp)
        elif (
            conn is not None
            and backend._clock() - conn.last_used > IDLE_CHECK_SECONDS
            and not await lane.run(_noop_ok, conn.smtp)
        ):
            lane.conn = None
            await lane.run(conn.smtp.close)
        if lane.conn is None:
            lane.conn = _Connection(await self._connect(lane), last_used=backend._clock())

    async def _connect(self, lane: _Lane) -> smtplib.SMTP:
        if self.connected:
            return await lane.run(self.backend._open)
        async with self._first:
            # A refused login or an unreachable server is tried once per run, not once per worker.
            if self.last_error is not None and not self.connected:
                raise self.last_error
            smtp = await lane.run(self.backend._open)
            self.connected = True
            return smtp

    async def _fail_remaining(self) -> None:
        error = self.refused or self.last_error
        if self.refused is not None:
            outcome, detail = Outcome.SETUP_REFUSED, str(self.refused)
        else:
            outcome = Outcome.TRANSIENT
            detail = f"not sent: {error}" if error else "not sent: no SMTP connection could be set up"
        code = error.code if error else None
        while self.queue:
            msg = self.queue.popleft()
            await self.hooks.finished(
                SendResult(msg.id, outcome, detail, code, connection_failed=outcome is Outcome.TRANSIENT)
            )


class _Lane:
    """One worker's connection and the single thread that every call on it runs in, so calls on
    one smtplib object never overlap (even after a cancellation).

    A plain thread fed by a queue, answering on an asyncio future: per message this is half
    the CPU of ``run_in_executor`` (no concurrent future chained to an asyncio one), and the
    loop thread is what limits how fast eight connections go."""

    def __init__(self) -> None:
        self.conn: _Connection | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[object, ...], _Answer] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def run(self, func: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """``func(*args)`` in the lane's thread, after every call submitted before it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(func, args, (loop, future))
        return future

    def submit(self, func: Callable[..., object]) -> None:
        """``func()`` in the lane's thread after every call before it, nobody waiting for it."""
        self._submit(func, (), None)

    def close(self) -> None:
        """The thread ends after the calls already submitted (it never outlives them)."""
        if self._thread is not None:
            self._calls.put(None)

    def _submit(self, func: Callable[..., Any], args: tuple[object, ...], answer: _Answer) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="tabmail-smtp", daemon=False)
            self._thread.start()
        self._calls.put((func, args, answer))

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            func, args, answer = call
            try:
                value, failure = func(*args), None
            except BaseException as exc:  # handed to the awaiting task, as run_in_executor does
                value, failure = None, exc
            if answer is None:
                continue
            loop, future = answer
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, value, failure)


_Answer = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"] | None


def _settle(future: asyncio.Future[Any], value: object, failure: BaseException | None) -> None:
    if future.cancelled():
        return
    if failure is not None:
        future.set_exception(failure)
    else:
        future.set_result(value)
