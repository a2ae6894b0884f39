"""tabmail send draw|ballot|custom|urls|motions|points|registration, tabmail outbox [run|requeue]"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabmail.cli.common import confirm, open_context, print_json, run_async
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, MessageState, Templates

if TYPE_CHECKING:  # composing and sending are imported by the commands that do them
    from tabmail.services import schedule
    from tabmail.services.context import AppContext
    from tabmail.services.outbox import OutboxReport


def register(sub: Any) -> None:
    s = sub.add_parser("send", help="compose, queue and send a notification")
    ssub = s.add_subparsers(dest="event", metavar="EVENT", required=True)
    d = ssub.add_parser("draw", help="draw release for a round")
    _common(d, round_required=True)
    d.add_argument("--audience", choices=[a.value for a in Audience], default=Audience.ALL.value)
    d.add_argument(
        "--changes-only",
        action="store_true",
        help="after a corrected draw: only those whose room, side, panel, opponents or position "
        "changed since their last draw email, and a notice to those no longer in the draw",
    )
    d.set_defaults(handler=_send_draw)
    b = ssub.add_parser("ballot", help="ballot receipts for a round's adjudicators")
    _common(b, round_required=True)
    b.set_defaults(handler=_send_ballot)
    c = ssub.add_parser("custom", help="a custom message to any selection of people")
    _common(c, round_required=False)
    c.add_argument("--subject", required=True, help="subject template (Jinja2; e.g. 'News for {{ USER }}')")
    c.add_argument("--body-file", required=True, type=Path, help="text body template file")
    c.add_argument("--html-file", type=Path, help="optional HTML body template file")
    c.add_argument("--audience", choices=[a.value for a in Audience], default=Audience.ALL.value)
    c.add_argument("--people", help="comma-separated person ids (see tabmail people)")
    c.set_defaults(handler=_send_custom)
    u = ssub.add_parser("urls", help="each person's private URL (tournament-wide)")
    _common(u, round_required=False)
    u.add_argument("--audience", choices=[a.value for a in Audience], default=Audience.ALL.value)
    u.set_defaults(handler=lambda a: _send(a, Event.URLS, Audience(a.audience)))
    m = ssub.add_parser("motions", help="a round's motions (speakers of teams available this round)")
    _common(m, round_required=True)
    m.add_argument(
        "--unreleased-ok",
        action="store_true",
        help="send even though the site has not released the motions yet",
    )
    m.add_argument(
        "--audience",
        choices=[a.value for a in Audience],
        default=Audience.TEAMS.value,
        help="teams (default, as Tabbycat: speakers of teams available this round), adjudicators, or all",
    )
    m.set_defaults(handler=_send_motions)
    p = ssub.add_parser("points", help="each team's points (BP) or wins after a round")
    _common(p, round_required=True)
    p.set_defaults(handler=lambda a: _send(a, Event.POINTS, None))
    g = ssub.add_parser("registration", help="team or adjudicator registration details (tournament-wide)")
    _common(g, round_required=False)
    g.add_argument(
        "--audience",
        choices=[Audience.TEAMS.value, Audience.ADJUDICATORS.value],
        default=Audience.TEAMS.value,
    )
    g.set_defaults(handler=lambda a: _send(a, Event.REGISTRATION, Audience(a.audience)))

    o = sub.add_parser("outbox", help="show the outbox, or run it")
    o.add_argument("--json", action="store_true")
    o.add_argument("--all", action="store_true", help="include sent messages")
    o.set_defaults(handler=_outbox_show)
    osub = o.add_subparsers(dest="action", metavar="ACTION")
    r = osub.add_parser("run", help="send what is queued (waiting for retries), then exit")
    r.add_argument("--no-wait", action="store_true", help="do not wait for messages scheduled to retry later")
    r.add_argument(
        "--wait",
        action="store_true",
        help="also wait for batches scheduled for later (send --at) and send each at its time",
    )
    r.set_defaults(handler=_outbox_run)
    sc = osub.add_parser("scheduled", help="batches waiting for their scheduled time")
    sc.set_defaults(handler=_outbox_scheduled)
    rl = osub.add_parser("release", help="send a scheduled batch now (one whose time passed unsent)")
    rl.add_argument("batch", type=int, metavar="BATCH")
    rl.set_defaults(handler=_outbox_release)
    un = osub.add_parser(
        "unschedule", help="cancel a scheduled batch before it starts (its messages are skipped)"
    )
    un.add_argument("batch", type=int, metavar="BATCH")
    un.set_defaults(handler=_outbox_unschedule)
    from tabmail.cli.problem_cmds import register_outbox

    register_outbox(osub)
    q = osub.add_parser(
        "requeue",
        help="send messages again through the selected backend (pending and failed ones; "
        "a message otherwise keeps the backend it was queued for)",
    )
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--batch", type=int, metavar="B", help="the messages of batch B")
    which.add_argument("--message", nargs="+", metavar="ID", help="these messages")
    q.add_argument("--backend", choices=["smtp", "sendgrid", "file"], help="default: the selected one")
    q.add_argument(
        "--include-uncertain",
        action="store_true",
        help="also messages that may already have been delivered (the recipient may get two)",
    )
    q.add_argument("--include-skipped", action="store_true", help="also skipped messages")
    q.set_defaults(handler=_outbox_requeue)


def _common(p: argparse.ArgumentParser, round_required: bool) -> None:
    p.add_argument("--tournament", required=True, metavar="SLUG")
    p.add_argument("--round", required=round_required, type=int, metavar="N")
    p.add_argument("--include-already-sent", action="store_true", help="also those who already got it")
    p.add_argument("--include-flagged", action="store_true", help="also addresses flagged as bouncing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--queue-only", action="store_true", help="queue but do not send now (tabmail outbox run)")
    p.add_argument(
        "--at",
        metavar="HH:MM|ISO",
        help="send at this time (today's HH:MM, or a date and time): the open tabmail window or "
        "`tabmail outbox run --wait` sends it then",
    )


def _send_draw(args: argparse.Namespace) -> int:
    return _send(args, Event.DRAW, Audience(args.audience), changes_only=args.changes_only)


def _send_motions(args: argparse.Namespace) -> int:
    """Motions: Tabbycat's default ticks speakers only; --audience adjudicators|all ticks the
    adjudicators too."""
    return _send(args, Event.MOTIONS, Audience(args.audience), allow_unreleased=args.unreleased_ok)


def _send_ballot(args: argparse.Namespace) -> int:
    return _send(args, Event.BALLOT, None)


def _send_custom(args: argparse.Namespace) -> int:
    try:
        body = args.body_file.read_text(encoding="utf-8")
        html = args.html_file.read_text(encoding="utf-8") if args.html_file else None
    except (OSError, UnicodeDecodeError) as exc:
        raise TabmailError(f"cannot read the body file: {exc}") from exc
    people = None
    if args.people:
        try:
            people = [int(x) for x in args.people.split(",") if x.strip()]
        except ValueError as exc:
            raise TabmailError(f"--people takes comma-separated ids, got {args.people!r}") from exc
    templates = Templates(args.subject, body, html)
    return _send(args, Event.CUSTOM, Audience(args.audience), templates=templates, people=people)


def _send(
    args: argparse.Namespace,
    event: Event,
    audience: Audience | None,
    templates: Templates | None = None,
    people: list[int] | None = None,
    allow_unreleased: bool = False,
    changes_only: bool = False,
) -> int:
    from tabmail.services import notify, schedule

    at = schedule.parse_at(args.at) if getattr(args, "at", None) else None
    ctx = open_context(args, sends=True)  # what exists now is frozen for the collector (cli.common)
    try:
        _say_waits(ctx)
        plan = notify.plan(
            ctx,
            args.tournament,
            event,
            round_seq=args.round,
            audience=audience,
            person_ids=people,
            templates=templates,
            allow_unreleased=allow_unreleased,
            changes_only=changes_only,
        )
        selection = notify.selection_for(
            plan, include_already_sent=args.include_already_sent, include_flagged=args.include_flagged
        )
        if event is Event.MOTIONS and audience in (Audience.ADJUDICATORS, Audience.ALL):
            selection = notify.with_role(
                plan, selection, "adjudicator", only=audience is Audience.ADJUDICATORS
            )
        count = sum(1 for p in plan.recipients if p.key in selection and p.mark.sendable)
        where = f"{plan.tournament.name}" + (f", {plan.round.name}" if plan.round else "")
        print(f"{event.value} notification for {where}: {plan.summary()}")
        for p in plan.recipients:
            if p.mark in (notify.Mark.NO_ADDRESS, notify.Mark.INVALID, notify.Mark.NO_KEY):
                print(f"  not sendable: {p.recipient.name}: {p.problem or p.recipient.problem}")
            if plan.changes_only and p.change is not None and p.change.value in ("changed", "removed"):
                what = "; ".join(p.recipient.context.get("CHANGES", [])) or "no longer in the draw"
                print(f"  {p.change.value}: {p.recipient.name}: {what}")
        reroute = ctx.settings.get("test_mode.reroute_to")
        if reroute:
            print(f"TEST MODE: every message goes to {reroute}")
        if count == 0:
            print("nothing to send")
            return 0
        when = f" at {at.astimezone().strftime('%Y-%m-%d %H:%M')}" if at else ""
        if not args.yes and not confirm(
            f"send {count} message(s) through {ctx.settings.get('backend')}{when}?"
        ):
            print("not sent (answer yes, or pass --yes)", file=sys.stderr)
            return 1
        result = notify.enqueue(ctx, plan, selected=selection, scheduled_at=at)
        batches = result.batch_ids or (result.batch_id,)
        if at is not None:
            print(
                f"scheduled {result.queued} message(s) as batch {', '.join(map(str, batches))} for "
                f"{at.astimezone().strftime('%Y-%m-%d %H:%M')} ({schedule.countdown(at)}): the open tabmail "
                f"window or `tabmail outbox run --wait` sends them then; "
                f"`tabmail outbox unschedule {batches[0]}` cancels"
            )
            return 0
        print(f"queued {result.queued} message(s) as batch {', '.join(map(str, batches))}")
        if args.queue_only:
            return 0
        # These batches only: older queued or retrying work is the outbox's (tabmail outbox run,
        # or the window's background outbox), each message through the backend it was queued for.
        ok = True
        for batch_id in batches:
            report = _run_outbox(ctx, batch_id=batch_id, wait=True)
            ok = ok and report.failed == 0 and report.uncertain == 0
        older = ctx.notifications.pending_count(exclude_batch=batches[-1]) - sum(
            ctx.notifications.pending_count(b) for b in batches[:-1]
        )
        if older:
            print(f"{older} older message(s) wait in the outbox: tabmail outbox run sends them")
        return 0 if ok else 3
    finally:
        ctx.close()


def _say_waits(ctx: AppContext) -> None:
    """Print every wait on stderr, terminal or not: nothing waits without saying for what."""
    from tabmail.domain.events import DatabaseWaiting, OutboxWaiting

    def waiting(ev: object) -> None:
        if isinstance(ev, OutboxWaiting):
            why = f" (last error: {ev.reason})" if ev.reason else ""
            print(
                f"tabmail: waiting {_duration(ev.seconds)} to retry {ev.count} message(s){why}",
                file=sys.stderr,
                flush=True,
            )
        elif isinstance(ev, DatabaseWaiting):
            print(f"tabmail: {ev.message}", file=sys.stderr, flush=True)

    ctx.bus.subscribe(OutboxWaiting, waiting)
    ctx.bus.subscribe(DatabaseWaiting, waiting)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _run_outbox(ctx: AppContext, batch_id: int | None, wait: bool) -> OutboxReport:
    return run_async(_outbox_pass(ctx, batch_id, wait))


async def _outbox_pass(ctx: AppContext, batch_id: int | None, wait: bool) -> OutboxReport:
    """One outbox run with its progress and summary; in the caller's event loop (`outbox run
    --wait` sends each scheduled batch from inside its waiting loop)."""
    from tabmail.domain.events import OutboxProgressed
    from tabmail.services.outbox import OutboxStopped
    from tabmail.services.sending import default_outbox

    tty = sys.stderr.isatty()

    def progress(ev: object) -> None:
        if tty and isinstance(ev, OutboxProgressed):
            print(f"\rsending: {ev.done}/{ev.total}   ", end="", file=sys.stderr, flush=True)

    ctx.bus.subscribe(OutboxProgressed, progress)
    _say_waits(ctx)
    outbox = default_outbox(ctx)
    try:
        report = await outbox.run(batch_id=batch_id, wait_for_retries=wait)
    except OutboxStopped as stopped:
        if tty:
            print(file=sys.stderr)
        _summary(ctx, stopped.report, batch_id)
        waiting = ctx.notifications.pending_count(batch_id)
        raise TabmailError(
            f"{stopped}. Sending stopped; {waiting} message(s) stay queued: fix this, then run "
            "`tabmail outbox run`"
        ) from None
    if tty:
        print(file=sys.stderr)
    _summary(ctx, report, batch_id)
    return report


def _summary(ctx: AppContext, report: OutboxReport, batch_id: int | None) -> None:
    if report.recovered_uncertain:
        print(
            f"{len(report.recovered_uncertain)} message(s) were being sent when tabmail last stopped; "
            "marked uncertain (see tabmail outbox)"
        )
    print(
        f"sent {report.sent}, failed {report.failed}, uncertain {report.uncertain}, "
        f"skipped {report.skipped}, still pending {ctx.notifications.pending_count(batch_id)}"
    )


def _outbox_run(args: argparse.Namespace) -> int:
    from tabmail.services import schedule

    ctx = open_context(args, sends=True)
    try:
        released, overdue = schedule.release_due(ctx)
        for batch in released:
            print(f"released scheduled {schedule.describe(batch)}")
        _say_overdue(overdue)
        report = _run_outbox(ctx, None, wait=not args.no_wait)
        ok = report.failed == 0 and report.uncertain == 0
        if args.wait and any(b.at > datetime.now(UTC) for b in schedule.waiting(ctx)):

            def waiting(batch: schedule.ScheduledBatch, now: datetime) -> None:
                print(
                    f"tabmail: waiting to send scheduled {schedule.describe(batch, now)}",
                    file=sys.stderr,
                    flush=True,
                )

            async def released_one(batch: schedule.ScheduledBatch) -> None:
                print(f"released scheduled {schedule.describe(batch)}")
                nonlocal ok
                done = await _outbox_pass(ctx, batch.batch_id, wait=not args.no_wait)
                ok = ok and done.failed == 0 and done.uncertain == 0

            late = run_async(schedule.wait_and_release(ctx, on_wait=waiting, on_release=released_one))
            _say_overdue(late)
        return 0 if ok and not overdue else 3
    finally:
        ctx.close()


def _say_overdue(overdue: list[Any]) -> None:
    from tabmail.services import schedule

    for batch in overdue:
        print(
            f"not sent: scheduled {schedule.describe(batch)}: its time passed while tabmail was not "
            f"running. Send it now with `tabmail outbox release {batch.batch_id}`, or cancel it with "
            f"`tabmail outbox unschedule {batch.batch_id}`",
            file=sys.stderr,
        )


def _outbox_scheduled(args: argparse.Namespace) -> int:
    from tabmail.services import schedule

    ctx = open_context(args)
    try:
        batches = schedule.waiting(ctx)
        if not batches:
            print("no batch is scheduled")
        for batch in batches:
            print(f"{batch.tournament_slug}: {schedule.describe(batch)}")
        return 0
    finally:
        ctx.close()


def _outbox_release(args: argparse.Namespace) -> int:
    from tabmail.services import schedule

    ctx = open_context(args, sends=True)
    try:
        n = schedule.release(ctx, args.batch)
        print(f"released {n} message(s) of batch {args.batch}: tabmail outbox run sends them")
        return 0
    finally:
        ctx.close()


def _outbox_unschedule(args: argparse.Namespace) -> int:
    from tabmail.services import schedule

    ctx = open_context(args, sends=True)
    try:
        n = schedule.cancel(ctx, args.batch)
        print(f"cancelled batch {args.batch}: {n} message(s) will not be sent")
        return 0
    finally:
        ctx.close()


def _outbox_requeue(args: argparse.Namespace) -> int:
    from tabmail.services.sending import backend_name

    ctx = open_context(args, writes=True)
    try:
        _say_waits(ctx)
        backend = args.backend or backend_name(ctx)
        states = [MessageState.QUEUED, MessageState.RETRYING, MessageState.FAILED]
        if args.include_uncertain:
            states.append(MessageState.UNCERTAIN)
        if args.include_skipped:
            states.append(MessageState.SKIPPED)
        if args.batch is not None:
            ctx.notifications.get_batch(args.batch)  # a clear error for an unknown batch
            ids = ctx.notifications.outbox.requeue(backend, batch_id=args.batch, states=states)
        else:
            full = [ctx.notifications.get(m).id for m in args.message]
            ids = ctx.notifications.outbox.requeue(backend, message_ids=full, states=states)
        print(f"re-queued {len(ids)} message(s) to go through {backend}: tabmail outbox run sends them")
        return 0
    finally:
        ctx.close()


def _outbox_show(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        states = None if args.all else [s for s in MessageState if s is not MessageState.SENT]
        rows = [
            {
                "id": m.id,
                "batch": m.batch_id,
                "recipient": m.recipient_name,
                "address": m.address,
                "state": m.state.value,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "next_attempt_at": m.next_attempt_at.isoformat() if m.next_attempt_at else None,
            }
            for m in ctx.notifications.messages(states=states)
        ]
        if args.json:
            print_json(rows)
        else:
            if not rows:
                print("the outbox is empty")
            for r in rows:
                err = f"  {r['last_error']}" if r["last_error"] else ""
                print(
                    f"{r['id']}  {r['state']:<10} {r['attempts']:>2}  {r['recipient']:<28} {r['address']}{err}"
                )
        return 0
    finally:
        ctx.close()
