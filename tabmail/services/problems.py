"""Unresolved problems per round, per tournament and across tournaments; resolving them by hand;
and the per-message outbox actions "Retry now" and "Cancel".

What is a problem and when it is resolved is ``tabmail.domain.problems``' call; this module
gathers the data (``ctx.problems.candidates``: two queries whatever the size of the database)
and applies it. Marking resolved and its undo publish ``StatusesChanged`` so every screen
showing the message re-reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tabmail.domain.addresses import address_key
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import MessageStateChanged, StatusesChanged
from tabmail.domain.notification import AddressFlag, FlagKind, Message, MessageState
from tabmail.domain.problems import (
    PROBLEM_CATEGORIES,
    Category,
    Resolution,
    category_of,
    resolved_by_resend,
)
from tabmail.services.context import AppContext
from tabmail.store.problems import Sent

# Messages handled per slice of ``unresolved_steps`` (a few ms of work each).
STEP_CHUNK = 300
# Backends that report no delivery: a resend they accepted counts as having reached its recipient.
UNTRACKED_BACKENDS = frozenset({"smtp", "file"})


CANCELLED = "cancelled by the director"


class ProblemError(TabmailError):
    pass


@dataclass(frozen=True, slots=True)
class Problem:
    """One unresolved problem and where it happened: a row of the Problems view."""

    message: Message
    category: Category
    sent: Sent

    @property
    def since(self) -> datetime | None:
        m = self.message
        return m.status_at or m.sent_at or m.created_at

    @property
    def reason(self) -> str:
        m = self.message
        return m.status_reason or m.last_error or ""


def tracked(backend: str) -> bool:
    return backend not in UNTRACKED_BACKENDS


def tracked_batch_ids(ctx: AppContext, batches: Iterable[tuple[int, str]]) -> set[int]:
    """Which of ``(batch id, backend)`` get delivery news after sending: SendGrid's always; any
    other batch when the tab room's mailbox is read (bounces arrive there) or when some of its
    messages already have a status from the inbox."""
    pairs = list(batches)
    if str(ctx.settings.get("imap.host") or "").strip():
        return {bid for bid, _ in pairs}
    found = {bid for bid, backend in pairs if tracked(backend)}
    rest = [bid for bid, _ in pairs if bid not in found]
    if rest:
        found |= ctx.tracking.batches_with_events_from("inbox", rest)
    return found


def flag_kinds(flags: dict[str, AddressFlag]) -> dict[str, FlagKind]:
    return {k: f.kind for k, f in flags.items()}


def resolutions_for(
    messages: Sequence[Message],
    manual: dict[str, Resolution],
    *,
    tracked_batches: Iterable[int] | None = None,
) -> dict[str, Resolution]:
    """Every resolution of ``messages``: a delivered resend (derived) or the director's word."""
    trackedset = None if tracked_batches is None else set(tracked_batches)
    by_batch: dict[int, list[Message]] = {}
    for m in messages:
        by_batch.setdefault(m.batch_id, []).append(m)
    found: dict[str, Resolution] = {}
    for bid, group in by_batch.items():
        is_tracked = trackedset is None or bid in trackedset
        for original, resend in resolved_by_resend(group, tracked=is_tracked).items():
            found[original] = Resolution(original, "a resend reached the recipient", None, "", resend)
    for mid, resolution in manual.items():
        found.setdefault(mid, resolution)
    return found


def unresolved(
    ctx: AppContext, *, tournament_id: int | None = None, round_id: int | None = None
) -> list[Problem]:
    """Every unresolved problem (by tournament and round, newest first within each)."""
    steps = unresolved_steps(ctx, tournament_id=tournament_id, round_id=round_id)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: list[Problem] = done.value
            return result


def unresolved_steps(
    ctx: AppContext,
    *,
    tournament_id: int | None = None,
    round_id: int | None = None,
    chunk: int = STEP_CHUNK,
) -> Generator[None, None, list[Problem]]:
    """``unresolved`` in slices: the generator yields between slices of about ``chunk`` messages
    and returns the list. The window drives it from a timer on the GUI thread, so a season's
    problems are read without holding the window (or a thread competing for the GIL) for long."""
    messages: list[Message] = []
    for part in ctx.problems.candidate_chunks(chunk):
        messages += part
        yield
    batches = ctx.problems.sent_for(sorted({m.batch_id for m in messages}))
    wanted = {
        b
        for b, sent in batches.items()
        if (tournament_id is None or sent.tournament_id == tournament_id)
        and (round_id is None or sent.round_id == round_id)
    }
    messages = [m for m in messages if m.batch_id in wanted]
    if not messages:
        return []
    yield
    keys = sorted({k for k in (_key(m) for m in messages) if k})
    flags: dict[str, FlagKind] = {}
    for start in range(0, len(keys), chunk):
        flags.update(flag_kinds(ctx.flags.active(keys[start : start + chunk])))
        yield
    categories: dict[str, Category] = {}
    for start in range(0, len(messages), chunk):
        for m in messages[start : start + chunk]:
            categories[m.id] = category_of(m, flags.get(_key(m) or ""))
        yield
    problem_ids = [mid for mid, c in categories.items() if c in PROBLEM_CATEGORIES]
    manual = ctx.problems.resolutions(problem_ids if len(problem_ids) < 500 else None)
    tracked_batches = tracked_batch_ids(ctx, ((b, batches[b].backend) for b in wanted))
    resolved = resolutions_for(messages, manual, tracked_batches=tracked_batches)
    yield
    problems = [
        Problem(m, categories[m.id], batches[m.batch_id])
        for m in messages
        if categories[m.id] in PROBLEM_CATEGORIES and m.id not in resolved
    ]
    problems.sort(
        key=lambda p: (p.sent.tournament_name.casefold(), p.sent.round_name, -_stamp(p.since), p.message.id)
    )
    return problems


def _key(m: Message) -> str | None:
    return address_key(m.address)


def _stamp(at: datetime | None) -> float:
    if at is None:
        return 0.0
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class ProblemCounts:
    by_round: Counter[int]
    by_tournament: Counter[int]
    total: int
    # per tournament, the problems of its batches with no round (private URLs, registration)
    without_round: Counter[int] = field(default_factory=Counter)


def counts_of(problems: Sequence[Problem]) -> ProblemCounts:
    by_round: Counter[int] = Counter(p.sent.round_id for p in problems if p.sent.round_id is not None)
    by_tournament: Counter[int] = Counter(p.sent.tournament_id for p in problems)
    without_round: Counter[int] = Counter(p.sent.tournament_id for p in problems if p.sent.round_id is None)
    return ProblemCounts(by_round, by_tournament, len(problems), without_round)


def count(ctx: AppContext) -> ProblemCounts:
    """Unresolved problems per round and per tournament (badges, the window title)."""
    return counts_of(unresolved(ctx))


# -- the director's word ---------------------------------------------------------------------------
def mark_resolved(ctx: AppContext, message_id: str, reason: str) -> Resolution:
    """Mark a problem resolved with a reason (undo: ``unmark_resolved``). Raises ProblemError."""
    why = " ".join((reason or "").split())
    if not why:
        raise ProblemError("say why the problem is resolved (for example: phoned the adjudicator)")
    m = ctx.notifications.get(message_id)
    flags = flag_kinds(ctx.flags.active([k for k in [_key(m)] if k]))
    category = category_of(m, flags.get(_key(m) or ""))
    if category not in PROBLEM_CATEGORIES:
        raise ProblemError(
            f"message {m.id} to {m.address} is {category.value}: there is no problem to resolve"
        )
    resolution = ctx.problems.resolve(m.id, why, by=ctx.user)
    ctx.bus.publish(StatusesChanged((m.id,)))
    return resolution


def unmark_resolved(ctx: AppContext, message_id: str) -> bool:
    m = ctx.notifications.get(message_id)
    changed = ctx.problems.unresolve(m.id)
    if changed:
        ctx.bus.publish(StatusesChanged((m.id,)))
    return changed


# -- per message: retry now, cancel ----------------------------------------------------------------
def retry_now(ctx: AppContext, message_id: str) -> Message:
    """Send a retrying or failed message again at once (the caller runs the outbox)."""
    m = ctx.notifications.get(message_id)
    if m.state not in (MessageState.RETRYING, MessageState.FAILED):
        raise ProblemError(
            f"message {m.id} is {m.state.value}: only retrying or failed messages can be retried"
        )
    if not ctx.notifications.retry_now(m.id):
        raise ProblemError(f"message {m.id} changed state meanwhile; look again")
    ctx.bus.publish(MessageStateChanged(m.id, m.batch_id, MessageState.QUEUED.value))
    return ctx.notifications.get(m.id)


def cancel(ctx: AppContext, message_id: str) -> Message:
    """Stop a queued or retrying message: it becomes skipped (kept, shown), marked resolved."""
    m = ctx.notifications.get(message_id)
    if m.state not in (MessageState.QUEUED, MessageState.RETRYING):
        raise ProblemError(
            f"message {m.id} is {m.state.value}: only queued or retrying messages can be cancelled"
        )
    if not ctx.notifications.cancel(m.id):
        raise ProblemError(f"message {m.id} is being sent right now; it can no longer be cancelled")
    # The director's own choice is not a problem to fix: it is resolved by saying so (undoable).
    ctx.problems.resolve(m.id, CANCELLED, by=ctx.user)
    ctx.bus.publish(MessageStateChanged(m.id, m.batch_id, MessageState.SKIPPED.value))
    return ctx.notifications.get(m.id)
