"""Tournament data as tabmail keeps it (ids are tabmail's own database ids)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Role(enum.StrEnum):
    SPEAKER = "speaker"
    ADJUDICATOR = "adjudicator"


class Position(enum.StrEnum):
    CHAIR = "chair"
    PANELLIST = "panellist"
    TRAINEE = "trainee"


@dataclass(frozen=True, slots=True)
class Tournament:
    id: int
    slug: str
    name: str
    short_name: str
    source: str  # "tabbycat" | "csv" | "demo"
    source_url: str | None = None
    # None: the site did not say (CSV, or a token that cannot read the preferences).
    public_team_standings: bool | None = None


@dataclass(frozen=True, slots=True)
class Institution:
    id: int
    name: str
    code: str


@dataclass(frozen=True, slots=True)
class Venue:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Team:
    id: int
    tournament_id: int
    name: str
    short_name: str
    code_name: str
    institution_id: int | None
    emoji: str = ""
    break_categories: tuple[str, ...] = ()  # names, as the site lists them


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    tournament_id: int
    name: str
    role: Role
    email: str | None
    email_valid: bool
    email_key: str | None
    team_id: int | None = None
    institution_id: int | None = None
    url_key: str | None = None
    external_id: str | None = None
    active: bool = True  # false once a re-import no longer lists the person
    # Denormalised display helpers, filled by repositories where cheap.
    team_name: str | None = None
    institution_name: str | None = None
    # Adjudicators: the site's flags and conflicts (names), where the source exposes them.
    independent: bool = False
    adj_core: bool = False
    conflicts: tuple[str, ...] = ()

    @property
    def sendable(self) -> bool:
        return bool(self.email) and self.email_valid


@dataclass(frozen=True, slots=True)
class Motion:
    seq: int
    text: str
    reference: str = ""
    info_slide: str = ""  # plain text


@dataclass(frozen=True, slots=True)
class Round:
    id: int
    tournament_id: int
    seq: int
    name: str
    abbreviation: str
    stage: str = "P"  # P preliminary, E elimination
    draw_status: str = "N"  # N none, D draft, C confirmed, R released
    starts_at: datetime | None = None
    motions: tuple[Motion, ...] = ()
    motions_released: bool | None = None  # None: the source did not say
    # Teams marked available this round on the site; None when unknown (or never marked).
    available_team_ids: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class DebateTeam:
    team_id: int
    side: str  # og/oo/cg/co, aff/neg, or a number as text


@dataclass(frozen=True, slots=True)
class DebateAdjudicator:
    person_id: int
    position: Position


@dataclass(frozen=True, slots=True)
class Debate:
    id: int
    round_id: int
    venue_id: int | None
    teams: tuple[DebateTeam, ...] = ()
    adjudicators: tuple[DebateAdjudicator, ...] = ()
    external_id: str | None = None
    sides_confirmed: bool = True


@dataclass(frozen=True, slots=True)
class Speech:
    speaker_id: int | None
    score: float | None
    ghost: bool = False


@dataclass(frozen=True, slots=True)
class SheetTeam:
    team_id: int | None
    side: str
    points: int | None
    win: bool | None
    score: float | None
    speeches: tuple[Speech, ...] = ()


@dataclass(frozen=True, slots=True)
class BallotSheet:
    adjudicator_id: int | None  # None for a consensus sheet
    teams: tuple[SheetTeam, ...] = ()


@dataclass(frozen=True, slots=True)
class Ballot:
    id: int
    debate_id: int
    confirmed: bool
    discarded: bool
    version: int
    motion_text: str | None = None
    sheets: tuple[BallotSheet, ...] = ()
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Draw:
    """A round with everything needed to describe its debates, looked up once."""

    tournament: Tournament
    round: Round
    debates: tuple[Debate, ...]
    teams: dict[int, Team] = field(default_factory=dict)
    people: dict[int, Person] = field(default_factory=dict)
    venues: dict[int, Venue] = field(default_factory=dict)
    institutions: dict[int, Institution] = field(default_factory=dict)
    ballots: dict[int, Ballot] = field(default_factory=dict)  # debate id -> current ballot
