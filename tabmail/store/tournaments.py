"""Tournament data read back as domain objects; an import is applied by store/import_apply.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabmail.domain.actor import Actor, AddressChange
from tabmail.domain.addresses import address_key, validate_address
from tabmail.domain.errors import TabmailError
from tabmail.domain.notification import Templates
from tabmail.domain.tournament import (
    Ballot,
    BallotSheet,
    Debate,
    DebateAdjudicator,
    DebateTeam,
    Draw,
    Institution,
    Motion,
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
from tabmail.store.db import Database
from tabmail.store.models import (
    AddressChangeRow,
    BallotRow,
    DebateRow,
    InstitutionRow,
    PersonRow,
    RoundRow,
    TeamRow,
    TournamentRow,
    VenueRow,
)

if TYPE_CHECKING:  # an import's bundle: store/import_apply.py
    from tabmail.domain.imported import ImportBundle, ImportResult


class NotFound(TabmailError, LookupError):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def tournament_from_row(r: TournamentRow) -> Tournament:
    public = (r.details or {}).get("public_team_standings")
    return Tournament(
        r.id,
        r.slug,
        r.name,
        r.short_name or r.name,
        r.source,
        r.source_url,
        public if isinstance(public, bool) else None,
    )


# The columns a Person and a Team are made of: reads select these as plain rows (same attribute
# names), not ORM objects: building 1,150 PersonRow objects (identity map, instrumentation)
# cost more than the rest of a BP round's draw load.
PERSON_COLUMNS = (
    PersonRow.id,
    PersonRow.tournament_id,
    PersonRow.name,
    PersonRow.role,
    PersonRow.email,
    PersonRow.email_valid,
    PersonRow.email_key,
    PersonRow.team_id,
    PersonRow.institution_id,
    PersonRow.url_key,
    PersonRow.key,
    PersonRow.active,
    PersonRow.details,
)
TEAM_COLUMNS = (
    TeamRow.id,
    TeamRow.tournament_id,
    TeamRow.name,
    TeamRow.short_name,
    TeamRow.code_name,
    TeamRow.institution_id,
    TeamRow.emoji,
    TeamRow.break_categories,
)


def person_from_row(r: Any, team_name: str | None = None, inst_name: str | None = None) -> Person:
    """A Person from its ORM row or a row of ``PERSON_COLUMNS``."""
    details = r.details or {}
    return Person(
        id=r.id,
        tournament_id=r.tournament_id,
        name=r.name,
        role=Role(r.role),
        email=r.email,
        email_valid=r.email_valid,
        email_key=r.email_key,
        team_id=r.team_id,
        institution_id=r.institution_id,
        url_key=r.url_key,
        external_id=r.key,
        active=r.active,
        team_name=team_name,
        institution_name=inst_name,
        independent=bool(details.get("independent", False)),
        adj_core=bool(details.get("adj_core", False)),
        conflicts=tuple(str(c) for c in details.get("conflicts", ()) or ()),
    )


def round_from_row(r: RoundRow) -> Round:
    motions = tuple(
        Motion(int(m[0]), str(m[1]), str(m[2] if len(m) > 2 else ""), str(m[3] if len(m) > 3 else ""))
        for m in r.motions or []
    )
    return Round(
        r.id,
        r.tournament_id,
        r.seq,
        r.name,
        r.abbreviation,
        r.stage,
        r.draw_status,
        r.starts_at,
        motions,
        r.motions_released,
        tuple(int(t) for t in r.available_teams) if r.available_teams is not None else None,
    )


def team_from_row(r: Any) -> Team:
    """A Team from its ORM row or a row of ``TEAM_COLUMNS``."""
    return Team(
        r.id,
        r.tournament_id,
        r.name,
        r.short_name or r.name,
        r.code_name,
        r.institution_id,
        r.emoji,
        tuple(r.break_categories or ()),
    )


def _stamp(session: Session) -> dict[str, str | None]:
    """Who makes this change, on which machine (the database's actor, see Database.actor)."""
    actor: Actor | None = session.info.get("actor")
    return {"changed_by": actor.who, "changed_on": actor.machine} if actor else {}


def set_person_email(
    session: Session, row: PersonRow, email: str | None, source: str, *, record: bool = True
) -> bool:
    """Set an address, validating it and recording the change. True when it changed."""
    email = email.strip() if email else None
    email = email or None
    if email == row.email:
        return False
    if record:
        session.add(
            AddressChangeRow(
                person_id=row.id, old_address=row.email, new_address=email, source=source, **_stamp(session)
            )
        )
    row.email = email
    valid, normalised, problem = validate_address(email)
    row.email_valid = valid
    row.email_problem = problem if email else None
    row.email_key = address_key(normalised if valid else email)
    row.updated_at = _now()
    return True


class TournamentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- import -------------------------------------------------------------------
    def apply_import(self, bundle: ImportBundle) -> ImportResult:
        """Upsert a whole import in ONE transaction. Matching is by the source's keys."""
        from tabmail.store.import_apply import ImportUpsert

        with self._db.session() as s:
            return ImportUpsert(s, bundle).run()

    # -- reading ------------------------------------------------------------------
    def list_all(self) -> list[Tournament]:
        with self._db.session() as s:
            return [
                tournament_from_row(r) for r in s.scalars(select(TournamentRow).order_by(TournamentRow.name))
            ]

    def get(self, slug: str) -> Tournament:
        with self._db.session() as s:
            row = s.scalar(select(TournamentRow).where(TournamentRow.slug == slug))
            if row is None:
                known = ", ".join(s.scalars(select(TournamentRow.slug))) or "none imported yet"
                raise NotFound(f"no tournament with slug {slug!r} (known: {known})")
            return tournament_from_row(row)

    def get_by_id(self, tournament_id: int) -> Tournament:
        with self._db.session() as s:
            row = s.get(TournamentRow, tournament_id)
            if row is None:
                raise NotFound(f"no tournament with id {tournament_id}")
            return tournament_from_row(row)

    def rounds(self, tournament_id: int) -> list[Round]:
        with self._db.session() as s:
            rows = s.scalars(
                select(RoundRow).where(RoundRow.tournament_id == tournament_id).order_by(RoundRow.seq)
            )
            return [round_from_row(r) for r in rows]

    def rounds_by_tournament(self) -> dict[int, list[Round]]:
        """Every tournament's rounds in order, in one query (the window's tree at start-up)."""
        out: dict[int, list[Round]] = {}
        with self._db.session() as s:
            for r in s.scalars(select(RoundRow).order_by(RoundRow.tournament_id, RoundRow.seq)):
                out.setdefault(r.tournament_id, []).append(round_from_row(r))
        return out

    def get_round(self, tournament_id: int, seq: int) -> Round:
        with self._db.session() as s:
            row = s.scalar(
                select(RoundRow).where(RoundRow.tournament_id == tournament_id, RoundRow.seq == seq)
            )
            if row is None:
                seqs = ", ".join(
                    str(x)
                    for x in s.scalars(
                        select(RoundRow.seq)
                        .where(RoundRow.tournament_id == tournament_id)
                        .order_by(RoundRow.seq)
                    )
                )
                raise NotFound(f"no round {seq} in this tournament (rounds: {seqs or 'none'})")
            return round_from_row(row)

    def people(self, tournament_id: int, include_inactive: bool = True) -> list[Person]:
        with self._db.session() as s:
            teams = {
                i: n
                for i, n in s.execute(
                    select(TeamRow.id, TeamRow.name).where(TeamRow.tournament_id == tournament_id)
                )
            }
            insts = {
                i: n
                for i, n in s.execute(
                    select(InstitutionRow.id, InstitutionRow.name).where(
                        InstitutionRow.tournament_id == tournament_id
                    )
                )
            }
            q = select(*PERSON_COLUMNS).where(PersonRow.tournament_id == tournament_id)
            if not include_inactive:
                q = q.where(PersonRow.active.is_(True))
            rows = s.execute(q.order_by(PersonRow.role, PersonRow.name))
            return [
                person_from_row(r, teams.get(r.team_id or -1), insts.get(r.institution_id or -1))
                for r in rows
            ]

    def teams(self, tournament_id: int) -> dict[int, Team]:
        with self._db.session() as s:
            rows = s.scalars(select(TeamRow).where(TeamRow.tournament_id == tournament_id))
            return {r.id: team_from_row(r) for r in rows}

    def institutions(self, tournament_id: int) -> dict[int, Institution]:
        with self._db.session() as s:
            rows = s.scalars(select(InstitutionRow).where(InstitutionRow.tournament_id == tournament_id))
            return {r.id: Institution(r.id, r.name, r.code) for r in rows}

    def team_standings(self, tournament_id: int) -> dict[int, dict[str, float]] | None:
        """The site's team standings as last imported (team id -> {"points": n, "wins": n}),
        None when the site never answered."""
        with self._db.session() as s:
            row = s.get(TournamentRow, tournament_id)
            if row is None:
                raise NotFound(f"no tournament with id {tournament_id}")
            raw = (row.details or {}).get("team_standings")
            if not isinstance(raw, dict):
                return None
            return {int(k): {m: float(v) for m, v in metrics.items()} for k, metrics in raw.items()}

    def get_person(self, person_id: int) -> Person:
        with self._db.session() as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                raise NotFound(f"no person with id {person_id}")
            return person_from_row(row)

    # -- per-tournament templates --------------------------------------------------------
    def saved_templates(self, tournament_id: int, key: str) -> Templates | None:
        """The director's edited templates for this tournament and kind (e.g. "draw:all")."""
        with self._db.session() as s:
            row = s.get(TournamentRow, tournament_id)
            if row is None:
                raise NotFound(f"no tournament with id {tournament_id}")
            saved = (row.settings or {}).get("templates", {}).get(key)
            if not saved:
                return None
            return Templates(saved["subject"], saved["text"], saved.get("html"))

    def save_templates(self, tournament_id: int, key: str, templates: Templates | None) -> None:
        """Keep edited templates for the tournament; None goes back to the shipped defaults."""
        with self._db.session() as s:
            row = s.get(TournamentRow, tournament_id)
            if row is None:
                raise NotFound(f"no tournament with id {tournament_id}")
            settings = dict(row.settings or {})
            stored = dict(settings.get("templates", {}))
            if templates is None:
                stored.pop(key, None)
            else:
                stored[key] = {"subject": templates.subject, "text": templates.text, "html": templates.html}
            settings["templates"] = stored
            row.settings = settings  # a new dict, so the JSON column is written

    def set_person_email(self, person_id: int, email: str | None, source: str) -> Person:
        """Change an address (validated; the change is recorded). Returns the updated person."""
        with self._db.session() as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                raise NotFound(f"no person with id {person_id}")
            set_person_email(s, row, email, source)
            s.flush()
            return person_from_row(row)

    def record_write_back(self, person_id: int, address: str) -> None:
        """Note in the address history that ``address`` was written back to the source."""
        with self._db.session() as s:
            s.add(
                AddressChangeRow(
                    person_id=person_id,
                    old_address=address,
                    new_address=address,
                    source="tabbycat",
                    **_stamp(s),
                )
            )

    def address_history(self, person_id: int) -> list[AddressChange]:
        with self._db.session() as s:
            rows = s.scalars(
                select(AddressChangeRow)
                .where(AddressChangeRow.person_id == person_id)
                .order_by(AddressChangeRow.changed_at)
            )
            return [
                AddressChange(
                    r.changed_at, r.old_address, r.new_address, r.source, r.changed_by, r.changed_on
                )
                for r in rows
            ]

    def draw(self, tournament_id: int, seq: int) -> Draw:
        """The round's debates with every team, person, venue and institution they mention."""
        with self._db.session() as s:
            trow = s.get(TournamentRow, tournament_id)
            if trow is None:
                raise NotFound(f"no tournament with id {tournament_id}")
            rnd = self.get_round(tournament_id, seq)
            debate_rows = list(
                s.scalars(select(DebateRow).where(DebateRow.round_id == rnd.id).order_by(DebateRow.id))
            )
            debates = tuple(
                Debate(
                    id=d.id,
                    round_id=d.round_id,
                    venue_id=d.venue_id,
                    teams=tuple(DebateTeam(t.team_id, t.side) for t in d.teams),
                    adjudicators=tuple(
                        DebateAdjudicator(a.person_id, Position(a.position)) for a in d.adjudicators
                    ),
                    external_id=d.key,
                    sides_confirmed=d.sides_confirmed,
                )
                for d in debate_rows
            )
            teams = {
                r.id: team_from_row(r)
                for r in s.execute(select(*TEAM_COLUMNS).where(TeamRow.tournament_id == tournament_id))
            }
            insts = {
                r.id: Institution(r.id, r.name, r.code)
                for r in s.scalars(
                    select(InstitutionRow).where(InstitutionRow.tournament_id == tournament_id)
                )
            }
            people = {
                r.id: person_from_row(
                    r,
                    teams[r.team_id].name if r.team_id in teams else None,
                    insts[r.institution_id].name if r.institution_id in insts else None,
                )
                for r in s.execute(select(*PERSON_COLUMNS).where(PersonRow.tournament_id == tournament_id))
            }
            venues = {
                r.id: Venue(r.id, r.name)
                for r in s.scalars(select(VenueRow).where(VenueRow.tournament_id == tournament_id))
            }
            ballots: dict[int, Ballot] = {}
            if debate_rows:
                ids = [d.id for d in debate_rows]
                rows = s.scalars(
                    select(BallotRow).where(BallotRow.debate_id.in_(ids)).order_by(BallotRow.version)
                )
                for b in rows:
                    ballot = _ballot_from_row(b)
                    current = ballots.get(b.debate_id)
                    # The current ballot: confirmed and not discarded beats anything else; then newest.
                    if b.discarded:
                        if current is None:
                            continue
                        continue
                    if current is None or (b.confirmed, b.version) >= (current.confirmed, current.version):
                        ballots[b.debate_id] = ballot
            return Draw(tournament_from_row(trow), rnd, debates, teams, people, venues, insts, ballots)


def _ballot_from_row(b: BallotRow) -> Ballot:
    sheets = tuple(
        BallotSheet(
            adjudicator_id=sh.get("adjudicator_id"),
            teams=tuple(
                SheetTeam(
                    team_id=t.get("team_id"),
                    side=str(t.get("side", "")),
                    points=t.get("points"),
                    win=t.get("win"),
                    score=t.get("score"),
                    speeches=tuple(
                        Speech(sp.get("speaker_id"), sp.get("score"), bool(sp.get("ghost", False)))
                        for sp in t.get("speeches", [])
                    ),
                )
                for t in sh.get("teams", [])
            ),
        )
        for sh in b.sheets or []
    )
    return Ballot(b.id, b.debate_id, b.confirmed, b.discarded, b.version, b.motion_text, sheets, b.key)
