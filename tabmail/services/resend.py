"""Resend one message (to a corrected address, or the same one), or every bounced one of a batch.

The resend is a NEW message in the same batch, linked by ``resend_of``, re-rendered from the
batch's stored templates and the message's stored context with the same code as a first send
(``notify.build_message``). Nothing is cleared silently: the old message keeps its status and
the old address keeps its flag. A resend is the director's explicit act, so it goes out even to
a flagged address. Before queueing, the address is checked against SendGrid's suppression lists,
because SendGrid would drop the message otherwise: the director is told, and ``unsuppress``
removes it there first. The caller then runs the outbox.

A corrected address is stored on the person (Participants) too, except in practice mode (the
practice backend selected, or the original sent through it): a pretend bounce says nothing about
the real address, so the correction lives in the practice resend only and nothing of it is left
after practice (the note ``PRACTICE_ONLY`` says so).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tabmail.compose.recipients import Recipient
from tabmail.compose.templates import render_for
from tabmail.domain.addresses import address_key, validate_address
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import MessageStateChanged, PersonChanged
from tabmail.domain.notification import DeliveryStatus, Message, MessageState
from tabmail.domain.practice import BACKEND as PRACTICE
from tabmail.services.context import AppContext
from tabmail.services.notify import build_message, sender_for
from tabmail.services.sending import backend_name, is_practice, uses_sendgrid
from tabmail.services.tracking import api_key, client_for
from tabmail.services.writeback import can_write_back, write_back_email
from tabmail.status.requester import CallFailed, Offline, Requester, Unavailable
from tabmail.status.suppressions import LIST_WORDS, lists_holding, remove_from
from tabmail.store.tournaments import NotFound

log = logging.getLogger(__name__)

RESENDABLE_STATUSES = (DeliveryStatus.BOUNCED, DeliveryStatus.DROPPED)
PRACTICE_ONLY = "practice only: the address in Participants is unchanged"


class ResendError(TabmailError):
    pass


class ResendOutcome(enum.StrEnum):
    QUEUED = "queued"
    SUPPRESSED = "suppressed"  # nothing queued: SendGrid would drop it; the director decides


@dataclass(frozen=True, slots=True)
class ResendResult:
    original_id: str
    outcome: ResendOutcome
    address: str
    batch_id: int
    words: str  # what to tell the director
    new_message_id: str | None = None
    suppressed_on: tuple[str, ...] = ()
    unsuppressed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def lists_words(names: list[str] | tuple[str, ...]) -> str:
    """SendGrid's list names in words: ``"SendGrid's spam-report list"``."""
    return ", ".join(f"SendGrid's {LIST_WORDS.get(n, n)}" for n in names) or "a SendGrid suppression list"


_lists = lists_words


def _already_resent(ctx: AppContext, old: Message, key: str) -> Message | None:
    """A resend of this message to this address that is on its way or got there."""
    for m in ctx.notifications.messages(batch_id=old.batch_id):
        if m.resend_of != old.id or address_key(m.address) != key:
            continue
        if m.state.pending or (
            m.state in (MessageState.SENT, MessageState.UNCERTAIN) and not m.delivery_status.is_problem
        ):
            return m
    return None


async def resend(
    ctx: AppContext,
    message_id: str,
    new_address: str | None = None,
    *,
    unsuppress: bool = False,
    now: datetime | None = None,
    requester_factory: Callable[[], Requester] | None = None,
) -> ResendResult:
    """Queue a resend of ``message_id`` (an id or a unique prefix). Raises TabmailError for what
    cannot be resent (unknown id, still being sent, an unusable address, already resent)."""
    old = ctx.notifications.get(message_id)
    if old.state.pending:
        raise ResendError(f"message {old.id} is still {old.state.value}: let the outbox finish first")
    batch = ctx.notifications.get_batch(old.batch_id)
    try:
        tournament = ctx.tournaments.get_by_id(batch.tournament_id)
    except NotFound:
        raise ResendError(
            f"the tournament of message {old.id} was deleted; it cannot be re-rendered"
        ) from None
    target = old.address
    if new_address is not None and new_address.strip():
        valid, normalised, problem = validate_address(new_address)
        if not valid or normalised is None:
            raise ResendError(f"{new_address.strip()!r} is not a usable address: {problem}")
        target = normalised
    key = address_key(target) or ""
    if (earlier := _already_resent(ctx, old, key)) is not None:
        raise ResendError(
            f"message {old.id} was already resent to {earlier.address} as {earlier.id} "
            f"({earlier.state.value}, {earlier.delivery_status.value})"
        )
    sender = sender_for(ctx, tournament)
    wire_to = sender.reroute_to or target
    notes: list[str] = []

    suppressed: list[str] = []
    removed: list[str] = []
    if uses_sendgrid(ctx) and api_key(ctx):
        own = requester_factory is None
        requester = requester_factory() if requester_factory else Requester(client_for(ctx))
        try:
            suppressed = await lists_holding(requester, wire_to)
            if suppressed and not unsuppress:
                return ResendResult(
                    original_id=old.id,
                    outcome=ResendOutcome.SUPPRESSED,
                    address=target,
                    batch_id=batch.id,
                    words=(
                        f"Not resent: {wire_to} is on {_lists(suppressed)}, so SendGrid would drop the "
                        "message. Correct the address, or resend with --unsuppress to take it off "
                        "there first."
                    ),
                    suppressed_on=tuple(suppressed),
                )
            if suppressed:
                removed = await remove_from(requester, wire_to, suppressed)
                notes.append(f"removed {wire_to} from {_lists(removed)}")
        except (Offline, Unavailable, CallFailed) as exc:
            notes.append(f"could not check SendGrid's suppression lists ({exc}); SendGrid may drop it")
        finally:
            if own:
                requester.client.close()

    practising = is_practice(ctx) or batch.backend == PRACTICE
    person = None
    if target != old.address and old.person_id is not None:
        try:
            person = ctx.tournaments.get_person(old.person_id)
        except NotFound:
            person = None
    in_participants = person is not None and address_key(person.email) == key  # corrected there
    if target != old.address and old.person_id is not None and practising:
        # A pretend bounce says nothing true about the address: the correction goes into this
        # practice resend only, never into Participants (nor back to Tabbycat). An address the
        # director corrected in Participants is already there: nothing to say.
        if not in_participants:
            notes.append(PRACTICE_ONLY)
    elif person is not None and old.person_id is not None and not in_participants:
        ctx.tournaments.set_person_email(old.person_id, target, source="resend")
        ctx.bus.publish(PersonChanged(old.person_id))
        notes.append(f"{person.name}'s address is now {target}")
        if ctx.settings.get("tabbycat.write_back") and can_write_back(ctx, person.tournament_id):
            try:  # best effort: the resend goes out whether or not the site takes it
                notes.append(await asyncio.to_thread(write_back_email, ctx, old.person_id))
            except TabmailError as exc:
                notes.append(f"could not write the address back to Tabbycat: {exc}")
    recipient = Recipient(
        person_id=old.person_id or 0,
        name=old.recipient_name,
        address=target,
        address_key=key,
        role=old.role or "",
        reasons=old.reasons,
        context=dict(old.context),
        problem=None,
    )
    parts = render_for(batch.templates, recipient, tournament_name=tournament.name)
    message = build_message(
        sender,
        tournament.slug,
        recipient,
        parts,
        now=now or datetime.now(UTC),
        resend_of=old.id,
        # In-Reply-To only where the original reached (or was meant for) this same inbox
        in_reply_to=old.message_id_header if key == address_key(old.address) else None,
        send_despite_flag=True,
    )
    message = dataclasses.replace(message, person_id=old.person_id)
    ctx.notifications.add_messages(batch.id, [message], backend_name(ctx))
    ctx.bus.publish(MessageStateChanged(message.id, batch.id, MessageState.QUEUED.value))
    flags = ctx.flags.active([k for k in {address_key(old.address), key} if k])
    if key in flags:
        notes.append(f"{target} is flagged ({flags[key].kind.value}); sending anyway, as asked")
    old_key = address_key(old.address)
    if old_key and old_key != key and old_key in flags:
        notes.append(f"{old.address} stays flagged ({flags[old_key].kind.value})")
    words = f"Queued a resend of {old.id} to {target} as {message.id}"
    return ResendResult(
        original_id=old.id,
        outcome=ResendOutcome.QUEUED,
        address=target,
        batch_id=batch.id,
        words=words + ("; " + "; ".join(notes) if notes else "") + ".",
        new_message_id=message.id,
        suppressed_on=tuple(suppressed),
        unsuppressed=tuple(removed),
        notes=tuple(notes),
    )


async def resend_bounced(
    ctx: AppContext,
    batch_id: int,
    *,
    unsuppress: bool = False,
    now: datetime | None = None,
    requester_factory: Callable[[], Requester] | None = None,
) -> list[ResendResult]:
    """Resend every bounced or dropped message of a batch whose person's address has been
    corrected since (and that was not resent already). Messages whose address is unchanged are
    left alone: the same address would bounce again."""
    ctx.notifications.get_batch(batch_id)  # raises for an unknown batch
    messages = ctx.notifications.messages(batch_id=batch_id)
    resent = {m.resend_of for m in messages if m.resend_of}
    results = []
    for m in messages:
        if m.delivery_status not in RESENDABLE_STATUSES or m.id in resent or m.person_id is None:
            continue
        try:
            person = ctx.tournaments.get_person(m.person_id)
        except NotFound:
            continue
        if not person.email or not person.email_valid or person.email_key == address_key(m.address):
            continue
        results.append(
            await resend(
                ctx, m.id, person.email, unsuppress=unsuppress, now=now, requester_factory=requester_factory
            )
        )
    return results
