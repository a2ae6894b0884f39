"""Issue 12: private URLs, motion release, team points and registrations, checked against the
bp88 recordings (through the replay server) and a two-team tournament in CSV."""

from __future__ import annotations

import gc
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tabmail.compose.points import PointsError
from tabmail.compose.templates import render_for
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_csv, import_tabbycat
from tabmail.store.models import PersonRow, RoundRow, TeamRow, TournamentRow
from tests.conftest import data_path
from tests.servers.tabbycat import Dataset, TabbycatServer

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)


@pytest.fixture(scope="module")
def recordings() -> Dataset:
    return Dataset.from_recordings(data_path("tabbycat-api"))


@pytest.fixture
def bp88(ctx: AppContext, recordings: Dataset, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    monkeypatch.delenv("TABMAIL_TABBYCAT_TOKEN", raising=False)
    # Qt objects an earlier GUI test left in reference cycles are freed here, on the main
    # thread: a collection inside the import's worker threads would destroy them there.
    gc.collect()
    with TabbycatServer(recordings) as server:
        import_tabbycat(ctx, server.url, "bp88", token="admin")
        ctx.settings.set_text("from_address", "tab@example.org")
        ctx.settings.set_text("backend", "file")
        yield ctx


@pytest.fixture
def two_team(ctx: AppContext) -> AppContext:
    import_csv(ctx, data_path("two-team-csv"), "Two Team")
    ctx.settings.set_text("from_address", "tab@example.org")
    ctx.settings.set_text("backend", "file")
    return ctx


def _by_name(plan: notify.Plan) -> dict[str, notify.PlannedRecipient]:
    return {p.recipient.name: p for p in plan.recipients}


# -- 1. private URLs ------------------------------------------------------------------------------


def test_private_urls_everyone_with_a_key_then_not_again(bp88: AppContext) -> None:
    t = bp88.tournaments.get("bp88")
    with bp88.db.session() as s:  # one adjudicator without a key (the site never generated it)
        s.execute(update(PersonRow).where(PersonRow.key == "1").values(url_key=None))
    plan = notify.plan(bp88, "bp88", Event.URLS)
    assert plan.round is None and len(plan.recipients) == 256
    people = _by_name(plan)
    laila = people["Laila Filemonsen"]
    assert laila.mark is notify.Mark.NO_KEY and not laila.mark.sendable
    assert laila.problem is not None and "no private URL key" in laila.problem
    aron = people["Aron Dang"]
    assert aron.mark is notify.Mark.OK and aron.selected_by_default
    url = f"{t.source_url}/bp88/privateurls/u30u0k4a/"
    assert (aron.recipient.context["URL"], aron.recipient.context["KEY"]) == (url, "u30u0k4a")
    assert aron.recipient.context["TOURN"] == t.name
    text = render_for(plan.templates, aron.recipient).text
    assert url in text and "do not share" in text

    result = notify.enqueue(bp88, plan)
    assert result.queued == 255
    again = notify.plan(bp88, "bp88", Event.URLS)
    marks = Counter(p.mark for p in again.recipients)
    assert marks == {notify.Mark.ALREADY_SENT: 255, notify.Mark.NO_KEY: 1}
    assert again.default_selection() == set()


# -- 2. motion release ----------------------------------------------------------------------------


def test_motions_tick_speakers_of_available_teams_only(bp88: AppContext) -> None:
    plan = notify.plan(bp88, "bp88", Event.MOTIONS, round_seq=4)
    roles = Counter((p.recipient.role, p.selected_by_default) for p in plan.recipients)
    # Every team is in round 4's draw (the recording marks no availability): all speakers ticked.
    assert roles == {("speaker", True): 176, ("adjudicator", False): 80}
    adj = next(p for p in plan.recipients if p.recipient.role == "adjudicator")
    assert "unticked by default" in adj.note
    speaker = next(p for p in plan.recipients if p.recipient.role == "speaker")
    text = render_for(plan.templates, speaker.recipient).text
    assert "This House regrets the existence of Valentine's Day (Valentine\u2019s Day)" in text

    # With availability marked on the site: only those teams' speakers are ticked.
    t = bp88.tournaments.get("bp88")
    two = sorted(bp88.tournaments.teams(t.id))[:2]
    with bp88.db.session() as s:
        s.execute(
            update(RoundRow)
            .where(RoundRow.tournament_id == t.id, RoundRow.seq == 4)
            .values(available_teams=two)
        )
    plan = notify.plan(bp88, "bp88", Event.MOTIONS, round_seq=4)
    ticked = [p for p in plan.recipients if p.selected_by_default]
    people = {p.id: p for p in bp88.tournaments.people(t.id)}
    assert len(ticked) == 4 and {people[p.recipient.person_id].team_id for p in ticked} == set(two)
    # No already-sent rule: a second release ticks the same people.
    notify.enqueue(bp88, plan)
    assert (
        notify.plan(bp88, "bp88", Event.MOTIONS, round_seq=4).default_selection() == plan.default_selection()
    )


def test_unreleased_motions_are_refused_unless_confirmed(bp88: AppContext) -> None:
    with pytest.raises(notify.UnreleasedMotions, match="not released on the site"):
        notify.plan(bp88, "bp88", Event.MOTIONS, round_seq=7)
    plan = notify.plan(bp88, "bp88", Event.MOTIONS, round_seq=7, allow_unreleased=True)
    assert plan.recipients and "Esperanto" in plan.recipients[0].recipient.context["MOTIONS"]


def test_motions_with_an_info_slide_as_plain_text(two_team: AppContext) -> None:
    t = two_team.tournaments.get("two-team")
    with two_team.db.session() as s:
        s.execute(
            update(RoundRow)
            .where(RoundRow.tournament_id == t.id, RoundRow.seq == 2)
            .values(motions=[[1, "This House would close all zoos", "Zoos", "Zoos hold <b>800</b> species."]])
        )
    plan = notify.plan(two_team, "two-team", Event.MOTIONS, round_seq=2)
    r = plan.recipients[-1].recipient
    assert r.context["MOTIONS"] == (
        "This House would close all zoos (Zoos)\n\nInfo slide:\nZoos hold <b>800</b> species."
    )
    html = render_for(plan.templates, r).html or ""
    assert "Zoos hold &lt;b&gt;800&lt;/b&gt; species." in html


# -- 3. team points -------------------------------------------------------------------------------


def _hand_count(upto: int) -> dict[str, int]:
    """Team points straight from the recorded confirmed ballots (team id on the site -> points)."""
    folder = data_path("tabbycat-api", "bp88")
    points: Counter[str] = Counter()
    for seq in range(1, upto + 1):
        pairings = json.loads((folder / f"api_v1_tournaments_bp88_rounds_{seq}_pairings.json").read_text())
        for debate in pairings["body"]:
            path = folder / f"api_v1_tournaments_bp88_rounds_{seq}_pairings_{debate['id']}_ballots.json"
            ballots = json.loads(path.read_text())["body"]
            (ballot,) = [b for b in ballots if b["confirmed"] and not b["discarded"]]
            for team in ballot["result"]["sheets"][0]["teams"]:
                points[team["team"].rstrip("/").rsplit("/", 1)[1]] += team["points"]
    return dict(points)


@pytest.mark.parametrize("seq", [2, 4])
def test_bp_points_equal_a_hand_count_of_the_ballots(bp88: AppContext, seq: int) -> None:
    t = bp88.tournaments.get("bp88")
    hand = _hand_count(seq)
    assert sum(hand.values()) == 22 * 6 * seq  # 3+2+1+0 per debate, 22 debates a round
    plan = notify.plan(bp88, "bp88", Event.POINTS, round_seq=seq)
    assert len(plan.recipients) == 176 and all(p.selected_by_default for p in plan.recipients)
    people = {p.id: p for p in bp88.tournaments.people(t.id)}
    with bp88.db.session() as s:
        site_key = {
            i: k for i, k in s.execute(select(TeamRow.id, TeamRow.key).where(TeamRow.tournament_id == t.id))
        }
    for p in plan.recipients:
        team_id = people[p.recipient.person_id].team_id
        assert team_id is not None
        assert p.recipient.context["POINTS"] == hand[site_key[team_id]], p.recipient.name
        assert p.recipient.context["METRIC"] == "points"
        assert p.recipient.context["RESULT"].endswith(("(3 points)", "(2 points)", "(1 point)", "(0 points)"))
        assert p.recipient.context["URL"] == ""  # the recorded site keeps its standings private
    first = plan.recipients[0].recipient
    subject = render_for(plan.templates, first).subject
    assert subject == f"{first.context['TEAM']}: {first.context['POINTS']} points after Round {seq}"


def test_points_name_the_debates_without_a_confirmed_ballot(bp88: AppContext) -> None:
    with pytest.raises(PointsError, match=r"^22 debate\(s\) have no confirmed ballot imported") as err:
        notify.plan(bp88, "bp88", Event.POINTS, round_seq=5)
    assert "Round 5, " in str(err.value) and "and 12 more" in str(err.value)


def test_points_disagreeing_with_the_site_are_refused(bp88: AppContext) -> None:
    t = bp88.tournaments.get("bp88")
    with bp88.db.session() as s:
        row = s.get(TournamentRow, t.id)
        assert row is not None and row.details is not None
        details = dict(row.details)
        standings = dict(details["team_standings"])
        some = next(iter(standings))
        standings[some] = {"points": standings[some]["points"] + 1}
        details["team_standings"] = standings
        row.details = details
    with pytest.raises(PointsError, match=r"differ from the site's team standings"):
        notify.plan(bp88, "bp88", Event.POINTS, round_seq=4)
    # Earlier rounds are not compared with the site's current standings.
    notify.plan(bp88, "bp88", Event.POINTS, round_seq=3)


def test_two_team_points_are_wins_by_majority_of_the_sheets(two_team: AppContext) -> None:
    after = {}
    for seq in (1, 2):
        plan = notify.plan(two_team, "two-team", Event.POINTS, round_seq=seq)
        after[seq] = {p.recipient.context["TEAM"]: p.recipient.context for p in plan.recipients}
    assert {k: v["POINTS"] for k, v in after[1].items()} == {
        "Alpha A": 1,
        "Beta B": 0,
        "Gamma C": 0,
        "Delta D": 1,
    }
    assert {k: v["POINTS"] for k, v in after[2].items()} == {
        "Alpha A": 2,
        "Beta B": 0,
        "Gamma C": 1,
        "Delta D": 1,
    }
    assert after[2]["Gamma C"]["RESULT"] == "win" and after[2]["Beta B"]["RESULT"] == "loss"
    assert after[2]["Alpha A"]["METRIC"] == "wins"
    plan = notify.plan(two_team, "two-team", Event.POINTS, round_seq=2)
    alpha = next(p.recipient for p in plan.recipients if p.recipient.context["TEAM"] == "Alpha A")
    assert render_for(plan.templates, alpha).subject == "Alpha A: 2 wins after Round 2"
    dee = next(p for p in plan.recipients if p.recipient.name == "Dee Park")
    assert dee.mark is notify.Mark.NO_ADDRESS


# -- 4. registration ------------------------------------------------------------------------------


def test_team_registration_carries_tabbycat_variables(bp88: AppContext) -> None:
    plan = notify.plan(bp88, "bp88", Event.REGISTRATION, audience=Audience.TEAMS)
    assert len(plan.recipients) == 176 and all(p.recipient.role == "speaker" for p in plan.recipients)
    aron = _by_name(plan)["Aron Dang"].recipient.context
    assert {k: aron[k] for k in ("SHORT", "LONG", "CODE", "BREAK", "SPEAKERS", "INSTITUTION", "EMOJI")} == {
        "SHORT": "Dorwinion DG",
        "LONG": "Dorwinion Agricultural College DG",
        "CODE": "Nerd",
        "BREAK": "Open, Novice",
        "SPEAKERS": "Aron Dang, Sovbika Gairbekov",
        "INSTITUTION": "Dorwinion Agricultural College",
        "EMOJI": "\U0001f913",
    }
    assert (
        render_for(plan.templates, _by_name(plan)["Aron Dang"].recipient).subject
        == "Registration for Dorwinion DG"
    )
    notify.enqueue(bp88, plan)
    again = notify.plan(bp88, "bp88", Event.REGISTRATION, audience=Audience.TEAMS)
    assert again.default_selection() == set()  # tournament-scoped already-sent rule


def test_adjudicator_registration_flags_and_conflicts(bp88: AppContext, two_team: AppContext) -> None:
    plan = notify.plan(bp88, "bp88", Event.REGISTRATION, audience=Audience.ADJUDICATORS)
    assert len(plan.recipients) == 80 and all(p.recipient.role == "adjudicator" for p in plan.recipients)
    laila = _by_name(plan)["Laila Filemonsen"].recipient
    assert laila.context["ADJ_CORE"] is True and laila.context["INDEPENDENT"] is False
    assert laila.context["CONFLICTS"] and "team " not in laila.context["CONFLICTS"]
    assert "on the adjudication core" in render_for(plan.templates, laila).text
    csv_plan = notify.plan(two_team, "two-team", Event.REGISTRATION, audience=Audience.ADJUDICATORS)
    cat = _by_name(csv_plan)["Cat Diaz"].recipient
    assert cat.context["INDEPENDENT"] is True and cat.context["CONFLICTS"] == ""
    with pytest.raises(Exception, match="one audience at a time"):
        notify.plan(bp88, "bp88", Event.REGISTRATION, audience=Audience.ALL)


def test_every_kind_has_default_templates_that_render(two_team: AppContext, tmp_path: Path) -> None:
    kinds = [
        (Event.URLS, None, None),
        (Event.MOTIONS, None, 1),
        (Event.POINTS, None, 1),
        (Event.REGISTRATION, Audience.TEAMS, None),
        (Event.REGISTRATION, Audience.ADJUDICATORS, None),
    ]
    for event, audience, seq in kinds:
        plan = notify.plan(two_team, "two-team", event, round_seq=seq, audience=audience)
        for p in plan.recipients:
            parts = render_for(plan.templates, p.recipient)
            assert parts.subject and parts.text and parts.html, (event, p.recipient.name)
    # Kept per tournament like the others (registration per audience).
    t = two_team.tournaments.get("two-team")
    teams_tpl = notify.templates_for(two_team, t.id, Event.REGISTRATION, Audience.TEAMS)
    adj_tpl = notify.templates_for(two_team, t.id, Event.REGISTRATION, Audience.ADJUDICATORS)
    assert teams_tpl != adj_tpl
    notify.save_templates(two_team, t.id, Event.URLS, None, Templates("Your URL", "{{ URL }}", None))
    # `tabmail templates import --event registration` (audience "all" by default) keeps the
    # teams' templates, the ones a registration to teams uses.
    notify.save_templates(
        two_team, t.id, Event.REGISTRATION, Audience.ALL, Templates("Reg {{ SHORT }}", "x", None)
    )
    assert (
        notify.templates_for(two_team, t.id, Event.REGISTRATION, Audience.TEAMS).subject == "Reg {{ SHORT }}"
    )
    assert notify.templates_for(two_team, t.id, Event.REGISTRATION, Audience.ADJUDICATORS) == adj_tpl
    assert notify.templates_for(two_team, t.id, Event.URLS, None).subject == "Your URL"


# -- 8. the command line (a contract) -------------------------------------------------------------


def test_cli_send_kinds_queue_and_refuse_plainly(tmp_path: Path) -> None:
    from tests.test_cli_foundation import tabmail

    db = str(tmp_path / "cli.sqlite3")
    assert (
        tabmail(
            "--db", db, "import", "csv", str(data_path("two-team-csv")), "--tournament", "Two Team"
        ).returncode
        == 0
    )
    out_dir = str(tmp_path / "out")
    for key, value in (("from_address", "tab@example.org"), ("backend", "file"), ("file.directory", out_dir)):
        assert tabmail("--db", db, "config", "set", key, value).returncode == 0, key
    done = tabmail(
        "--db", db, "send", "points", "--tournament", "two-team", "--round", "2", "--yes", "--queue-only"
    )
    assert done.returncode == 0, done.stderr
    assert "points notification for Two Team, Round 2: 7 to send, 1 without an address" in done.stdout
    assert "queued 7 message(s)" in done.stdout
    done = tabmail(
        "--db",
        db,
        "send",
        "registration",
        "--tournament",
        "two-team",
        "--audience",
        "adjudicators",
        "--yes",
        "--queue-only",
    )
    assert done.returncode == 0 and "queued 4 message(s)" in done.stdout, done.stderr
    # Private URLs of a CSV tournament: nobody has a key, so nothing to send, each one named.
    done = tabmail("--db", db, "send", "urls", "--tournament", "two-team", "--yes", "--queue-only")
    assert done.returncode == 0 and "nothing to send" in done.stdout
    assert "not sendable: Ann Weir: no private URL key" in done.stdout
    # Motions: Tabbycat's default ticks the speakers; --audience all ticks the adjudicators too.
    done = tabmail(
        "--db",
        db,
        "send",
        "motions",
        "--tournament",
        "two-team",
        "--round",
        "1",
        "--audience",
        "all",
        "--yes",
        "--queue-only",
    )
    assert done.returncode == 0 and "queued 11 message(s)" in done.stdout, done.stdout
    done = tabmail("--db", db, "send", "points", "--tournament", "two-team", "--yes")
    assert done.returncode == 2 and "--round" in done.stderr
    # 7. Scheduled release: queued for later, listed, cancelled; a past time is refused.
    args = ("send", "registration", "--tournament", "two-team", "--yes")
    done = tabmail("--db", db, *args, "--at", "2099-06-01T18:30")
    assert done.returncode == 0 and "scheduled 7 message(s) as batch" in done.stdout, done.stderr
    batch = done.stdout.split("as batch ")[1].split()[0]
    listed = tabmail("--db", db, "outbox", "scheduled")
    assert f"batch {batch} (registration, 7 messages) at 2099-06-01 18:30" in listed.stdout, listed.stdout
    done = tabmail("--db", db, "outbox", "unschedule", batch)
    assert done.returncode == 0 and "7 message(s) will not be sent" in done.stdout
    done = tabmail("--db", db, *args, "--at", "2001-01-01T10:00")
    assert done.returncode == 1 and "has already passed" in done.stderr
