"""Backend tests (the Settings dialog's Test buttons) against real servers on loopback: aiosmtpd
with trustme certificates, the SendGrid-compatible server, and real folders."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tabmail.backends.probe import Failure, probe_folder, probe_sendgrid, probe_smtp
from tabmail.backends.smtp import SmtpConfig
from tabmail.domain.config import SETTINGS
from tabmail.services.backend_check import check_backend
from tabmail.services.context import AppContext
from tests.servers.sendgrid import ALL_SCOPES, DEFAULT_KEY, SendGridTestServer
from tests.servers.smtp import SmtpTestServer

pytestmark = pytest.mark.timeout(60)
USER, PASSWORD = "tabroom", "correct horse"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def start_server() -> Iterator[Callable[..., SmtpTestServer]]:
    servers: list[SmtpTestServer] = []

    def start(**kwargs: Any) -> SmtpTestServer:
        servers.append(SmtpTestServer(**kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def smtp_config(server: SmtpTestServer, security: str = "starttls", password: str = PASSWORD) -> SmtpConfig:
    return SmtpConfig(
        host=server.host,
        port=server.port,
        security=security,
        username=USER,
        password=password,
        timeout=5,  # type: ignore[arg-type]
    )


def test_smtp_success_walks_every_step(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, trusting: ssl.SSLContext
) -> None:
    server = start_server(tls="starttls", cert=leaf, auth=(USER, PASSWORD))
    result = probe_smtp(smtp_config(server), ssl_context=trusting)
    assert result.ok, result.summary
    assert [s.name for s in result.steps] == ["DNS", "connect", "STARTTLS", "login", "NOOP", "QUIT"]
    assert result.summary.startswith("SMTP works") and USER in result.summary
    assert server.messages == []  # nothing was sent


def test_smtp_implicit_tls(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, trusting: ssl.SSLContext
) -> None:
    server = start_server(tls="implicit", cert=leaf, auth=(USER, PASSWORD))
    result = probe_smtp(smtp_config(server, "tls"), ssl_context=trusting)
    assert result.ok, result.summary
    assert "TLS" in [s.name for s in result.steps]


def test_smtp_wrong_password_is_an_auth_failure_without_the_password(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert, trusting: ssl.SSLContext
) -> None:
    server = start_server(tls="starttls", cert=leaf, auth=(USER, PASSWORD))
    result = probe_smtp(smtp_config(server, password="wrong-secret-pw"), ssl_context=trusting)
    assert result.failure is Failure.AUTH
    assert "refused the login for tabroom" in result.summary
    assert "wrong-secret-pw" not in repr(result)
    assert [s.ok for s in result.steps] == [True, True, True, False]


def test_smtp_untrusted_certificate_is_a_certificate_failure(
    start_server: Callable[..., SmtpTestServer], leaf: trustme.LeafCert
) -> None:
    server = start_server(tls="starttls", cert=leaf, auth=(USER, PASSWORD))
    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)  # trusts another CA only
    result = probe_smtp(smtp_config(server), ssl_context=stranger)
    assert result.failure is Failure.CERTIFICATE
    assert "certificate" in result.summary and "could not be verified" in result.summary


def test_smtp_refused_port(start_server: Callable[..., SmtpTestServer]) -> None:
    server = start_server()
    server.stop()  # the port is free again: nothing listens
    result = probe_smtp(SmtpConfig(host="127.0.0.1", port=server.port, security="none", timeout=5))
    assert result.failure is Failure.REFUSED
    assert "refused the connection" in result.summary


def test_smtp_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts the connection, never says hello
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = probe_smtp(SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=1))
    assert result.failure is Failure.TIMEOUT
    assert "did not answer within 1 s" in result.summary


def test_smtp_unknown_host_is_a_dns_failure() -> None:
    result = probe_smtp(SmtpConfig(host="no-such-host.invalid", port=587, security="starttls", timeout=5))
    assert result.failure is Failure.DNS
    assert "no-such-host.invalid" in result.summary


def test_smtp_login_without_encryption_is_refused_before_connecting() -> None:
    config = SmtpConfig(host="smtp.example.org", port=25, security="none", username="u", password="p")
    result = probe_smtp(config)
    assert result.failure is Failure.CONFIG and "clear text" in result.summary


def test_sendgrid_good_key_lists_status_sources_and_sandbox_sends() -> None:
    with SendGridTestServer() as server:
        result = probe_sendgrid(server.url, DEFAULT_KEY, "tab@example.org")
        sends = server.requests_to("/v3/mail/send")
    assert result.ok, result.summary
    assert [s.name for s in result.steps] == ["scopes", "status sources", "sandbox send"]
    assert "Email Activity" in result.steps[1].detail and "suppression lists" in result.steps[1].detail
    assert len(sends) == 1 and sends[0].json()["mail_settings"]["sandbox_mode"]["enable"] is True


def test_sendgrid_missing_mail_send_scope() -> None:
    with SendGridTestServer(scopes=ALL_SCOPES - {"mail.send"}) as server:
        result = probe_sendgrid(server.url, DEFAULT_KEY, "tab@example.org")
        assert server.requests_to("/v3/mail/send") == []
    assert result.failure is Failure.SCOPE and "mail.send" in result.summary


def test_sendgrid_key_without_status_scopes_says_so() -> None:
    with SendGridTestServer(scopes={"mail.send"}) as server:
        result = probe_sendgrid(server.url, DEFAULT_KEY, "tab@example.org")
    assert result.ok
    assert "from: nothing" in result.steps[1].detail and result.notes


def test_sendgrid_wrong_key_is_an_auth_failure() -> None:
    with SendGridTestServer() as server:
        result = probe_sendgrid(server.url, "SG.wrong.key", "tab@example.org")
    assert result.failure is Failure.AUTH
    assert "SG.wrong.key" not in result.summary


def test_sendgrid_unreachable() -> None:
    with SendGridTestServer() as server:
        url = server.url
    result = probe_sendgrid(url, DEFAULT_KEY, "tab@example.org", timeout=5)
    assert result.failure is Failure.REFUSED


def test_folder_writable_and_not(tmp_path: Path) -> None:
    assert probe_folder(tmp_path / "new" / "eml").ok
    assert not list((tmp_path / "new" / "eml").iterdir())  # the test file is gone
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = probe_folder(blocker / "eml")
    assert result.failure is Failure.FOLDER


def test_check_backend_uses_the_given_values_not_the_stored_ones(
    ctx: AppContext, start_server: Callable[..., SmtpTestServer]
) -> None:
    server = start_server()
    values = {key: spec.default for key, spec in SETTINGS.items()}
    values.update({"smtp.host": server.host, "smtp.port": server.port, "smtp.security": "none"})
    result = asyncio.run(check_backend(ctx, "smtp", values, {"smtp-password": None}))
    assert result.ok, result.summary
    assert ctx.settings.get("smtp.port") == 587  # nothing was saved


def test_check_backend_has_a_deadline(ctx: AppContext) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        values = {key: spec.default for key, spec in SETTINGS.items()}
        values.update(
            {"smtp.host": "127.0.0.1", "smtp.port": listener.getsockname()[1], "smtp.security": "none"}
        )
        result = asyncio.run(check_backend(ctx, "smtp", values, {}, timeout=0.5))
    assert result.failure is Failure.TIMEOUT
