"""Building the exact email bytes: ids, threading, headers, injection, test mode, encodings."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from tabmail.compose.message import (
    MessageBuildError,
    build_email,
    make_message_id,
    new_tabmail_id,
    thread_anchor,
    to_bytes,
)
from tabmail.compose.recipients import draw_recipients
from tabmail.compose.templates import RenderedParts, render_for
from tabmail.domain.notification import Audience, Templates
from tests.test_compose_recipients import make_draw

WHEN = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
KEY = b"k" * 32
EVIL = "Evil\r\nBcc: victim@example.com"


def build(**overrides: Any) -> EmailMessage:
    args: dict[str, Any] = {
        "tabmail_id": "01JNB2X5ZQ4V8W2C9M3K7T6R1A",
        "from_name": "BP 88 Tab Room",
        "from_address": "tab@bp88.example.org",
        "to_name": "Alice Smith",
        "to_address": "alice@example.com",
        "reply_to": "Tab Room <tabroom@bp88.example.org>",
        "parts": RenderedParts(subject="Round 2 draw", text="Hello\n", html="<p>Hello</p>"),
        "thread_anchor": thread_anchor(KEY, "bp88", "alice@example.com", "bp88.example.org"),
        "date": WHEN,
        "domain": "bp88.example.org",
    }
    args.update(overrides)
    return build_email(**args)


def reparse(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(to_bytes(msg), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def content(part: Any) -> str:
    """A part's decoded text; line ends as sent (CRLF) read back as LF."""
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def header_lines(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return head.split("\r\n")


def test_tabmail_ids_are_26_chars_url_safe_unique_and_sortable() -> None:
    ids = [new_tabmail_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    early, late = new_tabmail_id(now_ms=1_700_000_000_000), new_tabmail_id(now_ms=1_700_000_000_001)
    assert early < late
    assert new_tabmail_id(now_ms=0).startswith("0000000000")


def test_message_id_and_idna_domain() -> None:
    assert make_message_id("01ABC", "bp88.example.org") == "<01ABC@bp88.example.org>"
    assert make_message_id("01ABC", "Bücher.Example") == "<01ABC@xn--bcher-kva.example>"
    with pytest.raises(MessageBuildError):
        make_message_id("bad id>", "example.org")
    with pytest.raises(MessageBuildError):
        make_message_id("01ABC", "exa mple.org")


def test_thread_anchor_is_stable_per_tournament_and_address() -> None:
    anchor = thread_anchor(KEY, "bp88", "alice@example.com", "example.org")
    assert anchor == thread_anchor(KEY, "bp88", " Alice@Example.com ", "example.org")
    assert anchor.startswith("<v1.") and anchor.endswith("@example.org>")
    assert len(anchor.split("@")[0]) == len("<v1.") + 64
    others = {
        thread_anchor(KEY, "bp88", "bob@example.com", "example.org"),
        thread_anchor(KEY, "wudc25", "alice@example.com", "example.org"),
        thread_anchor(b"x" * 32, "bp88", "alice@example.com", "example.org"),
    }
    assert anchor not in others and len(others) == 3
    with pytest.raises(ValueError):
        thread_anchor(b"", "bp88", "alice@example.com", "example.org")


def test_headers_and_multipart_alternative() -> None:
    msg = build()
    raw = to_bytes(msg)
    parsed = reparse(msg)
    assert parsed["Message-ID"] == "<01JNB2X5ZQ4V8W2C9M3K7T6R1A@bp88.example.org>"
    assert parsed["Message-ID"] == msg["Message-ID"]
    assert str(parsed["From"]) == "BP 88 Tab Room <tab@bp88.example.org>"
    assert str(parsed["To"]) == "Alice Smith <alice@example.com>"
    assert str(parsed["Reply-To"]) == "Tab Room <tabroom@bp88.example.org>"
    assert parsed["Subject"] == "Round 2 draw"
    assert parsed["Date"].datetime == WHEN
    assert parsed["References"] == thread_anchor(KEY, "bp88", "alice@example.com", "bp88.example.org")
    assert parsed["In-Reply-To"] is None
    assert parsed["X-Tabmail-Id"] == "01JNB2X5ZQ4V8W2C9M3K7T6R1A"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["List-Id"] is None and parsed["Bcc"] is None and parsed["Cc"] is None
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain" and content(plain) == "Hello\n"
    assert html.get_content_type() == "text/html" and content(html) == "<p>Hello</p>\n"
    # CRLF everywhere, no bare LF; 7-bit clean so any SMTP server takes it.
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw.isascii()


def test_long_thread_ids_stay_ids_and_fold_between_ids() -> None:
    domain = "mail.debating-society.university-of-somewhere.example.ac.uk"
    anchor = thread_anchor(KEY, "bp88", "alice@example.com", domain)
    old = make_message_id(new_tabmail_id(), domain)
    raw = to_bytes(build(thread_anchor=anchor, in_reply_to=old, domain=domain))
    assert f"References: {anchor}\r\n {old}\r\n".encode() in raw
    assert f"In-Reply-To: {old}\r\n".encode() in raw
    assert b"=?utf-8?" not in raw
    with pytest.raises(MessageBuildError):
        build(in_reply_to="<a b@c>")


def test_text_only_message_and_follow_up_threading() -> None:
    msg = build(
        parts=RenderedParts("s", "only text", None), reply_to=None, in_reply_to="<OLD@bp88.example.org>"
    )
    parsed = reparse(msg)
    assert parsed.get_content_type() == "text/plain"
    assert parsed["Reply-To"] is None
    assert parsed["In-Reply-To"] == "<OLD@bp88.example.org>"
    assert parsed["References"].split() == [
        thread_anchor(KEY, "bp88", "alice@example.com", "bp88.example.org"),
        "<OLD@bp88.example.org>",
    ]


def test_header_injection_through_imported_names_is_impossible() -> None:
    draw = make_draw()
    draw.teams[2] = replace(draw.teams[2], name=EVIL, short_name=EVIL)
    hank = next(r for r in draw_recipients(draw, Audience.TEAMS) if r.address_key == "hank@example.com")
    parts = render_for(
        Templates(subject="Your opponents: {{ OPPONENTS }}", text="{{ DRAW }}", html="<p>{{ DRAW }}</p>"),
        hank,
    )
    msg = build(parts=parts, to_name=EVIL, from_name=EVIL, reply_to=f"{EVIL} <tab@bp88.example.org>")
    raw = to_bytes(msg)
    parsed = reparse(msg)
    assert parsed["Bcc"] is None
    assert all(not line.lower().startswith("bcc:") for line in header_lines(raw))
    assert parsed["Subject"].startswith(
        "Your opponents: Evil Bcc: victim@example.com (Opening Opposition), Oxford B"
    )
    assert parsed["To"].addresses[0].addr_spec == "alice@example.com"
    assert parsed["To"].addresses[0].display_name == "Evil Bcc: victim@example.com"
    assert [a.addr_spec for a in parsed["Reply-To"].addresses] == ["tab@bp88.example.org"]
    assert [a.addr_spec for a in parsed["From"].addresses] == ["tab@bp88.example.org"]
    assert len(parsed.get_all("To") or []) == 1
    # The same straight into build_email, without a template in between.
    raw = to_bytes(build(parts=RenderedParts(EVIL, EVIL, None), to_name=EVIL))
    assert all(not line.lower().startswith("bcc:") for line in header_lines(raw))
    assert reparse(build(parts=RenderedParts(EVIL, EVIL, None)))["Subject"] == "Evil Bcc: victim@example.com"


def test_control_characters_in_addresses_and_extra_headers_are_refused() -> None:
    with pytest.raises(MessageBuildError):
        build(to_address="alice@example.com\r\nBcc: victim@example.com")
    with pytest.raises(MessageBuildError):
        build(to_address="not an address")
    with pytest.raises(MessageBuildError):
        build(extra_headers={"X-SMTPAPI": "{}\r\nBcc: victim@example.com"})
    with pytest.raises(MessageBuildError):
        build(extra_headers={"Bcc": "victim@example.com"})
    with pytest.raises(MessageBuildError):
        build(date=datetime(2025, 3, 1, 9, 30))  # naive
    parsed = reparse(build(extra_headers={"X-SMTPAPI": '{"unique_args": {"tabmail-id": "01J"}}'}))
    assert parsed["X-SMTPAPI"] == '{"unique_args": {"tabmail-id": "01J"}}'


def test_test_mode_reroutes_to_the_director() -> None:
    parsed = reparse(build(reroute_to="director@example.net"))
    assert [a.addr_spec for a in parsed["To"].addresses] == ["director@example.net"]
    assert parsed["Subject"] == "[TEST for Alice Smith <alice@example.com>] Round 2 draw"
    assert parsed["X-Tabmail-Original-To"] == "alice@example.com"
    assert "alice@example.com" not in str(parsed["To"])
    assert reparse(build())["X-Tabmail-Original-To"] is None


def test_non_ascii_names_subjects_bodies_and_idna_domains() -> None:
    parts = RenderedParts("Ronda 2: Zoë in Sala Ñ — 決勝", "Olá Zoë, ¿qué tal?\n", "<p>Olá Zoë</p>")
    msg = build(
        parts=parts, to_name="Zoë Ñúñez", to_address="zoe@bücher.example", from_name="Torneo Ñ Tab Room"
    )
    raw = to_bytes(msg)
    assert raw.isascii()  # RFC 2047 words and quoted-printable, no raw UTF-8
    assert b"=?utf-8?" in raw
    parsed = reparse(msg)
    assert parsed["Subject"] == "Ronda 2: Zoë in Sala Ñ — 決勝"
    assert parsed["To"].addresses[0].display_name == "Zoë Ñúñez"
    assert parsed["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"
    assert parsed["From"].addresses[0].display_name == "Torneo Ñ Tab Room"
    plain = parsed.get_body(("plain",))
    assert plain is not None and content(plain) == "Olá Zoë, ¿qué tal?\n"
    with pytest.raises(MessageBuildError, match="SMTPUTF8"):
        build(to_address="zoë@example.com")


def test_long_lines_and_dates_with_offsets_survive() -> None:
    long_line = "word " * 100
    date = datetime(2025, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=8)))
    parsed = reparse(build(parts=RenderedParts("s " * 60, long_line + "\n", None), date=date))
    assert content(parsed) == long_line + "\n"
    assert parsed["Date"].datetime == date
    assert all(
        len(line) <= 998 for line in to_bytes(build(parts=RenderedParts("s", long_line, None))).split(b"\r\n")
    )


# -- the batch fast path agrees with the EmailMessage builder -----------------------------------
FAST_CASES = [
    dict(to_name="Alice Smith", subject="Round 3: you are the chair", text="Hi Alice\n", html="<p>Hi</p>"),
    dict(
        to_name="Zoë Ångström-Łukasz",
        subject="Ronde 3 — présidente en salle Ü",
        text="Grüße\n" * 3,
        html=None,
    ),
    dict(
        to_name="Evil\r\nBcc: victim@example.com",
        subject="x\r\nBcc: victim@example.com",
        text="a" * 300 + "\r\nline two\rthree",
        html="<table>" + "<tr><td>é</td></tr>" * 50 + "</table>",
    ),
    dict(to_name="", subject="S" * 200, text="trailing space \nand tab\t\n", html="<p>x</p>\n"),
]


@pytest.mark.parametrize("case", FAST_CASES)
@pytest.mark.parametrize("reroute", [None, "director@example.org"])
def test_email_bytes_matches_build_email(case: dict[str, Any], reroute: str | None) -> None:
    from tabmail.compose.message import email_bytes

    kwargs: dict[str, Any] = dict(
        tabmail_id="01JD0000000000000000000000",
        from_name="BP 88 Tab Room",
        from_address="tab@example.org",
        to_name=case["to_name"],
        to_address="alice@example.org",
        reply_to="Tab Room <tab@example.org>",
        parts=RenderedParts(case["subject"], case["text"], case["html"]),
        thread_anchor="<v1.abcdef@example.org>",
        date=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        domain="example.org",
        reroute_to=reroute,
        extra_headers={"X-SMTPAPI": '{"unique_args": {"tabmail_id": "01JD"}}'},
    )
    slow = email.message_from_bytes(to_bytes(build_email(**kwargs)), policy=policy.default)
    raw = email_bytes(**kwargs)
    fast = email.message_from_bytes(raw, policy=policy.default)
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert "Bcc" not in fast
    ignore = {"content-type", "content-transfer-encoding"}
    slow_headers = [(k, str(v)) for k, v in slow.items() if k.lower() not in ignore]
    fast_headers = [(k, str(v)) for k, v in fast.items() if k.lower() not in ignore]
    assert fast_headers == slow_headers
    assert fast.get_content_type() == slow.get_content_type()
    for subtype in ("plain", "html"):
        a, b = slow.get_body((subtype,)), fast.get_body((subtype,))
        if a is None:
            assert b is None or subtype == "plain"
            continue
        assert b is not None
        norm = lambda t: t.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")  # noqa: E731
        assert norm(b.get_content()) == norm(a.get_content())


@pytest.mark.parametrize("case", FAST_CASES)
def test_email_bytes_writes_the_same_header_lines_as_build_email(case: dict[str, Any]) -> None:
    """Byte for byte, every header line before the MIME skeleton."""
    from tabmail.compose.message import email_bytes

    kwargs: dict[str, Any] = dict(
        tabmail_id="01JD0000000000000000000000",
        from_name="BP 88 Tab Room",
        from_address="tab@example.org",
        to_name=case["to_name"],
        to_address="alice@example.org",
        reply_to="Tab Room <tab@example.org>",
        parts=RenderedParts(case["subject"], case["text"], case["html"]),
        thread_anchor=thread_anchor(KEY, "bp88", "alice@example.org", "a-rather-long-domain.example.org"),
        date=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        domain="example.org",
        extra_headers={"X-SMTPAPI": '{"unique_args": {"tabmail_id": "01JD0000000000000000000000"}}'},
        in_reply_to="<01JC0000000000000000000000@example.org>",
    )

    def fields(raw: bytes) -> list[bytes]:
        """The raw header fields (folded lines kept), the MIME skeleton's left out."""
        out: list[bytes] = []
        for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line[:1] in (b" ", b"\t"):
                out[-1] += b"\r\n" + line
            else:
                out.append(line)
        skeleton = (b"mime-version:", b"content-type:", b"content-transfer-encoding:")
        return [f for f in out if not f.lower().startswith(skeleton)]

    fast, slow = fields(email_bytes(**kwargs)), fields(to_bytes(build_email(**kwargs)))
    assert len(fast) == 12 and fast == slow


AWKWARD = [
    "Round 3: you are the chair",
    "a  b",
    "tab\there",
    " leading and trailing ",
    "x =?utf-8?q?hi?= y",
    "=?",
    '(comment) \\ backslash "quotes"',
    "Zoë",
    "x" * 68,  # "Subject: " + 68 = 77
    "x" * 69,  # 78: the longest line written directly
    "x" * 70,  # 79: folded by the policy
    "word " * 30,
    "é" + "a" * 100,
    "\x7f delete",
    "nul\x00",
    "\u2028 line separator",
]
NAMES = [
    "Alice Smith",
    "J. Smith",
    "O'Brien, Pat",
    "Ann (chair)",
    '"Quoted" Name',
    "=?x?q?y?=",
    "Zoë Ångström",
    "a" * 60,
    "a" * 70,
    "",
    "Semi;colon <angle> @at [br]",
]


@pytest.mark.parametrize("value", AWKWARD)
@pytest.mark.parametrize("name", ["Subject", "X-Tabmail-Id", "X-SMTPAPI", "Message-ID", "References"])
def test_direct_header_lines_equal_the_policy_fold(name: str, value: str) -> None:
    from tabmail.compose.message import _fold, _header_bytes

    assert outcome(_header_bytes, name, value) == outcome(_fold, name, value)


def outcome(fn: Any, *args: Any) -> bytes | type[BaseException]:
    try:
        result: bytes = fn(*args)
    except Exception as exc:  # both ways must refuse the same values the same way
        return type(exc)
    return result


@pytest.mark.parametrize("display", NAMES)
@pytest.mark.parametrize("name", ["From", "To", "Reply-To"])
def test_direct_address_lines_equal_the_policy_fold(name: str, display: str) -> None:
    from email.headerregistry import Address

    from tabmail.compose.message import _fold, _header_bytes

    for address in (Address(display, "alice", "example.org"), Address(display, "a.b-c+d", "example.org")):
        assert _header_bytes(name, address) == _fold(name, address)


def test_long_id_lists_fold_between_ids_like_the_header_class() -> None:
    from tabmail.compose.message import _fold, _header_bytes

    ids = " ".join(f"<v1.{'ab' * 32}@{n}.example.org>" for n in range(3))
    for name in ("References", "In-Reply-To"):
        assert _header_bytes(name, ids) == _fold(name, ids)
        assert all(len(line) <= 998 for line in _header_bytes(name, ids).split(b"\r\n"))


def test_one_line_takes_the_same_decisions_for_plain_ascii() -> None:
    """one_line's shortcut for printable ASCII agrees with the character-by-character rule."""
    import unicodedata

    from tabmail.compose.formatting import one_line

    def by_character(text: str) -> str:
        cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
        return " ".join(cleaned.split())

    for code in range(128):
        for text in (f"a{chr(code)}b", f"{chr(code)} x  y {chr(code)}", chr(code) * 3):
            assert one_line(text) == by_character(text), repr(text)
