"""Who gets a message for an event, why, and with which template variables.

One `Recipient` per address: everything that sends mail to one inbox (an adjudicator on two panels
by a data error, a speaker who also judges, two people sharing an address) merges into one
message whose reasons list every cause and whose context carries every assignment in
`ASSIGNMENTS`. The single-assignment variables (Tabbycat's VENUE, PANEL, ...) come from the first
assignment, so Tabbycat templates keep working. People without a usable address are still
returned, with `problem` set, so the director sees them; they are never sent to.

Adjudicators are collected before speakers, so a merged recipient's role is "adjudicator": the
more specific role wins, deterministically.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tabmail.compose.formatting import (
    POSITION_TEXT,
    TBA,
    join_names,
    result_text,
    side_abbreviation,
    side_name,
)
from tabmail.domain import addresses
from tabmail.domain.notification import Audience
from tabmail.domain.tournament import (
    BallotSheet,
    Debate,
    Draw,
    Institution,
    Person,
    Position,
    Role,
    Team,
    Tournament,
)


@dataclass(frozen=True, slots=True)
class Recipient:
    person_id: int
    name: str
    address: str | None  # as stored on the person
    address_key: str | None  # domain.addresses.address_key of it
    role: str  # "adjudicator" | "speaker" (first role if merged)
    reasons: tuple[str, ...]  # human sentences: "you are the chair in Room 3 for Round 2"
    context: dict[str, Any]  # JSON-serialisable template variables
    problem: str | None  # "no address" / "invalid address: ..." -> listed, never sent
    person_ids: tuple[int, ...] = ()  # everyone merged into this recipient, person_id first
    # The kind's own default-selection rule (Tabbycat's): False leaves the row unticked, with
    # ``note`` saying why (motions: "adjudicators are unticked by default").
    default_selected: bool = True
    note: str = ""

    @property
    def sendable(self) -> bool:
        return self.problem is None and self.address is not None


def draw_recipients(draw: Draw, audience: Audience) -> list[Recipient]:
    """Adjudicators and/or speakers of every debate in the draw. Inactive speakers are left out."""
    collector = _Collector(_round_context(draw))
    infos = [_DebateInfo.of(draw, debate) for debate in draw.debates]
    if audience in (Audience.ADJUDICATORS, Audience.ALL):
        for info in infos:
            for member in info.members:
                person = draw.people.get(member.person_id)
                if person is not None:
                    collector.add(
                        person,
                        Role.ADJUDICATOR,
                        _adjudicator_reason(info, member, draw),
                        _adj_assignment(draw, info, member, person),
                    )
    if audience in (Audience.TEAMS, Audience.ALL):
        speakers = _speakers_by_team(draw.people.values())
        for info in infos:
            for team in info.teams:
                for person in speakers.get(team["team_id"], ()):
                    reason = f"you speak for {team['name']} ({team['side']}) in {_where(info)} for {draw.round.name}"
                    collector.add(person, Role.SPEAKER, reason, _speaker_assignment(draw, info, team, person))
    return collector.recipients()


def ballot_recipients(
    draw: Draw, debate_ids: Collection[int] | None = None, *, confirmed_only: bool = True
) -> list[Recipient]:
    """Receipts for the current ballot of each debate (confirmed ones only, as Tabbycat does,
    unless told otherwise; discarded ballots never). A per-adjudicator sheet goes to its own
    adjudicator; a consensus sheet goes to everyone on the panel, trainees included."""
    collector = _Collector(_round_context(draw))
    for debate in draw.debates:
        if debate_ids is not None and debate.id not in debate_ids:
            continue
        ballot = draw.ballots.get(debate.id)
        if ballot is None or ballot.discarded or (confirmed_only and not ballot.confirmed):
            continue
        info = _DebateInfo.of(draw, debate)
        for sheet in ballot.sheets:
            if not sheet.teams:
                continue
            consensus = sheet.adjudicator_id is None
            ids = [m.person_id for m in info.members] if consensus else [sheet.adjudicator_id]
            scores = _scores(draw, sheet)
            for person_id in ids:
                person = draw.people.get(person_id) if person_id is not None else None
                if person is None:
                    continue
                whose = "your panel's ballot" if consensus else "your ballot"
                reason = f"{whose} for {_where(info)} in {draw.round.name} was received"
                assignment = {
                    **_debate_context(draw, info),
                    "ROLE": Role.ADJUDICATOR.value,
                    "SCORES": scores,
                    "CONSENSUS": consensus,
                    "POSITION": next((m.text for m in info.members if m.person_id == person_id), ""),
                    "MOTION": ballot.motion_text or "",
                }
                collector.add(person, Role.ADJUDICATOR, reason, assignment)
    return collector.recipients()


def custom_recipients(
    tournament: Tournament,
    people: Sequence[Person],
    *,
    teams: Mapping[int, Team] | None = None,
    institutions: Mapping[int, Institution] | None = None,
) -> list[Recipient]:
    """The people the director picked. TEAM and INSTITUTION are set only where known."""
    collector = _Collector({"TOURN": tournament.name, "TOURN_SHORT": tournament.short_name})
    for person in sorted(people, key=lambda p: p.role != Role.ADJUDICATOR):
        assignment: dict[str, Any] = {"ROLE": person.role.value, "URL": _private_url(tournament, person)}
        team = (teams or {}).get(person.team_id) if person.team_id is not None else None
        team_label = _team_label(team) if team is not None else person.team_name
        institution = (institutions or {}).get(person.institution_id) if person.institution_id else None
        institution_name = institution.name if institution is not None else person.institution_name
        if team_label:
            assignment["TEAM"] = team_label
        if institution_name:
            assignment["INSTITUTION"] = institution_name
        if person.role == Role.ADJUDICATOR:
            reason = f"you are an adjudicator at {tournament.name}"
        elif team_label:
            reason = f"you speak for {team_label} at {tournament.name}"
        else:
            reason = f"you are a speaker at {tournament.name}"
        collector.add(person, person.role, reason, assignment)
    return collector.recipients()


# -- one debate, described once -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Member:
    person_id: int
    name: str
    key: str  # "chair" | "only" | "panellist" | "trainee"
    text: str  # "the chair" ...


@dataclass(frozen=True, slots=True)
class _DebateInfo:
    debate: Debate
    venue: str
    teams: list[dict[str, Any]]
    matchup: str
    members: list[_Member]

    @classmethod
    def of(cls, draw: Draw, debate: Debate) -> _DebateInfo:
        venue = draw.venues.get(debate.venue_id) if debate.venue_id is not None else None
        teams: list[dict[str, Any]] = []
        for dt in debate.teams:
            team = draw.teams.get(dt.team_id)
            teams.append(
                {
                    "team_id": dt.team_id,
                    "name": _team_label(team) if team is not None else "(unknown team)",
                    "full_name": team.name if team is not None else "(unknown team)",
                    "side": side_name(dt.side),
                    "side_code": dt.side,
                    "side_abbr": side_abbreviation(dt.side),
                }
            )
        if debate.sides_confirmed:
            matchup = " vs ".join(f"{t['name']} ({t['side_abbr']})" for t in teams)
        else:
            matchup = " vs ".join(t["name"] for t in teams) + " (sides not confirmed)"
        return cls(debate, venue.name if venue else TBA, teams, matchup, _members(draw, debate))


_POSITION_ORDER = {Position.CHAIR: 0, Position.PANELLIST: 1, Position.TRAINEE: 2}


def _members(draw: Draw, debate: Debate) -> list[_Member]:
    adjs = sorted(debate.adjudicators, key=lambda a: _POSITION_ORDER[a.position])
    # As Tabbycat: a chair without voting panellists is "the only" adjudicator; trainees don't vote.
    solo = not any(a.position == Position.PANELLIST for a in adjs)
    members = []
    for adj in adjs:
        key = "only" if adj.position == Position.CHAIR and solo else adj.position.value
        person = draw.people.get(adj.person_id)
        name = person.name if person is not None else "(unknown adjudicator)"
        members.append(_Member(adj.person_id, name, key, POSITION_TEXT[key]))
    return members


def _team_label(team: Team) -> str:
    return team.short_name or team.name


def _where(info: _DebateInfo) -> str:
    return info.venue if info.venue != TBA else "a room to be announced"


def _panel_text(members: Sequence[_Member], without: int | None = None) -> str:
    return ", ".join(f"{m.name} ({m.text})" for m in members if m.person_id != without)


def _private_url(tournament: Tournament, person: Person) -> str:
    if not person.url_key or not tournament.source_url:
        return ""
    return f"{tournament.source_url.rstrip('/')}/{tournament.slug}/privateurls/{person.url_key}/"


def _round_context(draw: Draw) -> dict[str, Any]:
    return {
        "TOURN": draw.tournament.name,
        "TOURN_SHORT": draw.tournament.short_name,
        "ROUND": draw.round.name,
        "ROUND_ABBR": draw.round.abbreviation,
    }


def _debate_context(draw: Draw, info: _DebateInfo) -> dict[str, Any]:
    return {
        "ROUND": draw.round.name,
        "VENUE": info.venue,
        "DRAW": info.matchup,
        "TEAMS": [{k: v for k, v in t.items() if k != "team_id"} for t in info.teams],
        "DEBATE": f"{draw.tournament.name} {draw.round.name} @ {info.venue}",
    }


def _panel_members(info: _DebateInfo, you: int | None) -> list[dict[str, Any]]:
    return [
        {"name": m.name, "position": m.text, "position_key": m.key, "you": m.person_id == you}
        for m in info.members
    ]


def _adjudicator_reason(info: _DebateInfo, member: _Member, draw: Draw) -> str:
    role = "the only adjudicator" if member.key == "only" else member.text
    return f"you are {role} in {_where(info)} for {draw.round.name}"


def _adj_assignment(draw: Draw, info: _DebateInfo, member: _Member, person: Person) -> dict[str, Any]:
    return {
        **_debate_context(draw, info),
        "ROLE": Role.ADJUDICATOR.value,
        "POSITION": member.text,
        "POSITION_KEY": member.key,
        "PANEL": _panel_text(info.members, without=member.person_id),
        "FULL_PANEL": _panel_text(info.members),
        "PANEL_MEMBERS": _panel_members(info, member.person_id),
        "URL": _private_url(draw.tournament, person),
    }


def _speaker_assignment(
    draw: Draw, info: _DebateInfo, team: dict[str, Any], person: Person
) -> dict[str, Any]:
    others = [t for t in info.teams if t is not team]
    return {
        **_debate_context(draw, info),
        "ROLE": Role.SPEAKER.value,
        "TEAM": team["name"],
        "TEAM_NAME": team["full_name"],
        "SIDE": team["side"],
        "SIDE_CODE": team["side_code"],
        "OPPONENTS": ", ".join(f"{t['name']} ({t['side']})" for t in others),
        "PANEL": _panel_text(info.members),
        "FULL_PANEL": _panel_text(info.members),
        "PANEL_MEMBERS": _panel_members(info, None),
        "URL": _private_url(draw.tournament, person),
    }


def _speakers_by_team(people: Collection[Person]) -> dict[int, list[Person]]:
    result: dict[int, list[Person]] = {}
    for person in people:
        if person.role == Role.SPEAKER and person.team_id is not None and person.active:
            result.setdefault(person.team_id, []).append(person)
    return result


def _scores(draw: Draw, sheet: BallotSheet) -> list[dict[str, Any]]:
    teams: list[dict[str, Any]] = []
    for st in sheet.teams:
        team = draw.teams.get(st.team_id) if st.team_id is not None else None
        speeches: list[dict[str, Any]] = []
        for number, speech in enumerate(st.speeches, start=1):
            speaker = draw.people.get(speech.speaker_id) if speech.speaker_id is not None else None
            speeches.append(
                {
                    "position": number,
                    "speaker": speaker.name if speaker is not None else "(unknown speaker)",
                    "score": speech.score,
                    "ghost": speech.ghost,
                }
            )
        total = st.score
        if total is None and any(s["score"] is not None for s in speeches):
            total = sum(s["score"] for s in speeches if s["score"] is not None)
        teams.append(
            {
                "team": _team_label(team) if team is not None else "(unknown team)",
                "side": side_name(st.side),
                "side_code": st.side,
                "points": st.points,
                "win": st.win,
                "result": result_text(st.points, st.win),
                "total": total,
                "speeches": speeches,
            }
        )
    return teams


# -- merging by address ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    people: list[Person]
    role: Role
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (person name, reason)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    selected: bool = False
    notes: list[str] = field(default_factory=list)


class _Collector:
    def __init__(self, base: dict[str, Any]) -> None:
        self._base = base
        self._pending: dict[str, _Pending] = {}

    def add(
        self,
        person: Person,
        role: Role,
        reason: str,
        assignment: dict[str, Any],
        *,
        selected: bool = True,
        note: str = "",
    ) -> None:
        key = addresses.address_key(person.email)
        group = f"address:{key}" if key else f"person:{person.id}"
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = _Pending([person], role)
        elif all(p.id != person.id for p in pending.people):
            pending.people.append(person)
        if (person.name, reason) not in pending.reasons:
            pending.reasons.append((person.name, reason))
        if assignment not in pending.assignments:
            pending.assignments.append(assignment)
        pending.selected = pending.selected or selected
        if note and note not in pending.notes:
            pending.notes.append(note)

    def recipients(self) -> list[Recipient]:
        return [self._finish(p) for p in self._pending.values()]

    def _finish(self, pending: _Pending) -> Recipient:
        names: list[str] = []
        for person in pending.people:
            if person.name.casefold() not in (n.casefold() for n in names):
                names.append(person.name)
        sendable = [p for p in pending.people if p.sendable]
        chosen = sendable[0] if sendable else pending.people[0]
        address = chosen.email if chosen.email and chosen.email.strip() else None
        name = join_names(names)
        context: dict[str, Any] = {}
        for assignment in reversed(pending.assignments):  # the first assignment wins
            context.update(assignment)
        context.update(self._base)
        context["USER"] = name
        context["ROLE"] = pending.role.value
        context["ASSIGNMENTS"] = pending.assignments
        ids = (chosen.id, *(p.id for p in pending.people if p.id != chosen.id))
        return Recipient(
            person_id=chosen.id,
            name=name,
            address=address,
            address_key=addresses.address_key(address),
            role=pending.role.value,
            reasons=tuple(f"{who}: {why}" if len(names) > 1 else why for who, why in pending.reasons),
            context=context,
            problem=None if sendable else _address_problem(chosen),
            person_ids=ids,
            default_selected=pending.selected,
            note="" if pending.selected else "; ".join(pending.notes),
        )


def _address_problem(person: Person) -> str:
    if not person.email or not person.email.strip():
        return "no address"
    _, _, why = addresses.validate_address(person.email)
    return f"invalid address: {person.email}" + (f" ({why})" if why else "")
