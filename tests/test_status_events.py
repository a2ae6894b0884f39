"""Event vocabularies, the derived status of a message, and which events flag an address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tabmail.domain.notification import DeliveryStatus as S
from tabmail.domain.notification import FlagKind
from tabmail.status.events import (
    EVENT_STATUS,
    ShapeError,
    derive_status,
    flag_for,
    parse_time,
    stable_event_id,
    status_for,
    tabmail_id_from,
    x_message_id_of,
)
from tabmail.status.shapes import (
    from_activity_detail,
    from_activity_summary,
    from_logs_summary,
    from_suppression,
    from_webhook_event,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SG_ID = "Xj5LmNkWSOqRbdvOpR34BA.recvd-85abf8d92c-3qfgp-2-7890E356-43C.1"


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        ("bounce", "bounced", S.BOUNCED),
        ("open", "opened", S.OPENED),
        ("click", "clicked", S.CLICKED),
        ("spamreport", "spam_report", S.SPAM_REPORT),
        ("unsubscribe", "unsubscribed", S.UNSUBSCRIBED),
        ("processed", "processing", S.PROCESSED),
    ],
)
def test_both_vocabularies_map_to_one_status(old: str, new: str, status: S) -> None:
    assert status_for(old) is status
    assert status_for(new) is status
    assert status_for(old.upper()) is status  # tolerant of case


def test_every_documented_name_is_known() -> None:
    # reference/sendgrid.md §2.3 (both enums), §2b (summary statuses and event list), §4
    documented = [
        "bounced",
        "opened",
        "clicked",
        "processed",
        "dropped",
        "delivered",
        "deferred",
        "spam_report",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
        "bounce",
        "open",
        "click",
        "spamreport",
        "received",
        "cancel_drop",
        "blocked",
    ]
    for name in documented:
        assert name in EVENT_STATUS, name
        assert status_for(name) is not S.UNKNOWN, name


def test_bounce_type_splits_hard_from_block() -> None:
    assert status_for("bounce", "bounce") is S.BOUNCED
    assert status_for("bounce", "blocked") is S.BLOCKED
    assert status_for("bounced", "hard") is S.BOUNCED
    assert status_for("bounced", "soft") is S.BLOCKED
    assert status_for("bounce", "expired") is S.BLOCKED
    assert status_for("blocked") is S.BLOCKED


def test_unknown_names_are_kept_as_unknown_not_an_error() -> None:
    assert status_for("teleported") is S.UNKNOWN
    assert status_for("") is S.UNKNOWN


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_delivered_beats_deferred_and_processed_whatever_the_order() -> None:
    d = derive_status(
        [("delivered", _at(1), "250 OK"), ("deferred", _at(5), "421 later"), ("processed", _at(9), None)]
    )
    assert d.status is S.DELIVERED
    assert d.at == _at(1)
    assert d.reason == "250 OK"


def test_open_and_click_imply_delivered() -> None:
    assert derive_status([("processed", _at(0), None), ("opened", _at(3), None)]).status is S.OPENED
    assert derive_status([("clicked", _at(3), None), ("opened", _at(4), None)]).status is S.CLICKED


def test_bounce_is_final_even_after_a_later_delivered() -> None:
    d = derive_status([("bounced", _at(2), "550 5.1.1 user unknown"), ("delivered", _at(10), "250 OK")])
    assert d.status is S.BOUNCED
    assert d.reason == "550 5.1.1 user unknown"
    assert (
        derive_status([("dropped", _at(1), "Bounced Address"), ("opened", _at(9), None)]).status is S.DROPPED
    )
    assert derive_status([("blocked", _at(1), "554 spam"), ("delivered", _at(9), None)]).status is S.BLOCKED


def test_late_bounce_after_delivery_wins() -> None:
    d = derive_status([("delivered", _at(1), None), ("bounced", _at(60), "async bounce")])
    assert (d.status, d.at, d.reason) == (S.BOUNCED, _at(60), "async bounce")


def test_spam_report_is_a_problem_above_engagement() -> None:
    d = derive_status([("opened", _at(1), None), ("spam_report", _at(2), None), ("clicked", _at(3), None)])
    assert d.status is S.SPAM_REPORT
    assert d.status.is_problem


def test_tie_on_rank_takes_the_later_event_and_its_reason() -> None:
    d = derive_status([("deferred", _at(1), "421 first"), ("deferred", _at(5), "421 second")])
    assert (d.status, d.at, d.reason) == (S.DEFERRED, _at(5), "421 second")


def test_no_events_is_unknown_and_garbage_status_is_unknown() -> None:
    assert derive_status([]).status is S.UNKNOWN
    assert derive_status([]).at is None
    assert derive_status([("nonsense", _at(1), None)]).status is S.UNKNOWN


@pytest.mark.parametrize(
    ("status", "kwargs", "flag"),
    [
        (S.BOUNCED, {"bounce_type": "bounce"}, FlagKind.HARD),
        (S.BOUNCED, {}, FlagKind.HARD),
        (S.BOUNCED, {"classification": "Invalid Address"}, FlagKind.INVALID),
        (S.BOUNCED, {"bounce_type": "blocked"}, None),
        (S.BLOCKED, {}, None),
        (S.DEFERRED, {"reason": "421 try later"}, None),
        (S.DROPPED, {"reason": "Bounced Address"}, FlagKind.HARD),
        (S.DROPPED, {"reason": "Invalid"}, FlagKind.INVALID),
        (S.DROPPED, {"reason": "Spam Reporting Address"}, FlagKind.SPAM),
        (S.DROPPED, {"reason": "Unsubscribed Address"}, FlagKind.UNSUBSCRIBED),
        (S.DROPPED, {"reason": "Invalid SMTPAPI header"}, None),
        (S.DROPPED, {"reason": "Spam Content (if spam checker app enabled)"}, None),
        (S.SPAM_REPORT, {}, FlagKind.SPAM),
        (S.UNSUBSCRIBED, {"name": "unsubscribe"}, FlagKind.UNSUBSCRIBED),
        (S.UNSUBSCRIBED, {"name": "group_unsubscribe"}, None),
        (S.DELIVERED, {}, None),
    ],
)
def test_which_events_flag_an_address(status: S, kwargs: dict[str, str], flag: FlagKind | None) -> None:
    assert flag_for(status, **kwargs) is flag


def test_x_message_id_is_the_text_before_the_first_dot() -> None:
    assert x_message_id_of(SG_ID) == "Xj5LmNkWSOqRbdvOpR34BA"
    assert (
        x_message_id_of("XBg2anf2TqCy6WXKQFhieQ.filter0905p1mdw1-4434-59E0C6FF-3.0")
        == "XBg2anf2TqCy6WXKQFhieQ"
    )
    assert x_message_id_of(None) is None
    assert x_message_id_of("") is None


def test_times_in_every_shape_become_aware_utc() -> None:
    assert parse_time(1772355600) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert parse_time("1772355600") == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert parse_time("2026-03-01T09:00:00Z") == T0
    assert parse_time("2026-03-01T10:00:00+01:00") == T0
    assert parse_time("2026-03-01T09:00:00").tzinfo is UTC
    for bad in (None, True, "yesterday", {"t": 1}):
        with pytest.raises(ShapeError):
            parse_time(bad)


def test_tabmail_id_from_every_place_sendgrid_puts_it() -> None:
    assert tabmail_id_from({"custom_args": {"tabmail_id": "abc"}}) == "abc"
    assert tabmail_id_from({"tabmail_id": "top"}) == "top"  # webhook merges custom args
    assert tabmail_id_from({"unique_args": "{'tabmail_id': 'quoted', 'x': 'y'}"}) == "quoted"
    assert tabmail_id_from({"unique_args": '{"tabmail_id":"json"}'}) == "json"
    assert tabmail_id_from({"unique_args": "Null"}) is None
    assert tabmail_id_from({"unique_args": {"other": "1"}}) is None


def test_stable_event_ids_are_stable_and_distinct() -> None:
    assert stable_event_id("m", "bounce", 1) == stable_event_id("m", "bounce", 1)
    assert stable_event_id("m", "bounce", 1) != stable_event_id("m", "bounce", 2)
    assert stable_event_id("m", "b", None) != stable_event_id("m", "b", "None ")
    assert len(stable_event_id("x")) < 100


def test_webhook_bounce_sample_from_the_reference() -> None:
    # the Discourse sample of reference §4: type "blocked" -> a block, flags nothing
    raw = {
        "bounce_classification": "Unclassified",
        "email": "someone@example.org",
        "event": "bounce",
        "reason": "unable to get mx info",
        "sg_event_id": "Ym91bmNlLTEyMzQ",
        "sg_message_id": "euo2iKxdSayPF4YE4--I7A.recvd-5f54b5d587-pczjm-1-67BADEEA-6.0",
        "smtp-id": "<870b3a2a@forum.example>",
        "timestamp": 1740300320,
        "tls": 0,
        "type": "blocked",
        "tabmail_id": "tm-1",
    }
    ev = from_webhook_event(raw, source="logs")
    assert ev.provider_event_id == "Ym91bmNlLTEyMzQ"
    assert ev.status is S.BLOCKED
    assert ev.flag is None
    assert ev.x_message_id == "euo2iKxdSayPF4YE4--I7A"
    assert ev.tabmail_id == "tm-1"
    assert ev.event_time == datetime.fromtimestamp(1740300320, UTC)
    hard = from_webhook_event({**raw, "type": "bounce", "sg_event_id": "other"}, source="logs")
    assert (hard.status, hard.flag) == (S.BOUNCED, FlagKind.HARD)


def test_webhook_event_without_ids_gets_a_stable_hash() -> None:
    raw = {"event": "bounce", "email": "a@example.org", "timestamp": 1740300320, "type": "bounce"}
    a = from_webhook_event(raw, source="logs")
    b = from_webhook_event(dict(raw), source="logs")
    assert a.provider_event_id == b.provider_event_id
    assert a.provider_event_id.startswith("h:")
    assert a.sg_message_id is None
    with pytest.raises(ShapeError):
        from_webhook_event({"email": "a@example.org", "timestamp": 1}, source="logs")
    with pytest.raises(ShapeError):
        from_webhook_event(["not", "an", "object"], source="logs")


def test_activity_summary_delivered_with_opens_and_clicks() -> None:
    item = {
        "from_email": "tab@example.org",
        "msg_id": SG_ID,
        "subject": "Round 3",
        "to_email": "alice@example.org",
        "status": "delivered",
        "opens_count": 2,
        "clicks_count": 1,
        "last_event_time": "2026-03-01T09:05:00Z",
    }
    events, needs_detail = from_activity_summary(item)
    assert needs_detail is None
    assert [e.status for e in events] == [S.DELIVERED, S.OPENED, S.CLICKED]
    assert {e.sg_message_id for e in events} == {SG_ID}
    # polled again after another open: the same ids, so nothing new is stored
    again, _ = from_activity_summary({**item, "opens_count": 3, "last_event_time": "2026-03-01T10:00:00Z"})
    assert [e.provider_event_id for e in again] == [e.provider_event_id for e in events]


def test_activity_summary_not_delivered_asks_for_the_detail() -> None:
    item = {
        "msg_id": SG_ID,
        "to_email": "a@example.org",
        "status": "not_delivered",
        "last_event_time": "2026-03-01T09:05:00Z",
    }
    events, needs_detail = from_activity_summary(item)
    assert events == []
    assert needs_detail == SG_ID
    with pytest.raises(ShapeError):
        from_activity_summary({"status": "delivered"})


@pytest.mark.parametrize(("name", "bounce_type"), [("bounced", "hard"), ("bounce", "bounce")])
def test_activity_detail_in_either_vocabulary(name: str, bounce_type: str) -> None:
    detail = {
        "msg_id": SG_ID,
        "to_email": "alice@example.org",
        "status": "not_delivered",
        "unique_args": "{'tabmail_id': 'tm-7'}",
        "events": [
            {"event_name": "processed", "processed": "2026-03-01T09:00:00Z"},
            {
                "event_name": "deferred",
                "processed": "2026-03-01T09:01:00Z",
                "reason": "421 try later",
                "attempt_num": 1,
            },
            {
                "event_name": name,
                "processed": "2026-03-01T09:10:00Z",
                "reason": "550 5.1.1 user unknown",
                "bounce_type": bounce_type,
            },
        ],
    }
    events = from_activity_detail(detail)
    assert [e.status for e in events] == [S.PROCESSED, S.DEFERRED, S.BOUNCED]
    assert events[-1].flag is FlagKind.HARD
    assert events[1].flag is None
    assert {e.tabmail_id for e in events} == {"tm-7"}
    assert len({e.provider_event_id for e in events}) == 3
    assert (
        derive_status([(e.status, e.event_time, e.reason) for e in events]).reason == "550 5.1.1 user unknown"
    )


def test_logs_summary_statuses_and_reasons() -> None:
    base = {
        "from_email": "tab@example.org",
        "sg_message_id": SG_ID,
        "subject": "s",
        "to_email": "bob@example.org",
        "sg_message_id_created_at": "2026-03-01T09:00:00Z",
    }
    blocked = from_logs_summary({**base, "status": "blocked", "reason": "554 5.7.1 rejected"})
    assert (blocked.status, blocked.flag, blocked.reason) == (S.BLOCKED, None, "554 5.7.1 rejected")
    dropped = from_logs_summary({**base, "status": "dropped", "reason": "Bounced Address"})
    assert (dropped.status, dropped.flag) == (S.DROPPED, FlagKind.HARD)
    bounced = from_logs_summary({**base, "status": "bounced"})
    assert bounced.flag is FlagKind.HARD
    assert bounced.provider_event_id != dropped.provider_event_id
    assert bounced.event_time == T0


@pytest.mark.parametrize(
    ("list_name", "status", "flag"),
    [
        ("bounces", S.BOUNCED, FlagKind.HARD),
        ("blocks", S.BLOCKED, None),
        ("invalid_emails", S.BOUNCED, FlagKind.INVALID),
        ("spam_reports", S.SPAM_REPORT, FlagKind.SPAM),
        ("unsubscribes", S.UNSUBSCRIBED, FlagKind.UNSUBSCRIBED),
    ],
)
def test_suppression_entries(list_name: str, status: S, flag: FlagKind | None) -> None:
    ev = from_suppression(list_name, {"created": 1772355600, "email": "X@Example.org", "reason": "550 gone"})
    assert (ev.status, ev.flag, ev.address, ev.event_time) == (status, flag, "X@Example.org", T0)
    assert ev.sg_message_id is None and ev.tabmail_id is None
    same = from_suppression(list_name, {"created": 1772355600, "email": "x@example.org"})
    assert same.provider_event_id == ev.provider_event_id  # case of the address does not matter
    assert same.reason  # plain words when SendGrid gives no reason
    with pytest.raises(ShapeError):
        from_suppression(list_name, {"created": 1772355600})
