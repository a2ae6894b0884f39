"""The command line as a director runs it: real subprocesses on a real database file.

Few and coarse on purpose (each start costs about half a second): one import shared by the read
commands, then the error paths that must end in one line on stderr.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tabmail import __version__
from tabmail.resources import resource
from tests.conftest import REPO

DEMO = resource("demo")
# Never the developer's real keyring: config show asks where each secret comes from.
BASE_ENV = {k: v for k, v in os.environ.items() if k != "TABMAIL_DB"} | {
    "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"
}


def tabmail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabmail", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BASE_ENV | (env or {}),
        timeout=60,
        check=False,
    )


def json_out(done: subprocess.CompletedProcess[str]) -> Any:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return json.loads(done.stdout)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("tabmail: error: ")
    return line


def demo_rows(name: str) -> list[dict[str, str]]:
    with (DEMO / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    db = tmp_path_factory.mktemp("cli") / "tabmail.sqlite3"
    done = tabmail("--db", str(db), "import", "csv", str(DEMO), "--tournament", "Demo Open")
    return db, done


def test_version() -> None:
    done = tabmail("--version")
    assert (done.returncode, done.stdout) == (0, f"tabmail {__version__}\n")


def test_import_csv_reports_what_it_created(demo_db: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, done = demo_db
    assert done.returncode == 0, done.stderr
    [summary] = done.stdout.splitlines()
    assert summary.startswith("imported demo-open: created ")
    assert "16 team" in summary and "44 person" in summary and "12 debate" in summary
    [problem] = done.stderr.splitlines()
    assert problem.startswith("  problem: teams.csv:4: ") and "not a valid address" in problem
    assert db.exists()


def test_tournaments_json_through_tabmail_db_url(
    demo_db: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = demo_db
    [row] = json_out(tabmail("tournaments", "--json", env={"TABMAIL_DB": f"sqlite:///{db}"}))
    assert {k: row[k] for k in ("slug", "name", "source", "rounds", "people")} == {
        "slug": "demo-open",
        "name": "Demo Open",
        "source": "csv",
        "rounds": 3,
        "people": 44,
    }


def test_people_json_lists_everyone_with_their_address_state(
    demo_db: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, _ = demo_db
    people = json_out(tabmail("--db", str(db), "people", "--tournament", "demo-open", "--json"))

    assert all(
        {"id", "name", "role", "team", "institution", "email", "email_valid"} <= set(p) for p in people
    )
    teams = demo_rows("teams.csv")
    expected = {r[f"speaker{i}_name"]: ("speaker", r[f"speaker{i}_email"]) for r in teams for i in (1, 2)}
    expected |= {r["name"]: ("adjudicator", r["email"]) for r in demo_rows("adjudicators.csv")}
    assert {p["name"]: (p["role"], p["email"] or "") for p in people} == expected
    by_name = {p["name"]: p for p in people}
    first = teams[0]
    speaker = by_name[first["speaker1_name"]]
    assert (speaker["team"], speaker["institution"]) == (
        f"{first['institution']} {first['reference']}",
        "University of Northvale",
    )
    invalid = [p for p in people if p["email"] and not p["email_valid"]]
    assert [p["email"] for p in invalid] == [e for _r, e in expected.values() if "@@" in e]
    missing = [p for p in people if p["email"] is None]
    assert [(p["role"], p["email_valid"]) for p in missing] == [("adjudicator", False)]


def test_draw_json_matches_draw_csv(demo_db: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = demo_db
    draw = json_out(tabmail("--db", str(db), "draw", "--tournament", "demo-open", "--round", "2", "--json"))

    assert (draw["tournament"], draw["round"], draw["name"]) == ("demo-open", 2, "Round 2")
    got = {
        d["venue"]: (
            [(t["side"], t["team"]) for t in d["teams"]],
            [(a["position"], a["name"]) for a in d["panel"]],
        )
        for d in draw["debates"]
    }
    expected = {
        r["venue"]: (
            [(side, r[side]) for side in ("og", "oo", "cg", "co")],
            [("chair", r["chair"]), ("panellist", r["panellists"]), ("trainee", r["trainees"])],
        )
        for r in demo_rows("draw.csv")
        if r["round"] == "2"
    }
    assert got == expected


def test_config_set_then_show(tmp_path: Path) -> None:
    db = str(tmp_path / "config.sqlite3")
    done = tabmail("--db", db, "config", "set", "smtp.port", "2525")
    assert (done.returncode, done.stdout, done.stderr) == (0, "smtp.port = 2525\n", "")

    shown = json_out(tabmail("--db", db, "config", "show", "--json"))

    assert shown["settings"]["smtp.port"] == 2525
    assert shown["settings"]["backend"] == "file"  # untouched settings keep their defaults
    assert shown["database"] == db
    assert set(shown["secrets"].values()) == {"missing"}


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("smtp.hostname", "mail.example.org", "unknown setting 'smtp.hostname'; known settings: "),
        ("smtp.port", "seventy", "expected a whole number, got 'seventy'"),
    ],
)
def test_config_set_refuses_bad_keys_and_values(tmp_path: Path, key: str, value: str, words: str) -> None:
    line = one_error_line(tabmail("--db", str(tmp_path / "c.sqlite3"), "config", "set", key, value))
    assert words in line


def test_unknown_tournament_is_one_line(demo_db: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = demo_db
    line = one_error_line(tabmail("--db", str(db), "people", "--tournament", "nope"))
    assert "no tournament with slug 'nope' (known: demo-open)" in line


def test_a_latin1_folder_is_one_line_and_imports_nothing(
    tmp_path: Path, demo_db: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    db, _ = demo_db
    folder = tmp_path / "latin"
    folder.mkdir()
    (folder / "adjudicators.csv").write_bytes("name,email\nJosé Núñez,jose@example.org\n".encode("latin-1"))

    line = one_error_line(tabmail("--db", str(db), "import", "csv", str(folder)))

    assert "adjudicators.csv is not UTF-8" in line and "line 2" in line and "save it as UTF-8" in line
    assert [t["slug"] for t in json_out(tabmail("--db", str(db), "tournaments", "--json"))] == ["demo-open"]


def test_an_api_base_url_over_plain_http_is_refused_unless_local(tmp_path: Path) -> None:
    from tabmail.domain.config import SettingError, parse_setting

    assert parse_setting("sendgrid.base_url", "https://api.sendgrid.com/") == "https://api.sendgrid.com"
    assert parse_setting("sendgrid.base_url", "http://127.0.0.1:8025") == "http://127.0.0.1:8025"
    assert parse_setting("sendgrid.base_url", "http://localhost:8025") == "http://localhost:8025"
    with pytest.raises(SettingError, match="unencrypted"):
        parse_setting("sendgrid.base_url", "http://api.sendgrid.com")
    with pytest.raises(SettingError, match="unencrypted"):
        parse_setting("sendgrid.base_url", "http://127.0.0.1.evil.example@api.sendgrid.com")
    with pytest.raises(SettingError, match="unencrypted"):
        parse_setting("sendgrid.base_url", "http://127.0.0.1.evil.example/v3")
    assert parse_setting("sendgrid.base_url", "http://[::1]:8025") == "http://[::1]:8025"
