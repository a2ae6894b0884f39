"""A Tabbycat site that misbehaves (issue 9, items 8, 9, 10): plain http, a server that trickles
or paginates forever, wrong nested types. Against the loopback replay server with a generated
tournament (tests/servers/tabbycat.py)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tabmail.cli.main import main
from tabmail.domain.imported import ImportResult
from tabmail.importers.tabbycat import TabbycatClient, TabbycatError, TabbycatLimits
from tabmail.services.context import AppContext
from tabmail.services.importing import import_tabbycat
from tests.servers.tabbycat import GeneratedTournament, TabbycatServer, generate_tournament

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

SLUG = "gen"
T = f"/api/v1/tournaments/{SLUG}"


@pytest.fixture
def generated() -> GeneratedTournament:
    return generate_tournament(teams=8, adjudicators=4, rounds=2, slug=SLUG)


@pytest.fixture
def server(generated: GeneratedTournament) -> Iterator[TabbycatServer]:
    with TabbycatServer(generated.dataset) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABMAIL_TABBYCAT_TOKEN", raising=False)


# -- item 8: plain http ------------------------------------------------------------------------
def test_plain_http_to_another_machine_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "t.sqlite3")
    code = main(["--db", db, "import", "tabbycat", "--url", "http://tab.example.org", "--tournament", "x"])
    err = capsys.readouterr().err
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("tabmail: error: refusing http://tab.example.org: ")
    assert "token" in line and "in clear" in line and "--insecure" in line
    with pytest.raises(TabbycatError, match="in clear"):
        TabbycatClient("http://10.1.2.3:8000/api", "tok")
    # Knowingly: the client is built (nothing is sent until an import asks).
    TabbycatClient("http://tab.example.org", "tok", insecure=True).close()
    # https and this machine need nothing.
    TabbycatClient("https://tab.example.org", "tok").close()
    for local in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"):
        TabbycatClient(local, "tok").close()


def test_plain_http_to_this_machine_still_imports(ctx: AppContext, server: TabbycatServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    result = import_tabbycat(ctx, server.url, SLUG, token="admin")
    assert result.problems == [] and result.created["team"] == 8


def _problems(result: ImportResult) -> list[str]:
    return [str(p) for p in result.problems]


def _body(generated: GeneratedTournament, path: str) -> Any:
    rec = generated.dataset.get(path, (), "admin", None)
    assert rec is not None
    return copy.deepcopy(rec.body)


# -- item 9: deadlines and a page cap ----------------------------------------------------------
def test_a_trickling_answer_is_cut_off_at_the_request_deadline(
    ctx: AppContext, server: TabbycatServer
) -> None:
    server.trickle[f"{T}/teams"] = 0.05  # a byte every 50 ms: each read is quick, the whole never ends
    client = TabbycatClient(server.url, "admin", limits=TabbycatLimits(request_seconds=0.5))
    with pytest.raises(TabbycatError) as err:
        client.fetch_tournament(SLUG)
    client.close()
    assert str(err.value) == (
        f"{server.url}{T}/teams did not finish answering for the teams within 0.5 s; stopped waiting"
    )
    assert server.wait_cut_off(f"{T}/teams")  # tabmail hung up; the server did not finish


def test_a_server_trickling_its_headers_is_cut_off_at_the_request_deadline(
    ctx: AppContext, server: TabbycatServer
) -> None:
    server.trickle_head[f"{T}/teams"] = 0.05  # the status line and headers, a byte every 50 ms
    client = TabbycatClient(server.url, "admin", limits=TabbycatLimits(request_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(TabbycatError) as err:
        client.fetch_tournament(SLUG)
    client.close()
    assert str(err.value) == (
        f"{server.url}{T}/teams did not finish answering for the teams within 0.5 s; stopped waiting"
    )
    assert time.monotonic() - started < 5  # not the 30 s per read, nor the whole trickle
    assert server.wait_cut_off(f"{T}/teams")


def test_one_trickling_ballot_list_is_a_problem_and_the_rest_imports(
    ctx: AppContext, server: TabbycatServer
) -> None:
    path = f"{T}/rounds/1/pairings/1/ballots"
    server.trickle[path] = 0.05
    limits = TabbycatLimits(request_seconds=0.5)
    result = import_tabbycat(ctx, server.url, SLUG, token="admin", limits=limits)
    assert _problems(result) == [
        f"{server.url}{path}: ballots of debate 1 (round 1) not imported: no complete answer within 0.5 s"
    ]
    assert result.created["ballot"] == 3 and result.created["team"] == 8


def test_the_import_deadline_stops_everything_and_names_the_request(
    ctx: AppContext, server: TabbycatServer
) -> None:
    path = f"{T}/rounds/2/pairings/4/ballots"
    server.trickle[path] = 0.05
    limits = TabbycatLimits(request_seconds=60, import_seconds=1)
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, SLUG, token="admin", limits=limits)
    assert str(err.value) == (
        f"the import from {server.url} took longer than 1 s (setting tabbycat.import_timeout_seconds) "
        f"and was stopped while reading the ballots of debate 4 from {server.url}{path}"
    )
    assert server.wait_cut_off(path)
    assert ctx.tournaments.list_all() == []  # nothing half-imported


def test_the_import_deadline_is_a_setting(ctx: AppContext, server: TabbycatServer) -> None:
    path = f"{T}/rounds/1/pairings/2/ballots"
    server.trickle[path] = 0.5
    ctx.settings.set_text("tabbycat.import_timeout_seconds", "1")
    with pytest.raises(TabbycatError, match="took longer than 1 s"):
        import_tabbycat(ctx, server.url, SLUG, token="admin")
    assert server.wait_cut_off(path)


def test_endless_pagination_stops_at_the_page_cap_and_says_so(
    ctx: AppContext, server: TabbycatServer
) -> None:
    server.endless.add(f"{T}/teams")
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, SLUG, token="admin", limits=TabbycatLimits(max_pages=40))
    assert str(err.value) == (
        f"{server.url}{T}/teams still offered another page of the teams after 40 pages; stopped "
        "there and imported none of it (no Tabbycat list has that many pages)"
    )
    assert server.count(f"{T}/teams") == 40


def test_endless_ballot_pages_are_one_problem(ctx: AppContext, server: TabbycatServer) -> None:
    path = f"{T}/rounds/1/pairings/1/ballots"
    server.endless.add(path)
    result = import_tabbycat(ctx, server.url, SLUG, token="admin", limits=TabbycatLimits(max_pages=25))
    assert _problems(result) == [
        f"{server.url}{path}: ballots of debate 1 (round 1) not imported: still paginating after 25 pages"
    ]
    assert server.count(path) == 25 and result.created["ballot"] == 3


# -- item 10: wrong nested types -------------------------------------------------------------
def test_wrong_nested_types_skip_only_the_bad_record(ctx: AppContext) -> None:
    generated = generate_tournament(teams=20, adjudicators=4, rounds=2, slug=SLUG)  # round 2: debates 6-10
    rounds = _body(generated, f"{T}/rounds")
    rounds[0]["motions"] = 5
    rounds.append({**rounds[1], "id": 3, "url": "x/rounds/3", "seq": "nan", "name": "Round NaN"})
    teams = _body(generated, f"{T}/teams")
    teams[0]["speakers"] = {"oops": True}
    teams.insert(1, 42)
    pairings = _body(generated, f"{T}/rounds/2/pairings")
    pairings[0]["teams"] = "og oo cg co"
    pairings[1]["adjudicators"] = [1, 2]
    huge_path = f"{T}/rounds/2/pairings/8/ballots"
    huge = json.dumps(_body(generated, huge_path)).replace('"version": 1', '"version": 1e400')
    deep_path = f"{T}/rounds/2/pairings/9/ballots"
    sheets_path = f"{T}/rounds/2/pairings/10/ballots"
    bad_sheets = _body(generated, sheets_path)
    bad_sheets[0]["result"]["sheets"] = 5

    with TabbycatServer(generated.dataset) as server:
        server.respond_with(f"{T}/rounds", 200, rounds)
        server.respond_with(f"{T}/teams", 200, teams)
        server.respond_with(f"{T}/rounds/2/pairings", 200, pairings)
        server.respond_raw(huge_path, huge.encode())
        server.respond_raw(deep_path, b"[" * 200_000 + b"]" * 200_000)
        server.respond_with(sheets_path, 200, bad_sheets)
        result = import_tabbycat(ctx, server.url, SLUG, token="admin")
        u = server.url

    assert sorted(_problems(result)) == sorted(
        [
            f"{u}{T}/rounds: skipped round 1 (Round 1): its 'motions' is the number 5, not a list",
            f"{u}{T}/rounds: skipped a round without a number (its seq is text) (Round NaN)",
            f"{u}{T}/teams: skipped team 1 (U1 1): its 'speakers' is an object, not a list",
            f"{u}{T}/teams: skipped team #2 of the list: it is the number 42, not an object",
            f"{u}{T}/rounds/2/pairings: skipped debate 6: its 'teams' is text, not a list",
            f"{u}{T}/rounds/2/pairings: skipped debate 7: its 'adjudicators' is list, not an object",
            f"{u}{deep_path}: ballots of debate 9 (round 2) not imported: JSON nested too deeply",
            f"{u}{sheets_path}: skipped ballot 10: its 'sheets' is the number 5, not a list",
        ]
    )
    t = ctx.tournaments.get(SLUG)
    assert [r.seq for r in ctx.tournaments.rounds(t.id)] == [2]
    assert result.created["team"] == 19 and result.created["person"] == 38 + 4
    assert result.created["debate"] == 3 and result.created["ballot"] == 1  # debate 8's (version 1e400)
    assert result.deactivated == []


def test_deep_json_in_a_people_list_names_the_url(ctx: AppContext, server: TabbycatServer) -> None:
    server.respond_raw(f"{T}/adjudicators", b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, SLUG, token="admin")
    assert str(err.value) == (
        f"{server.url}{T}/adjudicators answered with JSON nested too deeply to read for the adjudicators"
    )


def test_bad_names_do_not_deactivate_anyone_on_reimport(
    ctx: AppContext, server: TabbycatServer, generated: GeneratedTournament
) -> None:
    import_tabbycat(ctx, server.url, SLUG, token="admin")
    adjudicators = _body(generated, f"{T}/adjudicators")
    adjudicators[0]["name"] = "Ada\x1b[2J\r\nLovelace"
    adjudicators[1] = "not a person"
    server.respond_with(f"{T}/adjudicators", 200, adjudicators)
    result = import_tabbycat(ctx, server.url, SLUG, token="admin")
    assert result.deactivated == []  # the unreadable adjudicator is kept as it was
    names = {p.name for p in ctx.tournaments.people(ctx.tournaments.get(SLUG).id)}
    assert "Ada[2J Lovelace" in names
