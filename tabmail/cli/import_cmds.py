"""tabmail import tabbycat|csv"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabmail.cli.common import open_context
from tabmail.cli.terminal import raw_stderr

if TYPE_CHECKING:
    from tabmail.domain.imported import ImportResult


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="import a tournament from Tabbycat or CSV")
    isub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    t = isub.add_parser(
        "tabbycat", help="from a Tabbycat site's REST API (token: tabmail secret set tabbycat-token)"
    )
    t.add_argument("--url", required=True, help="the site's address, e.g. https://mytourney.herokuapp.com")
    t.add_argument("--tournament", required=True, metavar="SLUG")
    t.add_argument(
        "--insecure",
        action="store_true",
        help="allow a plain http:// site on another machine (the token travels unencrypted)",
    )
    t.set_defaults(handler=_tabbycat)
    c = isub.add_parser("csv", help="from a folder of CSV files (Tabbycat's demo format; draw.csv)")
    c.add_argument("folder", metavar="DIR", type=Path)
    c.add_argument("--tournament", metavar="NAME", help="tournament name (default: the folder's name)")
    c.set_defaults(handler=_csv)


def _progress(stage: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\r{stage}: {done}/{total}   ", end="", file=raw_stderr(), flush=True)


def _report(result: ImportResult) -> int:
    if sys.stderr.isatty():
        print(file=sys.stderr)
    created = ", ".join(f"{n} {k}" for k, n in sorted(result.created.items())) or "nothing new"
    updated = ", ".join(f"{n} {k}" for k, n in sorted(result.updated.items())) or "nothing"
    print(f"imported {result.slug}: created {created}; updated {updated}")
    for name, old, new in result.address_changes:
        print(f"  address changed: {name}: {old or '(none)'} -> {new or '(none)'}")
    if result.deactivated:
        print(f"  no longer listed (kept with their sent records): {', '.join(result.deactivated)}")
    for problem in result.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 0


def _tabbycat(args: argparse.Namespace) -> int:
    from tabmail.services import importing  # the HTTP client and importers: only when importing

    ctx = open_context(args, writes=True)
    try:
        return _report(
            importing.import_tabbycat(
                ctx, args.url, args.tournament, progress=_progress, insecure=args.insecure
            )
        )
    finally:
        ctx.close()


def _csv(args: argparse.Namespace) -> int:
    from tabmail.services import importing

    ctx = open_context(args, writes=True)
    try:
        return _report(importing.import_csv(ctx, args.folder, args.tournament))
    finally:
        ctx.close()
