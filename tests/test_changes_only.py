"""Issue 12 item 6: changes-only re-release after a corrected draw is re-imported (bp88 recordings
through the replay server, the site's round 1 draw edited the way a tab room corrects one)."""

from __future__ import annotations

import copy
import email
import gc
import json
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from tabmail.compose.changes import Change
from tabmail.compose.templates import render_for
from tabmail.domain.notification import Audience, Event, Templates
from tabmail.services import notify
from tabmail.services.context import AppContext
from tabmail.services.importing import import_tabbycat
from tabmail.store.models import TeamRow
from tests.conftest import data_path
from tests.servers.tabbycat import Dataset, TabbycatServer

BOTH_ENGINES = True  # every db/ctx test here also runs on PostgreSQL (tests/conftest.py)

PAIRINGS = "/api/v1/tournaments/bp88/rounds/1/pairings"


@pytest.fixture(scope="module")
def recordings() -> Dataset:
    return Dataset.from_recordings(data_path("tabbycat-api"))


@pytest.fixture
def site(ctx: AppContext, recordings: Dataset, monkeypatch: pytest.MonkeyPatch) -> Iterator[TabbycatServer]:
    monkeypatch.delenv("TABMAIL_TABBYCAT_TOKEN", raising=False)
    # Qt objects an earlier GUI test left in reference cycles are freed here, on the main
    # thread: a collection inside the import's worker threads would destroy them there.
    gc.collect()
    with TabbycatServer(recordings) as server:
        import_tabbycat(ctx, server.url, "bp88", token="admin")
        ctx.settings.set_text("from_address", "tab@example.org")
        ctx.settings.set_text("backend", "file")
        # Round 1's draw goes out to everyone first.
        notify.enqueue(ctx, notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.ALL))
        yield server


def _debates() -> list[dict[str, Any]]:
    path = data_path("tabbycat-api", "bp88", "api_v1_tournaments_bp88_rounds_1_pairings.json")
    body: list[dict[str, Any]] = json.loads(path.read_text())["body"]
    return copy.deepcopy(body)


def _republish(ctx: AppContext, site: TabbycatServer, debates: list[dict[str, Any]]) -> None:
    site.respond_with(PAIRINGS, 200, debates)
    import_tabbycat(ctx, site.url, "bp88", token="admin")


def _ids(url: str) -> int:
    return int(url.rstrip("/").rsplit("/", 1)[1])


def _people_of(ctx: AppContext, debate: dict[str, Any]) -> set[str]:
    """Everyone in a recorded debate, by name: the teams' speakers and the panel."""
    t = ctx.tournaments.get("bp88")
    people = ctx.tournaments.people(t.id)
    teams = {_ids(x["team"]) for x in debate["teams"]}
    adjs = debate["adjudicators"]
    panel = {_ids(u) for u in [adjs["chair"], *adjs["panellists"], *adjs["trainees"]] if u}
    by_key = {int(p.external_id or 0): p for p in people}
    team_keys = {}
    for p in people:
        if p.team_id is not None:
            team_keys.setdefault(p.team_id, set()).add(p.name)
    with ctx.db.session() as s:
        key_to_id = {
            int(k): i for i, k in s.query(TeamRow.id, TeamRow.key).filter(TeamRow.tournament_id == t.id)
        }
    speakers = {name for team in teams for name in team_keys[key_to_id[team]]}
    return speakers | {by_key[a].name for a in panel}


def _changes(plan: notify.Plan) -> dict[str, tuple[Change | None, list[str], bool]]:
    ticked = plan.default_selection()
    return {
        p.recipient.name: (p.change, list(p.recipient.context.get("CHANGES", [])), p.key in ticked)
        for p in plan.recipients
    }


def test_moving_a_team_reaches_exactly_the_two_debates(ctx: AppContext, site: TabbycatServer) -> None:
    debates = _debates()
    a, b = debates[0], debates[1]
    a_og = next(x for x in a["teams"] if x["side"] == "og")
    b_og = next(x for x in b["teams"] if x["side"] == "og")
    a_og["team"], b_og["team"] = b_og["team"], a_og["team"]
    affected = _people_of(ctx, debates[0]) | _people_of(ctx, debates[1])
    _republish(ctx, site, debates)

    plan = notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.ALL, changes_only=True)
    changes = _changes(plan)
    changed = {name for name, (c, _, _) in changes.items() if c is Change.CHANGED}
    assert changed == affected
    assert {name for name, (_, _, ticked) in changes.items() if ticked} == changed
    assert all(c is Change.UNCHANGED for name, (c, _, _) in changes.items() if name not in affected)
    unchanged = next(p for p in plan.recipients if p.change is Change.UNCHANGED)
    assert unchanged.mark is notify.Mark.UNCHANGED and unchanged.mark.sendable

    # The moved team's speakers: a new room, new opponents, a new panel; the side stays.
    moved = next(
        p
        for p in plan.recipients
        if p.recipient.context.get("TEAM")
        and p.change is Change.CHANGED
        and any(line.startswith("room:") for line in p.recipient.context["CHANGES"])
    )
    fields = [line.split(":")[0] for line in moved.recipient.context["CHANGES"]]
    assert fields == ["room", "opponents", "panel"]
    # A team that stayed: only its opponents changed. An adjudicator of debate A: only the teams.
    stayed = [p for p in plan.recipients if p.change is Change.CHANGED and p.recipient.role == "speaker"]
    assert any(
        [line.split(":")[0] for line in p.recipient.context["CHANGES"]] == ["opponents"] for p in stayed
    )
    adj = [p for p in plan.recipients if p.change is Change.CHANGED and p.recipient.role == "adjudicator"]
    assert adj and all(
        [line.split(":")[0] for line in p.recipient.context["CHANGES"]] == ["teams"] for p in adj
    )

    text = render_for(plan.templates, moved.recipient)
    assert text.subject.startswith("Updated: Round 1:")
    assert "What changed since the previous email: room: " in text.text
    assert "your assignment changed since the previous email (room: " in text.text  # the footer

    result = notify.enqueue(ctx, plan)
    assert result.queued == len(changed) and len(result.batch_ids) == 1
    # Sent again: nothing has changed since these emails.
    again = notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.ALL, changes_only=True)
    assert again.default_selection() == set()


def test_swapping_two_chairs(ctx: AppContext, site: TabbycatServer) -> None:
    debates = _debates()
    a, b = debates[2], debates[3]
    a["adjudicators"]["chair"], b["adjudicators"]["chair"] = (
        b["adjudicators"]["chair"],
        a["adjudicators"]["chair"],
    )
    affected = _people_of(ctx, a) | _people_of(ctx, b)
    chair_a = next(
        p
        for p in ctx.tournaments.people(ctx.tournaments.get("bp88").id)
        if p.external_id == str(_ids(b["adjudicators"]["chair"]))
    )
    _republish(ctx, site, debates)

    plan = notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.ALL, changes_only=True)
    changes = _changes(plan)
    assert {n for n, (c, _, _) in changes.items() if c is Change.CHANGED} == affected
    # The chair moved rooms and panels and judges other teams, still as the chair.
    lines = changes[chair_a.name][1]
    assert [line.split(":")[0] for line in lines] == ["room", "panel", "teams"]
    # The speakers of debate A see a new panel, nothing else.
    speaker = next(p for p in plan.recipients if p.change is Change.CHANGED and p.recipient.role == "speaker")
    assert [line.split(":")[0] for line in speaker.recipient.context["CHANGES"]] == ["panel"]


def test_removing_a_debate_sends_removal_notices_only(ctx: AppContext, site: TabbycatServer) -> None:
    debates = _debates()
    gone = debates.pop(5)
    removed = _people_of(ctx, gone)
    _republish(ctx, site, debates)

    plan = notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.ALL, changes_only=True)
    changes = _changes(plan)
    assert {n for n, (c, _, _) in changes.items() if c is Change.REMOVED} == removed
    assert {n for n, (c, _, t) in changes.items() if t} == removed
    assert not any(c is Change.CHANGED for c, _, _ in changes.values())
    assert "removed" in plan.summary()

    result = notify.enqueue(ctx, plan)
    assert len(result.batch_ids) == 1 and result.queued == len(removed)
    (message, *_) = ctx.notifications.messages(batch_id=result.batch_id)
    parsed = email.message_from_bytes(ctx.notifications.raw(message.id), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "no longer in this round's draw" in text and "Our previous email said: room " in text
    # Only the removal: the draw batch's templates are not used for them.
    batch = ctx.notifications.get_batch(result.batch_id)
    assert "no longer in the draw" in batch.templates.subject


def test_a_kept_removal_notice_is_what_removed_people_get(ctx: AppContext, site: TabbycatServer) -> None:
    """The removal notice is the tournament's kept template, like every other kind's."""
    mine = Templates(
        "{{ ROUND }}: please ignore our draw email, {{ USER }}",
        "Sorry {{ USER }}: the draw changed. Before: {{ PREVIOUS }}.\n",
        None,
    )
    tournament = ctx.tournaments.get("bp88")
    notify.save_templates(ctx, tournament.id, Event.DRAW, Audience.ALL, mine, removal=True)
    debates = _debates()
    gone = debates.pop(5)
    removed = _people_of(ctx, gone)
    _republish(ctx, site, debates)

    plan = notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.TEAMS, changes_only=True)
    assert plan.removal_templates == mine
    result = notify.enqueue(ctx, plan)
    batch = ctx.notifications.get_batch(result.batch_id)
    assert batch.templates == mine
    messages = ctx.notifications.messages(batch_id=result.batch_id)
    assert messages and {m.recipient_name for m in messages} <= removed
    parsed = email.message_from_bytes(ctx.notifications.raw(messages[0].id), policy=policy.default)
    assert parsed["Subject"] == f"Round 1: please ignore our draw email, {messages[0].recipient_name}"
    # An edit for this one batch (the composer's) wins over the kept one.
    other = Templates("{{ ROUND }}: not drawn", "{{ USER }}\n", None)
    _republish(ctx, site, debates[1:])
    again = notify.plan(ctx, "bp88", Event.DRAW, round_seq=1, audience=Audience.ALL, changes_only=True)
    removed_keys = {p.key for p in again.recipients if p.change is Change.REMOVED and p.mark.sendable}
    queued = notify.enqueue(ctx, again, selected=removed_keys, removal=other)
    assert ctx.notifications.get_batch(queued.batch_id).templates == other


def test_changes_only_needs_a_first_release(ctx: AppContext, site: TabbycatServer) -> None:
    with pytest.raises(notify.NothingToSend, match="no draw email was sent for Round 2 yet"):
        notify.plan(ctx, "bp88", Event.DRAW, round_seq=2, audience=Audience.ALL, changes_only=True)
    with pytest.raises(Exception, match="--changes-only is for a draw"):
        notify.plan(ctx, "bp88", Event.MOTIONS, round_seq=1, changes_only=True)
