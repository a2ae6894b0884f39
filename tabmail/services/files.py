"""Files tabmail writes for the director (exports, printouts as PDF): owner-only, and CSV cells
made inert for spreadsheets. Every CSV tabmail writes, from the CLI or the window, goes through
``write_csv``; every file through ``open_private_output`` or ``write_private_bytes``."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from tabmail.domain.errors import TabmailError
from tabmail.domain.text import csv_row


def _open_private(path: Path) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOINHERIT", 0), 0o600)
    except OSError as exc:
        raise TabmailError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) and hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_output(path: Path) -> TextIO:
    """``path`` opened for writing text, owner-only (0600) like every file tabmail writes.

    A regular file that already exists is truncated and its mode tightened; a device or a pipe
    (``/dev/stdout``) is written as it is, its mode untouched."""
    fd = _open_private(path)
    try:
        return os.fdopen(fd, "w", newline="", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def write_private_bytes(path: Path, data: bytes) -> None:
    """``data`` written to ``path``, owner-only (0600). Raises TabmailError naming the file."""
    fd = _open_private(path)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise TabmailError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_csv(out: TextIO, fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Rows as CSV, every cell neutralised for spreadsheets (domain.text.csv_cell). Every CSV
    tabmail writes goes through here."""
    writer = csv.DictWriter(out, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows(csv_row(row) for row in rows)


def write_csv_file(path: Path, fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """A table (one sequence of cells per row, in ``fields`` order) as an owner-only CSV file;
    the number of rows written. Raises TabmailError naming the file."""
    count = 0

    def as_dicts() -> Iterable[dict[str, Any]]:
        nonlocal count
        for row in rows:
            count += 1
            yield dict(zip(fields, row, strict=True))

    try:
        with open_private_output(path) as out:
            write_csv(out, fields, as_dicts())
    except OSError as exc:
        raise TabmailError(f"cannot write {path}: {exc.strerror or exc}") from None
    return count
