"""SendGridClient: auth, rate-limit headers and SendGrid's errors in plain words."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tabmail.domain.errors import TabmailError
from tabmail.providers.sendgrid import (
    RateLimit,
    SendGridClient,
    SendGridConnectionError,
    SendGridError,
    missing_scopes,
    scope_for,
)
from tests.servers.sendgrid import ALL_SCOPES, DEFAULT_KEY, SendGridTestServer, error_body

MAIL = {
    "personalizations": [{"to": [{"email": "a@example.org"}], "custom_args": {"tabmail_id": "m1"}}],
    "from": {"email": "tab@example.org"},
    "subject": "Round 1",
    "content": [{"type": "text/plain", "value": "Hello"}],
}


@pytest.fixture
def server() -> Iterator[SendGridTestServer]:
    with SendGridTestServer() as running:
        yield running


@pytest.fixture
def client(server: SendGridTestServer) -> Iterator[SendGridClient]:
    made = SendGridClient(server.url, DEFAULT_KEY, clock=server.clock, timeout=10)
    yield made
    made.close()


def test_rate_limit_headers_are_read_case_insensitively() -> None:
    lower = RateLimit.from_headers(
        {"x-ratelimit-limit": "600", "X-Ratelimit-Remaining": "7", "X-RATELIMIT-RESET": "1700000060"}
    )
    assert lower == RateLimit(limit=600, remaining=7, reset=1700000060.0)
    assert lower.seconds_until_reset(1700000000.0) == 60.0
    assert lower.seconds_until_reset(1800000000.0) == 0.0
    garbled = RateLimit.from_headers({"X-RateLimit-Limit": "lots", "X-RateLimit-Reset": "nan"})
    assert garbled == RateLimit() and garbled.seconds_until_reset(0) is None


def test_bearer_auth_json_and_message_id(server: SendGridTestServer, client: SendGridClient) -> None:
    answer = client.request("POST", "/v3/mail/send", json=MAIL)
    assert answer.status == 202
    assert answer.message_id == server.sent[0].x_message_id and len(answer.message_id or "") == 22
    assert answer.rate_limit.limit == 10000
    assert client.last_rate_limit == answer.rate_limit
    recorded = server.requests[0]
    assert recorded.headers["Authorization"] == "Bearer [redacted]"  # the server saw a Bearer key
    assert recorded.headers["Content-Type"] == "application/json"
    assert server.validation_errors == []


def test_scopes(server: SendGridTestServer, client: SendGridClient) -> None:
    assert client.get_scopes() == set(ALL_SCOPES)
    server.scopes = {"mail.send"}
    assert client.get_scopes() == {"mail.send"}


def test_query_parameters_are_encoded_with_percent_20(
    server: SendGridTestServer, client: SendGridClient
) -> None:
    client.request("GET", "/v3/messages", params={"limit": 10, "query": 'to_email="a b@example.org"'})
    target = server.requests[-1].target
    assert "%20" in target and "+" not in target
    assert server.requests[-1].query == [("limit", "10"), ("query", 'to_email="a b@example.org"')]


def test_lowercase_rate_limit_headers_from_the_server(
    server: SendGridTestServer, client: SendGridClient
) -> None:
    server.lowercase_ratelimit_headers = True
    answer = client.request("GET", "/v3/scopes")
    assert answer.rate_limit.remaining == 9999


def test_bad_key_in_plain_words_without_the_key(server: SendGridTestServer) -> None:
    key = "SG.notthekey1234567890.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
    wrong = SendGridClient(server.url, key)
    with pytest.raises(SendGridError) as caught:
        wrong.get_scopes()
    assert caught.value.status == 401
    assert str(caught.value).startswith(
        "SendGrid rejected the API key (HTTP 401: The provided authorization grant"
    )
    assert key not in str(caught.value) and "notthekey" not in repr(caught.value.args)
    assert isinstance(caught.value, TabmailError)


def test_a_key_echoed_by_the_server_is_hidden(server: SendGridTestServer, client: SendGridClient) -> None:
    server.fail(400, body=error_body(f"bad header Bearer {DEFAULT_KEY}", "headers"))
    with pytest.raises(SendGridError) as caught:
        client.request("GET", "/v3/scopes")
    assert DEFAULT_KEY not in str(caught.value) and "[API key]" in str(caught.value)


def test_a_key_with_a_line_break_is_refused_without_quoting_it() -> None:
    with pytest.raises(SendGridError) as caught:
        SendGridClient("https://api.sendgrid.com", "SG.abc.def\nX-Evil: 1")
    assert "SG.abc" not in str(caught.value) and "paste it again" in str(caught.value)
    with pytest.raises(SendGridError, match="No SendGrid API key"):
        SendGridClient("https://api.sendgrid.com", "  ")


def test_missing_scope_names_the_scope(server: SendGridTestServer, client: SendGridClient) -> None:
    server.scopes = {"messages.read"}
    with pytest.raises(SendGridError) as caught:
        client.request("POST", "/v3/mail/send", json=MAIL)
    assert caught.value.status == 403
    assert "lacks the 'mail.send' permission" in str(caught.value)


def test_unverified_sender_in_plain_words(server: SendGridTestServer, client: SendGridClient) -> None:
    server.verified_senders = {"other@example.org"}
    with pytest.raises(SendGridError) as caught:
        client.request("POST", "/v3/mail/send", json=MAIL)
    assert str(caught.value) == (
        "SendGrid refused to send: the From address is not a verified Sender Identity in SendGrid: "
        "verify it under Settings > Sender Authentication (HTTP 403)"
    )


def test_field_errors_are_named(server: SendGridTestServer, client: SendGridClient) -> None:
    bad = {**MAIL, "personalizations": [{"to": [{"email": "nobody"}]}]}
    with pytest.raises(SendGridError) as caught:
        client.request("POST", "/v3/mail/send", json=bad)
    assert caught.value.status == 400
    assert "personalizations.0.to.0.email: Does not contain a valid address." in str(caught.value)
    assert caught.value.errors[0].field == "personalizations.0.to.0.email"
    assert caught.value.errors[0].help is not None


def test_too_large(server: SendGridTestServer, client: SendGridClient) -> None:
    server.fail(413)
    with pytest.raises(SendGridError, match=r"too large \(HTTP 413: content too large\)"):
        client.request("POST", "/v3/mail/send", json=MAIL)


def test_rate_limited_with_reset(server: SendGridTestServer, client: SendGridClient) -> None:
    server.fail_rate_limited(reset_in=42)
    with pytest.raises(SendGridError) as caught:
        client.request("GET", "/v3/scopes")
    assert caught.value.status == 429
    assert caught.value.retry_after == 42
    assert (
        str(caught.value)
        == "SendGrid's rate limit was reached (HTTP 429: too many requests); it resets in 42 s"
    )


def test_server_error(server: SendGridTestServer, client: SendGridClient) -> None:
    server.fail(503, body=b"")
    with pytest.raises(SendGridError) as caught:
        client.request("GET", "/v3/scopes")
    assert caught.value.status == 503 and caught.value.retry_after is None
    assert "server error (HTTP 503: no explanation given)" in str(caught.value)


def test_non_json_error_body_is_excerpted(server: SendGridTestServer, client: SendGridClient) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head>\r\n<body>" + b"x" * 5000 + b"</body></html>"
    server.fail(502, body=page, headers={"Content-Type": "text/html"})
    with pytest.raises(SendGridError) as caught:
        client.request("GET", "/v3/scopes")
    message = str(caught.value)
    assert "HTTP 502" in message and "<html><head><title>502 Bad Gateway</title>" in message
    assert len(message) < 300 and "\r" not in message


def test_malformed_success_body(server: SendGridTestServer, client: SendGridClient) -> None:
    server.fail_malformed(path="/v3/scopes")
    with pytest.raises(SendGridError, match="not valid JSON") as caught:
        client.get_scopes()
    assert caught.value.response is not None and caught.value.response.body.startswith(b'{"messages"')


def test_unexpected_shape_of_scopes(server: SendGridTestServer, client: SendGridClient) -> None:
    server.fail(200, body=b'{"scopes": "mail.send"}', path="/v3/scopes")
    with pytest.raises(SendGridError, match="unexpected shape"):
        client.get_scopes()


def test_authorization_required_is_recognisable(server: SendGridTestServer, client: SendGridClient) -> None:
    server.activity = "no_addon"
    with pytest.raises(SendGridError) as caught:
        client.request("GET", "/v3/messages", params={"limit": 1})
    assert caught.value.status == 400 and caught.value.authorization_required
    assert "does not have this feature" in str(caught.value)


def test_connection_refused_was_never_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SendGridClient(f"http://127.0.0.1:{port}", DEFAULT_KEY, timeout=5)
    with pytest.raises(SendGridConnectionError) as caught:
        client.request("POST", "/v3/mail/send", json=MAIL)
    assert caught.value.request_sent is False
    assert "Could not connect to SendGrid at 127.0.0.1" in str(caught.value)
    assert "refused" in str(caught.value)


def test_dropped_after_the_body_may_have_been_sent(
    server: SendGridTestServer, client: SendGridClient
) -> None:
    server.drop_connection()
    with pytest.raises(SendGridConnectionError) as caught:
        client.request("POST", "/v3/mail/send", json=MAIL)
    assert caught.value.request_sent is True
    assert "may or may not have been accepted" in str(caught.value)
    assert len(server.requests) == 1


def test_timeout_after_sending_is_uncertain(server: SendGridTestServer) -> None:
    server.latency = 1.0
    client = SendGridClient(server.url, DEFAULT_KEY, timeout=0.2)
    with pytest.raises(SendGridConnectionError) as caught:
        client.request("POST", "/v3/mail/send", json=MAIL)
    assert caught.value.request_sent is True
    assert "no answer within 0.2 s" in str(caught.value)


def test_missing_scopes_per_feature() -> None:
    assert missing_scopes(ALL_SCOPES) == {}
    missing = missing_scopes({"mail.send", "suppression.read"})
    assert "sending mail" not in missing
    assert any("messages.read" in names for names in missing.values())
    assert not any("suppression.blocks.read" in names for names in missing.values())
    deleting = next(names for feature, names in missing.items() if "removing" in feature)
    assert "suppression.bounces.delete" in deleting and "asm.suppressions.global.delete" in deleting
    assert missing_scopes(set())["sending mail"] == ["mail.send"]


def test_scope_for() -> None:
    assert scope_for("POST", "/v3/mail/send") == "mail.send"
    assert scope_for("GET", "/v3/messages/abc") == "messages.read"
    assert scope_for("DELETE", "/v3/suppression/bounces/a@example.org") == "suppression.bounces.delete"
    assert scope_for("GET", "/v3/asm/suppressions/global/a@example.org") == "asm.suppressions.global.read"
    assert scope_for("GET", "/v3/user/account") is None
