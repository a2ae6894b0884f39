"""tabmail templates export|import|reset — a tournament's own templates, edited as files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tabmail.cli.common import open_context
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event, Templates

FILES = ("subject.txt", "body.txt", "body.html")


def register(sub: Any) -> None:
    p = sub.add_parser("templates", help="export, import or reset a tournament's email templates")
    tsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, text in (
        ("export", _export, "write the templates in use to DIR (subject.txt, body.txt, body.html)"),
        ("import", _import, "make the templates in DIR this tournament's default (checked first)"),
        ("reset", _reset, "go back to the shipped templates"),
    ):
        a = tsub.add_parser(name, help=text)
        a.add_argument("--tournament", required=True, metavar="SLUG")
        a.add_argument("--event", required=True, choices=[e.value for e in Event])
        a.add_argument("--audience", choices=[x.value for x in Audience], default=Audience.ALL.value)
        a.add_argument(
            "--removal-notice",
            action="store_true",
            help="with --event draw: the notice a changes-only re-release sends to people no longer "
            "in the draw (one for every audience)",
        )
        if name != "reset":
            a.add_argument("folder", metavar="DIR", type=Path)
        a.set_defaults(handler=handler)


def _kind(args: argparse.Namespace) -> tuple[Event, Audience | None]:
    event = Event(args.event)
    if args.removal_notice and event is not Event.DRAW:
        raise TabmailError(f"--removal-notice goes with --event draw (the draw's notice), not {event.value}")
    return event, Audience(args.audience) if event is not Event.BALLOT else None


def _what(args: argparse.Namespace, event: Event) -> str:
    return "draw removal-notice" if args.removal_notice else event.value


def _export(args: argparse.Namespace) -> int:
    from tabmail.services import notify  # Jinja2 and the email package: only when needed

    ctx = open_context(args)
    try:
        t = ctx.tournaments.get(args.tournament)
        event, audience = _kind(args)
        tpl = notify.templates_for(ctx, t.id, event, audience, removal=args.removal_notice)
        args.folder.mkdir(parents=True, exist_ok=True)
        for name, text in zip(FILES, (tpl.subject, tpl.text, tpl.html), strict=True):
            if text is not None:
                (args.folder / name).write_text(text, encoding="utf-8")
        print(f"wrote the {_what(args, event)} templates of {t.slug} to {args.folder}")
        return 0
    finally:
        ctx.close()


def _import(args: argparse.Namespace) -> int:
    from tabmail.services import notify  # Jinja2 and the email package: only when needed

    ctx = open_context(args, writes=True)
    try:
        t = ctx.tournaments.get(args.tournament)
        event, audience = _kind(args)
        texts: list[str | None] = []
        for name in FILES:
            path = args.folder / name
            try:
                texts.append(path.read_text(encoding="utf-8") if path.exists() else None)
            except (OSError, UnicodeDecodeError) as exc:
                raise TabmailError(f"cannot read {path}: {exc}") from exc
        subject, text, html = texts
        if subject is None or text is None:
            raise TabmailError(f"{args.folder} needs at least subject.txt and body.txt")
        kept = Templates(subject.strip(), text, html)
        notify.save_templates(ctx, t.id, event, audience, kept, removal=args.removal_notice)
        print(f"{t.slug} now uses the {_what(args, event)} templates from {args.folder}")
        return 0
    finally:
        ctx.close()


def _reset(args: argparse.Namespace) -> int:
    from tabmail.services import notify  # Jinja2 and the email package: only when needed

    ctx = open_context(args, writes=True)
    try:
        t = ctx.tournaments.get(args.tournament)
        event, audience = _kind(args)
        notify.save_templates(ctx, t.id, event, audience, None, removal=args.removal_notice)
        print(f"{t.slug} uses the shipped {_what(args, event)} templates again")
        return 0
    finally:
        ctx.close()
