"""Testing a backend's settings without sending anything real: one structured result per test.

``probe_smtp`` walks the SMTP conversation step by step (DNS, connect, STARTTLS or implicit TLS
with certificate verification, AUTH, NOOP, QUIT) and stops at the first step that fails, saying
which one and why in a ``Failure`` kind the GUI can act on (DNS, refused, certificate, auth,
timeout...). ``probe_sendgrid`` checks the key's scopes (sending, and which status sources the
account allows) and makes a sandbox-mode send. ``probe_folder`` checks that the dry-run folder
can be written. All three block (run them in a thread) and never raise for a failed test.
"""

from __future__ import annotations

import enum
import os
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tabmail.backends.smtp import SmtpConfig, is_loopback_host
from tabmail.providers.sendgrid import SendGridClient, SendGridConnectionError, SendGridError


class Failure(enum.StrEnum):
    CONFIG = "config"  # the settings can never work (no key, login without encryption)
    DNS = "dns"  # the host name does not resolve
    REFUSED = "refused"  # nothing listens there, or the server turned the connection away
    TIMEOUT = "timeout"  # no answer in time
    CERTIFICATE = "certificate"  # the TLS certificate could not be verified
    TLS = "tls"  # TLS failed otherwise (wrong port for the mode, STARTTLS not offered)
    AUTH = "auth"  # the login (or the API key) was refused
    SCOPE = "scope"  # the API key lacks a permission sending needs
    PROTOCOL = "protocol"  # the server answered something unexpected
    SEND = "send"  # the sandbox test send was refused
    FOLDER = "folder"  # the folder cannot be created or written


@dataclass(frozen=True, slots=True)
class ProbeStep:
    name: str  # "DNS", "connect", "STARTTLS", "login", "NOOP", "QUIT", "scopes", ...
    ok: bool
    detail: str


@dataclass(slots=True)
class ProbeResult:
    backend: str
    steps: list[ProbeStep] = field(default_factory=list)
    failure: Failure | None = None
    notes: list[str] = field(default_factory=list)  # facts worth knowing even when it worked
    verdict: str = ""  # the one-sentence conclusion when every step passed

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def summary(self) -> str:
        """One sentence: what failed, or that everything worked."""
        if self.failure is not None:
            failed = next((s for s in reversed(self.steps) if not s.ok), None)
            return failed.detail if failed else str(self.failure)
        return self.verdict or (self.steps[-1].detail if self.steps else "Nothing to test.")

    def passed(self, name: str, detail: str) -> None:
        self.steps.append(ProbeStep(name, True, detail))

    def failed(self, name: str, kind: Failure, detail: str) -> ProbeResult:
        self.steps.append(ProbeStep(name, False, detail))
        self.failure = kind
        return self


# -- SMTP ----------------------------------------------------------------------------------------


def _smtp_words(exc: smtplib.SMTPResponseException, password: str | None) -> str:
    raw = exc.smtp_error
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join(text.split())
    if password:
        text = text.replace(password, "***")
    return f"{exc.smtp_code} {text}".strip()


def _network_failure(exc: BaseException, where: str, timeout: float) -> tuple[Failure, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = str(exc.verify_message or exc.reason or exc).rstrip(".")
        return Failure.CERTIFICATE, f"The TLS certificate of {where} could not be verified ({why})."
    if isinstance(exc, ssl.SSLError):
        return Failure.TLS, f"TLS with {where} failed ({exc.reason or exc}); check the port and encryption."
    if isinstance(exc, ConnectionRefusedError):
        return Failure.REFUSED, f"{where} refused the connection: nothing accepts mail on that port."
    if isinstance(exc, TimeoutError | socket.timeout) or "timed out" in str(exc):
        return Failure.TIMEOUT, f"{where} did not answer within {timeout:g} s."
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Failure.PROTOCOL, f"{where} closed the connection ({exc or 'without a reason'})."
    if isinstance(exc, OSError):
        return Failure.REFUSED, f"Cannot connect to {where}: {exc.strerror or exc}."
    return Failure.PROTOCOL, f"{where}: {type(exc).__name__}: {exc}"


def probe_smtp(
    config: SmtpConfig, *, timeout: float = 15.0, ssl_context: ssl.SSLContext | None = None
) -> ProbeResult:
    """Connect, secure, log in, NOOP and QUIT with ``config``; stop at the first failing step."""
    result = ProbeResult("smtp")
    where = config.where
    wait = min(float(config.timeout), timeout)
    if config.username and config.security == "none" and not is_loopback_host(config.host):
        return result.failed(
            "settings",
            Failure.CONFIG,
            f"Refusing to log in to {where} without encryption: the password would cross the network "
            "in clear text. Choose STARTTLS or TLS.",
        )
    if config.username and not config.password:
        return result.failed("settings", Failure.CONFIG, "A user name is set but no password.")
    try:
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return result.failed("DNS", Failure.DNS, f"Cannot find the server {config.host}: {exc.strerror}.")
    except UnicodeError:
        return result.failed("DNS", Failure.DNS, f"{config.host!r} is not a valid host name.")
    addresses = sorted({str(info[4][0]) for info in infos})
    result.passed("DNS", f"{config.host} is {', '.join(addresses[:3])}.")

    context = ssl_context or ssl.create_default_context()
    smtp: smtplib.SMTP | None = None
    step = "connect"
    try:
        if config.security == "tls":
            step = "TLS"
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=wait, context=context)
            result.passed("connect", f"Connected to {where}.")
            result.passed("TLS", f"TLS from the start; the certificate of {config.host} is valid.")
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=wait)
            result.passed("connect", f"Connected to {where}.")
        step = "EHLO"
        smtp.ehlo_or_helo_if_needed()
        if config.security == "starttls":
            step = "STARTTLS"
            if not smtp.has_extn("starttls"):
                return result.failed(
                    "STARTTLS",
                    Failure.TLS,
                    f"{where} does not offer STARTTLS. If it expects TLS from the start (usually "
                    "port 465), choose “TLS from the start”.",
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            result.passed("STARTTLS", f"Encrypted with STARTTLS; the certificate of {config.host} is valid.")
        if config.username:
            step = "login"
            if not smtp.has_extn("auth"):
                return result.failed(
                    "login", Failure.AUTH, f"{where} offers no login (AUTH) on this connection."
                )
            smtp.login(config.username, config.password or "")
            result.passed("login", f"Logged in as {config.username}.")
        else:
            result.notes.append("No user name is set, so no login was tried.")
        step = "NOOP"
        code, _ = smtp.noop()
        if code != 250:
            return result.failed("NOOP", Failure.PROTOCOL, f"{where} answered NOOP with {code}.")
        result.passed("NOOP", f"{where} answers commands.")
        step = "QUIT"
        smtp.quit()
        smtp = None
        result.passed("QUIT", "Said goodbye (QUIT).")
        login = f" and the login as {config.username}" if config.username else ""
        result.verdict = f"SMTP works: {where} ({config.label}) accepts tabmail's connection{login}."
        return result
    except smtplib.SMTPAuthenticationError as exc:
        return result.failed(
            "login",
            Failure.AUTH,
            f"{where} refused the login for {config.username}: " + _smtp_words(exc, config.password),
        )
    except smtplib.SMTPResponseException as exc:
        kind = (
            Failure.TLS
            if step == "STARTTLS"
            else Failure.REFUSED
            if step in ("connect", "EHLO")
            else Failure.PROTOCOL
        )
        return result.failed(step, kind, f"{where} refused {step}: {_smtp_words(exc, config.password)}")
    except (OSError, smtplib.SMTPException) as exc:
        kind, detail = _network_failure(exc, where, wait)
        return result.failed(step if kind is not Failure.CERTIFICATE else "TLS", kind, detail)
    finally:
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass


# -- SendGrid ------------------------------------------------------------------------------------

# What each status source needs from the key; any one of the alternatives will do.
STATUS_SOURCES: dict[str, tuple[str, ...]] = {
    "Email Activity": ("messages.read",),
    "suppression lists": ("suppression.read", "suppression.bounces.read"),
}


def probe_sendgrid(
    base_url: str,
    api_key: str | None,
    from_address: str,
    *,
    timeout: float = 15.0,
    client_factory: Callable[[str, str], SendGridClient] | None = None,
) -> ProbeResult:
    """Check the key (scopes), which status sources it may read, and a sandbox-mode send."""
    result = ProbeResult("sendgrid")
    if not api_key:
        return result.failed("API key", Failure.CONFIG, "No SendGrid API key is set: type one in.")
    make = client_factory or (lambda url, key: SendGridClient(url, key, timeout=timeout))
    try:
        client = make(base_url, api_key)
    except SendGridError as exc:  # a key no API key looks like
        return result.failed("API key", Failure.CONFIG, str(exc))
    try:
        try:
            scopes = client.get_scopes()
        except SendGridError as exc:
            return result.failed("API key", *_sendgrid_failure(exc, base_url, timeout))
        if "mail.send" not in scopes:
            return result.failed(
                "scopes",
                Failure.SCOPE,
                "The API key may not send mail: it lacks the mail.send permission (Mail Send). "
                "Create a key with Mail Send access under Settings › API Keys.",
            )
        result.passed("scopes", "SendGrid accepts the API key, and it may send mail (mail.send).")
        allowed = [name for name, needs in STATUS_SOURCES.items() if scopes.intersection(needs)]
        lacking = [name for name in STATUS_SOURCES if name not in allowed]
        detail = "Delivery statuses from: " + (", ".join(allowed) if allowed else "nothing")
        if lacking:
            detail += f" (the key may not read {', '.join(lacking)})"
        result.passed("status sources", detail + ".")
        if not allowed:
            result.notes.append("Without a status source tabmail cannot show bounces for this key.")
        if not from_address:
            return result.failed("sandbox send", Failure.CONFIG, "Set a From address to make a test send.")
        probe = {
            "personalizations": [{"to": [{"email": from_address}]}],
            "from": {"email": from_address},
            "subject": "tabmail settings check",
            "content": [{"type": "text/plain", "value": "tabmail checked its SendGrid settings."}],
            "mail_settings": {"sandbox_mode": {"enable": True}},
        }
        try:
            answer = client.request("POST", "/v3/mail/send", json=probe)
        except SendGridError as exc:
            kind, detail = _sendgrid_failure(exc, base_url, timeout)
            return result.failed("sandbox send", Failure.SEND if kind is Failure.PROTOCOL else kind, detail)
        result.passed(
            "sandbox send",
            f"A sandbox test send from {from_address} was accepted (HTTP {answer.status}); "
            "nothing was delivered.",
        )
        result.verdict = "SendGrid works: the key may send mail and a test send was accepted."
        return result
    finally:
        client.close()


def _sendgrid_failure(exc: SendGridError, base_url: str, timeout: float) -> tuple[Failure, str]:
    if isinstance(exc, SendGridConnectionError):
        text = str(exc).lower()
        if "certificate" in text:
            return Failure.CERTIFICATE, f"The TLS certificate of {base_url} could not be verified ({exc})."
        if "timed out" in text or "timeout" in text:
            return Failure.TIMEOUT, f"{base_url} did not answer within {timeout:g} s."
        if "name or service not known" in text or "resolve" in text or "nodename" in text:
            return Failure.DNS, str(exc)
        return Failure.REFUSED, str(exc)
    if exc.status in (401, 403):
        return Failure.AUTH, str(exc)
    return Failure.PROTOCOL, str(exc)


# -- file ----------------------------------------------------------------------------------------


def probe_folder(folder: Path) -> ProbeResult:
    """The dry-run folder exists (or can be made) and a file can be written in it."""
    result = ProbeResult("file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return result.failed("folder", Failure.FOLDER, f"Cannot create {folder}: {exc.strerror or exc}.")
    if not folder.is_dir():
        return result.failed("folder", Failure.FOLDER, f"{folder} is not a folder.")
    try:
        fd, name = tempfile.mkstemp(prefix=".tabmail-test-", suffix=".eml", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return result.failed("write", Failure.FOLDER, f"Cannot write in {folder}: {exc.strerror or exc}.")
    result.passed("write", f"A test file was written in {folder} and removed.")
    result.verdict = f"The folder can be written: messages will be saved in {folder} as .eml files."
    return result
