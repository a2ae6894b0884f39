"""Practice mode: the demo round sent through the practice backend, its fates played out through
the same status pipeline as SendGrid's events (injected clock, no waiting), a corrected address
resent and delivered, and nothing of the rehearsal left behind when the backend changes."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tabmail.cli.main import main as cli_main
from tabmail.domain.addresses import address_key
from tabmail.domain.events import PollFinished, StatusesChanged
from tabmail.domain.notification import DeliveryStatus, Message, MessageState
from tabmail.domain.practice import LABEL, SPAN, Fate, fate_of
from tabmail.domain.problems import Category, category_of
from tabmail.services import problems
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tabmail.services.practice import forget_practice_flags
from tabmail.services.resend import PRACTICE_ONLY, resend, resend_bounced
from tabmail.services.sending import build_backend
from tests.practice_support import FakeTime, poll, send_all, send_demo_round

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def categories(ctx: AppContext, batch_id: int) -> dict[str, Category]:
    return {m.address: category_of(m) for m in ctx.notifications.messages(batch_id=batch_id)}


def bounced_in_a_practice_round(ctx: AppContext, t: FakeTime) -> tuple[int, Message]:
    """The demo round sent in practice and its fates polled; a bounced message to a person."""
    batch_id = send_demo_round(ctx, t)
    t.advance(SPAN.total_seconds())
    poll(ctx, t)
    bounced = next(
        m
        for m in ctx.notifications.messages(batch_id=batch_id)
        if m.delivery_status is DeliveryStatus.BOUNCED and m.person_id is not None
    )
    return batch_id, bounced


def test_a_fresh_database_opens_the_demo_in_practice_mode(ctx: AppContext) -> None:
    assert ctx.settings.get("backend") == "file"
    load_demo_if_empty(ctx)
    assert ctx.settings.get("backend") == "practice"
    assert build_backend(ctx).info.description == LABEL


def test_a_chosen_backend_is_never_replaced_by_practice(ctx: AppContext) -> None:
    ctx.settings.set_text("backend", "file")  # chosen explicitly, even if it is the default
    load_demo_if_empty(ctx)
    assert ctx.settings.get("backend") == "file"


def test_the_demo_round_gets_realistic_fates_over_about_a_minute(practice_demo: AppContext) -> None:
    ctx, t = practice_demo, FakeTime()
    seen: list[object] = []
    ctx.bus.subscribe(None, seen.append)
    batch_id = send_demo_round(ctx, t)
    messages = ctx.notifications.messages(batch_id=batch_id)
    assert {m.state for m in messages} == {MessageState.SENT}
    assert {m.delivery_status for m in messages} == {DeliveryStatus.UNKNOWN}  # nothing known yet

    t.advance(2)
    first = poll(ctx, t)
    assert first.ok and first.practice and first.online
    assert first.summary() == f"Practice: {len(first.changed_message_ids)} status changes."
    assert {m.delivery_status for m in ctx.notifications.messages(batch_id=batch_id)} == {
        DeliveryStatus.PROCESSED
    }

    t.advance(SPAN.total_seconds())
    final = poll(ctx, t)
    assert final.changed_message_ids
    assert any(isinstance(e, StatusesChanged) for e in seen)
    assert any(isinstance(e, PollFinished) and e.ok for e in seen)

    got = categories(ctx, batch_id)
    expected = {
        Fate.DELIVERED: Category.DELIVERED,
        Fate.DEFERRED: Category.DELIVERED,
        Fate.BOUNCED: Category.BOUNCED,
        Fate.BLOCKED: Category.BLOCKED,
        Fate.DROPPED: Category.DROPPED,
        Fate.SPAM: Category.SPAM_REPORT,
    }
    for address, category in got.items():
        assert category is expected[fate_of(address)], address
    counts = Counter(got.values())
    # most are delivered, and the demo round shows one of every problem a director meets
    assert counts[Category.DELIVERED] >= 0.75 * len(got)
    for category in (Category.BOUNCED, Category.BLOCKED, Category.DROPPED, Category.SPAM_REPORT):
        assert counts[category] >= 1, category
    deferred = [
        m for m in ctx.notifications.messages(batch_id=batch_id) if fate_of(m.address) is Fate.DEFERRED
    ]
    assert deferred
    timeline = [e.status for e in ctx.tracking.timeline(deferred[0].id)]
    assert timeline == [DeliveryStatus.PROCESSED, DeliveryStatus.DEFERRED, DeliveryStatus.DELIVERED]

    # polling again adds nothing: every event is stored once
    again = poll(ctx, t)
    assert again.inserted == 0 and not again.changed_message_ids


def test_a_deferred_message_shows_deferred_before_it_is_delivered(practice_demo: AppContext) -> None:
    ctx, t = practice_demo, FakeTime()
    batch_id = send_demo_round(ctx, t)
    t.advance(13)  # every deferral has happened (6-12 s), no delayed delivery yet (45-60 s)
    poll(ctx, t)
    by_address = {m.address: m for m in ctx.notifications.messages(batch_id=batch_id)}
    deferred = [a for a in by_address if fate_of(a) is Fate.DEFERRED]
    assert deferred and all(by_address[a].delivery_status is DeliveryStatus.DEFERRED for a in deferred)
    assert all(category_of(by_address[a]) is Category.DEFERRED for a in deferred)


def test_fix_and_resend_a_bounce_in_practice_is_delivered_and_resolves_it(
    practice_demo: AppContext,
) -> None:
    ctx, t = practice_demo, FakeTime()
    batch_id = send_demo_round(ctx, t)
    t.advance(SPAN.total_seconds())
    poll(ctx, t)
    bounced = next(
        m
        for m in ctx.notifications.messages(batch_id=batch_id)
        if m.delivery_status is DeliveryStatus.BOUNCED
    )
    assert ctx.flags.active([address_key(bounced.address) or ""])  # flagged like a real bounce
    assert bounced.id in {p.message.id for p in problems.unresolved(ctx)}

    # resending to the same address bounces again: the fate belongs to the address
    same = asyncio.run(resend(ctx, bounced.id, now=t.now))
    # a corrected address is delivered
    fixed_address = "corrected." + bounced.address
    fixed = asyncio.run(resend(ctx, bounced.id, fixed_address, now=t.now))
    assert fixed.new_message_id and same.new_message_id
    send_all(ctx, t)
    t.advance(SPAN.total_seconds())
    poll(ctx, t)
    assert ctx.notifications.get(same.new_message_id).delivery_status is DeliveryStatus.BOUNCED
    assert ctx.notifications.get(fixed.new_message_id).delivery_status is DeliveryStatus.DELIVERED
    assert bounced.id not in {p.message.id for p in problems.unresolved(ctx)}


def test_a_correction_made_in_practice_never_changes_the_participant(practice_demo: AppContext) -> None:
    """Fixing a pretend bounce is practice only: the resend goes to the corrected address, but
    the person's address in Participants (and its history) stays as it was, during practice and
    after leaving it; "Resend all corrected" finds nothing corrected."""
    ctx, t = practice_demo, FakeTime()
    batch_id, bounced = bounced_in_a_practice_round(ctx, t)
    person_id = bounced.person_id or 0
    before = ctx.tournaments.get_person(person_id)
    history = ctx.tournaments.address_history(person_id)
    fixed = asyncio.run(resend(ctx, bounced.id, "corrected." + bounced.address, now=t.now))
    assert fixed.new_message_id and fixed.address == "corrected." + bounced.address
    assert ctx.notifications.get(fixed.new_message_id).address == fixed.address
    assert PRACTICE_ONLY in fixed.notes and "Participants is unchanged" in fixed.words
    assert ctx.tournaments.get_person(person_id).email == before.email
    assert ctx.tournaments.address_history(person_id) == history
    assert asyncio.run(resend_bounced(ctx, batch_id, now=t.now)) == []
    send_all(ctx, t)
    t.advance(SPAN.total_seconds())
    poll(ctx, t)
    assert bounced.id not in {p.message.id for p in problems.unresolved(ctx)}  # the fix worked

    ctx.settings.set_text("backend", "file")  # leaving practice
    forget_practice_flags(ctx)
    assert ctx.tournaments.get_person(person_id).email == before.email
    # a practice bounce fixed after leaving practice is still a practice correction
    other = next(
        m
        for m in ctx.notifications.messages(batch_id=batch_id)
        if m.delivery_status.is_problem
        and m.person_id not in (None, person_id)
        and m.id != bounced.id
        and m.resend_of is None
    )
    late = asyncio.run(resend(ctx, other.id, "later." + other.address, now=t.now))
    assert PRACTICE_ONLY in late.notes
    assert ctx.tournaments.get_person(other.person_id or 0).email == other.address


def test_a_practice_resend_to_an_address_corrected_in_participants_says_nothing_false(
    practice_demo: AppContext,
) -> None:
    """Found in the window: a director corrects a bounced person's address in Participants (a real
    edit, even in practice) and resends to it; the resend must not claim "the address in
    Participants is unchanged" (it is the address in Participants)."""
    ctx, t = practice_demo, FakeTime()
    _, bounced = bounced_in_a_practice_round(ctx, t)
    fixed_address = "fixed." + bounced.address
    ctx.tournaments.set_person_email(bounced.person_id or 0, fixed_address, source="director")
    result = asyncio.run(resend(ctx, bounced.id, fixed_address, now=t.now))
    assert result.address == fixed_address
    assert PRACTICE_ONLY not in result.notes and "unchanged" not in result.words
    assert ctx.tournaments.get_person(bounced.person_id or 0).email == fixed_address


def test_leaving_practice_clears_the_pretend_bounces(practice_demo: AppContext) -> None:
    ctx, t = practice_demo, FakeTime()
    send_demo_round(ctx, t)
    t.advance(SPAN.total_seconds())
    poll(ctx, t)
    flagged = ctx.flags.active()
    assert flagged and {f.source for f in flagged.values()} == {"practice"}
    assert forget_practice_flags(ctx) == []  # still practising: kept
    ctx.flags.add("real.bounce@example.org", flagged[next(iter(flagged))].kind, "550", "sendgrid")
    ctx.settings.set_text("backend", "file")
    cleared = forget_practice_flags(ctx)
    assert sorted(cleared) == sorted(flagged)
    assert set(ctx.flags.active()) == {"real.bounce@example.org"}


def test_cli_selects_practice_and_says_so(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"{tmp_path}/cli.sqlite3"
    assert cli_main(["--db", db, "config", "set", "backend", "practice"]) == 0
    out = capsys.readouterr().out
    assert "backend = practice" in out and LABEL in out
    assert cli_main(["--db", db, "poll", "--once"]) == 0
    assert "Practice" in capsys.readouterr().out


def test_the_settings_test_of_practice_says_it_needs_nothing(ctx: AppContext) -> None:
    from tabmail.services.backend_check import check_backend

    result = asyncio.run(check_backend(ctx, "practice", {}, {}))
    assert result.ok and result.summary == "Practice needs no server and no account: it works."
    assert [s.name for s in result.steps] == ["practice"]
