"""store/inbox.py on both engines: storing what the mailbox reader read (a key once, the model's
defaults, raw bytes as they were), the inbox's filters and newest-first order, the lookups
inbound matching makes, the reply counts, and times handed back as aware UTC."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tabmail.services.context import AppContext
from tabmail.store.models import StatusEventRow
from tests.inbox_support import T0, add_inbox, two_team_sent
from tests.keyrings import MemoryKeyring

BOTH_ENGINES = True


def test_add_stores_a_key_once_with_the_models_defaults(ctx: AppContext) -> None:
    raw = b"From: x@example.org\r\n\r\n\x00\xff bytes as read"
    first = {"key": "k1", "kind": "reply", "subject": "one", "raw": raw}
    again = {"key": "k1", "kind": "reply", "subject": "one, read twice", "raw": raw}
    assert ctx.inbox.add([first, again, {"key": "k2", "kind": "ignored"}]) == 2
    assert ctx.inbox.add([{"key": "k1", "kind": "reply"}, {"key": "k3", "kind": "dsn"}]) == 1
    assert ctx.inbox.add([]) == 0
    assert ctx.inbox.known_keys(["k1", "k3", "nope"]) == {"k1", "k3"}
    assert ctx.inbox.counts() == {"reply": 1, "ignored": 1, "dsn": 1}

    (entry,) = ctx.inbox.entries(kinds=("reply",))
    assert entry.subject == "one, read twice"  # the last of a key's rows in one call
    assert (entry.from_name, entry.different_sender, entry.detail, entry.read_at, entry.message_id) == (
        "",
        False,
        {},
        None,
        None,
    )
    assert ctx.inbox.raw(entry.id) == raw
    ignored = next(e for e in ctx.inbox.entries(kinds=("ignored",)))
    assert ctx.inbox.raw(ignored.id) is None
    assert ctx.inbox.raw(10**6) is None

    with pytest.raises(ValueError, match="inbox_messages has no column colour"):
        ctx.inbox.add([{"key": "k4", "kind": "reply", "colour": "red"}])
    with pytest.raises(ValueError, match="an inbox row needs its key and kind"):
        ctx.inbox.add([{"key": "k4", "kind": "reply"}, {"key": "k5"}])
    assert ctx.inbox.known_keys(["k4"]) == set()


def test_a_key_another_process_is_storing_meanwhile_is_skipped(ctx: AppContext, db_target: str) -> None:
    """Two readers of one mailbox (two laptops on PostgreSQL, or a CLI check beside the GUI): the
    one that looked first and stores second skips the other's key, without an error."""
    other = AppContext.open(db_target, keyring_backend=MemoryKeyring())
    outcome: list[object] = []

    def add() -> None:
        try:
            outcome.append(ctx.inbox.add([{"key": "k9", "kind": "reply"}, {"key": "k10", "kind": "dsn"}]))
        except Exception as exc:
            outcome.append(exc)

    try:
        with other.db.sql(write=True) as q:
            q.run(
                "INSERT INTO inbox_messages (key, folder, uidvalidity, uid, kind, processed_at, from_name, "
                "subject, different_sender, detail, truncated) "
                "VALUES ('k9', '', 0, 0, 'reply', :now, 'other', '', false, '{}', false)",
                {"now": T0},
            )
            adding = threading.Thread(target=add)
            adding.start()
            time.sleep(0.5)
            assert adding.is_alive()  # it waits for the other's transaction (or SQLite's lock)
        adding.join(30)
    finally:
        other.close()
    assert outcome and not isinstance(outcome[0], Exception), outcome
    assert sorted((e.kind, e.from_name) for e in ctx.inbox.entries()) == [("dsn", ""), ("reply", "other")]


def test_entries_filter_and_come_newest_first_with_aware_times(ctx: AppContext) -> None:
    sent = two_team_sent(ctx)
    draw, urls = sent["draw"], sent["urls"]
    person = ctx.notifications.get(draw[0]).person_id
    at = T0 + timedelta(hours=1)
    a = add_inbox(ctx, draw[0], at=at, detail={"attribution": "thread"})
    b = add_inbox(ctx, draw[0], at=at, kind="auto_reply")  # same time: the later row first
    c = add_inbox(ctx, urls[0], at=at + timedelta(minutes=5), read=True)
    d = add_inbox(ctx, None, at=at - timedelta(minutes=5), sender="Coach@Elsewhere.example")

    everything = ctx.inbox.entries()
    assert [e.id for e in everything] == [c, b, a, d]
    assert [e.id for e in ctx.inbox.entries(limit=2)] == [c, b]
    assert [e.id for e in ctx.inbox.entries(limit=None)] == [c, b, a, d]
    assert [e.id for e in ctx.inbox.entries(kinds=("reply",))] == [c, a, d]
    assert ctx.inbox.entries(kinds=()) == []
    assert [e.id for e in ctx.inbox.entries(tournament_slug="two-team")] == [c, b, a]
    assert ctx.inbox.entries(tournament_slug="elsewhere") == []
    assert [e.id for e in ctx.inbox.entries(round_seq=1)] == [b, a]
    assert [e.id for e in ctx.inbox.entries(message_id=draw[0], kinds=("reply", "auto_reply"))] == [b, a]
    mine = [
        x
        for x, mid in ((c, urls[0]), (b, draw[0]), (a, draw[0]))
        if ctx.notifications.get(mid).person_id == person
    ]
    assert [e.id for e in ctx.inbox.entries(person_id=person)] == mine
    assert [e.id for e in ctx.inbox.entries(unmatched=True)] == [d]
    assert [e.id for e in ctx.inbox.entries(unmatched=False)] == [c, b, a]
    (one,) = ctx.inbox.entries(entry_id=a)
    assert one.received_at == at and one.received_at is not None and one.received_at.tzinfo is UTC
    assert one.detail == {"attribution": "thread"} and one.reply_text == "I cannot chair this room."
    target = ctx.notifications.get(draw[0])
    assert (one.recipient_name, one.sent_to, one.tournament_slug, one.round_seq) == (
        target.recipient_name,
        target.address,
        "two-team",
        1,
    )
    (read,) = ctx.inbox.entries(entry_id=c)
    assert read.read_at == T0 and read.read_at is not None and read.read_at.tzinfo is UTC
    assert read.round_seq is None

    later = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
    assert ctx.inbox.mark_read([a, c, d], later) == 2  # c was read already
    assert ctx.inbox.mark_read([a, c, d]) == 0 and ctx.inbox.mark_read([]) == 0
    assert ctx.inbox.entries(entry_id=a)[0].read_at == later
    assert ctx.inbox.entries(entry_id=c)[0].read_at == T0


def test_the_lookups_inbound_matching_makes(ctx: AppContext) -> None:
    sent = two_team_sent(ctx)
    draw = [ctx.notifications.get(i) for i in sent["draw"]]
    first = draw[0]
    assert ctx.inbox.tournament_slugs() == ["two-team"]
    assert first.message_id_header
    refs = ctx.inbox.sent_by_header([first.message_id_header, "<nobody@example.org>"])
    assert list(refs) == [first.message_id_header]
    ref = refs[first.message_id_header]
    assert (ref.id, ref.person_id, ref.tournament_slug, ref.sent_at) == (
        first.id,
        first.person_id,
        "two-team",
        T0,
    )
    assert ref.sent_at is not None and ref.sent_at.tzinfo is UTC
    assert ctx.inbox.addresses_of([m.id for m in draw]) == {m.id: m.address for m in draw}
    assert ctx.inbox.people_of([first.id, "nope"]) == {first.id: first.person_id}

    key = first.address.lower()
    latest = max(
        (m for m in draw + [ctx.notifications.get(i) for i in sent["urls"]] if m.address.lower() == key),
        key=lambda m: m.id,
    )
    found = ctx.inbox.latest_sent_to(key)
    assert found is not None and found.id == latest.id  # all sent at T0: the higher id wins
    assert ctx.inbox.latest_sent_to(key, slug="two-team", since=T0) == found
    assert ctx.inbox.latest_sent_to(key, since=T0 + timedelta(microseconds=1)) is None
    assert ctx.inbox.latest_sent_to(key, slug="elsewhere") is None
    assert ctx.inbox.latest_sent_to("nobody@example.org") is None

    with ctx.db.session() as s:
        s.add_all(
            StatusEventRow(
                message_id=mid,
                provider="inbox",
                provider_event_id=eid,
                event="bounce",
                status="bounced",
                event_time=T0,
            )
            for eid, mid in (("e1", first.id), ("e2", None))
        )
    assert ctx.inbox.event_matches("inbox", ["e1", "e2", "e3"]) == {"e1": first.id}
    assert ctx.inbox.event_matches("sendgrid", ["e1"]) == {}


def test_sent_choices_search_name_and_address_in_any_case(ctx: AppContext) -> None:
    sent = two_team_sent(ctx)
    messages = [ctx.notifications.get(i) for i in sent["draw"] + sent["urls"]]
    newest_first = sorted(messages, key=lambda m: (m.sent_at or T0, m.id), reverse=True)
    assert [c.id for c in ctx.inbox.sent_choices()] == [m.id for m in newest_first]
    assert [c.id for c in ctx.inbox.sent_choices(limit=3)] == [m.id for m in newest_first[:3]]
    choice = ctx.inbox.sent_choices(limit=1)[0]
    assert choice.sent_at == T0 and choice.sent_at.tzinfo is UTC and choice.tournament_slug == "two-team"

    target = messages[0]
    local = target.address.split("@")[0]
    by_address = ctx.inbox.sent_choices(f"  {local.upper()}@ ")
    assert target.id in [c.id for c in by_address]
    assert all(c.address.lower().startswith(local.lower() + "@") for c in by_address)
    word = target.recipient_name.split()[-1]
    by_name = ctx.inbox.sent_choices(word.upper())
    assert target.id in [c.id for c in by_name]
    assert all(word.lower() in c.recipient_name.lower() for c in by_name)
    # LIKE's wildcards are not wildcards in a search
    assert ctx.inbox.sent_choices("%_zz") == ctx.inbox.sent_choices("zz") == []


def test_reply_counts_per_message_round_and_batch(ctx: AppContext) -> None:
    sent = two_team_sent(ctx)
    draw, urls = sent["draw"], sent["urls"]
    add_inbox(ctx, draw[0])
    add_inbox(ctx, draw[0], read=True)
    add_inbox(ctx, draw[0], kind="auto_reply")  # not a reply
    add_inbox(ctx, draw[1], read=True)
    add_inbox(ctx, urls[0])
    add_inbox(ctx, None)
    expected = {draw[0]: (2, 1), draw[1]: (1, 0)}
    assert ctx.inbox.reply_counts([draw[0], draw[1], draw[2]]) == expected
    assert ctx.inbox.reply_counts([]) == {}
    batch = ctx.notifications.get(draw[0]).batch_id
    assert ctx.inbox.reply_counts_in_batches([batch]) == expected
    assert ctx.inbox.reply_counts_in_batches([]) == {}
    t = ctx.tournaments.get("two-team")
    round_id = ctx.tournaments.get_round(t.id, 1).id
    assert sorted(ctx.inbox.unread_reply_counts(), key=str) == sorted(
        [(t.id, round_id, 1), (t.id, None, 1)], key=str
    )
