"""What an importer hands to the store: tournament data keyed by the source's own keys.

Importers (Tabbycat REST, CSV) build an ``ImportBundle``; the store upserts it in one
transaction, matching rows by ``key`` so a re-import updates in place. Keys are strings unique
within their kind and tournament (Tabbycat ids, or names for CSV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tabmail.domain.errors import TabmailError
from tabmail.domain.tournament import Position, Role


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """A row or request that could not be imported. ``where`` names a file:line or a URL."""

    where: str
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(slots=True)
class TournamentData:
    slug: str
    name: str
    short_name: str = ""
    source: str = "csv"
    source_url: str | None = None
    # None: the source did not say (then the store keeps what it had).
    public_team_standings: bool | None = None
    team_standings: dict[str, dict[str, float]] | None = None  # team key -> {"points": n, "wins": n}


@dataclass(slots=True)
class InstitutionData:
    key: str
    name: str
    code: str = ""
    region: str = ""


@dataclass(slots=True)
class VenueData:
    key: str
    name: str


@dataclass(slots=True)
class TeamData:
    key: str
    name: str
    short_name: str = ""
    code_name: str = ""
    institution_key: str | None = None
    emoji: str = ""
    break_categories: list[str] | None = None  # names; None: unknown


@dataclass(slots=True)
class PersonData:
    key: str
    name: str
    role: Role
    email: str | None = None
    team_key: str | None = None
    institution_key: str | None = None
    url_key: str | None = None
    phone: str | None = None
    # False when the source could not show the field (a non-admin token): keep what we have.
    email_known: bool = True
    url_key_known: bool = True
    # Adjudicators: {"independent": bool, "adj_core": bool, "conflicts": [names]}; None: unknown.
    details: dict[str, Any] | None = None


@dataclass(slots=True)
class RoundData:
    seq: int
    name: str
    abbreviation: str = ""
    stage: str = "P"
    draw_status: str = "N"
    starts_at: datetime | None = None
    motions: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, text, reference)
    motion_info: dict[int, str] = field(default_factory=dict)  # motion seq -> info slide, plain text
    motions_released: bool | None = None  # None: the source did not say
    available_team_keys: list[str] | None = None  # None: unknown


@dataclass(slots=True)
class DebateData:
    key: str
    round_seq: int
    venue_key: str | None
    teams: list[tuple[str, str]] = field(default_factory=list)  # (team key, side)
    adjudicators: list[tuple[str, Position]] = field(default_factory=list)  # (person key, position)
    sides_confirmed: bool = True


@dataclass(slots=True)
class SpeechData:
    speaker_key: str | None
    score: float | None
    ghost: bool = False


@dataclass(slots=True)
class SheetTeamData:
    team_key: str | None
    side: str
    points: int | None = None
    win: bool | None = None
    score: float | None = None
    speeches: list[SpeechData] = field(default_factory=list)


@dataclass(slots=True)
class SheetData:
    adjudicator_key: str | None
    teams: list[SheetTeamData] = field(default_factory=list)


@dataclass(slots=True)
class BallotData:
    key: str
    debate_key: str
    confirmed: bool
    discarded: bool = False
    version: int = 1
    motion_text: str | None = None
    sheets: list[SheetData] = field(default_factory=list)


@dataclass(slots=True)
class ImportBundle:
    tournament: TournamentData
    institutions: list[InstitutionData] = field(default_factory=list)
    venues: list[VenueData] = field(default_factory=list)
    teams: list[TeamData] = field(default_factory=list)
    people: list[PersonData] = field(default_factory=list)
    rounds: list[RoundData] = field(default_factory=list)
    debates: list[DebateData] = field(default_factory=list)
    ballots: list[BallotData] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    # Rounds whose debates were fetched: only their draws are replaced on re-import.
    complete_rounds: set[int] = field(default_factory=set)
    # False when the source listed only part of the people (never mark others inactive then).
    people_complete: bool = True

    def check_size(self, limits: dict[str, int] | None = None) -> None:
        """Raise TabmailError when the import is larger than any tournament tabmail handles
        (BUNDLE_LIMITS, docs/limits.md): one clear line instead of a store filling the memory."""
        for what, limit in (limits or BUNDLE_LIMITS).items():
            count = len(getattr(self, what))
            if count > limit:
                raise TabmailError(
                    f"{self.tournament.name} holds {count:,} {what}; tabmail imports up to {limit:,} "
                    "per tournament (see docs/limits.md)"
                )


# About 30 times a world championship (~1,500 people, ~400 teams, ~1,000 debates).
BUNDLE_LIMITS: dict[str, int] = {
    "people": 50_000,
    "teams": 20_000,
    "institutions": 20_000,
    "venues": 20_000,
    "rounds": 500,
    "debates": 50_000,
    "ballots": 100_000,
}


@dataclass(frozen=True, slots=True)
class ImportResult:
    tournament_id: int
    slug: str
    created: dict[str, int]
    updated: dict[str, int]
    address_changes: list[tuple[str, str | None, str | None]]  # (person name, old, new)
    deactivated: list[str]
    problems: list[ImportProblem]
