"""Replies read from the tab room's mailbox, as the director handles them: the unread counts per
round and tournament, marking replies read, and the mail that matched nothing (replies,
auto-replies and bounces), which the director may attach to one of our messages by hand.

Light on purpose: the IMAP stack (``services.inbox``) is not imported here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tabmail.domain.errors import TabmailError
from tabmail.domain.events import RepliesChanged
from tabmail.domain.inbox import InboxEntry
from tabmail.services.context import AppContext

UNMATCHED_KINDS = ("reply", "auto_reply", "dsn", "bounce", "feedback")
ATTACHABLE_KINDS = ("reply", "auto_reply")
BY_HAND = "by_hand"  # matched_by of a reply the director attached


@dataclass(frozen=True, slots=True)
class UnreadReplies:
    by_round: Counter[int] = field(default_factory=Counter)
    by_tournament: Counter[int] = field(default_factory=Counter)
    without_round: Counter[int] = field(default_factory=Counter)  # per tournament: batches with no round

    @property
    def total(self) -> int:
        return sum(self.by_tournament.values())


def unread_counts(ctx: AppContext) -> UnreadReplies:
    """Unread replies per round and per tournament (one query)."""
    counts = UnreadReplies()
    for tid, rid, n in ctx.inbox.unread_reply_counts():
        if tid is None:  # the tournament was deleted: its batches are nowhere in the tree
            continue
        counts.by_tournament[tid] += n
        if rid is None:
            counts.without_round[tid] += n
        else:
            counts.by_round[rid] += n
    return counts


def mark_read(ctx: AppContext, entries: Iterable[InboxEntry]) -> int:
    """Mark these replies read; says so on the bus (badges, round rows). Returns how many were
    unread."""
    unread = [e for e in entries if e.read_at is None]
    n = ctx.inbox.mark_read([e.id for e in unread]) if unread else 0
    if n:
        ctx.bus.publish(RepliesChanged(tuple(dict.fromkeys(e.message_id for e in unread if e.message_id))))
    return n


def unmatched(ctx: AppContext, *, limit: int = 1000) -> list[InboxEntry]:
    """Replies, auto-replies and bounces that matched none of our messages, newest first."""
    return ctx.inbox.entries(kinds=UNMATCHED_KINDS, unmatched=True, limit=limit)


def attach(
    ctx: AppContext, entry: InboxEntry, message_id: str, *, when: datetime | None = None
) -> InboxEntry:
    """Attach an unmatched reply or auto-reply to one of our messages by hand, recording who did
    it and when. A bounce is not attached by hand: its effects (bounced, a flagged address) need
    the original message's headers, which it did not carry."""
    if entry.kind not in ATTACHABLE_KINDS:
        raise TabmailError(
            f"only a reply or an auto-reply can be attached by hand, not a {entry.kind} "
            "(a bounce would change a message's status on a guess)"
        )
    if entry.message_id is not None:
        raise TabmailError(f"inbox message {entry.id} is already attached to message {entry.message_id}")
    note = {"by": ctx.user or "the director", "at": (when or datetime.now(UTC)).isoformat()}
    stored = ctx.inbox.attach(entry.id, message_id, matched_by=BY_HAND, note=note)
    if stored is None:
        raise TabmailError(f"inbox message {entry.id} or message {message_id} no longer exists")
    ctx.bus.publish(RepliesChanged((message_id,)))
    return stored


def detach(ctx: AppContext, entry: InboxEntry) -> InboxEntry:
    """Undo ``attach``: the entry is unmatched again (only one attached by hand)."""
    if entry.matched_by != BY_HAND or entry.message_id is None:
        raise TabmailError(f"inbox message {entry.id} was not attached by hand")
    stored = ctx.inbox.attach(entry.id, None, matched_by=None, note=None)
    if stored is None:
        raise TabmailError(f"inbox message {entry.id} no longer exists")
    ctx.bus.publish(RepliesChanged((entry.message_id,)))
    return stored
