"""Which addresses tabmail accepts (issue 9, item 17; docs/addresses.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tabmail.cli.main import main
from tabmail.domain.addresses import unusual_domain, validate_address
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

SPECIAL_USE = [
    "tab@tournament.test",
    "jo@printer.local",
    "ana@maths.uni.internal",
    "kim@mail.example",
    "lee@router.home.arpa",
    "max@intranet.corp",
    "sam@nas.lan",
]
REFUSED = {
    "jane@gmail": "should have a period",  # no dot: no public server delivers, the usual typo
    "root@localhost": "should have a period",
    "who@mail.localhost": "special-use or reserved name",  # always the sending machine itself
    "no@such.invalid": "special-use or reserved name",  # RFC 6761: never exists
    "ip@1.2.3.4": "not within a valid top-level domain",
    "ip@[192.0.2.1]": "bracketed IP address",
    "two@@ats.test": "invalid characters",
    "": "no address",
}


@pytest.mark.parametrize("address", SPECIAL_USE)
def test_special_use_domains_are_accepted_and_marked(address: str) -> None:
    valid, normalised, problem = validate_address(address)
    assert (valid, normalised, problem) == (True, address, None)
    note = unusual_domain(address)
    assert note is not None and note.endswith("only a mail server inside that network can deliver it")


@pytest.mark.parametrize(("address", "why"), REFUSED.items())
def test_what_no_server_delivers_is_refused(address: str, why: str) -> None:
    valid, _normalised, problem = validate_address(address)
    assert not valid and problem is not None and why in problem


def test_ordinary_domains_are_not_marked() -> None:
    for address in (
        "a@example.org",
        "b@uni.ac.uk",
        "c@testing.com",
        "d@local.example.org",
        "e@xn--bcher-kva.de",
    ):
        assert validate_address(address)[0] and unusual_domain(address) is None, address


def test_imported_special_use_addresses_are_valid_and_shown_as_unusual(
    ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "Internal Cup"
    folder.mkdir()
    (folder / "adjudicators.csv").write_text(
        "name,email\nJo Local,jo@printer.local\nAna Intern,ana@maths.uni.internal\nPat Public,pat@example.org\n",
        encoding="utf-8",
    )
    result = import_csv(ctx, folder)
    assert result.problems == []
    db = ctx.db.url  # the SQLite file's or the PostgreSQL database's URL
    ctx.close()
    assert main(["--db", db, "people", "--tournament", "internal-cup", "--json"]) == 0
    people = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert people["Jo Local"]["email_valid"] is True
    assert people["Jo Local"]["email_note"].startswith("a local-network (mDNS) domain (.local)")
    assert people["Ana Intern"]["email_valid"] is True
    assert people["Ana Intern"]["email_note"].startswith("a private-network domain (.internal)")
    assert people["Pat Public"]["email_note"] is None
    assert main(["--db", db, "people", "--tournament", "internal-cup"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.endswith("(unusual domain)") for line in lines] == [True, True, False]
