"""Recipients of the notifications besides the draw and ballots: private URLs, motion release,
team points and registrations. Variables carry Tabbycat's names (notifications/utils.py):
URL, KEY, TOURN, ROUND, MOTIONS, TEAM, POINTS, SHORT, LONG, CODE, BREAK, SPEAKERS, INSTITUTION,
EMOJI; tabmail adds a few (RESULT, MOTION_LIST, CONFLICTS...), listed in compose.templates.

Who is ticked by default follows Tabbycat's rule for each kind (reference §2.2); the rule that
depends on what was already sent (private URLs, registrations) is the plan's
(services.notify), like the draw's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tabmail.compose.points import PointsTable
from tabmail.compose.recipients import Recipient, _Collector, _private_url, _team_label
from tabmail.domain.tournament import Institution, Motion, Person, Role, Round, Team, Tournament


def _base(tournament: Tournament) -> dict[str, Any]:
    return {"TOURN": tournament.name, "TOURN_SHORT": tournament.short_name}


def _who(person: Person, teams: Mapping[int, Team], tournament: Tournament) -> str:
    if person.role is Role.ADJUDICATOR:
        return f"you are an adjudicator at {tournament.name}"
    team = teams.get(person.team_id) if person.team_id is not None else None
    label = _team_label(team) if team is not None else person.team_name
    return (
        f"you speak for {label} at {tournament.name}" if label else f"you are a speaker at {tournament.name}"
    )


def _ordered(people: Sequence[Person]) -> list[Person]:
    """Active people, adjudicators first (a merged recipient's role is then "adjudicator")."""
    return sorted((p for p in people if p.active), key=lambda p: p.role is not Role.ADJUDICATOR)


def url_recipients(
    tournament: Tournament, people: Sequence[Person], teams: Mapping[int, Team] | None = None
) -> list[Recipient]:
    """Everyone active, each with their private URL (Tabbycat's landing page) and key. Those
    without a key get an empty URL: the plan lists them as unusable."""
    collector = _Collector(_base(tournament))
    for person in _ordered(people):
        assignment = {
            "ROLE": person.role.value,
            "URL": _private_url(tournament, person),
            "KEY": person.url_key or "",
        }
        reason = _who(person, teams or {}, tournament) + " and this is your private URL"
        collector.add(person, person.role, reason, assignment)
    return collector.recipients()


def url_problem(recipient: Recipient, tournament: Tournament) -> str | None:
    """Why a private-URL message cannot be sent to this recipient, or None."""
    if recipient.context.get("URL"):
        return None
    if not recipient.context.get("KEY"):
        return "no private URL key (generate them on the site's Private URLs page, then import again)"
    return "no site address for the URL (the tournament was not imported from a Tabbycat site)"


def motions_text(motions: Sequence[Motion]) -> str:
    """Tabbycat's MOTIONS as plain text: one motion a paragraph, the reference in brackets,
    the info slide (plain text) under it."""
    blocks = []
    for i, m in enumerate(motions, 1):
        number = f"{i}. " if len(motions) > 1 else ""
        line = f"{number}{m.text}" + (f" ({m.reference})" if m.reference else "")
        if m.info_slide:
            line += "\n\nInfo slide:\n" + m.info_slide
        blocks.append(line)
    return "\n\n".join(blocks)


def motion_recipients(
    tournament: Tournament,
    rnd: Round,
    people: Sequence[Person],
    teams: Mapping[int, Team],
    available_team_ids: Collection[int],
) -> list[Recipient]:
    """Every active speaker and adjudicator. Ticked by default, as in Tabbycat: the speakers
    of teams available this round; adjudicators and the other speakers are unticked."""
    collector = _Collector(
        {
            **_base(tournament),
            "ROUND": rnd.name,
            "ROUND_ABBR": rnd.abbreviation,
            "MOTIONS": motions_text(rnd.motions),
            "MOTION_LIST": [
                {"text": m.text, "reference": m.reference, "info_slide": m.info_slide} for m in rnd.motions
            ],
        }
    )
    for person in _ordered(people):
        if person.role is Role.ADJUDICATOR:
            selected, note = False, "adjudicators are unticked by default (as in Tabbycat)"
        else:
            selected = person.team_id in available_team_ids
            note = "" if selected else "the team is not available this round"
        reason = _who(person, teams, tournament) + f" and the motions for {rnd.name} are out"
        collector.add(person, person.role, reason, {"ROLE": person.role.value}, selected=selected, note=note)
    return collector.recipients()


def standings_url(tournament: Tournament) -> str:
    """The public team standings page, or empty when the site does not show it publicly."""
    if not tournament.public_team_standings or not tournament.source_url:
        return ""
    return f"{tournament.source_url.rstrip('/')}/{tournament.slug}/standings/team/"


def _count_text(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def points_recipients(
    tournament: Tournament,
    rnd: Round,
    people: Sequence[Person],
    teams: Mapping[int, Team],
    table: PointsTable,
    team_ids: Collection[int],
) -> list[Recipient]:
    """The speakers of the teams in this round, each with their team's points (BP) or wins."""
    url = standings_url(tournament)
    collector = _Collector({**_base(tournament), "ROUND": rnd.name, "ROUND_ABBR": rnd.abbreviation})
    metric = "points" if table.bp else "wins"
    for person in _ordered(people):
        if person.role is not Role.SPEAKER or person.team_id is None or person.team_id not in team_ids:
            continue
        team = teams.get(person.team_id)
        if team is None:
            continue
        entry = table.teams.get(team.id)
        assignment = {
            "ROLE": Role.SPEAKER.value,
            "TEAM": _team_label(team),
            "TEAM_NAME": team.name,
            "POINTS": entry.points if entry else 0,
            "POINTS_TEXT": _count_text(entry.points if entry else 0, "point" if table.bp else "win"),
            "WINS": entry.wins if entry else 0,
            "METRIC": metric,
            "RESULT": entry.result if entry else "",
            "ROUND_POINTS": entry.round_points if entry else None,
            "URL": url,
        }
        reason = f"you speak for {_team_label(team)} in {rnd.name}"
        collector.add(person, Role.SPEAKER, reason, assignment)
    return collector.recipients()


def team_registration_recipients(
    tournament: Tournament,
    people: Sequence[Person],
    teams: Mapping[int, Team],
    institutions: Mapping[int, Institution],
) -> list[Recipient]:
    """Every active speaker with their team's registration (Tabbycat's "t")."""
    speakers: dict[int, list[Person]] = {}
    for person in people:
        if person.role is Role.SPEAKER and person.active and person.team_id is not None:
            speakers.setdefault(person.team_id, []).append(person)
    collector = _Collector(_base(tournament))
    for team_id, members in sorted(
        speakers.items(), key=lambda kv: _team_label(teams[kv[0]]) if kv[0] in teams else ""
    ):
        team = teams.get(team_id)
        if team is None:
            continue
        institution = institutions.get(team.institution_id) if team.institution_id is not None else None
        assignment = {
            "ROLE": Role.SPEAKER.value,
            "TEAM": _team_label(team),
            "SHORT": _team_label(team),
            "LONG": team.name,
            "CODE": team.code_name,
            "BREAK": ", ".join(team.break_categories),
            "SPEAKERS": ", ".join(p.name for p in members),
            "INSTITUTION": institution.name if institution is not None else "",
            "EMOJI": team.emoji,
        }
        for person in members:
            reason = f"you are registered for {_team_label(team)} at {tournament.name}"
            collector.add(person, Role.SPEAKER, reason, assignment)
    return collector.recipients()


def adjudicator_registration_recipients(
    tournament: Tournament, people: Sequence[Person], institutions: Mapping[int, Institution]
) -> list[Recipient]:
    """Every active adjudicator with what the site knows of them (Tabbycat defines this event,
    "a", but never sends it)."""
    collector = _Collector(_base(tournament))
    for person in _ordered(people):
        if person.role is not Role.ADJUDICATOR:
            continue
        institution = institutions.get(person.institution_id) if person.institution_id is not None else None
        assignment = {
            "ROLE": Role.ADJUDICATOR.value,
            "NAME": person.name,
            "INSTITUTION": institution.name if institution is not None else (person.institution_name or ""),
            "CONFLICTS": ", ".join(person.conflicts),
            "INDEPENDENT": person.independent,
            "ADJ_CORE": person.adj_core,
            "URL": _private_url(tournament, person),
        }
        reason = f"you are registered as an adjudicator at {tournament.name}"
        collector.add(person, Role.ADJUDICATOR, reason, assignment)
    return collector.recipients()
