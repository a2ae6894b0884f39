"""Tournament data: upserting imports and reading them back as domain objects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabmail.domain.actor import Actor, AddressChange
from tabmail.domain.addresses import address_key, validate_address
from tabmail.domain.errors import TabmailError
from tabmail.domain.imported import ImportBundle, ImportResult
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
    DebateAdjudicatorRow,
    DebateRow,
    DebateTeamRow,
    InstitutionRow,
    PersonRow,
    RoundRow,
    TeamRow,
    TournamentRow,
    VenueRow,
)


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


def person_from_row(r: PersonRow, team_name: str | None = None, inst_name: str | None = None) -> Person:
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


def team_from_row(r: TeamRow) -> Team:
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
        with self._db.session() as s:
            return _Upsert(s, bundle).run()

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
            q = select(PersonRow).where(PersonRow.tournament_id == tournament_id)
            if not include_inactive:
                q = q.where(PersonRow.active.is_(True))
            rows = s.scalars(q.order_by(PersonRow.role, PersonRow.name))
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
                for r in s.scalars(select(TeamRow).where(TeamRow.tournament_id == tournament_id))
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
                for r in s.scalars(select(PersonRow).where(PersonRow.tournament_id == tournament_id))
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


class _Upsert:
    def __init__(self, s: Session, bundle: ImportBundle) -> None:
        self.s = s
        self.b = bundle
        self.created: dict[str, int] = {}
        self.updated: dict[str, int] = {}
        self.address_changes: list[tuple[str, str | None, str | None]] = []
        self.deactivated: list[str] = []

    def _count(self, kind: str, created: bool) -> None:
        target = self.created if created else self.updated
        target[kind] = target.get(kind, 0) + 1

    def _existing(self, model: Any, tid: int) -> dict[str, Any]:
        return {r.key: r for r in self.s.scalars(select(model).where(model.tournament_id == tid))}

    @staticmethod
    def _assign(row: Any, values: dict[str, Any]) -> bool:
        changed = False
        for k, v in values.items():
            if getattr(row, k) != v:
                setattr(row, k, v)
                changed = True
        return changed

    def _upsert_keyed(
        self, kind: str, model: Any, tid: int, items: Iterable[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        existing = self._existing(model, tid)
        for key, values in items:
            row = existing.get(key)
            if row is None:
                row = model(tournament_id=tid, key=key, **values)
                self.s.add(row)
                existing[key] = row
                self._count(kind, True)
            elif self._assign(row, values):
                self._count(kind, False)
        self.s.flush()
        return existing

    def run(self) -> ImportResult:
        s, b = self.s, self.b
        t = s.scalar(select(TournamentRow).where(TournamentRow.slug == b.tournament.slug))
        if t is None:
            t = TournamentRow(slug=b.tournament.slug, name=b.tournament.name, settings={})
            s.add(t)
            self._count("tournament", True)
        t.name = b.tournament.name
        t.short_name = b.tournament.short_name or b.tournament.name
        t.source = b.tournament.source
        t.source_url = b.tournament.source_url
        t.imported_at = _now()
        details = dict(t.details or {})
        if b.tournament.public_team_standings is not None:
            details["public_team_standings"] = b.tournament.public_team_standings
        standings_by_key = b.tournament.team_standings
        if details != (t.details or {}):
            t.details = details
        s.flush()
        tid = t.id

        insts = self._upsert_keyed(
            "institution",
            InstitutionRow,
            tid,
            ((i.key, {"name": i.name, "code": i.code, "region": i.region}) for i in b.institutions),
        )
        venues = self._upsert_keyed("venue", VenueRow, tid, ((v.key, {"name": v.name}) for v in b.venues))

        def inst_id(key: str | None) -> int | None:
            return insts[key].id if key and key in insts else None

        teams = self._upsert_keyed(
            "team",
            TeamRow,
            tid,
            (
                (
                    tm.key,
                    {
                        "name": tm.name,
                        "short_name": tm.short_name or tm.name,
                        "code_name": tm.code_name,
                        "emoji": tm.emoji,
                        "institution_id": inst_id(tm.institution_key),
                        "active": True,
                        **(
                            {"break_categories": tm.break_categories}
                            if tm.break_categories is not None
                            else {}
                        ),
                    },
                )
                for tm in b.teams
            ),
        )
        if standings_by_key is not None:
            details = dict(t.details or {})
            details["team_standings"] = {
                str(teams[k].id): v for k, v in standings_by_key.items() if k in teams
            }
            t.details = details

        people = self._existing(PersonRow, tid)
        seen: set[str] = set()
        for p in b.people:
            seen.add(p.key)
            values: dict[str, Any] = {
                "name": p.name,
                "role": p.role.value,
                "team_id": teams[p.team_key].id if p.team_key and p.team_key in teams else None,
                "institution_id": inst_id(p.institution_key),
                "active": True,
            }
            if p.url_key_known:
                values["url_key"] = p.url_key
            if p.phone is not None:
                values["phone"] = p.phone
            if p.details is not None:
                values["details"] = p.details
            row = people.get(p.key)
            if row is None:
                row = PersonRow(tournament_id=tid, key=p.key, email=None, email_valid=False, **values)
                s.add(row)
                people[p.key] = row
                self._count("person", True)
                if p.email_known and p.email:
                    # A first address is not a change: nothing goes into the address history.
                    set_person_email(s, row, p.email, "import", record=False)
                continue
            changed = self._assign(row, values)
            if p.email_known:
                old = row.email
                if set_person_email(s, row, p.email, "import"):
                    self.address_changes.append((row.name, old, row.email))
                    changed = True
            if changed:
                row.updated_at = _now()
                self._count("person", False)
        if b.people_complete:
            for key, row in people.items():
                if key not in seen and row.active:
                    row.active = False
                    self.deactivated.append(row.name)
        s.flush()

        rounds = {r.seq: r for r in s.scalars(select(RoundRow).where(RoundRow.tournament_id == tid))}
        for rd in b.rounds:
            values = {
                "name": rd.name,
                "abbreviation": rd.abbreviation,
                "stage": rd.stage,
                "draw_status": rd.draw_status,
                "starts_at": rd.starts_at,
                "motions": [[*m, rd.motion_info.get(m[0], "")] for m in rd.motions],
            }
            if rd.motions_released is not None:
                values["motions_released"] = rd.motions_released
            if rd.available_team_keys is not None:
                values["available_teams"] = sorted(teams[k].id for k in rd.available_team_keys if k in teams)
            row = rounds.get(rd.seq)
            if row is None:
                row = RoundRow(tournament_id=tid, seq=rd.seq, **values)
                s.add(row)
                rounds[rd.seq] = row
                self._count("round", True)
            elif self._assign(row, values):
                self._count("round", False)
        s.flush()

        debates_by_key: dict[tuple[int, str], DebateRow] = {}
        for seq in sorted(b.complete_rounds):
            if seq not in rounds:
                continue
            rid = rounds[seq].id
            existing = {d.key: d for d in s.scalars(select(DebateRow).where(DebateRow.round_id == rid))}
            incoming = [d for d in b.debates if d.round_seq == seq]
            keep = {d.key for d in incoming}
            for key, row in existing.items():
                if key not in keep:
                    s.delete(row)
            for d in incoming:
                row = existing.get(d.key)
                created = row is None
                if row is None:
                    row = DebateRow(round_id=rid, key=d.key)
                    s.add(row)
                row.venue_id = venues[d.venue_key].id if d.venue_key and d.venue_key in venues else None
                row.sides_confirmed = d.sides_confirmed
                new_teams = [(teams[k].id, side) for k, side in d.teams if k in teams]
                new_adjs = [(people[k].id, pos.value) for k, pos in d.adjudicators if k in people]
                old_teams = [(x.team_id, x.side) for x in row.teams]
                old_adjs = [(x.person_id, x.position) for x in row.adjudicators]
                if new_teams != old_teams:
                    row.teams = [DebateTeamRow(team_id=tid_, side=side) for tid_, side in new_teams]
                if new_adjs != old_adjs:
                    row.adjudicators = [
                        DebateAdjudicatorRow(person_id=pid, position=pos) for pid, pos in new_adjs
                    ]
                if created or new_teams != old_teams or new_adjs != old_adjs:
                    self._count("debate", created)
                debates_by_key[(seq, d.key)] = row
        s.flush()

        debate_by_key = {key: row for (_seq, key), row in debates_by_key.items()}
        if b.ballots:
            ids = [r.id for r in debate_by_key.values()]
            existing_b = {
                (r.debate_id, r.key): r
                for r in s.scalars(select(BallotRow).where(BallotRow.debate_id.in_(ids)))
            }
            for bd in b.ballots:
                debate = debate_by_key.get(bd.debate_key)
                if debate is None:
                    continue
                sheets = [
                    {
                        "adjudicator_id": people[sh.adjudicator_key].id
                        if sh.adjudicator_key in people
                        else None,
                        "teams": [
                            {
                                "team_id": teams[st.team_key].id if st.team_key in teams else None,
                                "side": st.side,
                                "points": st.points,
                                "win": st.win,
                                "score": st.score,
                                "speeches": [
                                    {
                                        "speaker_id": people[sp.speaker_key].id
                                        if sp.speaker_key in people
                                        else None,
                                        "score": sp.score,
                                        "ghost": sp.ghost,
                                    }
                                    for sp in st.speeches
                                ],
                            }
                            for st in sh.teams
                        ],
                    }
                    for sh in bd.sheets
                ]
                values = {
                    "confirmed": bd.confirmed,
                    "discarded": bd.discarded,
                    "version": bd.version,
                    "motion_text": bd.motion_text,
                    "sheets": sheets,
                }
                row = existing_b.get((debate.id, bd.key))
                if row is None:
                    s.add(BallotRow(debate_id=debate.id, key=bd.key, **values))
                    self._count("ballot", True)
                elif self._assign(row, values):
                    self._count("ballot", False)
        s.flush()
        return ImportResult(
            tid, t.slug, self.created, self.updated, self.address_changes, self.deactivated, list(b.problems)
        )
