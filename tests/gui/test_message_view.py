"""The message view: the exact stored message, safe HTML, the event timeline, the resend chain."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QTextDocument
from pytestqt.qtbot import QtBot

from tabmail.domain.notification import DeliveryStatus, Event, MessageState, Templates
from tabmail.gui.message import MessageView, SafeTextBrowser, parse_raw
from tabmail.gui.theme import Theme
from tabmail.services.context import AppContext
from tabmail.status.events import ProviderEvent, derive_status
from tabmail.store.notifications import NewBatch, NewMessage
from tests.gui.conftest import sample_bundle

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qapp")]


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    _Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()
    server.server_close()


def stored_message(
    ctx: AppContext, html: str, *, mid: str = "01TESTMESSAGE0000000000001", resend_of: str | None = None
) -> str:
    tournament_id = ctx.tournaments.apply_import(sample_bundle()).tournament_id
    msg = EmailMessage()
    msg["From"] = "Tab Room <tab@example.org>"
    msg["To"] = "Ada Lovelace <ada@example.org>"
    msg["Subject"] = "Round 1 draw: Room 1 — é"
    msg["Message-ID"] = f"<{mid}@example.org>"
    msg.set_content("Hello Ada,\nyou are in Room 1.\n")
    msg.add_alternative(html, subtype="html")
    raw = msg.as_bytes(policy=SMTP)
    batch = ctx.notifications.create_batch(
        NewBatch(tournament_id, None, Event.CUSTOM, None, Templates("s", "t"), "smtp", "test"),
        [
            NewMessage(
                id=mid,
                person_id=None,
                recipient_name="Ada Lovelace",
                role="speaker",
                address="ada@example.org",
                address_key="ada@example.org",
                envelope_from="tab@example.org",
                envelope_to="ada@example.org",
                subject="Round 1 draw",
                context={},
                reasons=("you speak",),
                raw=raw,
                message_id_header=f"<{mid}@example.org>",
                resend_of=resend_of,
            )
        ],
    )
    assert batch
    ctx.notifications.mark_sent(mid, "x-1", "250 ok", datetime.now(UTC))
    return mid


def test_the_raw_message_headers_and_decoded_body_are_shown(qtbot: QtBot, ctx: AppContext) -> None:
    mid = stored_message(ctx, "<p>Hello <b>Ada</b></p>")
    view = MessageView(ctx, Theme())
    qtbot.addWidget(view)
    m = ctx.notifications.get(mid)
    view.show_message(m, status=m.state.value)
    raw = ctx.notifications.raw(mid)
    assert view.source_view.toPlainText() == raw.decode("utf-8").replace("\r\n", "\n")
    assert "Subject: Round 1 draw: Room 1 — é" in view.headers_view.toPlainText()  # decoded, not =?utf-8?
    assert view.text_view.toPlainText() == "Hello Ada,\nyou are in Room 1.\n"
    assert "Hello Ada" in view.browser.toPlainText()
    assert view.status_label.text() == "Sent"
    assert not view.resend_row.isVisibleTo(view)


def test_the_view_says_who_sent_the_message_and_who_resent_it(qtbot: QtBot, ctx: AppContext) -> None:
    import socket

    host = socket.gethostname()
    mid = stored_message(ctx, "<p>Hello</p>")  # its batch: triggered by "test", on this machine
    view = MessageView(ctx, Theme())
    qtbot.addWidget(view)
    m = ctx.notifications.get(mid)
    view.show_message(m, status=m.state.value)
    assert f"sent by test on {host}" in view.meta.text()
    ctx.settings.set_text("user.name", "Hedy Tab")
    ctx.notifications.add_messages(
        m.batch_id,
        [
            NewMessage(
                id="01TESTRESEND00000000000001",
                person_id=None,
                recipient_name="Ada Lovelace",
                role="speaker",
                address="ada.new@example.org",
                address_key="ada.new@example.org",
                envelope_from="tab@example.org",
                envelope_to="ada.new@example.org",
                subject="Round 1 draw",
                context={},
                reasons=("you speak",),
                raw=b"Subject: Round 1 draw\r\n\r\nHello\r\n",
                message_id_header="<01TESTRESEND00000000000001@example.org>",
                resend_of=mid,
            )
        ],
    )
    resend = ctx.notifications.get("01TESTRESEND00000000000001")
    view.show_message(resend, status=resend.state.value, resend_of=("ada@example.org", "Sent"))
    assert f"resent by Hedy Tab on {host}" in view.meta.text()


def test_a_remote_image_in_the_html_part_is_never_fetched(
    qtbot: QtBot, ctx: AppContext, http_server: tuple[str, list[str]]
) -> None:
    base, hits = http_server
    remote = f"{base}/pixel.png?tracking=1"
    html = f'<p>Hi</p><img src="{remote}" width="40" height="40"><img src="file:///etc/hostname">'
    mid = stored_message(ctx, html)
    view = MessageView(ctx, Theme())
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    m = ctx.notifications.get(mid)
    view.show_message(m, status=m.state.value)
    qtbot.waitExposed(view)
    view.browser.viewport().grab()  # paint it: an image with a size is only asked for then
    assert remote in view.browser.blocked and "file:///etc/hostname" in view.browser.blocked
    assert view.blocked.isVisible() and "2 remote images not loaded" in view.blocked.text()
    # Asked directly, the browser answers nothing for any remote or local URL.
    browser = SafeTextBrowser()
    qtbot.addWidget(browser)
    for url in (remote, "https://example.org/a.png", "file:///etc/passwd"):
        assert browser.loadResource(QTextDocument.ResourceType.ImageResource, QUrl(url)) is None
    assert hits == []  # the loopback server never saw a request


def test_parse_raw_survives_a_damaged_copy() -> None:
    parsed = parse_raw(b"")
    assert parsed.problem and parsed.source == ""
    parsed = parse_raw(b"Subject: x\r\n\r\nbody\r\n")
    assert parsed.text == "body\r\n" or parsed.text == "body\n"
    assert parsed.html is None


def test_the_timeline_and_the_resend_chain(qtbot: QtBot, ctx: AppContext) -> None:
    first = stored_message(ctx, "<p>1</p>")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    ctx.tracking.ingest(
        [
            ProviderEvent("e1", "processed", DeliveryStatus.PROCESSED, t0, tabmail_id=first, source="test"),
            ProviderEvent(
                "e2", "bounce", DeliveryStatus.BOUNCED, t0 + timedelta(minutes=1), tabmail_id=first,
                reason="550 5.1.1 user unknown", source="test",
            ),
        ],
        derive=derive_status,
    )  # fmt: skip
    m = ctx.notifications.get(first)
    assert m.delivery_status is DeliveryStatus.BOUNCED
    view = MessageView(ctx, Theme())
    qtbot.addWidget(view)
    view.show()
    view.show_message(
        m, status="bounced", resendable=True, resent_as=[("01NEWID", "fixed@example.org", "Delivered")]
    )
    assert view.timeline_model.rowCount() == 2
    assert [view.timeline_model.index(r, 1).data() for r in range(2)] == ["Processed", "Bounced"]
    assert view.tabs.tabText(4) == "Timeline (2)"
    assert view.problem.isVisible() and "550 5.1.1 user unknown" in view.problem.text()
    assert "Resent to" in view.chain.text() and "fixed@example.org" in view.chain.text()
    assert "message:01NEWID" in view.chain.text()  # a link to the resend, not its raw id
    assert not view.resend_row.isVisible()  # already resent: the chain says where it went
    with qtbot.waitSignal(view.message_link_activated) as link:
        view.chain.linkActivated.emit("message:01NEWID")
    assert link.args == ["01NEWID"]

    view.show_message(m, status="bounced", resendable=True)
    assert view.resend_row.isVisible()
    view.address.setText("ada.lovelace@example.org")
    edited: list[tuple[str, str]] = []
    view.address_edited.connect(lambda mid, text: edited.append((mid, text)))
    with qtbot.waitSignal(view.resend_requested) as requested:
        view.resend_button.click()
    assert requested.args == [first]
    assert edited[-1] == (first, "ada.lovelace@example.org")  # the typed address goes first
    assert ctx.notifications.get(first).state is MessageState.SENT
