"""Inputs too large to import are refused with one clear line, before they fill the memory
(issue 9, item 18). Small limits via parameters; the real ones are measured by
``python -m tests.bench input_sizes``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabmail.cli.main import main
from tabmail.domain.errors import TabmailError
from tabmail.domain.text import human_size
from tabmail.importers.csv_import import CsvLimits, CsvTooLarge, read_csv_folder
from tabmail.importers.tabbycat import TabbycatError, TabbycatLimits
from tabmail.resources import resource
from tabmail.services.context import AppContext
from tabmail.services.importing import import_tabbycat
from tests.servers.tabbycat import TabbycatServer, generate_tournament

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

SLUG = "gen"
T = f"/api/v1/tournaments/{SLUG}"


def _demo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(resource("demo"), tmp_path / "demo"))


def test_a_csv_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = _demo(tmp_path)
    (folder / "teams.csv").write_bytes((folder / "teams.csv").read_bytes() * 3)  # the largest now
    size = (folder / "teams.csv").stat().st_size
    limit = size - 1
    assert all(p.stat().st_size <= limit for p in folder.glob("*.csv") if p.name != "teams.csv")
    with pytest.raises(CsvTooLarge) as err:
        read_csv_folder(folder, limits=CsvLimits(file_bytes=limit))
    assert str(err.value) == (
        f"teams.csv is {human_size(size)}; tabmail reads CSV files of up to {human_size(limit)} "
        "(a tournament's files are far smaller; see docs/csv-format.md, Limits)"
    )


def test_a_folder_past_its_limits_is_refused(tmp_path: Path) -> None:
    folder = _demo(tmp_path)
    with pytest.raises(CsvTooLarge, match=r"^the CSV files come to more than 2 kB with \w+\.csv; "):
        read_csv_folder(folder, limits=CsvLimits(folder_bytes=2048))
    with pytest.raises(CsvTooLarge, match=r"^\w+\.csv has more than 10 rows; tabmail reads up to 10 rows"):
        read_csv_folder(folder, limits=CsvLimits(rows=10))
    with pytest.raises(CsvTooLarge, match=r"^the CSV files hold more than 500 cells \(at \w+\.csv:\d+\)"):
        read_csv_folder(folder, limits=CsvLimits(cells=500))
    assert read_csv_folder(folder).tournament.name == "demo"  # the default limits take it


def test_the_cli_refuses_a_huge_csv_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _demo(tmp_path)
    with (folder / "adjudicators.csv").open("a", encoding="utf-8") as fh:
        row = "Filler Person,filler@example.org,,Northvale,FALSE,FALSE\n"
        fh.write(row * (9 * 1024 * 1024 // len(row)))  # 9 MB: past the 8 MB of CsvLimits
    code = main(["--db", str(tmp_path / "t.sqlite3"), "import", "csv", str(folder)])
    [line] = capsys.readouterr().err.splitlines()
    assert code == 1
    assert line.startswith("tabmail: error: adjudicators.csv is 9 MB; tabmail reads CSV files of up to 8 MB")


@pytest.fixture
def server() -> Iterator[TabbycatServer]:
    with TabbycatServer(generate_tournament(teams=8, adjudicators=4, rounds=2, slug=SLUG).dataset) as srv:
        yield srv


def test_a_tabbycat_answer_past_the_size_limit_is_refused(ctx: AppContext, server: TabbycatServer) -> None:
    big = [{"id": i, "name": "x" * 200} for i in range(200)]  # ~50 kB
    server.respond_with(f"{T}/adjudicators", 200, big)
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, SLUG, token="admin", limits=TabbycatLimits(response_bytes=16 * 1024))
    assert str(err.value) == (
        f"{server.url}{T}/adjudicators answered with more than 16 kB for the adjudicators; "
        "tabmail reads at most 16 kB per answer (a whole tournament's largest list is far smaller)"
    )
    assert ctx.tournaments.list_all() == []


def test_a_tabbycat_import_past_its_budget_stops(ctx: AppContext, server: TabbycatServer) -> None:
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, SLUG, token="admin", limits=TabbycatLimits(import_values=300))
    assert str(err.value).startswith(f"{server.url} sent more than 300 JSON values for one tournament")
    assert str(err.value).endswith("tabmail imports tournaments up to that size (docs/limits.md)")
    server.respond_with(f"{T}/teams", 200, json.loads("[" + ",".join(["{}"] * 5000) + "]"))
    with pytest.raises(TabbycatError, match="sent more than 10 kB for one tournament"):
        import_tabbycat(ctx, server.url, SLUG, token="admin", limits=TabbycatLimits(import_bytes=10 * 1024))


def test_a_tournament_larger_than_any_real_one_is_refused_before_the_store(tmp_path: Path) -> None:
    bundle = read_csv_folder(_demo(tmp_path), "Demo Open")
    bundle.check_size()  # the real limits take the demo
    with pytest.raises(TabmailError) as err:
        bundle.check_size({"teams": 100, "people": 40})
    assert str(err.value) == (
        f"Demo Open holds {len(bundle.people)} people; tabmail imports up to 40 per tournament (see docs/limits.md)"
    )


def test_a_large_error_page_still_reports_its_status(ctx: AppContext, server: TabbycatServer) -> None:
    server.respond_with(f"{T}/venues", 503, "<html>" + "x" * 200_000 + "</html>", "text/html")
    result = import_tabbycat(ctx, server.url, SLUG, token="admin")
    assert [str(p) for p in result.problems] == [f"{server.url}{T}/venues: venues not imported: HTTP 503"]
