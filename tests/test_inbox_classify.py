"""The inbox classifier (tabmail/status/inbound.py) on real bounces and hand-made messages."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from flufl.bounce import all_failures

from tabmail.status.inbound import InboundKind, classify, header_key, tabmail_id_of, verp_id_of
from tests.datafiles import data_path

CORPUS = sorted(data_path("flufl-bounce").glob("*.txt"))
NOT_BOUNCES = {"bounce_01.txt", "dumbass_01.txt", "qmail_08.txt", "groupwise_03.txt", "simple_43.txt"}
TID = "01M8VRDJZMCR7QSK0H1FS2W2W6"


def test_corpus_is_there() -> None:
    assert len(CORPUS) == 117


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_bounce_flufl_detects_is_a_bounce_naming_the_same_recipients(path) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_bytes()
    temporary, permanent = all_failures(message_from_bytes(raw))
    got = classify(raw)
    want = {a.decode().lower() for a in temporary | permanent}
    assert {r.address.lower() for r in got.recipients} == want
    if path.name in NOT_BOUNCES:
        assert got.kind in (InboundKind.AUTO_REPLY, InboundKind.IGNORED)
    else:
        assert got.kind in (InboundKind.DSN, InboundKind.BOUNCE)
        for r in got.recipients:
            assert r.action == (
                "delayed" if r.address.encode().lower() in {a.lower() for a in temporary} else "failed"
            )


@pytest.mark.parametrize(
    ("name", "kind", "address", "action"),
    [
        ("postfix_01.txt", InboundKind.BOUNCE, "xxxxx@local.ie", "failed"),
        ("exim_01.txt", InboundKind.BOUNCE, "userx@its.example.nl", "failed"),
        ("dsn_05.txt", InboundKind.DSN, "userx@example.cz", "delayed"),
        ("dsn_03.txt", InboundKind.DSN, "userx@example.be", "failed"),  # "Action: failure"
        ("simple_22.txt", InboundKind.BOUNCE, "User@example.org", "delayed"),  # encoded Subject
        ("qmail_01.txt", InboundKind.BOUNCE, "userx@example.de", "failed"),
    ],
)
def test_known_samples(name: str, kind: InboundKind, address: str, action: str) -> None:
    got = classify(data_path("flufl-bounce", name).read_bytes())
    assert got.kind is kind
    assert (address, action) in [(r.address, r.action) for r in got.recipients]


def test_real_postfix_dsn_names_recipient_status_and_the_original() -> None:
    got = classify(data_path("mail", "postfix-dsn-unknown-user.eml").read_bytes())
    assert got.kind is InboundKind.DSN
    (r,) = got.recipients
    assert (r.address, r.action, r.status, r.permanent) == (
        "bjorn.carvalho@tab.example",
        "failed",
        "5.1.1",
        True,
    )
    assert r.diagnostic == 'unknown user: "bjorn.carvalho"'
    assert got.original_message_id == f"<{TID}@tab.example>"
    assert got.original_tabmail_id == TID


def _mail(headers: dict[str, str], body: str = "Hello\n") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode()


REPLY_HEADERS = {
    "From": "Alice <alice@tab.example>",
    "To": "tab@tab.example",
    "Subject": "Re: Round 1: you are the chair",
    "Message-ID": "<r1@mail.example>",
    "In-Reply-To": f"<{TID}@tab.example>",
    "References": f"<v1.{'a' * 64}@tab.example> <{TID}@tab.example>",
}


def test_a_reply_to_our_message_with_its_text_and_quoted_history_folded() -> None:
    body = "I cannot chair, my partner is ill.\n\nOn Mon, 1 Dec 2026 at 10:00, Tab Room <tab@tab.example> wrote:\n> Round 1: you are the chair\n"
    got = classify(_mail(REPLY_HEADERS, body))
    assert got.kind is InboundKind.REPLY
    assert got.reply_text == "I cannot chair, my partner is ill."
    assert got.in_reply_to == (f"<{TID}@tab.example>",)
    assert got.all_references[0] == f"<{TID}@tab.example>"


@pytest.mark.parametrize(
    "extra",
    [
        {"Subject": "Out of Office: Round 1"},
        {"Subject": "Automatic reply: Round 1"},
        {"X-Autoreply": "yes"},
        {"Precedence": "auto_reply"},
        {"Auto-Submitted": "auto-replied"},
        {"Subject": "Abwesenheitsnotiz: Round 1"},
    ],
)
def test_auto_replies_are_never_bounces_even_when_they_look_like_one(extra: dict[str, str]) -> None:
    headers = {**REPLY_HEADERS, "Return-Path": "<>", **extra}
    body = "I am away. The following addresses had permanent fatal errors: <bob@tab.example>\n"
    got = classify(_mail(headers, body))
    assert got.kind is InboundKind.AUTO_REPLY
    assert got.recipients == ()


def test_unrelated_mail_is_ignored() -> None:
    got = classify(
        _mail({"From": "x@elsewhere.example", "Subject": "Lunch?", "In-Reply-To": "<abc@elsewhere.example>"})
    )
    assert got.kind is InboundKind.IGNORED


def test_feedback_report_names_the_complaining_recipient() -> None:
    raw = (
        "From: feedback@isp.example\r\nTo: tab@tab.example\r\nSubject: FW: Round 1\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\n"
        "Original-Rcpt-To: <carol@tab.example>\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: tab@tab.example\r\nTo: carol@tab.example\r\n"
        f"Message-ID: <{TID}@tab.example>\r\nX-Tabmail-Id: {TID}\r\n\r\n--B--\r\n"
    ).encode()
    got = classify(raw)
    assert got.kind is InboundKind.FEEDBACK
    assert [(r.address, r.action) for r in got.recipients] == [("carol@tab.example", "complained")]
    assert got.original_tabmail_id == TID


def test_verp_and_message_id_helpers() -> None:
    assert verp_id_of(f"tab+tm-{TID.lower()}@tab.example") == TID
    assert verp_id_of("tab+other@tab.example") is None
    assert tabmail_id_of(f"<{TID}@tab.example>") == TID
    assert tabmail_id_of("<abc@tab.example>") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage without headers",
        b"Subject: =?x-unknown-charset?q?abc?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe",
        b"Subject: " + b"A" * 200_000 + b"\r\n\r\nbody",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="X"\r\n\r\n--X\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n',
        b"From: a@b.example\r\nReferences: <v1."
        + b"0" * 64
        + b"@tab.example>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64",
    ],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    got = classify(raw)
    assert got.key == header_key(raw)
    assert got.kind in set(InboundKind)
