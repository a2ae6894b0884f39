"""tabmail db copy: a whole database, or one tournament's record, between SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from tabmail.cli.common import print_json

if TYPE_CHECKING:
    from tabmail.services.dbcopy import CopyReport, MergeReport

PROGRESS_EVERY = 1.0  # seconds between two progress lines within one table


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database tools (copy between SQLite and PostgreSQL)")
    dbsub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    c = dbsub.add_parser(
        "copy",
        help="copy a whole database, or one tournament's record, into an empty database",
        description=(
            "Copy every table (tournaments, people, batches, messages with their exact bytes, "
            "events, flags, inbox, settings) from one database to another, SQLite or PostgreSQL "
            "in either direction, in one transaction on the target, verified by counts and "
            "checksums per table. The target must be empty, or with --merge the source's tournaments "
            "are added to what it holds. A server's password comes from the "
            "keyring (tabmail secret set db-password) or TABMAIL_DB_PASSWORD."
        ),
    )
    c.add_argument("--from", dest="source", required=True, metavar="PATH_OR_URL", help="the database to copy")
    c.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="PATH_OR_URL",
        help="an empty database (with --merge: one holding data)",
    )
    c.add_argument("--tournament", metavar="SLUG", help="copy only this tournament's record")
    c.add_argument(
        "--merge",
        action="store_true",
        help="add the source's tournaments that the target lacks (by slug) to a target holding data, with new ids",
    )
    c.add_argument(
        "--skip-existing",
        action="store_true",
        help="with --merge: leave out a tournament the target already has instead of refusing",
    )
    c.add_argument("--json", action="store_true", help="the per-table checks as JSON")
    c.set_defaults(handler=_copy)


class _Progress:
    """One line per table on stderr, and one a second while a big table is copied."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or done == 0 or now - self._last >= PROGRESS_EVERY:
            if done == 0 and total:
                return
            self._last = now
            print(f"tabmail: copying {table}: {done:,} of {total:,} rows", file=sys.stderr, flush=True)


def _copy(args: argparse.Namespace) -> int:
    from tabmail.services.dbcopy import copy_database

    if args.merge:
        return _merge(args)
    if args.skip_existing:
        print("tabmail: error: --skip-existing goes with --merge", file=sys.stderr)
        return 2

    report = copy_database(args.source, args.target, tournament=args.tournament, progress=_Progress())
    if args.json:
        print_json(
            {
                "source": report.source,
                "target": report.target,
                "tournament": report.tournament,
                "committed": report.committed,
                "seconds": round(report.seconds, 3),
                "tables": [
                    {
                        "table": c.table,
                        "source_rows": c.source_rows,
                        "target_rows": c.target_rows,
                        "source_sha256": c.source_sum,
                        "target_sha256": c.target_sum,
                        "ok": c.ok,
                    }
                    for c in report.checks
                ],
            }
        )
    else:
        print(_table(report))
    if not report.committed:
        names = ", ".join(c.table for c in report.mismatches)
        print(
            f"tabmail: error: the copy does not match the source ({names}); nothing was committed to "
            f"{report.target}",
            file=sys.stderr,
        )
        return 1
    return 0


def _table(report: CopyReport) -> str:
    width = max(len(c.table) for c in report.checks)
    lines = [f"{'table':<{width}}  {'source':>9}  {'target':>9}  {'sha256 (source)':<16}  check"]
    for c in report.checks:
        check = "ok" if c.ok else f"MISMATCH (target {c.target_sum[:16]})"
        lines.append(
            f"{c.table:<{width}}  {c.source_rows:>9,}  {c.target_rows:>9,}  {c.source_sum[:16]}  {check}"
        )
    what = f"tournament {report.tournament}" if report.tournament else "database"
    verdict = "copied" if report.committed else "NOT copied (rolled back)"
    lines.append(f"{what} {verdict}: {report.source} -> {report.target} in {report.seconds:.1f} s")
    return "\n".join(lines)


def _check(c: Any) -> dict[str, Any]:
    return {
        "table": c.table,
        "source_rows": c.source_rows,
        "target_rows": c.target_rows,
        "source_sha256": c.source_sum,
        "target_sha256": c.target_sum,
        "ok": c.ok,
    }


def _merge(args: argparse.Namespace) -> int:
    from tabmail.services.dbcopy import merge_database

    report = merge_database(
        args.source,
        args.target,
        tournament=args.tournament,
        skip_existing=args.skip_existing,
        progress=_Progress(),
    )
    for t in report.tournaments:
        if t.skipped:
            print(f"tabmail: skipped tournament {t.slug}: the target already has it", file=sys.stderr)
    if args.json:
        print_json(
            {
                "source": report.source,
                "target": report.target,
                "committed": report.committed,
                "seconds": round(report.seconds, 3),
                "tournaments": [
                    {"slug": t.slug, "skipped": t.skipped, "tables": [_check(c) for c in t.checks]}
                    for t in report.tournaments
                ],
            }
        )
    else:
        print(_merge_table(report))
    if not report.committed:
        names = ", ".join(f"{slug} {c.table}" for slug, c in report.mismatches)
        print(
            f"tabmail: error: the merge does not match the source ({names}); nothing was committed to "
            f"{report.target}",
            file=sys.stderr,
        )
        return 1
    return 0


def _merge_table(report: MergeReport) -> str:
    merged = [t for t in report.tournaments if not t.skipped]
    rows = [(t.slug, c) for t in merged for c in t.checks]
    slug_w = max([len("tournament"), *(len(s) for s, _ in rows)])
    table_w = max([len("table"), *(len(c.table) for _, c in rows)])
    lines = [
        f"{'tournament':<{slug_w}}  {'table':<{table_w}}  {'source':>9}  {'target':>9}  "
        f"{'sha256 (source)':<16}  check"
    ]
    for slug, c in rows:
        check = "ok" if c.ok else f"MISMATCH (target {c.target_sum[:16]})"
        lines.append(
            f"{slug:<{slug_w}}  {c.table:<{table_w}}  {c.source_rows:>9,}  {c.target_rows:>9,}  "
            f"{c.source_sum[:16]}  {check}"
        )
    names = ", ".join(t.slug for t in merged) or "no tournament"
    verdict = "merged" if report.committed else "NOT merged (rolled back)"
    lines.append(f"{names} {verdict}: {report.source} -> {report.target} in {report.seconds:.1f} s")
    return "\n".join(lines)
