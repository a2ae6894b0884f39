"""The SendGrid Web API backend against the loopback SendGrid-compatible server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tabmail.backends.base import Outcome, OutgoingMessage, SendResult
from tabmail.backends.sendgrid import SendGridBackend, SendGridConfig
from tabmail.domain.errors import TabmailError
from tabmail.providers.sendgrid import SendGridClient
from tests.servers.sendgrid import DEFAULT_KEY, SendGridTestServer
from tests.servers.sendgrid.messages import outgoing

WRONG_KEY = "SG.wrongwrongwrong.ThisIsNotTheKeyTheServerKnows0123456789abcdefgh"


class RecordingHooks:
    def __init__(self, refuse: Sequence[str] = ()) -> None:
        self.refuse = set(refuse)
        self.handed: list[list[str]] = []
        self.results: dict[str, SendResult] = {}

    async def handing_over(self, ids: Sequence[str]) -> Sequence[bool]:
        self.handed.append(list(ids))
        return [i not in self.refuse for i in ids]

    async def finished(self, result: SendResult) -> None:
        assert result.message_id not in self.results, "two results for one message"
        self.results[result.message_id] = result


@pytest.fixture
def server() -> Iterator[SendGridTestServer]:
    with SendGridTestServer() as running:
        yield running


def make_backend(server: SendGridTestServer, *, key: str = DEFAULT_KEY, **options: Any) -> SendGridBackend:
    config = SendGridConfig(server.url, key, **options)
    client = SendGridClient(server.url, key, clock=server.clock, timeout=10)
    return SendGridBackend(config, client=client)


def send(backend: SendGridBackend, messages: Sequence[OutgoingMessage], hooks: RecordingHooks) -> None:
    async def run() -> None:
        try:
            await backend.send(messages, hooks)
        finally:
            await backend.close()

    asyncio.run(run())


def substituted(body: dict[str, Any], personalization: dict[str, Any], kind: str) -> str:
    """What SendGrid makes of a content part for one personalization."""
    value: str = next(c["value"] for c in body["content"] if c["type"] == kind)
    for tag, text in personalization.get("substitutions", {}).items():
        value = value.replace(tag, text)
    return value


def test_fifty_small_messages_travel_in_one_request(server: SendGridTestServer) -> None:
    messages = [outgoing(i, name=f"Speaker {i}") for i in range(50)]
    hooks = RecordingHooks()
    send(make_backend(server), messages, hooks)

    assert server.validation_errors == []
    assert len(server.sent) == 1
    request = server.sent[0]
    assert len(request.personalizations) == 50
    assert hooks.handed == [[m.id for m in messages]]
    for message, personalization in zip(messages, request.personalizations, strict=True):
        result = hooks.results[message.id]
        assert result.outcome is Outcome.SENT
        assert result.provider_message_id == request.x_message_id
        assert personalization["custom_args"] == {"tabmail_id": message.id}
        assert personalization["to"] == [
            {"email": message.envelope_to, "name": message.message["To"].addresses[0].display_name}
        ]
        assert personalization["subject"] == message.message["Subject"]
        headers = personalization["headers"]
        assert headers["Message-ID"] == message.message["Message-ID"]
        assert headers["References"] == "<thread-abc123@tabmail.example.org>"
        assert headers["X-Tabmail-Id"] == message.id
        assert not {"To", "From", "Subject", "Content-Type", "MIME-Version"} & set(headers)
        text = message.message.get_body(("plain",))
        html = message.message.get_body(("html",))
        assert text is not None and html is not None
        assert substituted(request.body, personalization, "text/plain") == text.get_content()
        assert substituted(request.body, personalization, "text/html") == html.get_content()
    assert request.body["from"] == {"email": "tab@example.org", "name": "Nationals 2026 Tab Room"}
    assert request.body["reply_to"] == {"email": "help@example.org"}
    assert request.body["categories"] == ["tabmail", "draw"]
    assert "mail_settings" not in request.body
    # SendGrid made one message per recipient, each carrying our id
    assert sorted(r.custom_args["tabmail_id"] for r in server.recipients) == sorted(m.id for m in messages)


def test_a_message_too_big_for_substitutions_goes_alone(server: SendGridTestServer) -> None:
    big_text = "The full draw follows.\n" + "Room 101: Government vs Opposition\n" * 300  # ~10.5 KB
    small = [outgoing(i) for i in range(3)]
    big = outgoing(3, text=big_text, html=None)
    hooks = RecordingHooks()
    send(make_backend(server, concurrency=1), [*small, big], hooks)

    assert server.validation_errors == []
    assert len(server.sent) == 2
    batched = next(r for r in server.sent if len(r.personalizations) == 3)
    alone = next(r for r in server.sent if len(r.personalizations) == 1)
    assert all("substitutions" in p for p in batched.personalizations)
    assert "substitutions" not in alone.personalizations[0]
    assert alone.body["content"] == [{"type": "text/plain", "value": big_text}]
    assert alone.personalizations[0]["custom_args"] == {"tabmail_id": big.id}
    assert {r.outcome for r in hooks.results.values()} == {Outcome.SENT}
    assert hooks.results[big.id].provider_message_id == alone.x_message_id
    assert hooks.results[small[0].id].provider_message_id == batched.x_message_id


def test_the_same_address_twice_never_shares_a_request(server: SendGridTestServer) -> None:
    messages = [outgoing(0, to="same@example.org"), outgoing(1, to="same@example.org"), outgoing(2)]
    hooks = RecordingHooks()
    send(make_backend(server), messages, hooks)
    assert sorted(len(r.personalizations) for r in server.sent) == [1, 2]
    assert len(hooks.results) == 3 and server.validation_errors == []


def test_messages_refused_by_the_outbox_are_not_sent(server: SendGridTestServer) -> None:
    messages = [outgoing(i) for i in range(4)]
    hooks = RecordingHooks(refuse=[messages[1].id])
    send(make_backend(server), messages, hooks)
    sent_ids = [p["custom_args"]["tabmail_id"] for r in server.sent for p in r.personalizations]
    assert messages[1].id not in sent_ids and len(sent_ids) == 3
    assert messages[1].id not in hooks.results and len(hooks.results) == 3


@pytest.mark.parametrize(("status", "outcome"), [(400, Outcome.PERMANENT), (403, Outcome.SETUP_REFUSED)])
def test_unverified_sender_is_refused_in_plain_words(
    server: SendGridTestServer, status: int, outcome: Outcome
) -> None:
    """A 403 is about the account's settings (sender identity, scopes): the run stops and the
    messages stay queued for the director (SETUP_REFUSED)."""
    server.fail_unverified_sender(status=status)
    hooks = RecordingHooks()
    send(make_backend(server), [outgoing(0), outgoing(1)], hooks)
    for result in hooks.results.values():
        assert result.outcome is outcome
        assert result.code == status
        assert "not a verified Sender Identity" in result.detail
        assert "Settings > Sender Authentication" in result.detail
    assert len(hooks.results) == 2


def test_a_from_address_sendgrid_does_not_know_is_refused(server: SendGridTestServer) -> None:
    server.verified_senders = {"someone-else@example.org"}
    hooks = RecordingHooks()
    send(make_backend(server), [outgoing(0)], hooks)
    assert hooks.results["tm-00000"].outcome is Outcome.SETUP_REFUSED
    assert "verified Sender Identity" in hooks.results["tm-00000"].detail


def test_bad_key_stops_the_run_and_is_never_quoted(server: SendGridTestServer) -> None:
    big = [outgoing(i, text="x" * 11000, html=None) for i in range(3)]  # three separate requests
    hooks = RecordingHooks()
    send(make_backend(server, key=WRONG_KEY, concurrency=1), big, hooks)
    assert len(hooks.results) == 3
    for result in hooks.results.values():
        assert result.outcome is Outcome.SETUP_REFUSED and result.code == 401
        assert "SendGrid rejected the API key" in result.detail
        assert WRONG_KEY not in result.detail and "wrongwrong" not in result.detail
    # after the key was rejected once, the rest fail without asking again
    assert len(server.requests_to("/v3/mail/send")) == 1


def test_rate_limit_is_transient_with_retry_after_from_reset(server: SendGridTestServer) -> None:
    server.fail_rate_limited(reset_in=30)
    hooks = RecordingHooks()
    send(make_backend(server), [outgoing(0), outgoing(1)], hooks)
    for result in hooks.results.values():
        assert result.outcome is Outcome.TRANSIENT and result.code == 429
        assert result.retry_after == pytest.approx(30, abs=1)
        assert "rate limit" in result.detail


def test_server_error_is_transient(server: SendGridTestServer) -> None:
    server.fail(500)
    hooks = RecordingHooks()
    send(make_backend(server), [outgoing(0)], hooks)
    result = hooks.results["tm-00000"]
    assert result.outcome is Outcome.TRANSIENT and result.code == 500
    assert "server error" in result.detail


def test_connection_dropped_after_the_body_is_uncertain(server: SendGridTestServer) -> None:
    server.drop_connection(path="/v3/mail/send")
    hooks = RecordingHooks()
    send(make_backend(server), [outgoing(0), outgoing(1)], hooks)
    assert [r.body != b"" for r in server.requests_to("/v3/mail/send")] == [True]
    for result in hooks.results.values():
        assert result.outcome is Outcome.UNCERTAIN
        assert "may or may not have been accepted" in result.detail
    assert len(hooks.results) == 2


def test_no_connection_at_all_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    backend = SendGridBackend(SendGridConfig(url, DEFAULT_KEY, timeout=5))
    hooks = RecordingHooks()
    send(backend, [outgoing(0)], hooks)
    result = hooks.results["tm-00000"]
    assert result.outcome is Outcome.TRANSIENT
    assert "nothing was sent" in result.detail


def test_one_bad_address_fails_alone_and_the_rest_are_sent(server: SendGridTestServer) -> None:
    messages = [outgoing(i) for i in range(5)]
    messages[2] = outgoing(2, to="not-an-address@@example")
    hooks = RecordingHooks()
    send(make_backend(server), messages, hooks)

    bad = hooks.results[messages[2].id]
    assert bad.outcome is Outcome.PERMANENT and bad.flag_address
    assert "Does not contain a valid address" in bad.detail
    assert all(hooks.results[m.id].outcome is Outcome.SENT for i, m in enumerate(messages) if i != 2)
    assert [len(r.personalizations) for r in server.sent] == [4]
    # the only thing the server found wrong was that address (the spec's format check and ours)
    assert server.validation_errors and all(
        "personalizations/2/to/0/email" in e or "personalizations.2.to.0.email" in e
        for e in server.validation_errors
    )


def test_too_large_batch_is_split(server: SendGridTestServer) -> None:
    server.fail(413, path="/v3/mail/send")
    messages = [outgoing(i) for i in range(4)]
    hooks = RecordingHooks()
    send(make_backend(server), messages, hooks)
    assert [len(r.personalizations) for r in server.sent] == [2, 2]
    assert {r.outcome for r in hooks.results.values()} == {Outcome.SENT}
    assert len(hooks.handed) == 1  # the split did not hand the messages over twice


def test_sandbox_config_sends_everything_in_sandbox_mode(server: SendGridTestServer) -> None:
    hooks = RecordingHooks()
    backend = make_backend(server, sandbox=True)
    assert DEFAULT_KEY not in repr(backend.config)
    assert "sandbox" in backend.info.description and backend.info.is_sendgrid
    send(backend, [outgoing(0), outgoing(1)], hooks)
    assert server.sent[0].sandbox and server.sent[0].body["mail_settings"] == {
        "sandbox_mode": {"enable": True}
    }
    assert server.recipients == []
    assert all(r.outcome is Outcome.SENT and "sandbox" in r.detail for r in hooks.results.values())


def test_unicode_names_and_commas(server: SendGridTestServer) -> None:
    message = outgoing(0, name="Zoë Müller, Jr.", subject="Ronda 3 — sorteo")
    hooks = RecordingHooks()
    send(make_backend(server), [message], hooks)
    personalization = server.sent[0].personalizations[0]
    assert personalization["to"][0]["name"] == "Zoë Müller Jr."
    assert personalization["subject"] == "Ronda 3 — sorteo"
    assert server.validation_errors == []


def test_check_names_missing_scopes_and_makes_a_sandbox_send(server: SendGridTestServer) -> None:
    server.scopes = {"mail.send", "suppression.read"}
    backend = make_backend(server, from_address="tab@example.org")
    summary = asyncio.run(backend.check())
    assert "mail.send" in summary
    assert "messages.read" in summary
    assert "suppression.bounces.delete" in summary
    assert "suppression.bounces.read" not in summary  # granted by suppression.read
    assert "sandbox" in summary
    [probe] = server.sent
    assert probe.sandbox and probe.body["from"] == {"email": "tab@example.org"}
    assert probe.personalizations[0]["to"] == [{"email": "tab@example.org"}]
    assert server.recipients == [] and server.validation_errors == []


def test_check_refuses_a_key_without_mail_send(server: SendGridTestServer) -> None:
    server.scopes = {"messages.read"}
    with pytest.raises(TabmailError, match=r"mail\.send"):
        asyncio.run(make_backend(server, from_address="tab@example.org").check())
    assert server.sent == []


def test_check_with_a_bad_key_says_so_without_the_key(server: SendGridTestServer) -> None:
    with pytest.raises(TabmailError) as caught:
        asyncio.run(make_backend(server, key=WRONG_KEY).check())
    assert "rejected the API key" in str(caught.value)
    assert WRONG_KEY not in str(caught.value)


def test_check_reports_an_unverified_sender(server: SendGridTestServer) -> None:
    server.verified_senders = {"other@example.org"}
    with pytest.raises(TabmailError, match="verified Sender Identity"):
        asyncio.run(make_backend(server, from_address="tab@example.org").check())
