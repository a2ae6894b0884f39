"""tabmail problems [resolve|unresolve], tabmail outbox retry|cancel"""

from __future__ import annotations

import argparse
from typing import Any

from tabmail.cli.common import open_context, print_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "problems", help="unresolved problems (bounces, blocks, failures...) in every tournament"
    )
    p.add_argument("--tournament", metavar="SLUG", help="only this tournament")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    psub = p.add_subparsers(dest="action", metavar="ACTION")
    r = psub.add_parser("resolve", help="mark a problem resolved, saying why")
    r.add_argument("message_id", metavar="MESSAGE_ID")
    r.add_argument("--reason", required=True, help="why it no longer needs attention")
    r.set_defaults(handler=_resolve)
    u = psub.add_parser("unresolve", help="undo marking a problem resolved")
    u.add_argument("message_id", metavar="MESSAGE_ID")
    u.set_defaults(handler=_unresolve)


def register_outbox(outbox_sub: Any) -> None:
    """``tabmail outbox retry ID`` and ``tabmail outbox cancel ID`` (added to send_cmds' parser)."""
    r = outbox_sub.add_parser("retry", help="send a retrying or failed message again now")
    r.add_argument("message_id", metavar="MESSAGE_ID")
    r.add_argument("--queue-only", action="store_true", help="queue it but do not send now")
    r.set_defaults(handler=_retry)
    c = outbox_sub.add_parser("cancel", help="stop a queued or retrying message (it becomes skipped)")
    c.add_argument("message_id", metavar="MESSAGE_ID")
    c.set_defaults(handler=_cancel)


def _list(args: argparse.Namespace) -> int:
    from tabmail.domain.problems import LABELS
    from tabmail.services import problems as service

    ctx = open_context(args)
    try:
        tournament_id = ctx.tournaments.get(args.tournament).id if args.tournament else None
        problems = service.unresolved(ctx, tournament_id=tournament_id)
        rows = [
            {
                "id": p.message.id,
                "tournament": p.sent.tournament_name,
                "round": p.sent.round_name,
                "recipient": p.message.recipient_name,
                "address": p.message.address,
                "category": p.category.value,
                "reason": p.reason,
                "since": p.since.isoformat() if p.since else None,
            }
            for p in problems
        ]
        if args.json:
            print_json(rows)
        elif not rows:
            print("no unresolved problems")
        else:
            for row, p in zip(rows, problems, strict=True):
                print(
                    f"{row['id']}  {LABELS[p.category]:<16} {row['tournament']} · {row['round']}  "
                    f"{row['recipient']} <{row['address']}>  {row['reason']}"
                )
        return 0
    finally:
        ctx.close()


def _resolve(args: argparse.Namespace) -> int:
    from tabmail.services import problems as service

    ctx = open_context(args, writes=True)
    try:
        r = service.mark_resolved(ctx, args.message_id, args.reason)
        print(f"marked {r.message_id} resolved: {r.reason}")
        return 0
    finally:
        ctx.close()


def _unresolve(args: argparse.Namespace) -> int:
    from tabmail.services import problems as service

    ctx = open_context(args, writes=True)
    try:
        changed = service.unmark_resolved(ctx, args.message_id)
        print("no longer marked resolved" if changed else "it was not marked resolved")
        return 0
    finally:
        ctx.close()


def _retry(args: argparse.Namespace) -> int:
    from tabmail.services import problems as service

    ctx = open_context(args, sends=True)
    try:
        m = service.retry_now(ctx, args.message_id)
        print(f"queued {m.id} to {m.address} again")
        if args.queue_only:
            return 0
        from tabmail.cli.send_cmds import _run_outbox

        report = _run_outbox(ctx, batch_id=m.batch_id, wait=False)
        return 0 if report.failed == 0 and report.uncertain == 0 else 3
    finally:
        ctx.close()


def _cancel(args: argparse.Namespace) -> int:
    from tabmail.services import problems as service

    ctx = open_context(args, writes=True)
    try:
        m = service.cancel(ctx, args.message_id)
        print(f"cancelled {m.id} to {m.address}: it is now skipped")
        return 0
    finally:
        ctx.close()
