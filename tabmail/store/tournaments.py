"""Tournament data read back as domain objects; an import is applied by store/import_apply.py.

Plain SQL (store/sql.py): a send reads its round through here without importing SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tabmail.domain.actor import AddressChange
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
from tabmail.store.sql import Json, Sql, as_required_time, as_time

if TYPE_CHECKING:  # an import's bundle: store/import_apply.py
    from tabmail.domain.imported import ImportBundle, ImportResult


class NotFound(TabmailError, LookupError):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def address_fields(email: str | None) -> dict[str, Any]:
    """What a person's row keeps of an address: it (stripped; None when empty), whether it is
    valid, the problem with it, and its key (an import and an edit set the same)."""
    email = (email.strip() if email else None) or None
    valid, normalised, problem = validate_address(email)
    return {
        "email": email,
        "email_valid": valid,
        "email_problem": problem if email else None,
        "email_key": address_key(normalised if valid else email),
    }


# The columns each domain object is made of, in the order its function below reads them.
_TOURNAMENT = "id, slug, name, short_name, source, source_url, details"
_ROUND = (
    "id, tournament_id, seq, name, abbreviation, stage, draw_status, starts_at, motions, "
    "motions_released, available_teams"
)
_PERSON = (
    "p.id, p.tournament_id, p.name, p.role, p.email, p.email_valid, p.email_key, p.team_id, "
    "p.institution_id, p.url_key, p.key, p.active, p.details"
)
_TEAM = "id, tournament_id, name, short_name, code_name, institution_id, emoji, break_categories"


def _tournament(q: Sql, r: Sequence[Any]) -> Tournament:
    public = (q.json(r[6]) or {}).get("public_team_standings")
    return Tournament(
        r[0], r[1], r[2], r[3] or r[2], r[4], r[5], public if isinstance(public, bool) else None
    )


def _round(q: Sql, r: Sequence[Any]) -> Round:
    motions = tuple(
        Motion(int(m[0]), str(m[1]), str(m[2] if len(m) > 2 else ""), str(m[3] if len(m) > 3 else ""))
        for m in q.json(r[8]) or []
    )
    available = q.json(r[10])
    return Round(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        as_time(r[7]),
        motions,
        None if r[9] is None else bool(r[9]),
        tuple(int(t) for t in available) if available is not None else None,
    )


def _person(q: Sql, r: Sequence[Any], team_name: str | None = None, inst_name: str | None = None) -> Person:
    details = q.json(r[12]) or {}
    return Person(
        id=r[0],
        tournament_id=r[1],
        name=r[2],
        role=Role(r[3]),
        email=r[4],
        email_valid=bool(r[5]),
        email_key=r[6],
        team_id=r[7],
        institution_id=r[8],
        url_key=r[9],
        external_id=r[10],
        active=bool(r[11]),
        team_name=team_name,
        institution_name=inst_name,
        independent=bool(details.get("independent", False)),
        adj_core=bool(details.get("adj_core", False)),
        conflicts=tuple(str(c) for c in details.get("conflicts", ()) or ()),
    )


def _team(q: Sql, r: Sequence[Any]) -> Team:
    return Team(r[0], r[1], r[2], r[3] or r[2], r[4], r[5], r[6], tuple(q.json(r[7]) or ()))


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
        with self._db.sql() as q:
            return [
                _tournament(q, r) for r in q.rows(f"SELECT {_TOURNAMENT} FROM tournaments ORDER BY name, id")
            ]

    def get(self, slug: str) -> Tournament:
        with self._db.sql() as q:
            row = q.one(f"SELECT {_TOURNAMENT} FROM tournaments WHERE slug = :slug", {"slug": slug})
            if row is None:
                known = ", ".join(r[0] for r in q.rows("SELECT slug FROM tournaments ORDER BY id"))
                raise NotFound(f"no tournament with slug {slug!r} (known: {known or 'none imported yet'})")
            return _tournament(q, row)

    def _tournament_row(self, q: Sql, tournament_id: int, columns: str) -> Sequence[Any]:
        row = q.one(f"SELECT {columns} FROM tournaments WHERE id = :id", {"id": tournament_id})
        if row is None:
            raise NotFound(f"no tournament with id {tournament_id}")
        return row

    def get_by_id(self, tournament_id: int) -> Tournament:
        with self._db.sql() as q:
            return _tournament(q, self._tournament_row(q, tournament_id, _TOURNAMENT))

    def rounds(self, tournament_id: int) -> list[Round]:
        with self._db.sql() as q:
            rows = q.rows(
                f"SELECT {_ROUND} FROM rounds WHERE tournament_id = :t ORDER BY seq", {"t": tournament_id}
            )
            return [_round(q, r) for r in rows]

    def rounds_by_tournament(self) -> dict[int, list[Round]]:
        """Every tournament's rounds in order, in one query (the window's tree at start-up)."""
        out: dict[int, list[Round]] = {}
        with self._db.sql() as q:
            for r in q.rows(f"SELECT {_ROUND} FROM rounds ORDER BY tournament_id, seq"):
                out.setdefault(r[1], []).append(_round(q, r))
        return out

    def get_round(self, tournament_id: int, seq: int) -> Round:
        with self._db.sql() as q:
            return self._find_round(q, tournament_id, seq)

    @staticmethod
    def _find_round(q: Sql, tournament_id: int, seq: int) -> Round:
        params = {"t": tournament_id, "seq": seq}
        row = q.one(f"SELECT {_ROUND} FROM rounds WHERE tournament_id = :t AND seq = :seq", params)
        if row is None:
            seqs = ", ".join(
                str(r[0])
                for r in q.rows("SELECT seq FROM rounds WHERE tournament_id = :t ORDER BY seq", params)
            )
            raise NotFound(f"no round {seq} in this tournament (rounds: {seqs or 'none'})")
        return _round(q, row)

    def people(self, tournament_id: int, include_inactive: bool = True) -> list[Person]:
        sql = (
            f"SELECT {_PERSON}, t.name, i.name FROM people p LEFT JOIN teams t ON t.id = p.team_id "
            "LEFT JOIN institutions i ON i.id = p.institution_id WHERE p.tournament_id = :t"
        )
        if not include_inactive:
            sql += " AND p.active = TRUE"
        with self._db.sql() as q:
            rows = q.rows(sql + " ORDER BY p.role, p.name, p.id", {"t": tournament_id})
            return [_person(q, r, r[13], r[14]) for r in rows]

    def teams(self, tournament_id: int) -> dict[int, Team]:
        with self._db.sql() as q:
            rows = q.rows(f"SELECT {_TEAM} FROM teams WHERE tournament_id = :t", {"t": tournament_id})
            return {r[0]: _team(q, r) for r in rows}

    def institutions(self, tournament_id: int) -> dict[int, Institution]:
        with self._db.sql() as q:
            rows = q.rows(
                "SELECT id, name, code FROM institutions WHERE tournament_id = :t", {"t": tournament_id}
            )
        return {r[0]: Institution(r[0], r[1], r[2]) for r in rows}

    def team_standings(self, tournament_id: int) -> dict[int, dict[str, float]] | None:
        """The site's team standings as last imported (team id -> {"points": n, "wins": n}),
        None when the site never answered."""
        with self._db.sql() as q:
            details = q.json(self._tournament_row(q, tournament_id, "details")[0])
        raw = (details or {}).get("team_standings")
        if not isinstance(raw, dict):
            return None
        return {int(k): {m: float(v) for m, v in metrics.items()} for k, metrics in raw.items()}

    def get_person(self, person_id: int) -> Person:
        with self._db.sql() as q:
            return self._find_person(q, person_id)

    @staticmethod
    def _find_person(q: Sql, person_id: int) -> Person:
        row = q.one(f"SELECT {_PERSON} FROM people p WHERE p.id = :id", {"id": person_id})
        if row is None:
            raise NotFound(f"no person with id {person_id}")
        return _person(q, row)

    # -- per-tournament templates --------------------------------------------------------
    def saved_templates(self, tournament_id: int, key: str) -> Templates | None:
        """The director's edited templates for this tournament and kind (e.g. "draw:all")."""
        with self._db.sql() as q:
            settings = q.json(self._tournament_row(q, tournament_id, "settings")[0])
        saved = (settings or {}).get("templates", {}).get(key)
        if not saved:
            return None
        return Templates(saved["subject"], saved["text"], saved.get("html"))

    def save_templates(self, tournament_id: int, key: str, templates: Templates | None) -> None:
        """Keep edited templates for the tournament; None goes back to the shipped defaults."""
        with self._db.sql(write=True) as q:
            settings = dict(q.json(self._tournament_row(q, tournament_id, "settings")[0]) or {})
            stored = dict(settings.get("templates", {}))
            if templates is None:
                stored.pop(key, None)
            else:
                stored[key] = {"subject": templates.subject, "text": templates.text, "html": templates.html}
            settings["templates"] = stored
            q.run(
                "UPDATE tournaments SET settings = :s WHERE id = :id",
                {"s": Json(settings), "id": tournament_id},
            )

    def set_person_email(self, person_id: int, email: str | None, source: str) -> Person:
        """Change an address (validated; the change is recorded). Returns the updated person."""
        with self._db.sql(write=True) as q:
            old = self._find_person(q, person_id)
            fields = address_fields(email)
            if fields["email"] != old.email:
                self._record_change(q, person_id, old.email, fields["email"], source)
                q.run(
                    "UPDATE people SET email = :email, email_valid = :email_valid, email_problem = :email_problem, "
                    "email_key = :email_key, updated_at = :now WHERE id = :id",
                    {**fields, "now": _now(), "id": person_id},
                )
            return self._find_person(q, person_id)

    def _record_change(self, q: Sql, person_id: int, old: str | None, new: str | None, source: str) -> None:
        """The address history's row, stamped with who made the change on which machine."""
        actor = self._db.actor
        q.run(
            "INSERT INTO address_changes (person_id, old_address, new_address, changed_at, source, changed_by, "
            "changed_on) VALUES (:person, :old, :new, :now, :source, :who, :machine)",
            {
                "person": person_id,
                "old": old,
                "new": new,
                "now": _now(),
                "source": source,
                "who": actor.who,
                "machine": actor.machine,
            },
        )

    def record_write_back(self, person_id: int, address: str) -> None:
        """Note in the address history that ``address`` was written back to the source."""
        with self._db.sql(write=True) as q:
            self._record_change(q, person_id, address, address, "tabbycat")

    def address_history(self, person_id: int) -> list[AddressChange]:
        with self._db.sql() as q:
            rows = q.rows(
                "SELECT changed_at, old_address, new_address, source, changed_by, changed_on FROM address_changes "
                "WHERE person_id = :id ORDER BY changed_at, id",
                {"id": person_id},
            )
        return [AddressChange(as_required_time(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def draw(self, tournament_id: int, seq: int) -> Draw:
        """The round's debates with every team, person, venue and institution they mention."""
        t = {"t": tournament_id}
        with self._db.sql() as q:
            tournament = _tournament(q, self._tournament_row(q, tournament_id, _TOURNAMENT))
            rnd = self._find_round(q, tournament_id, seq)
            r = {"r": rnd.id}
            debate_rows = q.rows(
                "SELECT id, round_id, venue_id, key, sides_confirmed FROM debates WHERE round_id = :r ORDER BY id",
                r,
            )
            sides: dict[int, list[DebateTeam]] = {}
            for debate_id, team_id, side in q.rows(
                "SELECT dt.debate_id, dt.team_id, dt.side FROM debate_teams dt JOIN debates d ON d.id = dt.debate_id "
                "WHERE d.round_id = :r ORDER BY dt.id",
                r,
            ):
                sides.setdefault(debate_id, []).append(DebateTeam(team_id, side))
            panels: dict[int, list[DebateAdjudicator]] = {}
            for debate_id, person_id, position in q.rows(
                "SELECT da.debate_id, da.person_id, da.position FROM debate_adjudicators da "
                "JOIN debates d ON d.id = da.debate_id WHERE d.round_id = :r ORDER BY da.id",
                r,
            ):
                panels.setdefault(debate_id, []).append(DebateAdjudicator(person_id, Position(position)))
            debates = tuple(
                Debate(
                    id=d[0],
                    round_id=d[1],
                    venue_id=d[2],
                    teams=tuple(sides.get(d[0], ())),
                    adjudicators=tuple(panels.get(d[0], ())),
                    external_id=d[3],
                    sides_confirmed=bool(d[4]),
                )
                for d in debate_rows
            )
            teams = {
                row[0]: _team(q, row)
                for row in q.rows(f"SELECT {_TEAM} FROM teams WHERE tournament_id = :t", t)
            }
            insts = {
                row[0]: Institution(row[0], row[1], row[2])
                for row in q.rows("SELECT id, name, code FROM institutions WHERE tournament_id = :t", t)
            }
            people = {}
            for row in q.rows(f"SELECT {_PERSON} FROM people p WHERE p.tournament_id = :t", t):
                team = teams.get(row[7]) if row[7] is not None else None
                inst = insts.get(row[8]) if row[8] is not None else None
                people[row[0]] = _person(q, row, team.name if team else None, inst.name if inst else None)
            venues = {
                row[0]: Venue(row[0], row[1])
                for row in q.rows("SELECT id, name FROM venues WHERE tournament_id = :t", t)
            }
            ballots: dict[int, Ballot] = {}
            for row in q.rows(
                "SELECT b.id, b.debate_id, b.confirmed, b.discarded, b.version, b.motion_text, b.sheets, b.key "
                "FROM ballots b JOIN debates d ON d.id = b.debate_id WHERE d.round_id = :r ORDER BY b.version, b.id",
                r,
            ):
                if row[3]:  # discarded
                    continue
                ballot = _ballot(q, row)
                current = ballots.get(ballot.debate_id)
                # The current ballot: confirmed and not discarded beats anything else; then newest.
                if current is None or (ballot.confirmed, ballot.version) >= (
                    current.confirmed,
                    current.version,
                ):
                    ballots[ballot.debate_id] = ballot
        return Draw(tournament, rnd, debates, teams, people, venues, insts, ballots)


def _ballot(q: Sql, r: Sequence[Any]) -> Ballot:
    """A ballot from its row: id, debate_id, confirmed, discarded, version, motion_text, sheets, key."""
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
        for sh in q.json(r[6]) or []
    )
    return Ballot(r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5], sheets, r[7])
