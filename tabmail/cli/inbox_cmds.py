"""``tabmail inbox check|test`` and ``tabmail replies``: the tab room's mailbox."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tabmail.cli.common import open_context, print_json, run_async

if TYPE_CHECKING:  # the IMAP reader and the tracking pipeline load when a command uses them
    from tabmail.domain.events import InboxWaiting
    from tabmail.domain.inbox import InboxEntry
    from tabmail.services.inbox import InboxReport


def register(sub: Any) -> None:
    p = sub.add_parser(
        "inbox", help="read bounces, spam reports and replies from the tab room's mailbox (IMAP)"
    )
    inner = p.add_subparsers(dest="inbox_command", metavar="ACTION", required=True)
    c = inner.add_parser("check", help="read new mail (without --once: keep reading, IDLE when offered)")
    c.add_argument("--once", action="store_true", help="check once and exit")
    c.set_defaults(handler=_check)
    t = inner.add_parser("test", help="log in, open the folder, count its messages")
    t.set_defaults(handler=_test)

    r = sub.add_parser("replies", help="participants' replies to a tournament's messages")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--tournament", metavar="SLUG")
    which.add_argument(
        "--unmatched",
        action="store_true",
        help="replies that answer none of our messages (or quote an anchor that does not check out): kept, shown here",
    )
    r.add_argument("--round", type=int, metavar="N")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=_replies)


def _print(report: InboxReport) -> None:
    stamp = report.started_at.astimezone().strftime("%H:%M:%S")
    print(f"{stamp} {report.summary()}", flush=True)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)


def _standby(words: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {words}", flush=True)


def _waiting(event: InboxWaiting) -> None:
    from tabmail.services.inbox_watch import waiting_words

    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {waiting_words(event)}", flush=True)


def _check(args: argparse.Namespace) -> int:
    from tabmail.domain.events import InboxWaiting
    from tabmail.services.election import INBOX, Duty
    from tabmail.services.inbox import InboxChecker
    from tabmail.services.inbox_watch import InboxWatcher

    ctx = open_context(args, writes=True)
    ctx.bus.subscribe(InboxWaiting, _waiting)  # "Mailbox connection lost (…); retrying in 2 s."
    checker = InboxChecker(ctx)
    duty = Duty(ctx, INBOX)  # in a tab room on PostgreSQL one laptop reads the mailbox
    try:
        if args.once:
            if not duty.mine():
                _standby(duty.standby_words(once=True))
                return 0
            report = run_async(checker.check_once())
            _print(report)
            if not report.enabled or report.reason:
                return 1
            return 0 if report.online else 3
        watcher = InboxWatcher(checker)
        last = run_async(watcher.run_forever(on_report=_print, duty=duty, on_standby=_standby))
        return 1 if last is not None and (not last.enabled or last.reason) else 0
    finally:
        duty.release()
        ctx.close()


def _test(args: argparse.Namespace) -> int:
    from tabmail.services.inbox import test_connection

    ctx = open_context(args)
    try:
        print(test_connection(ctx))
        return 0
    finally:
        ctx.close()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def reply_row(e: InboxEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind,
        "received_at": _iso(e.received_at),
        "from": e.from_address,
        "from_name": e.from_name,
        "subject": e.subject,
        "text": e.reply_text,
        "message_id": e.message_id,
        "person_id": e.person_id,
        "recipient": e.recipient_name,
        "sent_to": e.sent_to,
        "different_sender": e.different_sender,
        "matched_by": e.matched_by,
        "round": e.round_seq,
        "unread": e.read_at is None,
        "note": e.detail.get("attribution"),
        "source": "inbox",
    }


def _replies(args: argparse.Namespace) -> int:
    ctx = open_context(args)
    try:
        if args.unmatched:
            entries = ctx.inbox.entries(kinds=("reply",), unmatched=True)
        else:
            ctx.tournaments.get(args.tournament)  # a clear error for an unknown slug
            entries = ctx.inbox.entries(
                kinds=("reply",), tournament_slug=args.tournament, round_seq=args.round
            )
        rows = [reply_row(e) for e in entries]
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print("no replies yet")
        for e in entries:
            when = e.received_at.astimezone().strftime("%Y-%m-%d %H:%M") if e.received_at else "-"
            other = f" (sent to {e.sent_to})" if e.different_sender else ""
            rnd = f"round {e.round_seq}" if e.round_seq is not None else "no round"
            text = " ".join((e.reply_text or "").split())[:200]
            print(f"{when}  {rnd:<9} {e.from_name or ''} <{e.from_address}>{other}: {text}")
        return 0
    finally:
        ctx.close()
