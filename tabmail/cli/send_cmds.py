"""tabmail send draw|ballot|custom, tabmail outbox [run]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabmail.cli.common import confirm, open_context, print_json, run_async
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, MessageState, Templates

if TYPE_CHECKING:  # composing and sending are imported by the commands that do them
    from tabmail.services.context import AppContext
    from tabmail.services.outbox import OutboxReport


def register(sub: Any) -> None:
    s = sub.add_parser("send", help="compose, queue and send a notification")
    ssub = s.add_subparsers(dest="event", metavar="EVENT", required=True)
    d = ssub.add_parser("draw", help="draw release for a round")
    _common(d, round_required=True)
    d.add_argument("--audience", choices=[a.value for a in Audience], default=Audience.ALL.value)
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

    o = sub.add_parser("outbox", help="show the outbox, or run it")
    o.add_argument("--json", action="store_true")
    o.add_argument("--all", action="store_true", help="include sent messages")
    o.set_defaults(handler=_outbox_show)
    osub = o.add_subparsers(dest="action", metavar="ACTION")
    r = osub.add_parser("run", help="send what is queued (waiting for retries), then exit")
    r.add_argument("--no-wait", action="store_true", help="do not wait for messages scheduled to retry later")
    r.set_defaults(handler=_outbox_run)
    from tabmail.cli.problem_cmds import register_outbox

    register_outbox(osub)


def _common(p: argparse.ArgumentParser, round_required: bool) -> None:
    p.add_argument("--tournament", required=True, metavar="SLUG")
    p.add_argument("--round", required=round_required, type=int, metavar="N")
    p.add_argument("--include-already-sent", action="store_true", help="also those who already got it")
    p.add_argument("--include-flagged", action="store_true", help="also addresses flagged as bouncing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--queue-only", action="store_true", help="queue but do not send now (tabmail outbox run)")


def _send_draw(args: argparse.Namespace) -> int:
    return _send(args, Event.DRAW, Audience(args.audience))


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
) -> int:
    from tabmail.services import notify

    ctx = open_context(args, sends=True)
    try:
        plan = notify.plan(
            ctx,
            args.tournament,
            event,
            round_seq=args.round,
            audience=audience,
            person_ids=people,
            templates=templates,
        )
        selection = notify.selection_for(
            plan, include_already_sent=args.include_already_sent, include_flagged=args.include_flagged
        )
        count = sum(1 for p in plan.recipients if p.key in selection and p.mark.sendable)
        where = f"{plan.tournament.name}" + (f", {plan.round.name}" if plan.round else "")
        print(f"{event.value} notification for {where}: {plan.summary()}")
        for p in plan.recipients:
            if p.mark in (notify.Mark.NO_ADDRESS, notify.Mark.INVALID):
                print(f"  not sendable: {p.recipient.name}: {p.recipient.problem}")
        reroute = ctx.settings.get("test_mode.reroute_to")
        if reroute:
            print(f"TEST MODE: every message goes to {reroute}")
        if count == 0:
            print("nothing to send")
            return 0
        if not args.yes and not confirm(f"send {count} message(s) through {ctx.settings.get('backend')}?"):
            print("not sent (answer yes, or pass --yes)", file=sys.stderr)
            return 1
        result = notify.enqueue(ctx, plan, selected=selection)
        print(f"queued {result.queued} message(s) as batch {result.batch_id}")
        if args.queue_only:
            return 0
        report = _run_outbox(ctx, batch_id=None, wait=True)
        return 0 if report.failed == 0 and report.uncertain == 0 else 3
    finally:
        ctx.close()


def _run_outbox(ctx: AppContext, batch_id: int | None, wait: bool) -> OutboxReport:
    from tabmail.domain.events import OutboxProgressed
    from tabmail.services.outbox import Outbox
    from tabmail.services.sending import build_backend

    tty = sys.stderr.isatty()

    def progress(ev: object) -> None:
        if tty and isinstance(ev, OutboxProgressed):
            print(f"\rsending: {ev.done}/{ev.total}   ", end="", file=sys.stderr, flush=True)

    ctx.bus.subscribe(OutboxProgressed, progress)
    outbox = Outbox(ctx.notifications, ctx.flags, lambda: build_backend(ctx), ctx.bus)
    report = run_async(outbox.run(batch_id=batch_id, wait_for_retries=wait))
    if tty:
        print(file=sys.stderr)
    if report.recovered_uncertain:
        print(
            f"{len(report.recovered_uncertain)} message(s) were being sent when tabmail last stopped; "
            "marked uncertain (see tabmail outbox)"
        )
    print(
        f"sent {report.sent}, failed {report.failed}, uncertain {report.uncertain}, "
        f"skipped {report.skipped}, still retrying {ctx.notifications.pending_count()}"
    )
    return report


def _outbox_run(args: argparse.Namespace) -> int:
    ctx = open_context(args, sends=True)
    try:
        report = _run_outbox(ctx, None, wait=not args.no_wait)
        return 0 if report.failed == 0 and report.uncertain == 0 else 3
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
