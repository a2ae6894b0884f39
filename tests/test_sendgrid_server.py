"""The SendGrid-compatible test server itself: validation, timelines, queries, suppressions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.servers.sendgrid import (
    DEFAULT_KEY,
    SendGridTestServer,
    bounced,
    deferred,
    dropped,
    invalid_address,
    iso,
    late_bounce,
    opened,
    spam_report,
    unsubscribed,
)
from tests.servers.sendgrid.spec import response_errors

AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}", "Accept": "application/json"}


@pytest.fixture
def server() -> Iterator[SendGridTestServer]:
    with SendGridTestServer() as running:
        yield running


def call(server: SendGridTestServer, method: str, path: str, **options: Any) -> requests.Response:
    headers = {**AUTH, **options.pop("headers", {})}
    return requests.request(method, server.url + path, headers=headers, timeout=10, **options)


def mail(*addresses: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [
            {"to": [{"email": a}], "custom_args": {"tabmail_id": f"id-{a.partition('@')[0]}"}}
            for a in addresses
        ],
        "from": {"email": "tab@example.org"},
        "subject": "Round 2 draw",
        "content": [{"type": "text/plain", "value": "Hello"}],
    }
    body.update(extra)
    return body


def spec_check(server: SendGridTestServer, answer: requests.Response) -> list[str]:
    """The answer checked against the OpenAPI files, as the recorded request was sent."""
    request = server.requests[-1]
    return response_errors(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        answer.status_code,
        answer.content,
    )


# -- validation -----------------------------------------------------------------------------------


def test_a_good_request_passes_validation(server: SendGridTestServer) -> None:
    answer = call(server, "POST", "/v3/mail/send", json=mail("a@example.org", "b@example.org"))
    assert answer.status_code == 202 and answer.content == b""
    assert len(answer.headers["X-Message-Id"]) == 22
    assert server.validation_errors == []
    assert [r.email for r in server.recipients] == ["a@example.org", "b@example.org"]
    assert server.recipients[0].msg_id.startswith(answer.headers["X-Message-Id"] + ".recvd-")
    assert server.recipients[0].msg_id != server.recipients[1].msg_id


def test_validation_catches_a_bad_body(server: SendGridTestServer) -> None:
    body = mail("a@example.org")
    del body["from"]
    body["personalizations"][0]["custom_args"] = {"round": 2}  # a number: SendGrid says Bad Request
    answer = call(server, "POST", "/v3/mail/send", json=body)
    assert answer.status_code == 400
    assert any("'from' is a required property" in e for e in server.validation_errors)
    assert any("2 is not of type 'string'" in e for e in server.validation_errors)
    assert answer.json()["errors"][0]["field"] is not None or answer.json()["errors"][0]["message"]
    assert server.sent == []


def test_custom_args_spec_error_is_worked_around(server: SendGridTestServer) -> None:
    # the spec says top-level custom_args is a string; SendGrid wants an object of strings
    call(server, "POST", "/v3/mail/send", json=mail("a@example.org", custom_args={"app": "tabmail"}))
    assert server.validation_errors == []
    assert server.recipients[0].custom_args == {"app": "tabmail", "tabmail_id": "id-a"}
    call(server, "POST", "/v3/mail/send", json=mail("b@example.org", custom_args="app=tabmail"))
    assert any("custom_args" in e and "not of type 'object'" in e for e in server.validation_errors)


def test_documented_rules_beyond_the_spec(server: SendGridTestServer) -> None:
    body = mail("a@example.org", "b@example.org")
    body["personalizations"][0]["headers"] = {"From": "evil@example.org"}
    body["personalizations"][1]["substitutions"] = {"-body-": "x" * 10001}
    body["personalizations"][1]["cc"] = [{"email": "B@example.org"}]
    answer = call(server, "POST", "/v3/mail/send", json=body)
    assert answer.status_code == 400
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {
        "personalizations.0.headers",
        "personalizations.1.substitutions",
        "personalizations.1.cc",
    }
    assert len(server.validation_errors) == 3


def test_wrong_content_type_and_bad_json(server: SendGridTestServer) -> None:
    answer = call(server, "POST", "/v3/mail/send", data=b"{", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["errors"][0]["message"] == "Bad Request"
    answer = call(server, "POST", "/v3/mail/send", data=b"x", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert server.validation_errors


def test_unknown_path_and_missing_auth(server: SendGridTestServer) -> None:
    assert call(server, "GET", "/v3/nothing").status_code == 404
    assert any("no SendGrid OpenAPI file" in e for e in server.validation_errors)
    answer = requests.get(server.url + "/v3/scopes", timeout=10)
    assert answer.status_code == 401 and answer.json()["errors"][0]["message"] == "authorization required"


def test_sandbox_mode_validates_and_sends_nothing(server: SendGridTestServer) -> None:
    body = mail("a@example.org", mail_settings={"sandbox_mode": {"enable": True}})
    answer = call(server, "POST", "/v3/mail/send", json=body)
    assert answer.status_code == 200 and "X-Message-Id" not in answer.headers
    assert server.sent[0].sandbox and server.recipients == []


# -- timelines ------------------------------------------------------------------------------------


def send(server: SendGridTestServer, *addresses: str) -> None:
    assert call(server, "POST", "/v3/mail/send", json=mail(*addresses)).status_code == 202


def names(server: SendGridTestServer, email: str) -> list[str]:
    return [e["event"] for e in server.events() if e["email"] == email]


def test_timelines_unfold_on_the_clock(server: SendGridTestServer) -> None:
    server.script("slow@example.org", deferred(times=2, every=300))
    server.script("hard@example.org", bounced("bounce", after=5))
    server.script("soft@example.org", bounced("blocked", after=5))
    server.script("drop@example.org", dropped("Spam Content"))
    server.script("reader@example.org", opened(after=60))
    server.script("angry@example.org", spam_report(after=120))
    server.script("late@example.org", late_bounce(after=3600))
    server.script("bye@example.org", unsubscribed(after=120))
    server.script("typo@example.org", invalid_address())
    everyone = ["ok", "slow", "hard", "soft", "drop", "reader", "angry", "late", "bye", "typo"]
    send(server, *(f"{n}@example.org" for n in everyone))
    start = server.clock.now()

    assert names(server, "ok@example.org") == ["processed"]
    server.advance(10)
    assert names(server, "ok@example.org") == ["processed", "delivered"]
    assert names(server, "slow@example.org") == ["processed"]
    hard = [e for e in server.events() if e["email"] == "hard@example.org"][-1]
    assert (hard["event"], hard["type"], hard["status"]) == ("bounce", "bounce", "5.1.1")
    assert hard["tabmail_id"] == "id-hard" and hard["timestamp"] == start + 5
    soft = [e for e in server.events() if e["email"] == "soft@example.org"][-1]
    assert soft["type"] == "blocked"
    drop = [e for e in server.events() if e["email"] == "drop@example.org"][-1]
    assert (drop["event"], drop["reason"]) == ("dropped", "Spam Content")

    server.advance(3600)
    slow = [e for e in server.events() if e["email"] == "slow@example.org"]
    assert [e["event"] for e in slow] == ["processed", "deferred", "deferred", "delivered"]
    assert [e["attempt"] for e in slow if e["event"] == "deferred"] == ["1", "2"]
    assert names(server, "reader@example.org")[-1] == "open"
    assert names(server, "angry@example.org")[-1] == "spamreport"
    late = [e for e in server.events() if e["email"] == "late@example.org"][-1]
    assert late["event"] == "bounce" and "sg_message_id" not in late
    assert {e["sg_event_id"] for e in server.events()} == {e["sg_event_id"] for e in server.events()}
    assert len({e["sg_event_id"] for e in server.events()}) == len(server.events())

    lists = {
        name: [r["email"] for r in server.suppressions(name)]
        for name in ("bounces", "blocks", "spam_reports")
    }
    assert sorted(lists["bounces"]) == ["hard@example.org", "late@example.org"]
    assert lists["blocks"] == ["soft@example.org"]
    assert lists["spam_reports"] == ["angry@example.org"]
    assert [r["email"] for r in server.suppressions("unsubscribes")] == ["bye@example.org"]
    assert [r["email"] for r in server.suppressions("invalid_emails")] == ["typo@example.org"]


def test_mail_to_a_suppressed_address_is_dropped(server: SendGridTestServer) -> None:
    server.add_suppression("bounces", "gone@example.org")
    server.add_suppression("blocks", "blocked@example.org")  # blocks do not suppress
    send(server, "gone@example.org", "blocked@example.org")
    server.advance(5)
    gone = [e for e in server.events() if e["email"] == "gone@example.org"]
    assert [e["event"] for e in gone] == ["processed", "dropped"] and gone[-1]["reason"] == "Bounced Address"
    assert names(server, "blocked@example.org") == ["processed", "delivered"]


# -- Email Activity ---------------------------------------------------------------------------------


def activity(server: SendGridTestServer, query: str | None = None, limit: int = 1000) -> requests.Response:
    params: dict[str, Any] = {"limit": limit}
    if query is not None:
        params["query"] = query
    return call(server, "GET", "/v3/messages", params=params)


def test_activity_query_subset(server: SendGridTestServer) -> None:
    server.activity_rate_limit = None
    server.script("hard@example.org", bounced())
    send(server, "a@example.org", "hard@example.org")
    server.advance(100)
    send(server, "b@example.org")
    server.advance(10)
    now = server.clock.now()

    answer = activity(server)
    assert answer.status_code == 200 and spec_check(server, answer) == []
    assert [m["to_email"] for m in answer.json()["messages"]] == [
        "b@example.org",
        "hard@example.org",
        "a@example.org",
    ]
    assert activity(server, limit=2).json()["messages"][0]["to_email"] == "b@example.org"
    assert len(activity(server, limit=2).json()["messages"]) == 2

    def emails(query: str) -> list[str]:
        found = activity(server, query)
        assert found.status_code == 200, found.text
        return sorted(m["to_email"] for m in found.json()["messages"])

    assert emails('to_email="hard@example.org"') == ["hard@example.org"]
    assert emails('status="not_delivered"') == ["hard@example.org"]
    assert emails("status='delivered' AND NOT to_email='a@example.org'") == ["b@example.org"]
    window = f'last_event_time BETWEEN TIMESTAMP "{iso(now - 20)}" AND TIMESTAMP "{iso(now)}"'
    assert emails(window) == ["b@example.org"]
    assert emails('(unique_args[\'tabmail_id\']="id-a") OR to_email="b@example.org"') == [
        "a@example.org",
        "b@example.org",
    ]
    x_message_id = server.sent[0].x_message_id
    assert emails(f"msg_id LIKE '{x_message_id}%'") == ["a@example.org", "hard@example.org"]
    assert emails('Contains(events,"bounce")') == ["hard@example.org"]

    unknown = activity(server, 'bad_field="x"')
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["message"] == "invalid syntax: 'bad_field' is not a known field"
    contains = activity(server, 'Contains(to_email,"x")')
    assert (
        contains.json()["errors"][0]["message"]
        == "CONTAINS expects an array or map type as the first argument"
    )
    assert activity(server, limit=1001).status_code == 400
    assert any("limit" in e for e in server.validation_errors)  # the spec caps limit at 1000


def test_activity_detail_in_both_vocabularies_and_duplicates(server: SendGridTestServer) -> None:
    server.activity_rate_limit = None
    server.script("hard@example.org", bounced())
    send(server, "hard@example.org")
    server.advance(60)
    msg_id = server.recipients[0].msg_id

    detail = call(server, "GET", f"/v3/messages/{msg_id}").json()
    assert [e["event_name"] for e in detail["events"]] == ["processed", "bounced"]
    assert (
        detail["events"][1]["bounce_type"] == "hard" and detail["unique_args"] == "{'tabmail_id': 'id-hard'}"
    )
    assert detail["status"] == "not_delivered"

    server.event_names = "webhook"
    server.duplicate_events = True
    detail = call(server, "GET", f"/v3/messages/{msg_id}").json()
    assert [e["event_name"] for e in detail["events"]] == ["processed", "processed", "bounce", "bounce"]
    assert detail["events"][2]["bounce_type"] == "bounce"
    assert call(server, "GET", "/v3/messages/nope").status_code == 404


@pytest.mark.parametrize(("mode", "status"), [("no_addon", 400), ("forbidden", 403), ("unauthorized", 401)])
def test_activity_without_the_add_on(server: SendGridTestServer, mode: str, status: int) -> None:
    server.activity = mode
    answer = activity(server, limit=1)
    assert answer.status_code == status
    assert answer.json()["errors"][0]["message"] in ("authorization required", "access forbidden")


def test_activity_rate_limit(server: SendGridTestServer) -> None:
    answers = [activity(server, limit=1) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 6 + [429]
    assert answers[5].headers["X-RateLimit-Remaining"] == "0"
    limited = answers[6]
    assert limited.headers["X-RateLimit-Limit"] == "6"
    assert int(limited.headers["X-RateLimit-Reset"]) == server.clock.now() + 60
    server.advance(61)
    assert activity(server, limit=1).status_code == 200


# -- Email Logs ------------------------------------------------------------------------------------


def test_logs_query_and_detail(server: SendGridTestServer) -> None:
    server.script("hard@example.org", bounced())
    server.script("slow@example.org", deferred(times=1, every=600))
    send(server, "a@example.org", "hard@example.org", "slow@example.org")
    sent_at = server.clock.now()
    server.advance(30)

    def logs(query: str, limit: int = 100) -> requests.Response:
        return call(server, "POST", "/v3/logs", json={"query": query, "limit": limit})

    found = logs(
        f"sg_message_id_created_at >= TIMESTAMP \"{iso(sent_at)}\" AND status IN ('bounced','deferred')"
    )
    assert found.status_code == 200 and spec_check(server, found) == []
    [row] = found.json()["messages"]
    assert (row["to_email"], row["status"]) == ("hard@example.org", "bounced") and "5.1.1" in row["reason"]
    server.advance(1200)
    statuses = {
        m["to_email"]: m["status"]
        for m in logs('status IN ("processed", "delivered", "deferred")').json()["messages"]
    }
    assert statuses == {"a@example.org": "delivered", "slow@example.org": "delivered"}
    assert logs("to_email = 'a@example.org' OR to_email = 'b@example.org'").status_code == 400
    assert logs(f'sg_message_id_created_at > TIMESTAMP "{iso(sent_at)}"').json()["messages"] == []

    msg_id = server.recipient("id-hard").msg_id
    detail = call(server, "GET", f"/v3/logs/{msg_id}")
    assert detail.status_code == 200 and spec_check(server, detail) == []
    events = detail.json()["events"]
    assert [e["event"] for e in events] == ["processed", "bounce"]
    assert events[1]["custom_args"] == {"tabmail_id": "id-hard"} and "tabmail_id" not in events[1]
    assert server.validation_errors == []

    server.logs_available = False
    assert logs("status IN ('bounced')").status_code == 403


# -- suppression lists -----------------------------------------------------------------------------


def test_suppression_paging_filters_and_delete(server: SendGridTestServer) -> None:
    base = server.clock.now()
    for n in range(7):
        server.add_suppression("bounces", f"user{n}@example.org", created=base + n, reason="550 gone")
    pages = []
    for offset in (0, 3, 6):
        page = call(server, "GET", "/v3/suppression/bounces", params={"limit": 3, "offset": offset})
        assert page.status_code == 200 and spec_check(server, page) == []
        pages.append([r["email"] for r in page.json()])
    assert [len(p) for p in pages] == [3, 3, 1]
    assert pages[0][0] == "user6@example.org"  # newest first
    assert sorted(e for page in pages for e in page) == sorted(f"user{n}@example.org" for n in range(7))

    window = call(
        server,
        "GET",
        "/v3/suppression/bounces",
        params={"start_time": int(base + 2), "end_time": int(base + 4)},
    )
    assert sorted(r["email"] for r in window.json()) == [
        "user2@example.org",
        "user3@example.org",
        "user4@example.org",
    ]
    prefix = call(server, "GET", "/v3/suppression/bounces", params={"email": "user5"})
    assert [r["email"] for r in prefix.json()] == ["user5@example.org"]

    assert call(server, "DELETE", "/v3/suppression/bounces/user5@example.org").status_code == 204
    assert call(server, "GET", "/v3/suppression/bounces/user5@example.org").json() == []
    one = call(server, "GET", "/v3/suppression/bounces/user4@example.org").json()
    assert one == [
        {"created": int(base + 4), "email": "user4@example.org", "reason": "550 gone", "status": "5.1.1"}
    ]
    gone = call(
        server,
        "DELETE",
        "/v3/suppression/bounces",
        json={"emails": ["user0@example.org", "user1@example.org"]},
    )
    assert gone.status_code == 204 and len(server.suppressions("bounces")) == 4
    both = call(
        server, "DELETE", "/v3/suppression/bounces", json={"delete_all": True, "emails": ["x@example.org"]}
    )
    assert both.status_code == 400
    assert server.validation_errors == []


def test_other_lists_and_global_unsubscribes(server: SendGridTestServer) -> None:
    server.add_suppression("spam_reports", "angry@example.org")
    server.add_suppression("unsubscribes", "bye@example.org")
    server.add_suppression("invalid_emails", "typo@example")
    spam = call(server, "GET", "/v3/suppression/spam_reports")
    assert spam.json()[0]["ip"] and spec_check(server, spam) == []
    assert call(server, "GET", "/v3/suppression/unsubscribes").json()[0]["email"] == "bye@example.org"
    assert call(server, "GET", "/v3/asm/suppressions/global/bye@example.org").json() == {
        "recipient_email": "bye@example.org"
    }
    assert call(server, "DELETE", "/v3/asm/suppressions/global/bye@example.org").status_code == 204
    assert call(server, "GET", "/v3/asm/suppressions/global/bye@example.org").json() == {}
    assert call(server, "GET", "/v3/suppression/invalid_emails").json()[0]["reason"]


def test_suppression_scopes(server: SendGridTestServer) -> None:
    server.scopes = {"mail.send", "suppression.bounces.read"}
    assert call(server, "GET", "/v3/suppression/bounces").status_code == 200
    assert call(server, "GET", "/v3/suppression/blocks").status_code == 403
    assert call(server, "DELETE", "/v3/suppression/bounces/a@example.org").status_code == 403


# -- modes and faults ------------------------------------------------------------------------------


def test_scopes_and_account(server: SendGridTestServer) -> None:
    answer = call(server, "GET", "/v3/scopes")
    assert "mail.send" in answer.json()["scopes"] and spec_check(server, answer) == []
    assert call(server, "GET", "/v3/user/account").json()["type"] == "paid"


def test_faults_for_the_next_n_requests(server: SendGridTestServer) -> None:
    server.fail(500, times=2, path="/v3/scopes")
    statuses = [call(server, "GET", "/v3/scopes").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    server.fail_malformed(times=None, path="/v3/messages")
    for _ in range(2):
        with pytest.raises(json.JSONDecodeError):
            json.loads(activity(server, limit=1).content)
    server.clear_faults()
    assert activity(server, limit=1).json() == {"messages": []}


def test_fault_on_one_method_only(server: SendGridTestServer) -> None:
    server.fail(503, method="DELETE")
    assert call(server, "GET", "/v3/suppression/bounces").status_code == 200
    assert call(server, "DELETE", "/v3/suppression/bounces/a@example.org").status_code == 503
