"""Team points after a round, counted from the imported ballots (Tabbycat's "p" notification).

- British Parliamentary (four teams a debate): 3, 2, 1, 0 points for the 1st to 4th place,
  summed over the preliminary rounds up to and including the round. The place comes from the
  ballot's own team points when it gives them, else from the team scores.
- Two-team formats: wins. With one sheet per adjudicator, a team wins the debate when most
  sheets give it the win (Tabbycat's majority decision).
- A debate of a counted round without a confirmed ballot makes the count unusable: it is
  named in `PointsError` rather than sent as a wrong total.
- `cross_check` compares the count with the site's own team standings (when imported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tabmail.domain.errors import TabmailError
from tabmail.domain.tournament import Ballot, Debate, Draw, SheetTeam

BP_POINTS = (3, 2, 1, 0)
PLACES = ("1st", "2nd", "3rd", "4th")


class PointsError(TabmailError):
    """The points cannot be counted honestly: debates without a confirmed ballot, or a count
    that disagrees with the site."""


@dataclass(slots=True)
class TeamPoints:
    team_id: int
    points: int = 0  # BP: summed points; two-team: wins
    wins: int = 0
    debates: int = 0
    result: str = ""  # this round's result for the team: "1st (3 points)", "win", "loss"
    round_points: int | None = None  # BP: points this round; two-team: 1 for a win, 0 for a loss


@dataclass(slots=True)
class PointsTable:
    bp: bool
    teams: dict[int, TeamPoints] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return "points" if self.bp else "wins"

    def value(self, team_id: int) -> int:
        entry = self.teams.get(team_id)
        return 0 if entry is None else entry.points


def _debate_label(draw: Draw, debate: Debate) -> str:
    venue = draw.venues.get(debate.venue_id) if debate.venue_id is not None else None
    names = [
        (t.short_name or t.name) if (t := draw.teams.get(dt.team_id)) else "(unknown team)"
        for dt in debate.teams
    ]
    where = venue.name if venue else "no room"
    return f"{draw.round.name}, {where} ({' vs '.join(names)})"


def _usable(ballot: Ballot | None) -> bool:
    return ballot is not None and ballot.confirmed and not ballot.discarded and bool(ballot.sheets)


def _bp_places(sheet_teams: Sequence[SheetTeam]) -> dict[int, int] | None:
    """team id -> points (3..0) for one sheet; None when the sheet cannot say."""
    teams = [st for st in sheet_teams if st.team_id is not None]
    if len(teams) != 4:
        return None
    if all(st.points is not None for st in teams):
        given = {st.team_id: int(st.points or 0) for st in teams if st.team_id is not None}
        if sorted(given.values()) == [0, 1, 2, 3]:
            return given
    if all(st.score is not None for st in teams):
        ranked = sorted(teams, key=lambda st: -(st.score or 0.0))
        return {st.team_id: BP_POINTS[i] for i, st in enumerate(ranked) if st.team_id is not None}
    return None


def _winners(ballot: Ballot) -> set[int] | None:
    """Two-team: the winning team (majority of sheets); None when the sheets cannot say."""
    votes: dict[int, int] = {}
    for sheet in ballot.sheets:
        teams = [st for st in sheet.teams if st.team_id is not None]
        winner: int | None = None
        if any(st.win is not None for st in teams):
            winner = next((st.team_id for st in teams if st.win), None)
        elif len(teams) == 2 and all(st.score is not None for st in teams):
            a, b = teams
            if a.score != b.score:
                winner = a.team_id if (a.score or 0) > (b.score or 0) else b.team_id
        if winner is None:
            return None
        votes[winner] = votes.get(winner, 0) + 1
    if not votes:
        return None
    best = max(votes.values())
    top = [t for t, n in votes.items() if n == best]
    return set(top) if len(top) == 1 else None


def count_points(draws: Sequence[Draw], upto_seq: int) -> PointsTable:
    """Points (BP) or wins (two-team) of every team after round ``upto_seq``, from the
    preliminary rounds' ballots. Raises PointsError naming every debate whose ballot is
    missing or unreadable."""
    counted = [d for d in draws if d.round.seq <= upto_seq and d.round.stage == "P" and d.debates]
    current = next((d for d in draws if d.round.seq == upto_seq), None)
    bp = any(len(debate.teams) == 4 for d in counted for debate in d.debates)
    table = PointsTable(bp=bp)
    missing: list[str] = []
    for draw in counted:
        for debate in draw.debates:
            team_ids = [dt.team_id for dt in debate.teams]
            if len(team_ids) < 2:
                continue  # a bye: nothing to count
            ballot = draw.ballots.get(debate.id)
            if not _usable(ballot):
                missing.append(_debate_label(draw, debate))
                continue
            assert ballot is not None
            if bp:
                places = _bp_places(ballot.sheets[0].teams)
                if places is None:
                    missing.append(_debate_label(draw, debate) + ": the ballot gives no places")
                    continue
                for team_id in team_ids:
                    entry = table.teams.setdefault(team_id, TeamPoints(team_id))
                    got = places.get(team_id, 0)
                    entry.points += got
                    entry.wins += 1 if got == 3 else 0
                    entry.debates += 1
                    if draw is current:
                        entry.round_points = got
                        entry.result = (
                            f"{PLACES[BP_POINTS.index(got)]} ({got} point{'s' if got != 1 else ''})"
                        )
            else:
                winners = _winners(ballot)
                if winners is None:
                    missing.append(_debate_label(draw, debate) + ": the ballot names no winner")
                    continue
                for team_id in team_ids:
                    entry = table.teams.setdefault(team_id, TeamPoints(team_id))
                    won = team_id in winners
                    entry.points += 1 if won else 0
                    entry.wins += 1 if won else 0
                    entry.debates += 1
                    if draw is current:
                        entry.round_points = 1 if won else 0
                        entry.result = "win" if won else "loss"
    if missing:
        shown = "; ".join(missing[:10]) + (f"; and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise PointsError(
            f"{len(missing)} debate(s) have no confirmed ballot imported, so the points would be wrong: "
            f"{shown}. Enter or confirm them on the site and import again"
        )
    return table


def cross_check(
    table: PointsTable, standings: Mapping[int, Mapping[str, float]], names: Mapping[int, str]
) -> list[str]:
    """Teams whose counted points differ from the site's standings, as lines naming both
    figures; teams the site does not list are not compared."""
    differences = []
    for team_id, metrics in standings.items():
        site = metrics.get(table.metric)
        if site is None:
            continue
        ours = table.value(team_id)
        if abs(site - ours) > 1e-9:
            differences.append(
                f"{names.get(team_id, f'team {team_id}')}: {ours} counted, the site says {site:g}"
            )
    return differences
