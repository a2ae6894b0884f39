"""The tracking repository: dedupe, matching order, unmatched events, derived status, flags."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tabmail.domain.notification import DeliveryStatus as S
from tabmail.domain.notification import FlagKind
from tabmail.services.context import AppContext
from tabmail.status.events import ProviderEvent, derive_status, stable_event_id, x_message_id_of
from tabmail.status.shapes import from_suppression
from tabmail.store.tracking import TrackingRepository
from tests.status_support import sent_batch, small_tournament

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ADDRS = ["ann@example.org", "ben@example.org", "cat@example.org", "dan@example.org"]


def ev(
    name: str,
    status: S,
    minutes: float,
    *,
    eid: str | None = None,
    tabmail_id: str | None = None,
    sg: str | None = None,
    address: str | None = None,
    reason: str | None = None,
    flag: FlagKind | None = None,
) -> ProviderEvent:
    when = T0 + timedelta(minutes=minutes)
    return ProviderEvent(
        provider_event_id=eid or stable_event_id(name, minutes, tabmail_id, sg, address),
        name=name,
        status=status,
        event_time=when,
        tabmail_id=tabmail_id,
        sg_message_id=sg,
        x_message_id=x_message_id_of(sg),
        address=address,
        reason=reason,
        flag=flag,
        source="test",
        raw={"event": name},
    )


@pytest.fixture
def repo(ctx: AppContext) -> TrackingRepository:
    return TrackingRepository(ctx.db)


@pytest.fixture
def people(ctx: AppContext) -> dict[str, int]:
    return small_tournament(ctx, ADDRS)


def ingest(repo: TrackingRepository, events: list[ProviderEvent], **kw: Any) -> Any:
    return repo.ingest(events, derive=derive_status, now=T0 + timedelta(hours=1), **kw)


def test_duplicates_are_stored_once_across_and_within_polls(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("m1", ADDRS[0], "XA")], T0, people=people)
    events = [
        ev("delivered", S.DELIVERED, 1, eid="e1", tabmail_id="m1"),
        ev("open", S.OPENED, 2, eid="e2", tabmail_id="m1"),
    ]
    first = ingest(repo, [*events, events[0]])
    assert (first.received, first.inserted, first.duplicates) == (3, 2, 1)
    second = ingest(repo, events)
    assert (second.inserted, second.duplicates, second.changed_message_ids) == (0, 2, [])
    assert repo.event_count() == 2
    assert [e.provider_event_id for e in repo.timeline("m1")] == ["e1", "e2"]


def test_matching_order(ctx: AppContext, repo: TrackingRepository, people: dict[str, int]) -> None:
    sent_batch(
        ctx,
        [
            ("m-ann", ADDRS[0], "XANN"),
            ("m-ben", ADDRS[1], "XBEN"),
            ("m-cat", ADDRS[2], "XCAT"),
            ("m-dan", ADDRS[3], None),
        ],
        T0,
        people=people,
    )
    # m-ben already knows its full sg_message_id (learned earlier)
    ingest(repo, [ev("processed", S.PROCESSED, 0.5, eid="learn", tabmail_id="m-ben", sg="XBEN.recvd-1.0")])
    assert ctx.notifications.get("m-ben").sg_message_id == "XBEN.recvd-1.0"
    result = ingest(
        repo,
        [
            # tabmail_id beats a sg_message_id that belongs to someone else
            ev("delivered", S.DELIVERED, 1, eid="a", tabmail_id="m-ann", sg="XBEN.recvd-1.0"),
            # exact sg_message_id
            ev("delivered", S.DELIVERED, 1, eid="b", sg="XBEN.recvd-1.0"),
            # the X-Message-Id prefix stored at send time
            ev("deferred", S.DEFERRED, 1, eid="c", sg="XCAT.recvd-77-ABC.0", reason="421 later"),
            # no ids at all: address + time
            ev("suppression:bounces", S.BOUNCED, 3, eid="d", address="DAN@example.org", flag=FlagKind.HARD),
        ],
    )
    assert result.matched == 4 and result.unmatched == 0
    assert result.matched_by == {"tabmail_id": 1, "sg_message_id": 1, "x_message_id": 1, "address_time": 1}
    assert [e.provider_event_id for e in repo.timeline("m-ann")] == ["a"]
    assert [e.provider_event_id for e in repo.timeline("m-ben")] == ["learn", "b"]
    assert [e.provider_event_id for e in repo.timeline("m-dan")] == ["d"]
    cat = ctx.notifications.get("m-cat")
    assert cat.sg_message_id == "XCAT.recvd-77-ABC.0"  # learned from the prefix match
    assert (cat.delivery_status, cat.status_reason) == (S.DEFERRED, "421 later")
    assert ctx.notifications.get("m-dan").delivery_status is S.BOUNCED


def test_a_shared_x_message_id_is_split_by_address(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    # one request with two personalizations: one X-Message-Id for both messages
    sent_batch(ctx, [("m1", ADDRS[0], "XSHARED"), ("m2", ADDRS[1], "XSHARED")], T0, people=people)
    result = ingest(
        repo,
        [
            ev("delivered", S.DELIVERED, 1, eid="to-ben", sg="XSHARED.recvd-a.1", address=ADDRS[1]),
            ev("bounce", S.BOUNCED, 1, eid="to-ann", sg="XSHARED.recvd-a.0", address=ADDRS[0]),
        ],
    )
    assert result.matched_by == {"x_message_id": 2}
    assert ctx.notifications.get("m1").delivery_status is S.BOUNCED
    assert ctx.notifications.get("m2").delivery_status is S.DELIVERED
    assert ctx.notifications.get("m1").sg_message_id == "XSHARED.recvd-a.0"


def test_address_and_time_pick_the_latest_send_before_the_event(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("early", ADDRS[0], "XE")], T0, people=people)
    sent_batch(ctx, [("late", ADDRS[0], "XL")], T0 + timedelta(hours=2), people=people)
    result = ingest(
        repo,
        [
            ev("suppression:bounces", S.BOUNCED, 60, eid="between", address=ADDRS[0]),  # after early only
            ev("suppression:blocks", S.BLOCKED, 180, eid="after-both", address=ADDRS[0]),
            ev("bounce", S.BOUNCED, -30, eid="before-any", address=ADDRS[0]),
            ev("bounce", S.BOUNCED, 60 * 24 * 4, eid="too-late", address=ADDRS[0]),  # 4 days > window
        ],
    )
    assert (result.matched, result.unmatched) == (2, 2)
    assert [e.provider_event_id for e in repo.timeline("early")] == ["between"]
    assert [e.provider_event_id for e in repo.timeline("late")] == ["after-both"]
    assert {e.provider_event_id for e in repo.unmatched()} == {"before-any", "too-late"}


def test_address_match_skips_a_message_that_is_known_to_be_another_send(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("known", ADDRS[2], "XK")], T0, people=people)
    ingest(repo, [ev("processed", S.PROCESSED, 0, eid="p", tabmail_id="known", sg="XK.recvd.0")])
    # an event for a message of some other app on the same account, to the same address
    result = ingest(repo, [ev("bounce", S.BOUNCED, 5, eid="foreign", sg="ZZOTHER.recvd.0", address=ADDRS[2])])
    assert result.unmatched == 1
    assert ctx.notifications.get("known").delivery_status is S.PROCESSED


def test_unmatched_events_are_kept_counted_and_listed(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="tabmail.store.tracking")
    result = ingest(
        repo,
        [
            ev("bounce", S.BOUNCED, 1, eid="u1", sg="NOPE.x.0", address="stranger@example.net"),
            ev("delivered", S.DELIVERED, 2, eid="u2", tabmail_id="no-such-message"),
        ],
    )
    assert (result.inserted, result.unmatched, result.matched) == (2, 2, 0)
    assert repo.unmatched_count() == 2
    listed = repo.unmatched()
    assert [e.provider_event_id for e in listed] == ["u2", "u1"]  # newest first
    assert all(e.message_id is None for e in listed)
    assert listed[1].address == "stranger@example.net" and listed[1].status is S.BOUNCED
    assert sum("matched no message" in r.getMessage() for r in caplog.records) == 1
    again = ingest(
        repo, [ev("bounce", S.BOUNCED, 1, eid="u1", sg="NOPE.x.0", address="stranger@example.net")]
    )
    assert again.unmatched == 0  # a duplicate is not counted (or logged) twice
    assert sum("matched no message" in r.getMessage() for r in caplog.records) == 1


def test_derived_status_and_changes(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("m1", ADDRS[0], "X1")], T0, people=people)
    r1 = ingest(
        repo,
        [
            ev("deferred", S.DEFERRED, 2, tabmail_id="m1", reason="421 later"),
            ev("processed", S.PROCESSED, 0, tabmail_id="m1"),
        ],
    )
    assert r1.changed_message_ids == ["m1"]
    m = ctx.notifications.get("m1")
    assert (m.delivery_status, m.status_at, m.status_reason) == (
        S.DEFERRED,
        T0 + timedelta(minutes=2),
        "421 later",
    )
    r2 = ingest(repo, [ev("delivered", S.DELIVERED, 30, tabmail_id="m1", reason="250 OK")])
    assert r2.changed_message_ids == ["m1"]
    assert ctx.notifications.get("m1").delivery_status is S.DELIVERED
    # a processed event arriving late changes nothing
    r3 = ingest(repo, [ev("processed", S.PROCESSED, 1, eid="late-processed", tabmail_id="m1")])
    assert (r3.inserted, r3.changed_message_ids, r3.touched_message_ids) == (1, [], ["m1"])
    assert repo.latest_event_times(["m1", "nothing"]) == {"m1": T0 + timedelta(minutes=30)}


def test_flags_from_events(ctx: AppContext, repo: TrackingRepository, people: dict[str, int]) -> None:
    sent_batch(ctx, [("m1", ADDRS[0], "X1"), ("m2", ADDRS[1], "X2")], T0, people=people)
    result = ingest(
        repo,
        [
            ev(
                "bounce",
                S.BOUNCED,
                5,
                tabmail_id="m1",
                address=ADDRS[0],
                reason="550 5.1.1 no such user",
                flag=FlagKind.HARD,
            ),
            ev("bounce", S.BLOCKED, 5, tabmail_id="m2", address=ADDRS[1], reason="554 blocked"),  # no flag
            # an address nobody here has: kept as an event, but not flagged
            ev("suppression:bounces", S.BOUNCED, 5, address="nobody@example.net", flag=FlagKind.HARD),
            # a participant's address we never sent to: flagged (SendGrid would drop our sends)
            ev("suppression:spam_reports", S.SPAM_REPORT, 5, address=ADDRS[3].upper(), flag=FlagKind.SPAM),
        ],
    )
    assert result.flagged_keys == [ADDRS[0], ADDRS[3]]
    active = ctx.flags.active()
    assert set(active) == {ADDRS[0], ADDRS[3]}
    flag = active[ADDRS[0]]
    assert (flag.kind, flag.source, flag.diagnostic, flag.since) == (
        FlagKind.HARD,
        "sendgrid",
        "550 5.1.1 no such user",
        T0 + timedelta(minutes=5),
    )
    assert active[ADDRS[3]].kind is FlagKind.SPAM
    # the same news again flags nothing new
    again = ingest(repo, [ev("suppression:bounces", S.BOUNCED, 6, address=ADDRS[0], flag=FlagKind.HARD)])
    assert again.flagged_keys == []
    assert len(ctx.flags.history(ADDRS[0])) == 1


def test_a_cleared_flag_is_not_brought_back_by_older_news(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("m1", ADDRS[0], "X1")], T0, people=people)
    ingest(
        repo, [ev("bounce", S.BOUNCED, 5, eid="b1", tabmail_id="m1", address=ADDRS[0], flag=FlagKind.HARD)]
    )
    assert ctx.flags.clear(ADDRS[0], "fixed the mailbox") == 1
    old_news = ingest(
        repo,
        [
            from_suppression(
                "bounces", {"created": int((T0 + timedelta(minutes=5)).timestamp()), "email": ADDRS[0]}
            )
        ],
    )
    assert old_news.inserted == 1 and old_news.flagged_keys == []
    assert ctx.flags.active() == {}
    # a genuinely new bounce (after the clearing) flags again
    future = datetime.now(UTC) + timedelta(minutes=1)
    new = ProviderEvent(
        "b-new", "bounce", S.BOUNCED, future, address=ADDRS[0], flag=FlagKind.HARD, tabmail_id="m1"
    )
    assert repo.ingest([new], derive=derive_status).flagged_keys == [ADDRS[0]]


def test_earliest_and_latest_sent_and_status_lookup(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    assert repo.latest_sent() is None
    sent_batch(ctx, [("a", ADDRS[0], "XA")], T0, people=people)
    sent_batch(ctx, [("b", ADDRS[1], "XB")], T0 + timedelta(hours=1), people=people)
    ingest(repo, [ev("delivered", S.DELIVERED, 1, tabmail_id="a", sg="XA.r.0")])
    assert repo.latest_sent() == T0 + timedelta(hours=1)
    assert repo.earliest_sent(T0 - timedelta(days=1)) == T0
    assert repo.earliest_sent(T0 - timedelta(days=1), statuses=["unknown", "processed"]) == T0 + timedelta(
        hours=1
    )
    assert repo.statuses_by_sg_id(["XA.r.0", "nope"]) == {"XA.r.0": "delivered"}


def test_timeline_gives_back_each_event_as_written(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("m1", ADDRS[0], "X1")], T0, people=people)
    written = replace(
        ev("bounce", S.BOUNCED, 5, eid="b1", tabmail_id="m1", address=ADDRS[0], reason="550 gone"),
        raw={"event": "bounce", "nested": {"codes": [550, 5.1], "ok": None}, "text": "ünïcode"},
    )
    ingest(repo, [written])
    (got,) = repo.timeline("m1")
    assert (got.message_id, got.provider, got.provider_event_id, got.event) == (
        "m1",
        "sendgrid",
        "b1",
        "bounce",
    )
    assert (got.status, got.address, got.reason) == (S.BOUNCED, ADDRS[0], "550 gone")
    assert got.event_time == T0 + timedelta(minutes=5) and got.event_time.tzinfo is not None
    assert got.received_at == T0 + timedelta(hours=1)
    assert got.raw == written.raw
    assert repo.timeline("no-such-message") == []


def test_status_sources_take_the_latest_event_with_the_current_status(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(
        ctx, [("m1", ADDRS[0], "X1"), ("m2", ADDRS[1], "X2"), ("m3", ADDRS[2], "X3")], T0, people=people
    )
    ingest(
        repo,
        [
            ev("delivered", S.DELIVERED, 1, eid="d1", tabmail_id="m1"),
            ev("bounce", S.BOUNCED, 5, eid="sg-b1", tabmail_id="m1"),  # stored first, the latest
            replace(ev("bounce", S.BOUNCED, 4, eid="in-b2", tabmail_id="m2"), provider="inbox"),
        ],
    )
    ingest(
        repo,
        [
            replace(ev("bounce", S.BOUNCED, 3, eid="in-b1", tabmail_id="m1"), provider="inbox"),
            ev("bounce", S.BOUNCED, 4, eid="sg-b2", tabmail_id="m2"),  # the same time, stored later
            replace(ev("delivered", S.DELIVERED, 2, eid="in-d3", tabmail_id="m3"), provider="inbox"),
        ],
    )
    assert [ctx.notifications.get(m).delivery_status for m in ("m1", "m2", "m3")] == [S.BOUNCED] * 2 + [
        S.DELIVERED
    ]
    assert repo.status_sources(["m1", "m2", "m3", "nothing"]) == {
        "m1": "sendgrid",
        "m2": "sendgrid",
        "m3": "inbox",
    }
    assert repo.status_sources([]) == {}


def test_batches_with_events_from_a_provider(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    first = sent_batch(ctx, [("a", ADDRS[0], "XA")], T0, people=people)
    second = sent_batch(ctx, [("b", ADDRS[1], "XB"), ("c", ADDRS[2], "XC")], T0, people=people)
    third = sent_batch(ctx, [("d", ADDRS[3], "XD")], T0, people=people)
    ingest(
        repo,
        [
            ev("delivered", S.DELIVERED, 1, tabmail_id="a"),
            replace(ev("bounce", S.BOUNCED, 2, tabmail_id="b"), provider="inbox"),
            replace(ev("bounce", S.BOUNCED, 3, tabmail_id="c"), provider="inbox"),
        ],
    )
    assert repo.batches_with_events_from("inbox", [first, second, third]) == {second}
    assert repo.batches_with_events_from("sendgrid", [first, second, third]) == {first}
    assert repo.batches_with_events_from("inbox", [first, third]) == set()


def test_sent_through_lists_the_sends_of_a_backend_and_marks_corrections(
    ctx: AppContext, repo: TrackingRepository, people: dict[str, int]
) -> None:
    sent_batch(ctx, [("old", ADDRS[0], None)], T0 - timedelta(days=1), people=people)
    sent_batch(ctx, [("first", ADDRS[0], None), ("other", ADDRS[1], None)], T0, people=people)
    later = T0 + timedelta(minutes=10)
    sent_batch(ctx, [("fixed", ADDRS[2], None), ("again", ADDRS[1].upper(), None)], later, people=people)
    with ctx.db.sql(write=True) as q:
        q.run("UPDATE messages SET resend_of = 'first' WHERE id = 'fixed'")  # to another address
        q.run("UPDATE messages SET resend_of = 'other' WHERE id = 'again'")  # to the same one
        q.run("UPDATE messages SET state = 'failed' WHERE id = 'other'")
    sends = repo.sent_through("sendgrid", T0)
    assert [(s.message_id, s.address, s.sent_at, s.corrected) for s in sends] == [
        ("first", ADDRS[0], T0, False),
        ("again", ADDRS[1].upper(), later, False),
        ("fixed", ADDRS[2], later, True),
    ]
    assert all(s.sent_at.tzinfo is not None for s in sends)
    assert repo.sent_through("practice", T0 - timedelta(days=2)) == []
