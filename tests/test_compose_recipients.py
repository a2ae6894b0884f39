"""Recipients, reasons and template variables computed from a hand-built BP round."""

from __future__ import annotations

import json
from dataclasses import replace

from tabmail.compose.recipients import (
    Recipient,
    ballot_recipients,
    custom_recipients,
    draw_recipients,
)
from tabmail.domain.notification import Audience
from tabmail.domain.tournament import (
    Ballot,
    BallotSheet,
    Debate,
    DebateAdjudicator,
    DebateTeam,
    Draw,
    Institution,
    Person,
    Position,
    Role,
    Round,
    SheetTeam,
    Speech,
    Team,
    Tournament,
    Venue,
)

SCRIPT = "<script>alert(1)</script>"


def person(pid: int, name: str, role: Role, email: str | None, *, valid: bool = True, **kw: object) -> Person:
    key = email.strip().lower() if email else None
    return Person(
        id=pid,
        tournament_id=1,
        name=name,
        role=role,
        email=email,
        email_valid=valid and email is not None,
        email_key=key,
        **kw,  # type: ignore[arg-type]
    )


def make_draw() -> Draw:
    """Round 2 of a BP tournament, two debates.

    Debate 10 (Room 3): Alice chair (private URL), Bob panellist, Carol trainee.
    Debate 11 (Room 4): Dan solo chair (no address); Carol also listed as trainee (a data error).
    Speakers: Erin has an invalid address; Frank and Grace share one; Bob also speaks (same
    address as his adjudicator record, different case); team 2 is named like an XSS attempt.
    Ballots: debate 10 per-adjudicator sheets (Alice, Bob); debate 11 a consensus sheet.
    """
    tournament = Tournament(1, "bp88", "BP 88", "BP88", "tabbycat", source_url="https://tab.example.org/")
    rnd = Round(2, 1, 2, "Round 2", "R2")
    teams = {
        1: Team(1, 1, "Harvard University A", "Harvard A", "Falcon", 1),
        2: Team(2, 1, SCRIPT, SCRIPT, "Wolf", None),
        3: Team(3, 1, "Oxford B", "", "Owl", None),
        4: Team(4, 1, "Yale C", "Yale C", "Bear", None),
        5: Team(5, 1, "Sydney A", "Sydney A", "Koala", None),
        6: Team(6, 1, "Monash B", "Monash B", "Emu", None),
        7: Team(7, 1, "LSE A", "LSE A", "Fox", None),
        8: Team(8, 1, "Cambridge C", "Cambridge C", "Hare", None),
    }
    adj = Role.ADJUDICATOR
    spk = Role.SPEAKER
    people = [
        person(101, "Alice Smith", adj, "alice@example.com", url_key="alicekey"),
        person(102, "Bob Jones", adj, "bob@example.com"),
        person(103, "Carol White", adj, "carol@example.com"),
        person(104, "Dan Brown", adj, None),
        person(201, "Hank Hill", spk, "hank@example.com", team_id=1, institution_id=1),
        person(202, "Ivy Ng", spk, "ivy@example.com", team_id=1),
        person(203, "Erin Bad", spk, "erin@@bad", valid=False, team_id=2),
        person(204, "Frank Lee", spk, "family@example.com", team_id=3),
        person(205, "Bob Jones", spk, "Bob@Example.com", team_id=4),
        person(206, "Grace Lee", spk, "Family@example.com", team_id=5),
        person(207, "Old Speaker", spk, "old@example.com", team_id=1, active=False),
        person(208, "Jo Park", spk, "jo@example.com", team_id=6),
    ]
    debates = (
        Debate(
            10,
            2,
            3,
            teams=(DebateTeam(1, "og"), DebateTeam(2, "oo"), DebateTeam(3, "cg"), DebateTeam(4, "co")),
            adjudicators=(
                DebateAdjudicator(103, Position.TRAINEE),
                DebateAdjudicator(102, Position.PANELLIST),
                DebateAdjudicator(101, Position.CHAIR),
            ),
        ),
        Debate(
            11,
            2,
            4,
            teams=(DebateTeam(5, "og"), DebateTeam(6, "oo"), DebateTeam(7, "cg"), DebateTeam(8, "co")),
            adjudicators=(DebateAdjudicator(104, Position.CHAIR), DebateAdjudicator(103, Position.TRAINEE)),
        ),
    )

    def sheet(adjudicator: int | None, base: float) -> BallotSheet:
        return BallotSheet(
            adjudicator,
            (
                SheetTeam(1, "og", 3, None, None, (Speech(201, base), Speech(202, base + 0.5))),
                SheetTeam(2, "oo", 2, None, None, (Speech(203, 74.0), Speech(203, 73.0, ghost=True))),
                SheetTeam(3, "cg", 1, None, 145.0, (Speech(204, 72.0), Speech(None, 73.0))),
                SheetTeam(4, "co", 0, None, None, (Speech(205, 70.0), Speech(205, 71.0))),
            ),
        )

    ballots = {
        10: Ballot(
            1, 10, True, False, 1, "This house would test", sheets=(sheet(101, 76.0), sheet(102, 78.0))
        ),
        11: Ballot(2, 11, True, False, 1, sheets=(sheet(None, 75.0),)),
    }
    return Draw(
        tournament=tournament,
        round=rnd,
        debates=debates,
        teams=teams,
        people={p.id: p for p in people},
        venues={3: Venue(3, "Room 3"), 4: Venue(4, "Room 4")},
        institutions={1: Institution(1, "Harvard University", "HAR")},
        ballots=ballots,
    )


def by_address(recipients: list[Recipient]) -> dict[str, Recipient]:
    return {r.address_key or f"person:{r.person_id}": r for r in recipients}


def test_adjudicator_draw_variables_match_tabbycat() -> None:
    recipients = by_address(draw_recipients(make_draw(), Audience.ADJUDICATORS))
    alice = recipients["alice@example.com"]
    assert alice.name == "Alice Smith"
    assert alice.role == "adjudicator"
    assert alice.reasons == ("you are the chair in Room 3 for Round 2",)
    ctx = alice.context
    assert ctx["USER"] == "Alice Smith"
    assert ctx["TOURN"] == "BP 88"
    assert ctx["ROUND"] == "Round 2"
    assert ctx["POSITION"] == "the chair"
    assert ctx["VENUE"] == "Room 3"
    assert ctx["DRAW"] == f"Harvard A (OG) vs {SCRIPT} (OO) vs Oxford B (CG) vs Yale C (CO)"
    assert ctx["PANEL"] == "Bob Jones (a panellist), Carol White (a trainee)"
    assert ctx["FULL_PANEL"] == "Alice Smith (the chair), Bob Jones (a panellist), Carol White (a trainee)"
    assert ctx["URL"] == "https://tab.example.org/bp88/privateurls/alicekey/"
    assert ctx["DEBATE"] == "BP 88 Round 2 @ Room 3"
    assert [m["you"] for m in ctx["PANEL_MEMBERS"]] == [True, False, False]
    assert recipients["bob@example.com"].context["POSITION"] == "a panellist"
    assert recipients["bob@example.com"].context["URL"] == ""  # no url_key
    # Speakers are not in an adjudicators-only send.
    assert "hank@example.com" not in recipients


def test_solo_chair_is_the_only_and_without_address_is_listed_with_a_problem() -> None:
    recipients = by_address(draw_recipients(make_draw(), Audience.ADJUDICATORS))
    dan = recipients["person:104"]
    assert dan.address is None and dan.address_key is None
    assert dan.problem == "no address"
    assert not dan.sendable
    assert dan.context["POSITION"] == "the only"
    assert dan.context["PANEL"] == "Carol White (a trainee)"
    assert dan.reasons == ("you are the only adjudicator in Room 4 for Round 2",)
    assert recipients["alice@example.com"].sendable


def test_adjudicator_on_two_panels_gets_one_recipient_with_both_assignments() -> None:
    recipients = draw_recipients(make_draw(), Audience.ADJUDICATORS)
    carols = [r for r in recipients if r.address_key == "carol@example.com"]
    assert len(carols) == 1
    carol = carols[0]
    assert carol.reasons == (
        "you are a trainee in Room 3 for Round 2",
        "you are a trainee in Room 4 for Round 2",
    )
    assert [a["VENUE"] for a in carol.context["ASSIGNMENTS"]] == ["Room 3", "Room 4"]
    # The single-assignment variables still work: they come from the first assignment.
    assert carol.context["VENUE"] == "Room 3"
    assert carol.context["POSITION"] == "a trainee"


def test_team_draw_variables_and_address_problems() -> None:
    recipients = by_address(draw_recipients(make_draw(), Audience.TEAMS))
    hank = recipients["hank@example.com"]
    assert hank.role == "speaker"
    assert hank.reasons == ("you speak for Harvard A (Opening Government) in Room 3 for Round 2",)
    ctx = hank.context
    assert (ctx["TEAM"], ctx["SIDE"], ctx["VENUE"]) == ("Harvard A", "Opening Government", "Room 3")
    assert (
        ctx["OPPONENTS"]
        == f"{SCRIPT} (Opening Opposition), Oxford B (Closing Government), Yale C (Closing Opposition)"
    )
    assert ctx["PANEL"] == "Alice Smith (the chair), Bob Jones (a panellist), Carol White (a trainee)"
    assert "POSITION" not in ctx
    # A team without a short name is shown by its full name.
    assert recipients["family@example.com"].context["ASSIGNMENTS"][0]["TEAM"] == "Oxford B"
    erin = recipients["erin@@bad"]
    assert erin.problem is not None and erin.problem.startswith("invalid address: erin@@bad")
    assert erin.address == "erin@@bad"
    # Inactive speakers (no longer on the team) are left out.
    assert "old@example.com" not in recipients


def test_two_people_sharing_an_address_get_one_message_naming_both() -> None:
    recipients = draw_recipients(make_draw(), Audience.TEAMS)
    shared = [r for r in recipients if r.address_key == "family@example.com"]
    assert len(shared) == 1
    family = shared[0]
    assert family.name == "Frank Lee and Grace Lee"
    assert family.context["USER"] == "Frank Lee and Grace Lee"
    assert family.person_ids == (204, 206)
    assert family.address == "family@example.com"  # as stored on the first person
    assert family.reasons == (
        "Frank Lee: you speak for Oxford B (Closing Government) in Room 3 for Round 2",
        "Grace Lee: you speak for Sydney A (Opening Government) in Room 4 for Round 2",
    )
    assert [a["TEAM"] for a in family.context["ASSIGNMENTS"]] == ["Oxford B", "Sydney A"]


def test_speaker_and_adjudicator_with_one_address_merge_with_adjudicator_role_first() -> None:
    recipients = draw_recipients(make_draw(), Audience.ALL)
    bobs = [r for r in recipients if r.address_key == "bob@example.com"]
    assert len(bobs) == 1
    bob = bobs[0]
    assert bob.role == "adjudicator"
    assert bob.name == "Bob Jones"  # one name: both records are the same person
    assert bob.reasons == (
        "you are a panellist in Room 3 for Round 2",
        "you speak for Yale C (Closing Opposition) in Room 3 for Round 2",
    )
    assert [a["ROLE"] for a in bob.context["ASSIGNMENTS"]] == ["adjudicator", "speaker"]
    # Both roles' single variables are available; the first assignment wins shared ones.
    assert bob.context["POSITION"] == "a panellist"
    assert bob.context["TEAM"] == "Yale C"
    assert bob.context["PANEL"] == "Alice Smith (the chair), Carol White (a trainee)"
    # Every address appears once.
    keys = [r.address_key for r in recipients if r.address_key]
    assert len(keys) == len(set(keys))
    assert recipients[0].role == "adjudicator" and recipients[-1].role == "speaker"


def test_contexts_are_json_serialisable() -> None:
    draw = make_draw()
    every = [
        *draw_recipients(draw, Audience.ALL),
        *ballot_recipients(draw),
        *custom_recipients(draw.tournament, list(draw.people.values())),
    ]
    for recipient in every:
        assert json.loads(json.dumps(recipient.context)) == recipient.context


def test_sides_not_confirmed_and_missing_venue() -> None:
    draw = make_draw()
    debate = replace(draw.debates[0], sides_confirmed=False, venue_id=None)
    draw = replace(draw, debates=(debate,))
    alice = by_address(draw_recipients(draw, Audience.ADJUDICATORS))["alice@example.com"]
    assert alice.context["DRAW"] == f"Harvard A vs {SCRIPT} vs Oxford B vs Yale C (sides not confirmed)"
    assert alice.context["VENUE"] == "TBA"
    assert alice.reasons == ("you are the chair in a room to be announced for Round 2",)


def test_ballot_receipts_per_adjudicator_and_consensus() -> None:
    recipients = by_address(ballot_recipients(make_draw()))
    # Per-adjudicator sheets: each adjudicator gets their own scores only.
    alice = recipients["alice@example.com"]
    assert alice.reasons == ("your ballot for Room 3 in Round 2 was received",)
    assert alice.context["DEBATE"] == "BP 88 Round 2 @ Room 3"
    assert alice.context["CONSENSUS"] is False
    assert alice.context["MOTION"] == "This house would test"
    og = alice.context["SCORES"][0]
    assert (og["team"], og["side"], og["points"], og["result"], og["total"]) == (
        "Harvard A",
        "Opening Government",
        3,
        "3 points",
        152.5,
    )
    assert og["speeches"] == [
        {"position": 1, "speaker": "Hank Hill", "score": 76.0, "ghost": False},
        {"position": 2, "speaker": "Ivy Ng", "score": 76.5, "ghost": False},
    ]
    assert recipients["bob@example.com"].context["SCORES"][0]["total"] == 156.5
    # The sheet's own total wins over the sum; unknown speakers are named as such.
    cg = alice.context["SCORES"][2]
    assert cg["total"] == 145.0
    assert cg["speeches"][1]["speaker"] == "(unknown speaker)"
    assert alice.context["SCORES"][1]["speeches"][1]["ghost"] is True
    # Carol (trainee) has no sheet of her own in debate 10, but gets debate 11's consensus.
    carol = recipients["carol@example.com"]
    assert carol.context["CONSENSUS"] is True
    assert carol.reasons == ("your panel's ballot for Room 4 in Round 2 was received",)
    assert len(carol.context["ASSIGNMENTS"]) == 1
    # Dan has no address: listed, never sent.
    assert recipients["person:104"].problem == "no address"
    assert set(recipients) == {"alice@example.com", "bob@example.com", "carol@example.com", "person:104"}


def test_ballot_receipts_filtered_by_debate_and_state() -> None:
    draw = make_draw()
    only_11 = ballot_recipients(draw, debate_ids={11})
    assert {r.person_id for r in only_11} == {103, 104}
    unconfirmed = {
        10: replace(draw.ballots[10], confirmed=False),
        11: replace(draw.ballots[11], discarded=True),
    }
    draw = replace(draw, ballots=unconfirmed)
    assert ballot_recipients(draw) == []
    assert {r.person_id for r in ballot_recipients(draw, confirmed_only=False)} == {101, 102}


def test_custom_recipients_team_institution_and_merging() -> None:
    draw = make_draw()
    people = [draw.people[i] for i in (201, 204, 206, 101, 104)]
    recipients = by_address(
        custom_recipients(draw.tournament, people, teams=draw.teams, institutions=draw.institutions)
    )
    hank = recipients["hank@example.com"]
    assert hank.context["USER"] == "Hank Hill"
    assert hank.context["TOURN"] == "BP 88"
    assert hank.context["TEAM"] == "Harvard A"
    assert hank.context["INSTITUTION"] == "Harvard University"
    assert "ROUND" not in hank.context
    assert hank.reasons == ("you speak for Harvard A at BP 88",)
    alice = recipients["alice@example.com"]
    assert "TEAM" not in alice.context and "INSTITUTION" not in alice.context
    assert alice.context["URL"] == "https://tab.example.org/bp88/privateurls/alicekey/"
    assert alice.reasons == ("you are an adjudicator at BP 88",)
    assert recipients["family@example.com"].name == "Frank Lee and Grace Lee"
    assert recipients["person:104"].problem == "no address"
    # Adjudicators come first, whatever order the director picked in.
    assert list(recipients)[:2] == ["alice@example.com", "person:104"]


def test_custom_recipients_use_denormalised_names_without_lookups() -> None:
    draw = make_draw()
    speaker = replace(draw.people[202], team_name="Harvard A", institution_name="Harvard")
    (ivy,) = custom_recipients(draw.tournament, [speaker])
    assert (ivy.context["TEAM"], ivy.context["INSTITUTION"]) == ("Harvard A", "Harvard")
