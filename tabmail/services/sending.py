"""Building the configured backend and the per-installation threading key."""

from __future__ import annotations

import logging
import secrets as pysecrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabmail.domain.errors import TabmailError
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.services.context import AppContext

if TYPE_CHECKING:  # queueing (send --queue-only) needs the settings helpers only, not these
    import ssl

    from tabmail.backends.base import Backend
    from tabmail.services.outbox import Outbox

log = logging.getLogger(__name__)

_EPHEMERAL_THREAD_KEY: bytes | None = None


def backend_name(ctx: AppContext) -> str:
    return str(ctx.settings.get("backend"))


def is_sendgrid_relay(ctx: AppContext) -> bool:
    """True when SMTP goes through SendGrid's relay: unique_args then make status polling work."""
    return backend_name(ctx) == "smtp" and str(ctx.settings.get("smtp.host")).lower().endswith("sendgrid.net")


def is_practice(ctx: AppContext) -> bool:
    """True when the practice backend is selected: nothing leaves this computer."""
    return backend_name(ctx) == PRACTICE


def uses_sendgrid(ctx: AppContext) -> bool:
    return backend_name(ctx) == "sendgrid" or is_sendgrid_relay(ctx)


def eml_directory(ctx: AppContext) -> Path:
    configured = str(ctx.settings.get("file.directory") or "")
    return Path(configured).expanduser() if configured else ctx.data_dir / "sent-eml"


def build_backend(ctx: AppContext, name: str | None = None) -> Backend:
    """The backend ``name`` (default: the one the settings select), configured from the settings,
    with its secret from the keyring. Raises TabmailError."""
    name = name or backend_name(ctx)
    if name == "file":
        from tabmail.backends.file import FileBackend

        return FileBackend(eml_directory(ctx))
    if name == PRACTICE:
        from tabmail.backends.practice import PracticeBackend

        return PracticeBackend()
    if name == "smtp":
        from tabmail.backends.smtp import SmtpBackend, SmtpConfig

        s = ctx.settings.all()
        password = ctx.secrets.get("smtp-password") if s["smtp.username"] else None
        if s["smtp.username"] and not password:
            raise TabmailError(
                "the SMTP password is not set: store it with `tabmail secret set smtp-password` "
                "(or TABMAIL_SMTP_PASSWORD where no keyring exists)"
            )
        return SmtpBackend(
            SmtpConfig(
                host=s["smtp.host"],
                port=int(s["smtp.port"]),
                security=s["smtp.security"],
                username=s["smtp.username"],
                password=password,
                connections=int(s["smtp.connections"]),
                messages_per_connection=int(s["smtp.messages_per_connection"]),
                rate_per_minute=int(s["smtp.rate_per_minute"]),
                daily_cap=int(s["smtp.daily_cap"]),
                sent_today=ctx.notifications.sent_since_midnight() if int(s["smtp.daily_cap"]) else 0,
                timeout=float(s["smtp.timeout"]),
                ssl_context=custom_ca_context(str(s["tls.ca_file"] or "")),
            )
        )
    if name == "sendgrid":
        from tabmail.backends.sendgrid import SendGridBackend, SendGridConfig

        key = ctx.secrets.get("sendgrid-api-key")
        if not key:
            raise TabmailError(
                "the SendGrid API key is not set: store it with `tabmail secret set sendgrid-api-key` "
                "(or TABMAIL_SENDGRID_API_KEY where no keyring exists)"
            )
        return SendGridBackend(
            SendGridConfig(
                base_url=str(ctx.settings.get("sendgrid.base_url")),
                api_key=key,
                sandbox=bool(ctx.settings.get("sendgrid.sandbox")),
                from_address=str(ctx.settings.get("from_address")),
            )
        )
    raise TabmailError(
        f"unknown backend {name!r}: set one with `tabmail config set backend smtp|sendgrid|file|practice`"
    )


def max_attempts(ctx: AppContext) -> int:
    return int(ctx.settings.get("outbox.max_attempts"))


def default_outbox(ctx: AppContext, **injected: Any) -> Outbox:
    """The app's outbox: each message through the backend it was queued for, and the attempt
    limit from the ``outbox.max_attempts`` setting (read at the start of each run). ``injected``:
    Outbox keywords such as clock, sleep and rng (tests)."""
    from tabmail.services.outbox import Backoff, Outbox

    return Outbox(
        ctx.notifications,
        ctx.flags,
        lambda name: build_backend(ctx, name),
        ctx.bus,
        backoff=lambda: Backoff(max_attempts=max_attempts(ctx)),
        **injected,
    )


def custom_ca_context(ca_file: str) -> ssl.SSLContext | None:
    """A verifying TLS context trusting ``tls.ca_file`` (institutions run their own CA) besides
    nothing else; None when no file is set (the system's CAs). Raises TabmailError."""
    if not ca_file:
        return None
    import ssl

    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TabmailError(f"the CA file {ca_file} (tls.ca_file) cannot be used: {exc}") from None


def thread_key(ctx: AppContext) -> bytes:
    """The per-installation HMAC key for thread anchors: made once, kept in the keyring.

    Without a keyring (and no TABMAIL_THREAD_KEY), a key for this run only is used: emails still
    thread within the run, and the director was told the keyring is unavailable.
    """
    global _EPHEMERAL_THREAD_KEY
    existing = ctx.secrets.get("thread-key")
    if existing:
        return bytes.fromhex(existing) if _is_hex(existing) else existing.encode()
    fresh = pysecrets.token_hex(32)
    if ctx.secrets.available:
        ctx.secrets.set("thread-key", fresh)
        return bytes.fromhex(fresh)
    if _EPHEMERAL_THREAD_KEY is None:
        log.warning("no keyring: using a thread-anchor key for this run only")
        _EPHEMERAL_THREAD_KEY = bytes.fromhex(fresh)
    return _EPHEMERAL_THREAD_KEY


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) >= 32
