"""Compose and enqueue: who gets what, validated for everyone before anything is queued.

Flow: ``plan`` computes the recipients with their reasons and marks (already received,
flagged as bouncing, no or invalid address); ``enqueue`` renders every template for every
selected recipient, and only when all of them render writes the batch and all its messages
as 'queued' in ONE transaction. Any rendering problem raises TemplateRenderError listing
every problem, and nothing is queued.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tabmail.compose.changes import Change, classify, removed_recipient, with_changes
from tabmail.compose.kinds import url_problem
from tabmail.compose.message import email_bytes, make_message_id, new_tabmail_id, thread_anchor
from tabmail.compose.recipients import Recipient, ballot_recipients, custom_recipients, draw_recipients
from tabmail.compose.templates import (
    RenderedParts,
    TemplateRenderError,
    check_syntax,
    default_templates,
    removal_templates,
    render_all,
)
from tabmail.domain import addresses
from tabmail.domain.errors import TabmailError
from tabmail.domain.events import BatchQueued
from tabmail.domain.notification import AddressFlag, Audience, Event, Templates
from tabmail.domain.tournament import Draw, Round, Tournament
from tabmail.services.context import AppContext
from tabmail.services.kinds import KIND_EVENTS, NO_ALREADY_SENT_RULE, kind_recipients
from tabmail.services.kinds import NothingToSend as NothingToSend
from tabmail.services.kinds import UnreleasedMotions as UnreleasedMotions
from tabmail.services.sending import backend_name, is_sendgrid_relay, thread_key
from tabmail.store.notifications import NewBatch, NewMessage


class Mark(enum.StrEnum):
    OK = "ok"
    ALREADY_SENT = "already_sent"
    FLAGGED = "flagged"
    NO_ADDRESS = "no_address"
    INVALID = "invalid"
    NO_KEY = "no_key"  # private URLs: nothing to send (no key, or no site address)
    UNCHANGED = "unchanged"  # changes-only re-release: same assignment as last told (unticked)

    @property
    def sendable(self) -> bool:
        return self in (Mark.OK, Mark.ALREADY_SENT, Mark.FLAGGED, Mark.UNCHANGED)


@dataclass(frozen=True, slots=True)
class PlannedRecipient:
    recipient: Recipient
    mark: Mark
    flag: AddressFlag | None = None
    problem: str | None = None  # Mark.NO_KEY: why
    change: Change | None = None  # changes-only re-release: changed, unchanged, new or removed

    @property
    def key(self) -> str:
        """Selection key: the address key, or the person for those without a usable address."""
        return self.recipient.address_key or f"person:{self.recipient.person_id}"

    @property
    def selected_by_default(self) -> bool:
        return self.mark is Mark.OK and self.recipient.default_selected

    @property
    def note(self) -> str:
        """Why the row is unticked or unusable, beyond the mark's own words."""
        return self.problem or ("" if self.recipient.default_selected else self.recipient.note)


@dataclass(slots=True)
class Plan:
    tournament: Tournament
    round: Round | None
    event: Event
    audience: Audience | None
    templates: Templates
    recipients: list[PlannedRecipient] = field(default_factory=list)
    changes_only: bool = False
    # Changes-only: the notice to those no longer in the draw (the tournament's kept one, else
    # the shipped one); None otherwise.
    removal_templates: Templates | None = None

    def count(self, mark: Mark) -> int:
        return sum(1 for r in self.recipients if r.mark is mark)

    def default_selection(self) -> set[str]:
        return {r.key for r in self.recipients if r.selected_by_default}

    def summary(self) -> str:
        ticked = len(self.default_selection())
        parts = [f"{ticked} to send"]
        if self.changes_only:
            counts = {c: sum(1 for r in self.recipients if r.change is c) for c in Change}
            parts.append(", ".join(f"{n} {c.value}" for c, n in counts.items()))
        if unticked := self.count(Mark.OK) - ticked:
            parts.append(f"{unticked} unticked by default")
        for mark, words in (
            (Mark.ALREADY_SENT, "already received this"),
            (Mark.FLAGGED, "flagged as bouncing"),
            (Mark.NO_ADDRESS, "without an address"),
            (Mark.INVALID, "with an invalid address"),
            (Mark.NO_KEY, "without a private URL"),
            (Mark.UNCHANGED, "unchanged since the previous email"),
        ):
            if n := self.count(mark):
                parts.append(f"{n} {words}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    batch_id: int
    queued: int
    not_sendable: list[str]  # names of selected people without a usable address
    # Every batch queued (changes-only: the removal notices go in a batch of their own).
    batch_ids: tuple[int, ...] = ()


REMOVAL_KEY = "draw:removed"  # the changes-only removal notice's kept templates


def _check_removal(event: Event, removal: bool) -> None:
    if removal and event is not Event.DRAW:
        raise TabmailError(
            f"the removal notice is a draw template (changes-only re-release), not a {event.value} one"
        )


def template_key(event: Event, audience: Audience | None, *, removal: bool = False) -> str:
    """The key a tournament's kept templates are stored under. ``removal``: the draw's
    "you are no longer in this round's draw" notice (one for every audience)."""
    _check_removal(event, removal)
    if removal:
        return REMOVAL_KEY
    if event is Event.REGISTRATION:  # teams unless adjudicators, as default_templates reads it
        audience = Audience.ADJUDICATORS if audience is Audience.ADJUDICATORS else Audience.TEAMS
    keyed = event in (Event.DRAW, Event.REGISTRATION)
    return f"{event.value}:{audience.value if audience and keyed else ''}"


def shipped_templates(event: Event, audience: Audience | None, *, removal: bool = False) -> Templates:
    """The bundled defaults for this kind of message (``removal``: the draw's removal notice)."""
    _check_removal(event, removal)
    return removal_templates() if removal else default_templates(event, audience)


def templates_for(
    ctx: AppContext, tournament_id: int, event: Event, audience: Audience | None, *, removal: bool = False
) -> Templates:
    """The tournament's edited templates for this kind of message, else the shipped defaults."""
    saved = ctx.tournaments.saved_templates(tournament_id, template_key(event, audience, removal=removal))
    return saved or shipped_templates(event, audience, removal=removal)


def save_templates(
    ctx: AppContext,
    tournament_id: int,
    event: Event,
    audience: Audience | None,
    templates: Templates | None,
    *,
    removal: bool = False,
) -> None:
    """Keep edited templates as this tournament's default (None: back to the shipped ones).
    Raises TemplateRenderError when a template does not even parse."""
    key = template_key(event, audience, removal=removal)
    if templates is not None:
        problems = check_syntax(templates)
        if problems:
            raise TemplateRenderError(problems)
    ctx.tournaments.save_templates(tournament_id, key, templates)


def plan(
    ctx: AppContext,
    tournament_slug: str,
    event: Event,
    *,
    round_seq: int | None = None,
    audience: Audience | None = None,
    person_ids: Collection[int] | None = None,
    templates: Templates | None = None,
    allow_unreleased: bool = False,
    changes_only: bool = False,
) -> Plan:
    """Compute the recipients and their marks. Raises TabmailError for unknown data;
    UnreleasedMotions for motions the site has not released, unless ``allow_unreleased``;
    PointsError (a TabmailError) naming the debates whose ballots are missing."""
    if changes_only and event is not Event.DRAW:
        raise TabmailError("--changes-only is for a draw re-release (tabmail send draw --changes-only)")
    tournament = ctx.tournaments.get(tournament_slug)
    rnd: Round | None = None
    draw: Draw | None = None
    if event in KIND_EVENTS:
        rnd, audience, recipients = kind_recipients(
            ctx, tournament, event, round_seq, audience, allow_unreleased=allow_unreleased
        )
    elif event is Event.CUSTOM:
        people = ctx.tournaments.people(tournament.id, include_inactive=False)
        if audience is Audience.ADJUDICATORS:
            people = [p for p in people if p.role.value == "adjudicator"]
        elif audience is Audience.TEAMS:
            people = [p for p in people if p.role.value == "speaker"]
        if person_ids is not None:
            wanted = set(person_ids)
            unknown = wanted - {p.id for p in ctx.tournaments.people(tournament.id)}
            if unknown:
                raise TabmailError(
                    f"no such people in {tournament.slug}: {', '.join(map(str, sorted(unknown)))}"
                )
            people = [p for p in ctx.tournaments.people(tournament.id) if p.id in wanted]
        if round_seq is not None:
            rnd = ctx.tournaments.get_round(tournament.id, round_seq)
        recipients = custom_recipients(tournament, people)
    else:
        if round_seq is None:
            raise TabmailError(f"a {event.value} notification needs a round")
        draw = ctx.tournaments.draw(tournament.id, round_seq)
        rnd = draw.round
        if not draw.debates and not changes_only:
            raise NothingToSend(f"{rnd.name} of {tournament.name} has no draw imported yet")
        if event is Event.DRAW:
            audience = audience or Audience.ALL
            recipients = draw_recipients(draw, audience)
        else:
            recipients = ballot_recipients(draw)
            if not recipients:
                raise NothingToSend(f"{rnd.name} has no ballots imported yet")
    received_people, received_keys = (
        ctx.notifications.already_received(rnd.id if rnd else None, tournament.id, event)
        if event not in NO_ALREADY_SENT_RULE
        else (set(), set())
    )
    keys = [r.address_key for r in recipients if r.address_key]
    flags = ctx.flags.active(keys)
    planned = []
    for r in recipients:
        if r.problem:
            mark = Mark.NO_ADDRESS if not r.address else Mark.INVALID
            planned.append(PlannedRecipient(r, mark))
        elif event is Event.URLS and (why := url_problem(r, tournament)):
            planned.append(PlannedRecipient(r, Mark.NO_KEY, problem=why))
        elif r.address_key in flags:
            planned.append(PlannedRecipient(r, Mark.FLAGGED, flags[r.address_key or ""]))
        elif r.address_key in received_keys or r.person_id in received_people:
            planned.append(PlannedRecipient(r, Mark.ALREADY_SENT))
        else:
            planned.append(PlannedRecipient(r, Mark.OK))
    chosen = templates or templates_for(ctx, tournament.id, event, audience)
    result = Plan(tournament, rnd, event, audience, chosen, planned)
    if changes_only:
        assert draw is not None and audience is not None
        _mark_changes(ctx, result, draw, audience, flags)
        result.removal_templates = templates_for(ctx, tournament.id, Event.DRAW, audience, removal=True)
    return result


def _mark_changes(
    ctx: AppContext, plan_: Plan, draw: Draw, audience: Audience, flags: dict[str, AddressFlag]
) -> None:
    """Changes-only: compare with what each person was last told for this round's draw; tick the
    changed, new and removed, untick the unchanged."""
    rnd = draw.round
    previous = ctx.notifications.last_contexts(rnd.id, plan_.tournament.id, Event.DRAW)
    if not previous:
        raise NothingToSend(f"no draw email was sent for {rnd.name} yet: send the draw itself first")
    plan_.changes_only = True
    present: set[int] = set()
    marked: list[PlannedRecipient] = []
    for p in plan_.recipients:
        present.update(p.recipient.person_ids or (p.recipient.person_id,))
        change, lines = classify(p.recipient, previous)
        if change is Change.CHANGED:
            mark = Mark.OK if p.mark is Mark.ALREADY_SENT else p.mark
            marked.append(replace(p, recipient=with_changes(p.recipient, lines), mark=mark, change=change))
        elif change is Change.UNCHANGED:
            mark = Mark.UNCHANGED if p.mark in (Mark.OK, Mark.ALREADY_SENT) else p.mark
            marked.append(replace(p, mark=mark, change=change))
        else:
            mark = Mark.OK if p.mark is Mark.ALREADY_SENT else p.mark
            marked.append(replace(p, mark=mark, change=change))
    roles = (
        {"adjudicator", "speaker"}
        if audience is Audience.ALL
        else {"adjudicator" if audience is Audience.ADJUDICATORS else "speaker"}
    )
    base = {
        "TOURN": plan_.tournament.name,
        "TOURN_SHORT": plan_.tournament.short_name,
        "ROUND": rnd.name,
        "ROUND_ABBR": rnd.abbreviation,
    }
    for pid, (_key, context) in previous.items():
        if pid in present or context.get("REMOVED") or context.get("ROLE") not in roles:
            continue
        person = draw.people.get(pid)
        if person is None:
            continue
        problem = (
            None
            if person.sendable
            else ("no address" if not person.email else f"invalid address: {person.email}")
        )
        r = removed_recipient(
            pid,
            person.name,
            person.email if person.email else None,
            addresses.address_key(person.email),
            str(context.get("ROLE")),
            context,
            base,
            problem,
        )
        if problem:
            mark = Mark.NO_ADDRESS if not person.email else Mark.INVALID
        elif r.address_key in flags:
            mark = Mark.FLAGGED
        else:
            mark = Mark.OK
        marked.append(PlannedRecipient(r, mark, flags.get(r.address_key or ""), change=Change.REMOVED))
    plan_.recipients = marked


def enqueue(
    ctx: AppContext,
    plan_: Plan,
    *,
    selected: Collection[str] | None = None,
    templates: Templates | None = None,
    removal: Templates | None = None,
    triggered_by: str | None = None,
    now: datetime | None = None,
    scheduled_at: datetime | None = None,
) -> EnqueueResult:
    """Render for every selected recipient, then queue the whole batch in one transaction.

    ``selected`` holds PlannedRecipient keys (default: the plan's default selection).
    ``removal``: the changes-only removal notice's templates (default: the plan's).
    ``scheduled_at``: the messages wait until then (services.schedule releases them).
    Raises TemplateRenderError (nothing queued) or NothingToSend.
    """
    templates = templates or plan_.templates
    keys = plan_.default_selection() if selected is None else set(selected)
    chosen = [p for p in plan_.recipients if p.key in keys]
    not_sendable = [p.recipient.name for p in chosen if not p.mark.sendable]
    chosen = [p for p in chosen if p.mark.sendable]
    if not chosen:
        raise NothingToSend("no recipient with a usable address is selected")
    removed = [p for p in chosen if p.change is Change.REMOVED]
    chosen = [p for p in chosen if p.change is not Change.REMOVED]
    removal = removal or plan_.removal_templates or removal_templates()
    groups = [(chosen, templates), (removed, removal)]
    groups = [(group, tpl) for group, tpl in groups if group]
    rendered_groups = []
    problems = []
    for group, tpl in groups:
        rendered, group_problems = render_all(
            tpl, [p.recipient for p in group], tournament_name=plan_.tournament.name
        )
        rendered_groups.append(rendered)
        problems.extend(group_problems)
    if problems:
        raise TemplateRenderError(problems)
    sender = sender_for(ctx, plan_.tournament)
    now = now or datetime.now(UTC)
    batch_ids: list[int] = []
    queued = 0
    for (group, tpl), rendered in zip(groups, rendered_groups, strict=True):
        messages: list[NewMessage] = []
        for planned, parts in zip(group, rendered, strict=True):
            assert parts is not None
            messages.append(
                build_message(
                    sender,
                    plan_.tournament.slug,
                    planned.recipient,
                    parts,
                    now=now,
                    send_despite_flag=planned.mark is Mark.FLAGGED,
                )
            )
        batch_id = ctx.notifications.create_batch(
            NewBatch(
                tournament_id=plan_.tournament.id,
                round_id=plan_.round.id if plan_.round else None,
                event=plan_.event,
                audience=plan_.audience,
                templates=tpl,
                backend=backend_name(ctx),
                triggered_by=triggered_by if triggered_by is not None else ctx.user,
                reroute_to=sender.reroute_to,
                scheduled_at=scheduled_at,
            ),
            messages,
        )
        ctx.bus.publish(BatchQueued(batch_id, len(messages)))
        batch_ids.append(batch_id)
        queued += len(messages)
    return EnqueueResult(batch_ids[0], queued, not_sendable, tuple(batch_ids))


@dataclass(frozen=True, slots=True)
class Sender:
    """How a tournament's messages are addressed and built; settings read once per batch."""

    from_address: str
    from_name: str
    reply_to: str | None
    reroute_to: str | None  # test mode: every message goes here instead
    relay: bool  # SMTP through SendGrid: X-SMTPAPI unique_args carry tabmail's id
    thread_key: bytes
    verp: bool = False  # MAIL FROM local+tm-<id>@domain: a bounce names its message by address

    @property
    def domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1]

    def envelope_from(self, tabmail_id: str) -> str:
        """The MAIL FROM address; the From header never changes."""
        if not self.verp:
            return self.from_address
        local, _, domain = self.from_address.rpartition("@")
        return f"{local}+tm-{tabmail_id.lower()}@{domain}"


def sender_for(ctx: AppContext, tournament: Tournament) -> Sender:
    """The settings that shape every message of a batch. Raises TabmailError for a bad From."""
    settings = ctx.settings.all()
    from_address = str(settings["from_address"])
    if "@" not in from_address:
        raise TabmailError(
            f"the From address {from_address!r} is not an address: tabmail config set from_address ..."
        )
    return Sender(
        from_address=from_address,
        from_name=str(settings["from_name"]) or f"{tournament.short_name} Tab Room",
        reply_to=str(settings["reply_to"]) or None,
        reroute_to=str(settings["test_mode.reroute_to"]) or None,
        relay=is_sendgrid_relay(ctx),
        thread_key=thread_key(ctx),
        verp=bool(settings["smtp.verp"]),
    )


def build_message(
    sender: Sender,
    tournament_slug: str,
    recipient: Recipient,
    parts: RenderedParts,
    *,
    now: datetime,
    resend_of: str | None = None,
    in_reply_to: str | None = None,
    send_despite_flag: bool = False,
) -> NewMessage:
    """One recipient's message, ready to queue: a fresh tabmail id, the exact bytes to send.
    Shared by enqueue and resend (tabmail.services.resend)."""
    r = recipient
    assert r.address is not None and r.address_key is not None
    tid = new_tabmail_id()
    extra = {"X-SMTPAPI": json.dumps({"unique_args": {"tabmail_id": tid}})} if sender.relay else None
    raw = email_bytes(
        tabmail_id=tid,
        from_name=sender.from_name,
        from_address=sender.from_address,
        to_name=r.name,
        to_address=r.address,
        reply_to=sender.reply_to,
        parts=parts,
        thread_anchor=thread_anchor(sender.thread_key, tournament_slug, r.address_key, sender.domain),
        date=now,
        domain=sender.domain,
        reroute_to=sender.reroute_to,
        extra_headers=extra,
        in_reply_to=in_reply_to,
    )
    return NewMessage(
        id=tid,
        person_id=r.person_id,
        recipient_name=r.name,
        role=r.role,
        address=r.address,
        address_key=r.address_key,
        envelope_from=sender.envelope_from(tid),
        envelope_to=sender.reroute_to or r.address,
        subject=parts.subject,
        context=r.context,
        reasons=r.reasons,
        raw=raw,
        message_id_header=make_message_id(tid, sender.domain),
        resend_of=resend_of,
        send_despite_flag=send_despite_flag,
    )


def selection_for(
    plan_: Plan, *, include_already_sent: bool = False, include_flagged: bool = False
) -> set[str]:
    keys = set(plan_.default_selection())
    for p in plan_.recipients:
        if (include_already_sent and p.mark is Mark.ALREADY_SENT) or (
            include_flagged and p.mark is Mark.FLAGGED
        ):
            keys.add(p.key)
    return keys


def with_role(plan_: Plan, selection: set[str], role: str, *, only: bool = False) -> set[str]:
    """The selection with every new recipient of ``role`` ticked (``only``: nobody else)."""
    of_role = {p.key for p in plan_.recipients if p.recipient.role == role and p.mark is Mark.OK}
    return of_role if only else selection | of_role


def recipients_preview(plan_: Plan) -> Sequence[PlannedRecipient]:
    return plan_.recipients
