"""tabmail poll | status | flags | events | export | resend"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabmail.cli.common import confirm, open_context, print_json, run_async
from tabmail.cli.send_cmds import _run_outbox
from tabmail.domain.actor import describe
from tabmail.domain.addresses import address_key
from tabmail.domain.errors import TabmailError
from tabmail.domain.problems import ORDER, PROBLEM_CATEGORIES, Category, Resolution, category_of, counts_text
from tabmail.services.files import open_private_output, write_csv

if TYPE_CHECKING:  # the tracking and resend services are imported by their commands
    from tabmail.domain.notification import FlagKind, Message, StatusEvent
    from tabmail.services.context import AppContext
    from tabmail.services.resend import ResendResult
    from tabmail.services.tracking import PollReport

EXPORT_FIELDS = (
    "batch_id",
    "event",
    "round",
    "batch_created_at",
    "message_id",
    "recipient",
    "role",
    "address",
    "state",
    "attempts",
    "sent_at",
    "delivery_status",
    "status_at",
    "status_reason",
    "last_error",
    "last_event_at",
    "resend_of",
    "provider_message_id",
    "sg_message_id",
)


def register(sub: Any) -> None:
    p = sub.add_parser("poll", help="ask SendGrid what happened to the messages sent")
    p.add_argument("--once", action="store_true", help="poll once and exit (default: keep polling)")
    p.add_argument(
        "--interval", type=float, help="seconds between polls (default: the poll.interval_seconds setting)"
    )
    p.set_defaults(handler=_poll)

    s = sub.add_parser("status", help="delivery status of a tournament's messages, per batch")
    s.add_argument("--tournament", required=True, metavar="SLUG")
    s.add_argument("--round", type=int, metavar="N")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_status)

    f = sub.add_parser("flags", help="addresses flagged as not working")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=_flags)

    e = sub.add_parser("events", help="provider events: unmatched ones, or one message's timeline")
    which = e.add_mutually_exclusive_group(required=True)
    which.add_argument("--unmatched", action="store_true", help="events that matched no message")
    which.add_argument("--message", metavar="MESSAGE_ID", help="the timeline of one message")
    e.add_argument("--limit", type=int, default=1000)
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=_events)

    x = sub.add_parser("export", help="export sent records with their statuses (no secrets)")
    x.add_argument("--tournament", required=True, metavar="SLUG")
    x.add_argument("--format", choices=("csv", "json"), default="csv")
    x.add_argument("--output", type=Path, help="file to write (default: standard output)")
    x.set_defaults(handler=_export)

    r = sub.add_parser("resend", help="resend a message (to a corrected address), or a batch's bounced ones")
    r.add_argument("message_id", nargs="?", metavar="MESSAGE_ID", help="as shown by tabmail status")
    r.add_argument(
        "--to", metavar="NEW_ADDRESS", help="send to this address (the person's address is updated)"
    )
    r.add_argument("--batch", type=int, metavar="BATCH_ID", help="with --bounced: the batch to resend from")
    r.add_argument("--bounced", action="store_true", help="every bounced message whose address was corrected")
    r.add_argument(
        "--unsuppress", action="store_true", help="remove the address from SendGrid's suppression lists first"
    )
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.add_argument("--queue-only", action="store_true", help="queue but do not send now")
    r.set_defaults(handler=_resend)


def _when(value: datetime | None) -> str:
    """Local time for people; '-' for nothing."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- poll -------------------------------------------------------------------------------------
def _print_report(report: PollReport, *, first: bool) -> None:
    if first and report.capabilities:
        for sentence in report.capabilities:
            print(f"  {sentence}")
    stamp = report.started_at.astimezone().strftime("%H:%M:%S")
    print(f"{stamp} {report.summary()}", flush=True)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)


def _standby(words: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {words}", flush=True)


def _poll(args: argparse.Namespace) -> int:
    from tabmail.services.election import SENDGRID, Duty
    from tabmail.services.tracking import Poller

    ctx = open_context(args, writes=True)
    poller = Poller(ctx)
    # In a tab room on PostgreSQL one laptop polls (SendGrid allows 6 Activity requests a
    # minute per account); this one stands by while another holds the duty.
    duty = Duty(ctx, SENDGRID)
    try:
        if args.once:
            if not duty.mine():
                _standby(duty.standby_words(once=True))
                return 0
            report = run_async(poller.poll_once())
            _print_report(report, first=True)
            if not report.enabled:
                return 1
            return 0 if report.ok else 3
        shown = [False]

        def show(report: PollReport) -> None:
            _print_report(report, first=not shown[0])
            shown[0] = True

        last = run_async(poller.run_forever(args.interval, on_report=show, duty=duty, on_standby=_standby))
        return 1 if last is not None and not last.enabled else 0
    finally:
        duty.release()
        poller.close()
        ctx.close()


# -- status -----------------------------------------------------------------------------------
def _message_row(
    m: Message,
    last_event: datetime | None,
    flags: dict[str, FlagKind],
    resolution: Resolution | None,
    source: str | None = None,
    replies: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    category = category_of(m, flags.get(address_key(m.address) or ""))
    problem = category in PROBLEM_CATEGORIES
    return {
        "id": m.id,
        "recipient": m.recipient_name,
        "address": m.address,
        "state": m.state.value,
        "status": m.delivery_status.value,
        "category": category.value,
        "problem": problem and resolution is None,
        "resolved": None
        if not problem or resolution is None
        else {
            "reason": resolution.reason,
            "by_resend": resolution.resend_id,
            "at": _iso(resolution.at),
            "by": resolution.by or None,
        },
        "last_event_at": _iso(last_event),
        "status_at": _iso(m.status_at),
        "reason": m.status_reason or m.last_error,
        "resend_of": m.resend_of,
        # A resend: who asked for it, on which machine (None: a batch's message, or not recorded).
        "made_by": m.made_by,
        "made_on": m.made_on,
        "address_flagged": address_key(m.address) in flags,
        "sent_at": _iso(m.sent_at),
        "status_source": source,  # "sendgrid" or "inbox" (bounces read from the mailbox); None: no event
        "replies": replies[0],
        "unread_replies": replies[1],
    }


def _category_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per category, the messages of that category that are not resolved problems: the same
    counts the dashboard's batch bar shows (resolved problems are counted under "resolved")."""
    counts = Counter(r["category"] for r in rows if not r["resolved"])
    return {c.value: counts[c.value] for c in ORDER if counts[c.value]}


def status_data(ctx: AppContext, slug: str, round_seq: int | None) -> dict[str, Any]:
    tournament = ctx.tournaments.get(slug)
    round_id = ctx.tournaments.get_round(tournament.id, round_seq).id if round_seq is not None else None
    batches = ctx.notifications.batches(tournament_id=tournament.id, round_id=round_id)
    messages = ctx.notifications.messages(batch_ids=[b.batch.id for b in batches])
    from tabmail.services.problems import flag_kinds, resolutions_for, tracked_batch_ids

    last = ctx.tracking.latest_event_times([m.id for m in messages])
    flags = flag_kinds(ctx.flags.active())
    manual = ctx.problems.resolutions([m.id for m in messages])
    tracked_batches = tracked_batch_ids(ctx, ((b.batch.id, b.batch.backend) for b in batches))
    resolved = resolutions_for(messages, manual, tracked_batches=tracked_batches)
    ids = [m.id for m in messages]
    sources = ctx.tracking.status_sources(ids)
    replies = ctx.inbox.reply_counts(ids)
    per_batch: dict[int, list[dict[str, Any]]] = {}
    for m in messages:
        per_batch.setdefault(m.batch_id, []).append(
            _message_row(
                m, last.get(m.id), flags, resolved.get(m.id), sources.get(m.id), replies.get(m.id, (0, 0))
            )
        )
    return {
        "tournament": tournament.slug,
        "round": round_seq,
        "batches": [
            {
                "id": b.batch.id,
                "event": b.batch.event.value,
                "round": b.round_seq,
                "created_at": _iso(b.batch.created_at),
                "backend": b.batch.backend,
                "triggered_by": b.batch.triggered_by or None,
                "triggered_on": b.batch.triggered_on or None,
                "total": b.total,
                "states": dict(sorted(b.states.items())),
                "statuses": dict(sorted(b.statuses.items())),
                "categories": _category_counts(per_batch.get(b.batch.id, [])),
                "resolved": sum(1 for m in per_batch.get(b.batch.id, []) if m["resolved"]),
                "messages": per_batch.get(b.batch.id, []),
            }
            for b in batches
        ],
    }


def last_checked_data(ctx: AppContext) -> dict[str, Any]:
    """Who last checked delivery statuses and read the mailbox, and when (null: never)."""
    from tabmail.services.election import INBOX, SENDGRID, last_check

    out: dict[str, Any] = {}
    for duty in (SENDGRID, INBOX):
        last = last_check(ctx, duty)
        out[duty] = None if last is None else {"by": last.by, "at": _iso(last.at), "ok": last.ok}
    return out


def _last_checked_lines(ctx: AppContext) -> list[str]:
    from tabmail.services.election import INBOX, SENDGRID, last_check

    lines = []
    for duty, what in ((SENDGRID, "delivery statuses"), (INBOX, "mailbox")):
        last = last_check(ctx, duty)
        if last is not None:
            lines.append(f"{what}: {last.words()}" + ("" if last.ok else " (that check failed)"))
    return lines


def _status(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        data = status_data(ctx, args.tournament, args.round)
        if args.json:
            print_json({**data, "last_checked": last_checked_data(ctx)})
            return 0
        for line in _last_checked_lines(ctx):
            print(line)
        if not data["batches"]:
            print("nothing sent yet")
        for b in data["batches"]:
            rnd = f" round {b['round']}" if b["round"] is not None else ""
            counts = counts_text({Category(k): n for k, n in b["categories"].items()}, resolved=b["resolved"])
            states = ", ".join(f"{n} {k}" for k, n in b["states"].items())
            made = describe(b["triggered_by"], b["triggered_on"])
            by = f" by {made}" if made else ""
            print(
                f"batch {b['id']}: {b['event']}{rnd}{by}, {b['total']} message(s); {states}; status: {counts}"
            )
            for m in b["messages"]:
                flag = " [flagged]" if m["address_flagged"] else ""
                resent_by = describe(m["made_by"], m["made_on"])
                resent = (
                    f" (resend of {m['resend_of']}" + (f" by {resent_by})" if resent_by else ")")
                    if m["resend_of"]
                    else ""
                )
                when = _when(datetime.fromisoformat(m["last_event_at"])) if m["last_event_at"] else "-"
                reason = f"  {m['reason']}" if m["reason"] else ""
                done = " [resolved]" if m["resolved"] else ""
                print(
                    f"  {m['id']}  {m['category']:<12} {m['state']:<9} {when:<19}  "
                    f"{m['recipient']} <{m['address']}>{flag}{resent}{done}{reason}"
                )
        return 0
    finally:
        ctx.close()


# -- flags, events ------------------------------------------------------------------------------
def _flags(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        flags = sorted(ctx.flags.active().values(), key=lambda f: f.since)
        rows = [
            {
                "address": f.address,
                "address_key": f.address_key,
                "kind": f.kind.value,
                "since": _iso(f.since),
                "diagnostic": f.diagnostic,
                "source": f.source,
            }
            for f in flags
        ]
        if args.json:
            print_json(rows)
        elif not rows:
            print("no address is flagged")
        else:
            for f in flags:
                print(f"{f.address:<40} {f.kind.value:<12} {_when(f.since)}  {f.source}: {f.diagnostic}")
        return 0
    finally:
        ctx.close()


def _event_row(e: StatusEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "message_id": e.message_id,
        "event": e.event,
        "status": e.status.value,
        "event_time": _iso(e.event_time),
        "received_at": _iso(e.received_at),
        "address": e.address,
        "reason": e.reason,
        "provider": e.provider,
        "provider_event_id": e.provider_event_id,
    }


def _events(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        if args.unmatched:
            events = ctx.tracking.unmatched(limit=args.limit)
            total = ctx.tracking.unmatched_count()
        else:
            message = ctx.notifications.get(args.message)
            events = ctx.tracking.timeline(message.id)
            total = len(events)
        rows = [_event_row(e) for e in events]
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print("no unmatched events" if args.unmatched else "no events for this message yet")
        for e, r in zip(events, rows, strict=True):
            reason = f"  {r['reason']}" if r["reason"] else ""
            print(f"{_when(e.event_time)}  {r['event']:<22} {r['status']:<12} {r['address'] or '-'}{reason}")
        if len(rows) < total:
            print(f"(showing {len(rows)} of {total})")
        return 0
    finally:
        ctx.close()


# -- export -------------------------------------------------------------------------------------
def export_rows(ctx: AppContext, slug: str) -> list[dict[str, Any]]:
    """Sent records with statuses. Never the raw message, the template context (private URLs)
    or anything secret."""
    tournament = ctx.tournaments.get(slug)
    batches = {b.batch.id: b for b in ctx.notifications.batches(tournament_id=tournament.id)}
    messages = ctx.notifications.messages(batch_ids=list(batches))
    last = ctx.tracking.latest_event_times([m.id for m in messages])
    rows = []
    for m in messages:
        b = batches[m.batch_id]
        rows.append(
            {
                "batch_id": m.batch_id,
                "event": b.batch.event.value,
                "round": b.round_seq,
                "batch_created_at": _iso(b.batch.created_at),
                "message_id": m.id,
                "recipient": m.recipient_name,
                "role": m.role,
                "address": m.address,
                "state": m.state.value,
                "attempts": m.attempts,
                "sent_at": _iso(m.sent_at),
                "delivery_status": m.delivery_status.value,
                "status_at": _iso(m.status_at),
                "status_reason": m.status_reason,
                "last_error": m.last_error,
                "last_event_at": _iso(last.get(m.id)),
                "resend_of": m.resend_of,
                "provider_message_id": m.provider_message_id,
                "sg_message_id": m.sg_message_id,
            }
        )
    return rows


def _export(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        rows = export_rows(ctx, args.tournament)
        out = open_private_output(args.output) if args.output else sys.stdout
        try:
            if args.format == "json":
                json.dump(rows, out, indent=2, ensure_ascii=False)
                out.write("\n")
            else:
                write_csv(out, EXPORT_FIELDS, rows)
        finally:
            if args.output:
                out.close()
        if args.output:
            print(f"wrote {len(rows)} record(s) to {args.output}", file=sys.stderr)
        return 0
    finally:
        ctx.close()


# -- resend -------------------------------------------------------------------------------------
def _resend(args: argparse.Namespace) -> int:
    from tabmail.services.resend import resend, resend_bounced

    batch: int | None = args.batch
    if args.bounced or args.batch is not None:
        if not (args.bounced and args.batch is not None) or args.message_id or args.to:
            raise TabmailError(
                "use either `tabmail resend MESSAGE_ID [--to ADDRESS]` or `--batch ID --bounced`"
            )
    elif not args.message_id:
        raise TabmailError("which message? give MESSAGE_ID (see tabmail status) or --batch ID --bounced")
    ctx = open_context(args, sends=True)
    try:
        if args.message_id:
            old = ctx.notifications.get(args.message_id)
            target = args.to or old.address
            prompt = f"resend {old.id} ({old.recipient_name}) to {target}?"
            if not args.yes and not confirm(prompt):
                print("not resent (answer yes, or pass --yes)", file=sys.stderr)
                return 1
            results = [run_async(resend(ctx, old.id, args.to, unsuppress=args.unsuppress))]
        else:
            if not args.yes and not confirm(
                f"resend the bounced messages of batch {args.batch} whose address was corrected?"
            ):
                print("not resent (answer yes, or pass --yes)", file=sys.stderr)
                return 1
            results = run_async(resend_bounced(ctx, batch or 0, unsuppress=args.unsuppress))
            if not results:
                print(f"batch {args.batch} has no bounced message whose address was corrected since")
                return 0
        return _after_resend(ctx, results, args.queue_only)
    finally:
        ctx.close()


def _after_resend(ctx: AppContext, results: list[ResendResult], queue_only: bool) -> int:
    from tabmail.services.resend import ResendOutcome

    for r in results:
        print(r.words)
    queued = [r for r in results if r.outcome is ResendOutcome.QUEUED]
    suppressed = len(results) - len(queued)
    if queued and not queue_only:
        batches = {r.batch_id for r in queued}
        report = _run_outbox(ctx, batch_id=batches.pop() if len(batches) == 1 else None, wait=True)
        if report.failed or report.uncertain:
            return 3
    return 4 if suppressed else 0
