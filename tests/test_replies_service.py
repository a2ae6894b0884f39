"""services/replies.py on both engines: unread counts per round and tournament, marking read,
the unmatched mail, and attaching a reply by hand (who and when) and detaching it again."""

from __future__ import annotations

import pytest

from tabmail.domain.errors import TabmailError
from tabmail.domain.events import RepliesChanged
from tabmail.services import replies
from tabmail.services.context import AppContext
from tests.inbox_support import add_inbox, two_team_sent

BOTH_ENGINES = True


def test_counts_read_unmatched_attach_and_detach(ctx: AppContext) -> None:
    sent = two_team_sent(ctx)
    draw, urls = sent["draw"], sent["urls"]
    t = ctx.tournaments.get("two-team")
    round_id = ctx.tournaments.get_round(t.id, 1).id
    add_inbox(ctx, draw[0])
    add_inbox(ctx, draw[0], read=True)
    add_inbox(ctx, draw[1], kind="auto_reply")
    add_inbox(ctx, urls[0])
    stranger = add_inbox(ctx, None, sender="Coach@Elsewhere.example")
    bounce = add_inbox(ctx, None, kind="dsn", sender="MAILER-DAEMON@mx.example")
    published: list[RepliesChanged] = []
    ctx.bus.subscribe(RepliesChanged, published.append)

    counts = replies.unread_counts(ctx)
    assert (dict(counts.by_round), dict(counts.by_tournament), dict(counts.without_round)) == (
        {round_id: 1},
        {t.id: 2},
        {t.id: 1},
    )
    assert {e.id for e in replies.unmatched(ctx)} == {stranger, bounce}

    unread = [e for e in ctx.inbox.entries(kinds=("reply",), message_id=draw[0]) if e.read_at is None]
    assert replies.mark_read(ctx, unread) == 1 and replies.mark_read(ctx, unread) == 0
    assert published == [RepliesChanged((draw[0],))]
    assert replies.unread_counts(ctx).total == 1

    # the director finds the message by the recipient's name, in any case
    target = ctx.notifications.get(draw[2])
    found = ctx.inbox.sent_choices(target.recipient_name.upper())
    assert target.id in [c.id for c in found]
    assert all(target.recipient_name.lower() in c.recipient_name.lower() for c in found)

    (entry,) = ctx.inbox.entries(entry_id=stranger)
    attached = replies.attach(ctx, entry, target.id)
    assert (attached.message_id, attached.person_id, attached.matched_by) == (
        target.id,
        target.person_id,
        replies.BY_HAND,
    )
    assert attached.different_sender and attached.detail["by_hand"]["by"] == (ctx.user or "the director")
    assert stranger not in {e.id for e in replies.unmatched(ctx)}
    assert replies.unread_counts(ctx).by_round[round_id] == 1
    with pytest.raises(TabmailError, match="already attached"):
        replies.attach(ctx, attached, draw[3])

    detached = replies.detach(ctx, attached)
    assert (detached.message_id, detached.person_id, detached.matched_by) == (None, None, None)
    assert "by_hand" not in detached.detail and not detached.different_sender
    assert stranger in {e.id for e in replies.unmatched(ctx)}
    assert published[-2:] == [RepliesChanged((target.id,)), RepliesChanged((target.id,))]
    with pytest.raises(TabmailError, match="not attached by hand"):
        replies.detach(ctx, detached)
