"""CSV import: Tabbycat's demo files, draw.csv and ballots.csv, bad rows and fatal errors."""

from __future__ import annotations

import csv
import runpy
from pathlib import Path

import pytest

from tabmail.domain.imported import ImportResult
from tabmail.domain.tournament import Position, Role
from tabmail.importers.csv_import import CsvImportError, read_csv_folder
from tabmail.resources import resource
from tabmail.services import importing
from tabmail.services.context import AppContext
from tabmail.services.demo import load_demo_if_empty
from tests.conftest import REPO, data_path

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def small_folder(folder: Path) -> Path:
    """A two-team tournament with a draw and per-adjudicator ballots."""
    write(folder, "institutions.csv", "code,region,name\nAVO,,Avalon University\nBRI,,Brigadoon College\n")
    write(folder, "venues.csv", "name\nRoom 1\nRoom 2\n")
    write(folder, "rounds.csv", "name,abbreviation,stage\nRound 1,R1,preliminary\nFinal,GF,elimination\n")
    write(folder, "motions.csv", "rounds,reference,text\nR1,Cats,This House prefers cats\n")
    write(
        folder,
        "teams.csv",
        "institution,reference,use_institution_prefix,speaker1_name,speaker1_email,speaker2_name,speaker2_email\n"
        "AVO,A,TRUE,Ada Okafor,ada@example.org,Ben Ito,ben@example.org\n"
        "BRI,B,TRUE,Cara Diaz,cara@example.org,Dev Rao,dev@example.org\n",
    )
    write(
        folder,
        "adjudicators.csv",
        "name,email,institution\nEve Sato,eve@example.org,AVO\nFinn Berg,finn@example.org,BRI\n"
        "Gil Moss,gil@example.org,\n",
    )
    write(
        folder,
        "draw.csv",
        "round,venue,aff,neg,chair,panellists,trainees\nR1,Room 2,AVO A,BRI B,Eve Sato,Finn Berg,Gil Moss\n",
    )
    write(
        folder,
        "ballots.csv",
        "round,venue,team,points,win,speaker1,speaker1_score,speaker2,speaker2_score,adjudicator\n"
        "1,Room 2,AVO A,1,true,Ada Okafor,75.5,Ben Ito,74,Eve Sato\n"
        "1,Room 2,BRI B,0,false,Cara Diaz,73,Dev Rao,72,Eve Sato\n"
        "1,Room 2,AVO A,0,false,Ada Okafor,71,Ben Ito,70,Finn Berg\n"
        "1,Room 2,BRI B,1,true,Cara Diaz,76,Dev Rao,75,Finn Berg\n",
    )
    return folder


def import_folder(ctx: AppContext, folder: Path, name: str | None = None) -> ImportResult:
    return importing.import_csv(ctx, folder, name)


# -- Tabbycat's demo files ---------------------------------------------------------------


def test_bp88_demo_imports_everything_the_files_list(ctx: AppContext) -> None:
    folder = data_path("tabbycat-demo-csv", "bp88team")
    teams = rows(folder / "teams.csv")
    adjudicators = rows(folder / "adjudicators.csv")
    speakers = [r[f"speaker{i}_name"] for r in teams for i in (1, 2) if r[f"speaker{i}_name"].strip()]
    rounds = rows(folder / "rounds.csv")

    result = import_folder(ctx, folder)

    assert result.slug == "bp88team"
    assert result.problems == []
    assert result.created == {
        "tournament": 1,
        "institution": len(rows(folder / "institutions.csv")),
        "venue": len(rows(folder / "venues.csv")),
        "team": len(teams),
        "person": len(speakers) + len(adjudicators),
        "round": len(rounds),
    }
    people = ctx.tournaments.people(result.tournament_id)
    assert sum(p.role is Role.SPEAKER for p in people) == len(speakers)
    assert sum(p.role is Role.ADJUDICATOR for p in people) == len(adjudicators)
    assert all(p.email and p.email_valid for p in people)
    by_name = {p.name: p for p in people}
    awad = by_name["Bahiyy al Din Awad"]
    assert (awad.team_name, awad.institution_name) == ("Arnor AC", "University of Arnor")
    assert awad.email == "BahiyyalDinButrusAwad@fleckens.hu"
    assert "Jurek Dąbrowski" in by_name  # the file has a trailing space after the name
    stored_rounds = ctx.tournaments.rounds(result.tournament_id)
    assert [(r.name, r.abbreviation) for r in stored_rounds] == [
        (r["name"], r["abbreviation"]) for r in rounds
    ]
    assert stored_rounds[8].stage == "E"
    everyone = ctx.tournaments.rounds_by_tournament()  # every tournament's, in one query
    assert everyone[result.tournament_id] == stored_rounds
    assert {t.id: ctx.tournaments.rounds(t.id) for t in ctx.tournaments.list_all()} == everyone
    motions = {m["rounds"]: m["text"] for m in rows(folder / "motions.csv")}
    assert all(r.motions[0].text == motions[r.abbreviation] for r in stored_rounds)


def test_reimport_of_the_same_folder_changes_nothing(ctx: AppContext, tmp_path: Path) -> None:
    folder = small_folder(tmp_path / "small")
    first = import_folder(ctx, folder, "Small Open")
    ids = {p.name: p.id for p in ctx.tournaments.people(first.tournament_id)}

    second = import_folder(ctx, folder, "Small Open")

    assert first.created["debate"] == 1 and first.created["ballot"] == 1
    assert (second.tournament_id, second.created, second.updated) == (first.tournament_id, {}, {})
    assert second.deactivated == [] and second.address_changes == []
    assert {p.name: p.id for p in ctx.tournaments.people(first.tournament_id)} == ids
    assert [t.slug for t in ctx.tournaments.list_all()] == ["small-open"]


def test_names_are_keys_ignoring_case_and_spaces(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "names"
    write(folder, "adjudicators.csv", "name,email\nAda Okafor,ada@example.org\n")
    first = import_folder(ctx, folder)
    write(folder, "adjudicators.csv", "name,email\n  ada   OKAFOR ,ada@example.org\n")

    second = import_folder(ctx, folder)

    people = ctx.tournaments.people(first.tournament_id)
    assert [(p.name, p.active) for p in people] == [("ada OKAFOR", True)]
    assert second.created == {} and second.updated == {"person": 1}


def test_address_key_merges_case_variants(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "case"
    write(folder, "adjudicators.csv", "name,email\nFoo One,Foo@Example.org\nFoo Two,foo@example.org\n")

    result = import_folder(ctx, folder)

    people = ctx.tournaments.people(result.tournament_id)
    assert sorted(p.email or "" for p in people) == ["Foo@Example.org", "foo@example.org"]
    assert {p.email_key for p in people} == {"foo@example.org"}
    assert all(p.email_valid for p in people)


def test_semicolon_separated_speakers_csv_creates_its_teams(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    write(
        folder,
        "speakers.csv",
        "Name;Team;Email;Institution\nAda Okafor;Avalon 1;ada@example.org;Avalon\n"
        "Ben Ito;Avalon 1;ben@example.org;Avalon\n",
    )

    result = import_folder(ctx, folder, "Flat Cup")

    assert result.created == {"tournament": 1, "institution": 1, "team": 1, "person": 2}
    people = ctx.tournaments.people(result.tournament_id)
    assert [(p.name, p.team_name, p.institution_name) for p in people] == [
        ("Ada Okafor", "Avalon 1", "Avalon"),
        ("Ben Ito", "Avalon 1", "Avalon"),
    ]


def test_only_a_folder_listing_everyone_marks_people_as_gone(ctx: AppContext, tmp_path: Path) -> None:
    folder = small_folder(tmp_path / "full")
    first = import_folder(ctx, folder, "Gone Cup")
    partial = tmp_path / "partial"
    write(partial, "adjudicators.csv", "name,email\nEve Sato,eve@example.org\n")

    assert import_folder(ctx, partial, "Gone Cup").deactivated == []

    write(folder, "adjudicators.csv", "name,email\nEve Sato,eve@example.org\nFinn Berg,finn@example.org\n")
    write(
        folder, "draw.csv", "round,venue,aff,neg,chair,panellists\nR1,Room 2,AVO A,BRI B,Eve Sato,Finn Berg\n"
    )
    write(folder, "ballots.csv", "round,venue,team\n")
    again = import_folder(ctx, folder, "Gone Cup")

    assert again.deactivated == ["Gil Moss"]
    gil = next(p for p in ctx.tournaments.people(first.tournament_id) if p.name == "Gil Moss")
    assert not gil.active


# -- draw and ballots --------------------------------------------------------------------


def test_draw_csv_round_trips_through_the_store(ctx: AppContext, tmp_path: Path) -> None:
    folder = small_folder(tmp_path / "small")
    write(
        folder,
        "draw.csv",
        "round,venue,og,oo,cg,co,chair,panellists,trainees\n"
        "Round 1,Room 1,BRI B,AVO A,,,Finn Berg,Gil Moss;Eve Sato,\n",
    )
    write(folder, "ballots.csv", "round,venue,team\n")
    result = import_folder(ctx, folder)

    draw = ctx.tournaments.draw(result.tournament_id, 1)

    assert draw.round.draw_status == "C"
    [debate] = draw.debates
    assert draw.venues[debate.venue_id or 0].name == "Room 1"
    assert [(draw.teams[t.team_id].name, t.side) for t in debate.teams] == [("BRI B", "og"), ("AVO A", "oo")]
    assert [(draw.people[a.person_id].name, a.position) for a in debate.adjudicators] == [
        ("Finn Berg", Position.CHAIR),
        ("Gil Moss", Position.PANELLIST),
        ("Eve Sato", Position.PANELLIST),
    ]
    assert ctx.tournaments.draw(result.tournament_id, 2).debates == ()


def test_ballots_csv_makes_one_sheet_per_adjudicator(ctx: AppContext, tmp_path: Path) -> None:
    result = import_folder(ctx, small_folder(tmp_path / "small"))

    draw = ctx.tournaments.draw(result.tournament_id, 1)

    [debate] = draw.debates
    ballot = draw.ballots[debate.id]
    assert ballot.confirmed and ballot.motion_text == "This House prefers cats"
    assert [draw.people[s.adjudicator_id or 0].name for s in ballot.sheets] == ["Eve Sato", "Finn Berg"]
    eve = ballot.sheets[0]
    assert [(draw.teams[t.team_id or 0].name, t.side, t.points, t.win, t.score) for t in eve.teams] == [
        ("AVO A", "aff", 1, True, 149.5),
        ("BRI B", "neg", 0, False, 145.0),
    ]
    assert [(draw.people[s.speaker_id or 0].name, s.score) for s in eve.teams[0].speeches] == [
        ("Ada Okafor", 75.5),
        ("Ben Ito", 74.0),
    ]


# -- bad rows ----------------------------------------------------------------------------


def test_bad_rows_are_listed_by_line_and_the_rest_imports(ctx: AppContext, tmp_path: Path) -> None:
    folder = small_folder(tmp_path / "bad")
    write(
        folder,
        "teams.csv",
        "institution,reference,use_institution_prefix,speaker1_name,speaker1_email,speaker2_name,speaker2_email\n"
        "AVO,A,TRUE,Ada Okafor,ada@example.org,Ben Ito,ben@example.org\n"
        "\n"
        "BRI,B,TRUE,Cara Diaz,cara@example.org,Dev Rao,dev@example\n"
        "XYZ,C,TRUE,Hal Ward,hal@example.org,Ivy Lim,ivy@example.org\n"
        "AVO,,TRUE,Jo Park,jo@example.org,,\n",
    )
    write(
        folder, "adjudicators.csv", "name,email\nEve Sato,eve@example.org\n,nobody@example.org\nFinn Berg,\n"
    )
    write(
        folder,
        "draw.csv",
        "round,venue,aff,neg,chair\n"
        "1,Room 1,AVO A,BRI B,Eve Sato\n"
        "1,Room 2,XYZ C,AVO A,Finn Berg\n"
        "1,Room 2,BRI B,AVO A,\n"
        "R9,Room 2,AVO A,BRI B,\n"
        "GF,Room 2,AVO A,BRI B,Zed Unknown\n"
        "GF,Room 3,AVO A,BRI B,\n",
    )
    write(folder, "ballots.csv", "round,venue,team,points\n1,Room 1,AVO A,1\n1,Room 1,BRI B,many\n")

    result = import_folder(ctx, folder)

    problems = {p.where: p.message for p in result.problems}
    assert sorted(problems) == [
        "adjudicators.csv:3",
        "ballots.csv:3",
        "draw.csv:3",
        "draw.csv:4",
        "draw.csv:5",
        "draw.csv:6",
        "draw.csv:7",
        "teams.csv:4",
        "teams.csv:5",
        "teams.csv:6",
    ]
    assert "not a valid address" in problems["teams.csv:4"] and "imported as given" in problems["teams.csv:4"]
    assert "unknown institution 'XYZ'" in problems["teams.csv:5"] and "skipped" in problems["teams.csv:5"]
    assert "no team name" in problems["teams.csv:6"]
    assert "no name" in problems["adjudicators.csv:3"]
    assert "unknown team 'XYZ C'" in problems["draw.csv:3"]
    assert "already in round 1" in problems["draw.csv:4"]
    assert "unknown round 'R9'" in problems["draw.csv:5"]
    assert "unknown adjudicator 'Zed Unknown'" in problems["draw.csv:6"]
    assert "unknown venue 'Room 3'" in problems["draw.csv:7"]
    assert "'many' is not a number" in problems["ballots.csv:3"]
    assert not any(p.fatal for p in result.problems)

    people = {p.name: p for p in ctx.tournaments.people(result.tournament_id)}
    assert sorted(people) == ["Ada Okafor", "Ben Ito", "Cara Diaz", "Dev Rao", "Eve Sato", "Finn Berg"]
    assert (people["Dev Rao"].email, people["Dev Rao"].email_valid) == ("dev@example", False)
    assert (people["Finn Berg"].email, people["Finn Berg"].email_valid) == (None, False)
    draw = ctx.tournaments.draw(result.tournament_id, 1)
    assert len(draw.debates) == 1
    assert len(draw.ballots[draw.debates[0].id].sheets[0].teams) == 1


def test_invalid_address_is_stored_as_given_and_marked_invalid(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "invalid"
    write(folder, "adjudicators.csv", "name,email\nEve Sato,eve sato@example .org\n")

    result = import_folder(ctx, folder)

    [eve] = ctx.tournaments.people(result.tournament_id)
    assert (eve.email, eve.email_valid, eve.sendable) == ("eve sato@example .org", False, False)
    [problem] = result.problems
    assert problem.where == "adjudicators.csv:2" and not problem.fatal


# -- encodings and fatal errors ----------------------------------------------------------


def test_a_byte_order_mark_is_accepted(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "bom"
    write(folder, "adjudicators.csv", "\ufeffname,email,institution\nÉva Kovács,eva@example.org,Łódź Uni\n")

    result = import_folder(ctx, folder)

    [eva] = ctx.tournaments.people(result.tournament_id)
    assert (eva.name, eva.email, eva.institution_name) == ("Éva Kovács", "eva@example.org", "Łódź Uni")


def test_latin1_file_is_fatal_and_imports_nothing(ctx: AppContext, tmp_path: Path) -> None:
    import_folder(ctx, small_folder(tmp_path / "small"))
    before = ctx.tournaments.list_all()
    folder = tmp_path / "latin"
    write(folder, "venues.csv", "name\nRoom 1\n")
    write(
        folder,
        "adjudicators.csv",
        "name,email\nAda Okafor,ada@example.org\nJosé Núñez,jose@example.org\n",
        "latin-1",
    )

    with pytest.raises(CsvImportError) as caught:
        import_folder(ctx, folder)

    message = str(caught.value)
    assert "adjudicators.csv is not UTF-8" in message
    assert "byte 0xe9 at byte offset 41, line 3" in message
    assert "save it as UTF-8" in message
    assert [p.where for p in caught.value.problems] == ["adjudicators.csv"]
    assert ctx.tournaments.list_all() == before


def test_missing_required_column_is_fatal_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "cols"
    write(folder, "adjudicators.csv", "full name,email\nAda Okafor,ada@example.org\n")
    write(folder, "draw.csv", "round,venue,chair\n1,Room 1,Ada Okafor\n")

    with pytest.raises(CsvImportError) as caught:
        read_csv_folder(folder)

    assert "adjudicators.csv has no 'name' column" in str(caught.value)
    assert "full_name, email" in str(caught.value)
    assert "(and 1 more problems)" in str(caught.value)
    assert [p.where for p in caught.value.problems] == ["adjudicators.csv", "draw.csv"]
    assert "draw.csv has no team side column (og, oo, cg, co, ...)" in caught.value.problems[1].message


def test_missing_folder_and_folder_without_known_files_are_fatal(tmp_path: Path) -> None:
    with pytest.raises(CsvImportError, match="there is no folder"):
        read_csv_folder(tmp_path / "nowhere")
    write(tmp_path / "other", "scores.csv", "adjudicator,score\nAda,5\n")
    write(tmp_path / "other", "notes.txt", "hello\n")
    with pytest.raises(CsvImportError, match="none of the CSV files tabmail reads"):
        read_csv_folder(tmp_path / "other")


# -- the bundled demo --------------------------------------------------------------------


def test_demo_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    make_demo = runpy.run_path(str(REPO / "tools" / "make_demo.py"), run_name="make_demo")
    assert make_demo["main"]([str(tmp_path / "demo")]) == 0
    generated = sorted(p.name for p in (tmp_path / "demo").iterdir())
    committed = sorted(p.name for p in resource("demo").iterdir())
    assert generated == committed
    for name in generated:
        assert (tmp_path / "demo" / name).read_bytes() == resource("demo", name).read_bytes(), name


def test_demo_loads_into_an_empty_database_once(ctx: AppContext) -> None:
    result = load_demo_if_empty(ctx)

    assert result is not None and result.slug == "demo-open"
    [tournament] = ctx.tournaments.list_all()
    assert (tournament.name, tournament.source) == ("Demo Open", "demo")
    people = ctx.tournaments.people(tournament.id)
    assert sum(p.role is Role.SPEAKER for p in people) == 32
    assert sum(p.role is Role.ADJUDICATOR for p in people) == 12
    assert all(p.email is None or p.email.endswith("@example.org") for p in people)
    assert sum(p.email is None for p in people) == 1
    assert sum(p.email is not None and not p.email_valid for p in people) == 1
    assert [p.where for p in result.problems] == ["teams.csv:4"]
    for seq in (1, 2, 3):
        draw = ctx.tournaments.draw(tournament.id, seq)
        assert len(draw.debates) == 4
        assert all(
            [a.position for a in d.adjudicators] == [Position.CHAIR, Position.PANELLIST, Position.TRAINEE]
            and sorted(t.side for t in d.teams) == ["cg", "co", "og", "oo"]
            for d in draw.debates
        )
        assert len(draw.ballots) == (4 if seq < 3 else 0)
    assert len(draw.teams) == 16 and len(draw.institutions) == 4 and len(draw.venues) == 4

    assert load_demo_if_empty(ctx) is None
    assert ctx.tournaments.list_all() == [tournament]
