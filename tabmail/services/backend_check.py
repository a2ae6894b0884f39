"""Testing a backend with settings that are not saved yet (the Settings dialog's Test buttons).

``check_backend`` takes the values as typed (parsed settings and secrets; a secret not typed falls
back to the stored one), builds the backend's configuration from them without writing anything,
and runs the matching probe of ``backends/probe.py`` in a worker thread with a deadline. It never
raises for a failed test: the ``ProbeResult`` says what failed and why.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tabmail.backends.probe import Failure, ProbeResult, probe_folder, probe_sendgrid, probe_smtp
from tabmail.backends.smtp import SmtpConfig, SmtpConfigError
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.services.context import AppContext

DEFAULT_TIMEOUT = 20.0


def eml_folder(ctx: AppContext, configured: str) -> Path:
    return Path(configured).expanduser() if configured else ctx.data_dir / "sent-eml"


async def check_backend(
    ctx: AppContext,
    backend: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Probe ``backend`` with these values; at most ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_probe, ctx, backend, settings, secrets, timeout, ssl_context), timeout
        )
    except TimeoutError:
        return ProbeResult(backend).failed(
            "test", Failure.TIMEOUT, f"No answer within {timeout:g} s; the test was stopped."
        )


def _probe(
    ctx: AppContext,
    backend: str,
    s: Mapping[str, Any],
    secrets: Mapping[str, str | None],
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> ProbeResult:
    if backend == PRACTICE:
        result = ProbeResult(PRACTICE, verdict="Practice needs no server and no account: it works.")
        result.passed("practice", "No connection is made; nothing leaves this computer.")
        return result
    if backend == "file":
        return probe_folder(eml_folder(ctx, str(s.get("file.directory") or "")))
    if backend == "sendgrid":
        key = secrets.get("sendgrid-api-key")
        return probe_sendgrid(
            str(s["sendgrid.base_url"]), key, str(s.get("from_address") or ""), timeout=timeout
        )
    if backend == "smtp":
        username = str(s.get("smtp.username") or "")
        try:
            config = SmtpConfig(
                host=str(s["smtp.host"]),
                port=int(s["smtp.port"]),
                security=s["smtp.security"],
                username=username,
                password=secrets.get("smtp-password") if username else None,
                timeout=float(s.get("smtp.timeout") or timeout),
            )
        except SmtpConfigError as exc:
            return ProbeResult("smtp").failed("settings", Failure.CONFIG, str(exc))
        return probe_smtp(config, timeout=timeout, ssl_context=ssl_context)
    return ProbeResult(backend).failed("settings", Failure.CONFIG, f"Unknown backend {backend!r}.")
