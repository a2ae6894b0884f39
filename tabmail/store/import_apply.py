"""Applying an import: the whole bundle upserted in one transaction, matched by the source's keys.

``TournamentRepository.apply_import`` runs it; the commands that only read or send never load
it (nor the import bundle's dataclasses).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tabmail.domain.actor import Actor
from tabmail.domain.imported import ImportBundle, ImportResult
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
from tabmail.store.tournaments import address_fields


def set_person_email(
    session: Session, row: PersonRow, email: str | None, source: str, *, record: bool = True
) -> bool:
    """Set an address, validating it and recording the change (as the director's edit does,
    TournamentRepository.set_person_email). True when it changed."""
    fields = address_fields(email)
    if fields["email"] == row.email:
        return False
    if record:
        actor: Actor | None = session.info.get("actor")
        stamp = {"changed_by": actor.who, "changed_on": actor.machine} if actor else {}
        session.add(
            AddressChangeRow(
                person_id=row.id, old_address=row.email, new_address=fields["email"], source=source, **stamp
            )
        )
    for name, value in fields.items():
        setattr(row, name, value)
    row.updated_at = datetime.now(UTC)
    return True


class ImportUpsert:
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
        t.imported_at = datetime.now(UTC)
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
                row.updated_at = datetime.now(UTC)
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
