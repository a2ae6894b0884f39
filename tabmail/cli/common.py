"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import csv
import json
import os
import stat
import sys
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from tabmail.domain.errors import TabmailError
from tabmail.domain.text import csv_row

if TYPE_CHECKING:  # the database layer is imported by the commands that open it
    from tabmail.services.context import AppContext


READ_ONLY_SENDING = "read-only database: sending disabled"


def open_context(args: argparse.Namespace, *, sends: bool = False, writes: bool = False) -> AppContext:
    """The app's context for one command. On a read-only database (``--read-only``, or a file
    this user cannot write) a command that ``sends`` or ``writes`` is refused in one line; any
    other command says once on stderr that sending is disabled, then runs."""
    from tabmail.services.context import AppContext

    ctx = AppContext.open(args.db, read_only=bool(getattr(args, "read_only", False)))
    if ctx.read_only:
        where = ctx.db.describe()
        if sends or writes:
            ctx.close()
            what = READ_ONLY_SENDING if sends else "read-only database: this command would change it"
            raise TabmailError(f"{what} ({where} is opened read-only)")
        print(f"tabmail: {READ_ONLY_SENDING} ({where} is opened read-only)", file=sys.stderr)
    return ctx


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, with asyncio (~20 ms) imported only by the commands that need it."""
    import asyncio

    return asyncio.run(coro)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def confirm(prompt: str) -> bool:
    """Ask on the terminal; a closed or absent stdin answers no."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{prompt} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def open_private_output(path: Path) -> TextIO:
    """``path`` opened for writing text, owner-only (0600) like every file tabmail writes.

    A regular file that already exists is truncated and its mode tightened; a device or a pipe
    (``/dev/stdout``) is written as it is, its mode untouched."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOINHERIT", 0), 0o600)
    except OSError as exc:
        raise TabmailError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) and hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "w", newline="", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def write_csv(out: TextIO, fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Rows as CSV, every cell neutralised for spreadsheets (domain.text.csv_cell). Every CSV
    tabmail writes goes through here."""
    writer = csv.DictWriter(out, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows(csv_row(row) for row in rows)
