"""Who gets private URLs, motions, team points and registrations: the data each kind needs,
read from the store, and Tabbycat's rules for it (compose.kinds has the pure part)."""

from __future__ import annotations

from tabmail.compose.kinds import (
    adjudicator_registration_recipients,
    motion_recipients,
    points_recipients,
    team_registration_recipients,
    url_recipients,
)
from tabmail.compose.points import PointsError, count_points, cross_check
from tabmail.compose.recipients import Recipient
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Audience, Event
from tabmail.domain.tournament import Role, Round, Tournament
from tabmail.services.context import AppContext

KIND_EVENTS = frozenset({Event.URLS, Event.MOTIONS, Event.POINTS, Event.REGISTRATION})
# As in Tabbycat: motions and points go to whoever is ticked, whatever was sent before.
NO_ALREADY_SENT_RULE = frozenset({Event.CUSTOM, Event.MOTIONS, Event.POINTS})


class NothingToSend(TabmailError):
    pass


class UnreleasedMotions(TabmailError):
    """The site has not released the round's motions: sending needs explicit confirmation."""


def _need_round(event: Event, round_seq: int | None) -> int:
    if round_seq is None:
        raise TabmailError(f"a {event.value} notification needs a round (--round N)")
    return round_seq


def kind_recipients(
    ctx: AppContext,
    tournament: Tournament,
    event: Event,
    round_seq: int | None,
    audience: Audience | None,
    *,
    allow_unreleased: bool = False,
) -> tuple[Round | None, Audience | None, list[Recipient]]:
    """(round, audience, recipients) of one of KIND_EVENTS."""
    people = ctx.tournaments.people(tournament.id, include_inactive=False)
    if event is Event.URLS:
        if audience is Audience.ADJUDICATORS:
            people = [p for p in people if p.role is Role.ADJUDICATOR]
        elif audience is Audience.TEAMS:
            people = [p for p in people if p.role is Role.SPEAKER]
        return None, audience, url_recipients(tournament, people, ctx.tournaments.teams(tournament.id))
    if event is Event.REGISTRATION:
        audience = audience or Audience.TEAMS
        if audience is Audience.ALL:
            raise TabmailError(
                "registration goes to one audience at a time: --audience teams or adjudicators"
            )
        institutions = ctx.tournaments.institutions(tournament.id)
        if audience is Audience.ADJUDICATORS:
            return None, audience, adjudicator_registration_recipients(tournament, people, institutions)
        teams = ctx.tournaments.teams(tournament.id)
        return None, audience, team_registration_recipients(tournament, people, teams, institutions)
    seq = _need_round(event, round_seq)
    draw = ctx.tournaments.draw(tournament.id, seq)
    rnd = draw.round
    teams = draw.teams
    drawn = {dt.team_id for d in draw.debates for dt in d.teams}
    if event is Event.MOTIONS:
        if not rnd.motions:
            raise NothingToSend(f"{rnd.name} of {tournament.name} has no motions imported")
        if rnd.motions_released is False and not allow_unreleased:
            raise UnreleasedMotions(
                f"the motions of {rnd.name} are not released on the site; release them there "
                "and import again, or confirm that they go out now (--unreleased-ok)"
            )
        # Tabbycat ticks the speakers of the teams marked available; where the site marks no
        # one (or is CSV), the teams in the round's draw, else every team.
        if rnd.available_team_ids is not None:
            available = set(rnd.available_team_ids)
        else:
            available = drawn or set(teams)
        return rnd, None, motion_recipients(tournament, rnd, people, teams, available)
    # Event.POINTS
    if not draw.debates:
        raise NothingToSend(f"{rnd.name} of {tournament.name} has no draw imported yet")
    rounds = [r for r in ctx.tournaments.rounds(tournament.id) if r.seq <= seq]
    draws = [draw if r.seq == seq else ctx.tournaments.draw(tournament.id, r.seq) for r in rounds]
    table = count_points(draws, seq)
    standings = ctx.tournaments.team_standings(tournament.id)
    later = [
        r.seq
        for r in ctx.tournaments.rounds(tournament.id)
        if r.seq > seq
        and r.stage == "P"
        and any(
            b.confirmed and not b.discarded
            for b in ctx.tournaments.draw(tournament.id, r.seq).ballots.values()
        )
    ]
    if standings and not later:
        # The site's standings count every round with results: comparable only when this is
        # the last such round.
        names = {t.id: t.short_name or t.name for t in teams.values()}
        differences = cross_check(table, standings, names)
        if differences:
            shown = "; ".join(differences[:10])
            more = f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
            raise PointsError(
                f"the counted {table.metric} of {len(differences)} team(s) differ from the site's team "
                f"standings: {shown}{more}. Import again (a ballot may have changed) before sending"
            )
    return rnd, None, points_recipients(tournament, rnd, people, teams, table, drawn)
