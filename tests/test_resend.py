"""Resend: a new linked message, re-rendered from what was stored; nothing cleared silently."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import DeliveryStatus as S
from tabmail.domain.notification import FlagKind, MessageState
from tabmail.services.context import AppContext
from tabmail.services.outbox import Outbox
from tabmail.services.resend import ResendOutcome, resend, resend_bounced
from tabmail.services.sending import build_backend
from tabmail.status.events import ProviderEvent, derive_status
from tests.servers.sendgrid import DEFAULT_KEY, SendGridTestServer
from tests.status_support import sent_batch, small_tournament

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ANN, BEN, CAT = "ann@example.org", "ben@example.org", "cat@example.org"

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def bounce(mid: str, address: str, *, minutes: int = 5) -> ProviderEvent:
    return ProviderEvent(
        provider_event_id=f"bounce-{mid}",
        name="bounce",
        status=S.BOUNCED,
        event_time=T0 + timedelta(minutes=minutes),
        tabmail_id=mid,
        address=address,
        reason="550 5.1.1 user unknown",
        flag=FlagKind.HARD,
    )


@pytest.fixture
def people(ctx: AppContext, tmp_path: Path) -> dict[str, int]:
    ctx.settings.set("backend", "file")
    ctx.settings.set("file.directory", str(tmp_path / "eml"))
    ctx.settings.set("from_address", "tab@mini.example")
    return small_tournament(ctx, [ANN, BEN, CAT])


def run_outbox(ctx: AppContext) -> None:
    outbox = Outbox(ctx.notifications, ctx.flags, lambda name: build_backend(ctx, name), ctx.bus)
    report = asyncio.run(outbox.run(wait_for_retries=False))
    assert report.failed == 0


def test_resend_to_a_corrected_address(ctx: AppContext, people: dict[str, int]) -> None:
    batch = sent_batch(ctx, [("m-ann", ANN, "XA"), ("m-ben", BEN, "XB")], T0, people=people)
    ctx.tracking.ingest([bounce("m-ann", ANN)], derive=derive_status)
    assert set(ctx.flags.active()) == {ANN}

    result = asyncio.run(resend(ctx, "m-ann", "Ann.Fixed@Example.org", now=T0 + timedelta(hours=1)))

    assert result.outcome is ResendOutcome.QUEUED
    assert result.address == "Ann.Fixed@example.org"  # the domain is normalised, the local part kept
    new = ctx.notifications.get(result.new_message_id or "")
    assert (new.batch_id, new.resend_of, new.state, new.address) == (
        batch,
        "m-ann",
        MessageState.QUEUED,
        result.address,
    )
    assert new.person_id == people[ANN]
    assert new.context == ctx.notifications.get("m-ann").context
    # re-rendered from the batch's stored templates and the stored context
    msg = email.message_from_bytes(ctx.notifications.raw(new.id), policy=email.policy.default)
    assert msg["Subject"] == "Draw for Round 1"
    assert msg["To"].addresses[0].addr_spec == "Ann.Fixed@example.org"
    assert "Hello Recipient m-ann" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert msg["In-Reply-To"] is None  # the original never reached this inbox
    # the person's address is updated, and the change is recorded as a resend
    person = ctx.tournaments.get_person(people[ANN])
    assert person.email == "Ann.Fixed@example.org"
    assert ctx.tournaments.address_history(people[ANN])[-1][1:4] == (ANN, "Ann.Fixed@example.org", "resend")
    # nothing cleared silently: the old message stays bounced, the old address stays flagged
    assert ctx.notifications.get("m-ann").delivery_status is S.BOUNCED
    assert set(ctx.flags.active()) == {ANN}
    assert any("stays flagged" in n for n in result.notes)

    run_outbox(ctx)
    assert ctx.notifications.get(new.id).state is MessageState.SENT


def test_resend_to_the_same_address_goes_out_despite_its_flag(
    ctx: AppContext, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("m-ben", BEN, "XB")], T0, people=people)
    ctx.tracking.ingest([bounce("m-ben", BEN)], derive=derive_status)
    result = asyncio.run(resend(ctx, "m-ben"))
    new_id = result.new_message_id or ""
    msg = email.message_from_bytes(ctx.notifications.raw(new_id), policy=email.policy.default)
    assert msg["In-Reply-To"] == "<m-ben@example.org>"
    assert any("sending anyway" in n for n in result.notes)
    run_outbox(ctx)  # the outbox would skip a flagged address, but a resend is the director's act
    assert ctx.notifications.get(new_id).state is MessageState.SENT
    assert ctx.tournaments.get_person(people[BEN]).email == BEN
    assert all(change[3] != "resend" for change in ctx.tournaments.address_history(people[BEN]))


def test_what_cannot_be_resent(ctx: AppContext, people: dict[str, int]) -> None:
    sent_batch(ctx, [("m-cat", CAT, "XC")], T0, people=people)
    with pytest.raises(TabmailError, match="not a usable address"):
        asyncio.run(resend(ctx, "m-cat", "not an address"))
    with pytest.raises(TabmailError, match="no message"):
        asyncio.run(resend(ctx, "nonexistent-id"))
    first = asyncio.run(resend(ctx, "m-cat", "cat2@example.org"))
    with pytest.raises(TabmailError, match="already resent"):
        asyncio.run(resend(ctx, "m-cat", "cat2@example.org"))
    with pytest.raises(TabmailError, match="still queued"):
        asyncio.run(resend(ctx, first.new_message_id or ""))
    assert len(ctx.notifications.messages()) == 2  # nothing else was queued


def test_resend_bounced_takes_only_corrected_addresses(ctx: AppContext, people: dict[str, int]) -> None:
    batch = sent_batch(
        ctx, [("m-ann", ANN, "XA"), ("m-ben", BEN, "XB"), ("m-cat", CAT, "XC")], T0, people=people
    )
    ctx.tracking.ingest([bounce("m-ann", ANN), bounce("m-ben", BEN)], derive=derive_status)
    ctx.tournaments.set_person_email(people[ANN], "ann@fixed.example", source="director")

    results = asyncio.run(resend_bounced(ctx, batch))

    assert [(r.original_id, r.address, r.outcome) for r in results] == [
        ("m-ann", "ann@fixed.example", ResendOutcome.QUEUED)
    ]
    assert asyncio.run(resend_bounced(ctx, batch)) == []  # already resent: not again
    with pytest.raises(TabmailError):
        asyncio.run(resend_bounced(ctx, 999))


@pytest.fixture
def sendgrid(ctx: AppContext, people: dict[str, int]) -> Iterator[SendGridTestServer]:
    with SendGridTestServer() as server:
        ctx.settings.set("backend", "sendgrid")
        ctx.settings.set("sendgrid.base_url", server.url)
        ctx.secrets.set("sendgrid-api-key", DEFAULT_KEY)
        yield server


@pytest.mark.parametrize(
    ("list_name", "words"), [("bounces", "bounce list"), ("unsubscribes", "global unsubscribe")]
)
def test_a_suppressed_address_is_not_resent_unless_unsuppressed(
    ctx: AppContext, people: dict[str, int], sendgrid: SendGridTestServer, list_name: str, words: str
) -> None:
    sent_batch(ctx, [("m-ann", ANN, "XA")], T0, people=people)
    sendgrid.add_suppression(list_name, ANN)

    refused = asyncio.run(resend(ctx, "m-ann"))

    assert refused.outcome is ResendOutcome.SUPPRESSED and refused.new_message_id is None
    assert words in refused.words and "--unsuppress" in refused.words
    assert refused.suppressed_on == (list_name,)
    assert len(ctx.notifications.messages()) == 1  # nothing queued
    assert [r.method for r in sendgrid.requests if r.method == "DELETE"] == []

    done = asyncio.run(resend(ctx, "m-ann", unsuppress=True))

    assert done.outcome is ResendOutcome.QUEUED and done.unsuppressed == (list_name,)
    deletes = [r.path for r in sendgrid.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].endswith("/" + ANN)
    assert sendgrid.suppressions(list_name) == []
    assert "removed" in done.words
    assert sendgrid.validation_errors == []


def test_the_corrected_address_is_the_one_checked(
    ctx: AppContext, people: dict[str, int], sendgrid: SendGridTestServer
) -> None:
    sent_batch(ctx, [("m-ben", BEN, "XB")], T0, people=people)
    sendgrid.add_suppression("bounces", BEN)  # the old address: irrelevant to the resend
    sendgrid.add_suppression("spam_reports", "ben@new.example")
    refused = asyncio.run(resend(ctx, "m-ben", "ben@new.example"))
    assert refused.outcome is ResendOutcome.SUPPRESSED and refused.suppressed_on == ("spam_reports",)
    assert ctx.tournaments.get_person(people[BEN]).email == BEN  # nothing changed yet
    fine = asyncio.run(resend(ctx, "m-ben", "ben@other.example"))
    assert fine.outcome is ResendOutcome.QUEUED
    assert sendgrid.validation_errors == []
