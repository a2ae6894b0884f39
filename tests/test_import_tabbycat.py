"""Importing from Tabbycat's REST API, against a loopback server replaying real recordings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tabmail.domain.tournament import Person, Position, Role
from tabmail.importers.tabbycat import TabbycatClient, TabbycatError
from tabmail.services.context import AppContext
from tabmail.services.importing import import_tabbycat
from tabmail.store.models import BallotRow, DebateRow, PersonRow
from tests.conftest import REPO, data_path
from tests.servers.tabbycat import Dataset, TabbycatServer

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

T = "/api/v1/tournaments/bp88"


@pytest.fixture(scope="session")
def recordings() -> Dataset:
    return Dataset.from_recordings(data_path("tabbycat-api"))


@pytest.fixture
def server(recordings: Dataset) -> Iterator[TabbycatServer]:
    with TabbycatServer(recordings) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABMAIL_TABBYCAT_TOKEN", raising=False)


def _people(ctx: AppContext, tid: int) -> dict[str, Person]:
    return {p.external_id or "": p for p in ctx.tournaments.people(tid)}


def _count(ctx: AppContext, model: Any) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _recorded(name: str) -> Any:
    return json.loads(data_path("tabbycat-api", "bp88", name).read_text())["body"]


def test_bp88_imports_the_recorded_tournament(ctx: AppContext, server: TabbycatServer) -> None:
    stages: list[tuple[str, int, int]] = []
    result = import_tabbycat(ctx, server.url, "bp88", token="admin", progress=lambda *a: stages.append(a))

    assert result.problems == []
    assert result.created["team"] == 88 and result.created["ballot"] == 92
    t = ctx.tournaments.get("bp88")
    assert (t.name, t.short_name, t.source, t.source_url) == ("BP 88", "BP88", "tabbycat", server.url)
    people = ctx.tournaments.people(t.id)
    assert Counter(p.role for p in people) == {Role.SPEAKER: 176, Role.ADJUDICATOR: 80}
    aron = _people(ctx, t.id)["111"]
    assert (aron.name, aron.email, aron.url_key, aron.team_name) == (
        "Aron Dang",
        "AronDang@einrot.com",
        "u30u0k4a",
        "Dorwinion Agricultural College DG",
    )
    assert aron.email_valid and aron.institution_name == "Dorwinion Agricultural College"

    rounds = ctx.tournaments.rounds(t.id)
    assert [r.seq for r in rounds] == list(range(1, 15))
    assert [r.draw_status for r in rounds[:6]] == ["R", "R", "R", "R", "R", "N"]
    assert rounds[0].motions[0].text.startswith("This House would require all world maps")
    assert rounds[8].name == "Open Quarterfinal" and rounds[8].stage == "E"
    # Not released yet: kept with its state; sending it needs the director's confirmation.
    assert rounds[6].motions[0].text.startswith("This House would make Esperanto")
    assert rounds[6].motions_released is False and rounds[0].motions_released is True
    # Issue 12 item 5: what the new notification kinds need, read from the recordings.
    assert rounds[3].available_team_ids is None  # the recorded site marks nobody available
    teams = ctx.tournaments.teams(t.id)
    dg = next(tm for tm in teams.values() if tm.short_name == "Dorwinion DG")
    assert (dg.emoji, dg.code_name, dg.break_categories) == ("\U0001f913", "Nerd", ("Open", "Novice"))
    laila = _people(ctx, t.id)["1"]
    assert (laila.adj_core, laila.independent) == (True, False)
    assert laila.conflicts and all(not c.startswith(("team ", "institution ")) for c in laila.conflicts)
    assert t.public_team_standings is False
    standings = ctx.tournaments.team_standings(t.id)
    assert standings is not None and len(standings) == 88
    assert max(m["points"] for m in standings.values()) == 12

    positions: Counter[Position] = Counter()
    for seq in range(1, 6):
        draw = ctx.tournaments.draw(t.id, seq)
        assert len(draw.debates) == 22
        for d in draw.debates:
            assert sorted(dt.side for dt in d.teams) == ["cg", "co", "og", "oo"]
            assert d.venue_id in draw.venues
            positions.update(a.position for a in d.adjudicators)
    assert positions == {Position.CHAIR: 110, Position.PANELLIST: 250, Position.TRAINEE: 40}
    assert ctx.tournaments.draw(t.id, 6).debates == ()

    # Round 1, debate 10: the recorded consensus ballot, scores and speakers included.
    draw1 = ctx.tournaments.draw(t.id, 1)
    debate = next(d for d in draw1.debates if d.external_id == "10")
    ballot = draw1.ballots[debate.id]
    assert ballot.confirmed and not ballot.discarded and ballot.motion_text == rounds[0].motions[0].text
    (sheet,) = ballot.sheets
    og = next(st for st in sheet.teams if st.side == "og")
    assert (draw1.teams[og.team_id or 0].name, og.points, og.score) == ("University of Hobbiton SZ", 0, 110.0)
    assert [(draw1.people[sp.speaker_id or 0].external_id, sp.score) for sp in og.speeches] == [
        ("145", 60.0),
        ("146", 50.0),
    ]
    assert sum(len(ctx.tournaments.draw(t.id, s).ballots) for s in range(1, 5)) == 88
    assert len(ctx.tournaments.draw(t.id, 5).ballots) == 3  # drafts, imported with their flags

    # One request per thing needed: no ballot request for debates never given a result.
    ballot_requests = [p for p in server.paths() if p.endswith("/ballots")]
    assert len(ballot_requests) == 88 + 3
    assert {r.caller for r in server.requests} == {"admin"}
    assert {r.accept for r in server.requests} == {"application/json"}
    assert stages[-1] == ("ballots", 91, 91) and ("draws", 5, 5) in stages


def test_reimport_updates_in_place(ctx: AppContext, server: TabbycatServer) -> None:
    first = import_tabbycat(ctx, server.url, "bp88", token="admin")
    counts = [_count(ctx, m) for m in (PersonRow, DebateRow, BallotRow)]
    second = import_tabbycat(ctx, server.url, "bp88", token="admin")

    assert second.tournament_id == first.tournament_id
    assert (second.created, second.updated, second.address_changes, second.deactivated) == ({}, {}, [], [])
    assert [_count(ctx, m) for m in (PersonRow, DebateRow, BallotRow)] == counts == [256, 110, 92]
    # R2's discarded ballot does not hide the confirmed one.
    r2 = ctx.tournaments.draw(first.tournament_id, 2)
    assert len(r2.ballots) == 22 and all(b.confirmed and not b.discarded for b in r2.ballots.values())


def test_changed_address_is_recorded_and_reported(ctx: AppContext, server: TabbycatServer) -> None:
    tid = import_tabbycat(ctx, server.url, "bp88", token="admin").tournament_id
    server.set_email(111, "aron.dang@example.org")
    result = import_tabbycat(ctx, server.url, "bp88", token="admin")

    assert result.address_changes == [("Aron Dang", "AronDang@einrot.com", "aron.dang@example.org")]
    aron = _people(ctx, tid)["111"]
    assert aron.email == "aron.dang@example.org"
    history = ctx.tournaments.address_history(aron.id)
    assert [(old, new, src) for _when, old, new, src, *_who in history][-1] == (
        "AronDang@einrot.com",
        "aron.dang@example.org",
        "import",
    )


def test_person_no_longer_listed_is_kept_inactive(ctx: AppContext, server: TabbycatServer) -> None:
    tid = import_tabbycat(ctx, server.url, "bp88", token="admin").tournament_id
    server.drop_person(1)  # adjudicator Laila Filemonsen
    server.drop_person(111)  # speaker Aron Dang
    result = import_tabbycat(ctx, server.url, "bp88", token="admin")

    assert sorted(result.deactivated) == ["Aron Dang", "Laila Filemonsen"]
    people = _people(ctx, tid)
    assert len(people) == 256
    assert not people["1"].active and not people["111"].active and people["112"].active
    assert people["1"].email == "LailaFilemonsen@dayrep.com"  # kept with everything we knew
    active = {p.external_id for p in ctx.tournaments.people(tid, include_inactive=False)}
    assert "1" not in active and "111" not in active and len(active) == 254


def test_non_admin_token_keeps_what_it_cannot_see(ctx: AppContext, server: TabbycatServer) -> None:
    tid = import_tabbycat(ctx, server.url, "bp88", token="admin").tournament_id

    viewer = import_tabbycat(ctx, server.url, "bp88", token="nonadmin")
    assert {r.caller for r in server.requests[-5:]} == {"nonadmin"}
    assert viewer.address_changes == [] and viewer.deactivated == []
    aron = _people(ctx, tid)["111"]
    assert (aron.email, aron.url_key) == ("AronDang@einrot.com", "u30u0k4a")  # null url_key: unknown

    public = import_tabbycat(ctx, server.url, "bp88", token=None)  # email absent for the public
    assert {r.caller for r in server.requests[-5:]} == {"public"}
    assert public.address_changes == [] and public.deactivated == []
    people = _people(ctx, tid)
    assert all(p.email for p in people.values())
    assert people["111"].email == "AronDang@einrot.com" and people["111"].url_key == "u30u0k4a"
    assert len(ctx.tournaments.draw(tid, 1).debates) == 22


def test_non_admin_token_into_an_empty_database(ctx: AppContext, server: TabbycatServer) -> None:
    result = import_tabbycat(ctx, server.url, "bp88", token="nonadmin")
    people = _people(ctx, result.tournament_id)
    assert len(people) == 256
    assert people["111"].email == "AronDang@einrot.com"  # shown to this user by the site
    assert all(p.url_key is None for p in people.values())
    assert len(ctx.tournaments.draw(result.tournament_id, 3).debates) == 22


def test_non_admin_token_refused_by_the_site_says_so(ctx: AppContext, recordings: Dataset) -> None:
    with TabbycatServer(recordings, prefs="default") as srv, pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, srv.url, "bp88", token="nonadmin")
    message = str(err.value)
    assert err.value.status == 403
    assert "does not let this token read the" in message and "admin (superuser)" in message
    assert "You do not have permission to perform this action." in message
    assert ctx.tournaments.list_all() == []


def test_bad_token_is_refused_without_showing_it(ctx: AppContext, server: TabbycatServer) -> None:
    token = "s3cret-T0KEN-value"
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, "bp88", token=token)
    message = str(err.value)
    assert err.value.status == 401
    assert f"{server.url} refused the Tabbycat token" in message and "Invalid token." in message
    assert "tabmail secret set tabbycat-token" in message and "TABMAIL_TABBYCAT_TOKEN" in message
    assert token not in message and token not in repr(err.value.args)
    assert server.count() == 1  # stopped at /api


def test_unknown_tournament_lists_the_sites_tournaments(ctx: AppContext, server: TabbycatServer) -> None:
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, "bp99", token="admin")
    assert str(err.value) == f"no tournament 'bp99' at {server.url}; the site has: bp88, australs24"


def test_unreachable_site(ctx: AppContext) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, f"http://127.0.0.1:{port}", "bp88", token="admin")
    assert str(err.value) == f"cannot reach http://127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("<html>Welcome to nginx</html>", "text/html", "did not answer with JSON (text/html) for the teams"),
        ({"results": []}, "application/json", "unexpected shape for the teams: a JSON dict where a list"),
        ([1, 2], "application/json", "unexpected shape for the teams: item 0 is a int"),
    ],
)
def test_answers_that_are_not_tabbycat_name_the_url(
    ctx: AppContext, server: TabbycatServer, body: Any, content_type: str, expected: str
) -> None:
    server.respond_with(f"{T}/teams", 200, body, content_type)
    with pytest.raises(TabbycatError) as err:
        import_tabbycat(ctx, server.url, "bp88", token="admin")
    assert str(err.value).startswith(f"{server.url}{T}/teams ")
    assert expected in str(err.value)


def test_failing_ballots_of_one_debate_become_a_problem(ctx: AppContext, server: TabbycatServer) -> None:
    url = f"{T}/rounds/2/pairings/30/ballots"
    server.fail(url)
    result = import_tabbycat(ctx, server.url, "bp88", token="admin")

    (problem,) = result.problems
    assert problem.where == server.url + url
    assert problem.message == "ballots of debate 30 (round 2) not imported: HTTP 500"
    assert result.created["ballot"] == 91 and result.created["debate"] == 110
    draw = ctx.tournaments.draw(result.tournament_id, 2)
    assert len(draw.ballots) == 21 and any(d.external_id == "30" for d in draw.debates)


def test_failing_draw_of_one_round_keeps_the_stored_draw(ctx: AppContext, server: TabbycatServer) -> None:
    tid = import_tabbycat(ctx, server.url, "bp88", token="admin").tournament_id
    server.fail(f"{T}/rounds/3/pairings", 502)
    result = import_tabbycat(ctx, server.url, "bp88", token="admin")
    assert [str(p) for p in result.problems] == [
        f"{server.url}{T}/rounds/3/pairings: draw of Round 3 not imported: HTTP 502"
    ]
    assert len(ctx.tournaments.draw(tid, 3).debates) == 22  # not wiped by the failed fetch


def test_recorded_link_headers_match_the_servers_pagination(server: TabbycatServer) -> None:
    import requests

    for name, path, query in [
        ("api_v1_tournaments_bp88_teams__limit5_offset5.json", f"{T}/teams", "limit=5&offset=5"),
        ("api_v1_tournaments_bp88_speakers__limit10.json", f"{T}/speakers", "limit=10"),
        (
            "api_v1_tournaments_bp88_rounds_1_pairings__limit5_offset5.json",
            f"{T}/rounds/1/pairings",
            "limit=5&offset=5",
        ),
    ]:
        recorded = json.loads(data_path("tabbycat-api", "bp88", name).read_text())
        resp = requests.get(
            f"{server.url}{path}?{query}", headers={"Authorization": "Token admin"}, timeout=10
        )
        assert resp.headers["Link"] == recorded["headers"]["Link"].replace("http://tabbycat.test", server.url)
        # Tabbycat leaves speakers unordered, so only the size of that page is comparable.
        assert len(resp.json()) == len(recorded["body"])
        if "speakers" not in path:
            assert [x["id"] for x in resp.json()] == [x["id"] for x in recorded["body"]]


def test_paginated_lists_are_followed(ctx: AppContext, server: TabbycatServer) -> None:
    server.page_size = 7
    result = import_tabbycat(ctx, server.url, "bp88", token="admin")
    assert (
        result.created["team"] == 88 and result.created["person"] == 256 and result.created["debate"] == 110
    )
    offsets = {dict(r.query).get("offset") for r in server.requests if r.path == f"{T}/teams"}
    assert offsets == {None, *(str(o) for o in range(7, 88, 7))}

    client = TabbycatClient(server.url, "admin")
    try:
        server.page_size = None
        direct = client._http.get_list(f"{server.url}{T}/speakers?limit=10", "the speakers")
    finally:
        client.close()
    assert [s["id"] for s in direct] == [s["id"] for s in _recorded("api_v1_tournaments_bp88_speakers.json")]


def test_tabbycat_2_11_shapes(ctx: AppContext, server: TabbycatServer) -> None:
    """A teams-only draw (no ``adjudicators``), numbered sides, and ``motions_status``."""
    pairings = _recorded("api_v1_tournaments_bp88_rounds_1_pairings.json")
    for p in pairings:
        del p["adjudicators"]
        for i, t in enumerate(p["teams"]):
            t["side"] = i
    server.respond_with(f"{T}/rounds/1/pairings", 200, pairings)
    rounds = _recorded("api_v1_tournaments_bp88_rounds.json")
    for r in rounds:
        r["motions_status"] = "R" if r.pop("motions_released") else "I"
    server.respond_with(f"{T}/rounds", 200, rounds)

    result = import_tabbycat(ctx, server.url, "bp88", token="admin")
    assert result.problems == []
    draw = ctx.tournaments.draw(result.tournament_id, 1)
    assert len(draw.debates) == 22
    assert all(d.adjudicators == () for d in draw.debates)
    assert all([t.side for t in d.teams] == ["0", "1", "2", "3"] for d in draw.debates)
    assert len(ctx.tournaments.draw(result.tournament_id, 2).debates[0].adjudicators) >= 1
    stored = ctx.tournaments.rounds(result.tournament_id)
    assert len(stored[4].motions) == 1 and stored[4].motions_released is True
    assert stored[5].motions_released is False  # motions_status "I": info slides only


def test_client_parses_relations_and_never_leaves_the_given_origin(server: TabbycatServer) -> None:
    # A proxy that builds links with an internal host: the token must not go there.
    server.page_size = 30
    server.link_origin = "http://backend.invalid:8000"
    client = TabbycatClient(server.url + "/api/v1/", "admin")
    try:
        bundle = client.fetch_tournament("bp88")
    finally:
        client.close()
    assert client.base_url == server.url and client.version == "2.10.0-dev"
    assert len(bundle.people) == 256 and bundle.complete_rounds == {1, 2, 3, 4, 5}
    speaker = next(p for p in bundle.people if p.key == "111")
    assert (speaker.team_key, speaker.institution_key, speaker.email_known) == ("16", "6", True)


@pytest.mark.parametrize(
    ("typed", "base"),
    [
        ("https://bp88.example.org/", "https://bp88.example.org"),
        ("bp88.example.org", "https://bp88.example.org"),
        ("http://127.0.0.1:8000/api/v1", "http://127.0.0.1:8000"),
        ("https://example.org/tab/api/", "https://example.org/tab"),
    ],
)
def test_the_typed_address_is_normalised(typed: str, base: str) -> None:
    assert TabbycatClient(typed, None).base_url == base


def test_a_mangled_token_is_refused_before_any_request() -> None:
    client = TabbycatClient("http://127.0.0.1:1", " admin\n")
    assert client._http.session().headers["Authorization"] == "Token admin"  # trailing newline trimmed
    client.close()
    with pytest.raises(TabbycatError) as err:
        TabbycatClient("http://127.0.0.1:1", "ab cd\u2019ef")
    assert "ab cd" not in str(err.value) and "tabmail secret set tabbycat-token" in str(err.value)


# -- the command line ---------------------------------------------------------------------------
def _cli(tmp_path: Path, *args: str, token: str = "admin") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TABMAIL_", "DBUS_"))}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",  # no real keyring: the env var is used
        TABMAIL_TABBYCAT_TOKEN=token,
        QT_QPA_PLATFORM="offscreen",
    )
    return subprocess.run(
        [sys.executable, "-m", "tabmail", "--db", str(tmp_path / "x.sqlite3"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_imports_and_shows_the_tournament(tmp_path: Path, server: TabbycatServer) -> None:
    done = _cli(tmp_path, "import", "tabbycat", "--url", server.url, "--tournament", "bp88")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported bp88: created ")
    assert "88 team" in done.stdout and "Traceback" not in done.stderr

    tournaments = json.loads(_cli(tmp_path, "tournaments", "--json").stdout)
    assert [(t["slug"], t["rounds"], t["people"], t["source"]) for t in tournaments] == [
        ("bp88", 14, 256, "tabbycat")
    ]
    people = json.loads(_cli(tmp_path, "people", "--tournament", "bp88", "--json").stdout)
    aron = next(p for p in people if p["name"] == "Aron Dang")
    assert (aron["email"], aron["role"], aron["team"]) == (
        "AronDang@einrot.com",
        "speaker",
        "Dorwinion Agricultural College DG",
    )
    draw = json.loads(_cli(tmp_path, "draw", "--tournament", "bp88", "--round", "1", "--json").stdout)
    assert (draw["round"], draw["name"], len(draw["debates"])) == (1, "Round 1", 22)
    recorded = {p["venue"]: p for p in _recorded("api_v1_tournaments_bp88_rounds_1_pairings.json")}
    assert sum(len(d["panel"]) for d in draw["debates"]) == sum(
        1 + len(p["adjudicators"]["panellists"]) + len(p["adjudicators"]["trainees"])
        for p in recorded.values()
    )
    for d in draw["debates"]:
        assert d["venue"]
        assert sorted(t["side"] for t in d["teams"]) == ["cg", "co", "og", "oo"]
        assert [x["position"] for x in d["panel"]].count("chair") == 1
        assert {x["position"] for x in d["panel"]} <= {"chair", "panellist", "trainee"}


def test_cli_bad_token_is_one_line_without_traceback(tmp_path: Path, server: TabbycatServer) -> None:
    token = "wrong-token-4242"
    done = _cli(tmp_path, "import", "tabbycat", "--url", server.url, "--tournament", "bp88", token=token)
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tabmail: error: ") and "refused the Tabbycat token" in lines[0]
    assert token not in done.stderr + done.stdout and "Traceback" not in done.stderr
