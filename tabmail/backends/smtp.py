"""Sending over SMTP with smtplib: parallel connections, the exact stored bytes, and every failure
classified with the server's own words.

How a run goes (backends/smtp_run.py): ``connections`` workers pull from one shared queue. Each
worker owns one SMTP connection and one thread (smtplib blocks), reuses the connection for up to
``messages_per_connection`` messages, then QUITs and reconnects. Connections are set up from the
event loop; then the worker's thread takes messages by itself: it asks for a message's claim
(``hooks.claim_ahead_from_thread``) one message ahead, before the current transaction, and waits
for it (``hooks.claimed_from_thread``) right before that message's transaction, runs MAIL FROM /
RCPT TO / DATA with the message's ``raw`` bytes and reports one ``SendResult`` through
``hooks.finished_from_thread``. When the server offers PIPELINING (RFC 2920; Postfix and the big
providers do), MAIL FROM, RCPT TO and DATA go in one write and their replies are read in order:
two round trips per message instead of four, which matters most on a slow link. A claim granted but not used (the run stops, the connection
breaks) is withdrawn (``hooks.withdraw_from_thread``) and the message goes back to the queue. With
a rate limit (backends/smtp_pacing.py) the worker waits for each message's slot on the event loop
and its thread claims and sends that one message (no claim ahead).

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
  Once one is up, the others are set up together.
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
  (the server's answer is known within the timeout) before the cancellation goes on; a message
  claimed ahead is withdrawn (queued again). If a hook raises, a running transaction finishes in its thread unreported,
  so the outbox finds that message still 'sending' and must treat it as uncertain. Connections
  are then closed.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tabmail.backends.base import BackendInfo, Outcome, OutgoingMessage, SendHooks, SendResult
from tabmail.backends.smtp_pacing import DailyCap, RateLimiter
from tabmail.backends.smtp_run import SmtpConnectionError, SmtpRun, quit_quietly
from tabmail.domain.errors import TabmailError

Security = Literal["starttls", "tls", "none"]
SECURITY_LABELS: dict[str, str] = {"starttls": "STARTTLS", "tls": "TLS", "none": "no encryption"}


class SmtpConfigError(TabmailError, ValueError):
    """The SMTP settings can never work as given; found without connecting."""


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


# A dot-atom local part (RFC 5322 atext) at a dot-separated host name: what nearly every address
# is. smtplib's quoteaddr() gives ``<address>`` for each of these (tests/test_backend_smtp.py
# compares them), at a thirtieth of its cost (~1 us against ~32 us per message).
_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _plain_address(address: str) -> bool:
    """One bare address that goes on the wire unchanged as ``<address>``: smtplib's quoteaddr()
    would otherwise silently keep the first of two addresses, or the part before a line break."""
    return _DOT_ATOM_ADDRESS.fullmatch(address) is not None or _quoted_unchanged(address)


@functools.lru_cache(maxsize=4096)  # the sender is the same for every message of a run
def _quoted_unchanged(address: str) -> bool:
    """``_plain_address`` for the rest (quoted local parts, non-ASCII addresses, nonsense)."""
    return (
        "@" in address
        and address.isprintable()
        and not any(c.isspace() for c in address)
        and smtplib.quoteaddr(address) == f"<{address}>"
    )


# A transaction's commands before the payload: (stage, what a refusal says, the codes that accept).
_STAGES = (
    ("MAIL FROM", "sender refused", (250,)),
    ("RCPT TO", "recipient refused", (250, 251)),
    ("DATA", "DATA refused", (354,)),
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
        await asyncio.to_thread(quit_quietly, smtp)
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
        await SmtpRun(self, messages, hooks).execute()

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
            commands = [
                f"MAIL FROM:<{msg.envelope_from}>{' ' + ' '.join(options) if options else ''}\r\n",
                f"RCPT TO:<{msg.envelope_to}>\r\n",
                "DATA\r\n",
            ]
            # With PIPELINING (RFC 2920) the three go in one write and their replies are read
            # in order: one round trip instead of three.
            pipelined = smtp.has_extn("pipelining")
            if pipelined:
                smtp.send("".join(commands))
            for n, (step, what, accepted) in enumerate(_STAGES):
                stage = step  # where a broken connection broke (the except below)
                if not pipelined:
                    smtp.send(commands[n])
                code, reply = smtp.getreply()
                if code not in accepted:
                    unanswered = len(_STAGES) - 1 - n if pipelined else 0
                    return self._refused(smtp, msg, what, code, reply, unanswered)
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
        self,
        smtp: smtplib.SMTP,
        msg: OutgoingMessage,
        what: str,
        code: int,
        reply: bytes,
        unanswered: int = 0,
    ) -> tuple[SendResult, bool]:
        """The result of a refused MAIL, RCPT or DATA, and whether the connection can carry on
        (RSET). ``unanswered``: pipelined commands sent after the refused one, whose replies
        are read first (a DATA the server took anyway gets an empty message's ending, so the
        server refuses it: the transaction has no valid sender or recipient)."""
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
            for _ in range(unanswered):
                later, _reply = smtp.getreply()
                if later == 354:
                    smtp.send(".\r\n")
                    later, _reply = smtp.getreply()
                if later == 421:
                    smtp.close()
                    return result, False
            usable = smtp.rset()[0] == 250
        except (smtplib.SMTPException, OSError):
            usable = False
        if not usable:
            smtp.close()
        return result, usable
