"""A tournament from a folder of CSV files: Tabbycat's import format, plus draw.csv and ballots.csv.

The format is documented for directors in ``docs/csv-format.md``. CSV has no ids, so every key
is a name, normalised (spaces collapsed, case folded): re-importing the same folder updates the
tournament in place. A bad row is reported as ``ImportProblem("file.csv:LINE", ...)`` and skipped
while the valid rows import; a problem with a whole file (not UTF-8, a required column missing)
raises ``CsvImportError`` before anything is handed to the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabmail.domain.addresses import validate_address
from tabmail.domain.imported import (
    ImportBundle,
    ImportProblem,
    InstitutionData,
    PersonData,
    RoundData,
    TeamData,
    TournamentData,
    VenueData,
)
from tabmail.domain.tournament import Role
from tabmail.importers.csv_draw import read_ballots, read_draw
from tabmail.importers.csv_files import (
    READ_FILES,
    TABBYCAT_IGNORED,
    BadRow,
    CsvBudget,
    CsvImportError,
    CsvLimits,
    CsvTooLarge,
    Row,
    Table,
    clean,
    norm,
    read_table,
    slugify,
    truthy,
)

__all__ = ["CsvImportError", "CsvLimits", "CsvTooLarge", "FolderReader", "read_csv_folder", "slugify"]


def read_csv_folder(
    folder: Path, tournament_name: str | None = None, limits: CsvLimits | None = None
) -> ImportBundle:
    """Read a folder of CSV files into an ``ImportBundle``. Raises CsvImportError (fatal).

    Bad rows are skipped and listed in ``bundle.problems``; invalid addresses are kept as given
    (the store marks them invalid) and listed there too. Past ``limits`` (default CsvLimits),
    CsvTooLarge is raised before more is read.
    """
    budget = CsvBudget(limits or CsvLimits())
    folder = Path(folder)
    if not folder.exists():
        raise CsvImportError(f"there is no folder {folder}")
    if not folder.is_dir():
        raise CsvImportError(f"{folder} is a file; choose the folder that holds the CSV files")
    csv_files = {p.name.lower(): p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".csv"}
    problems: list[ImportProblem] = []
    fatal: list[ImportProblem] = []
    tables: dict[str, Table] = {}
    for lower, path in csv_files.items():
        if lower not in READ_FILES:
            if lower not in TABBYCAT_IGNORED:
                problems.append(ImportProblem(path.name, "not a file tabmail reads; ignored"))
            continue
        try:
            table = read_table(path, lower, budget)
        except CsvTooLarge:
            raise
        except CsvImportError as exc:
            fatal.append(ImportProblem(path.name, str(exc), fatal=True))
            continue
        if not table.headers:
            problems.append(ImportProblem(path.name, "the file is empty; ignored"))
            continue
        tables[lower] = table
    if not fatal and not tables:
        expected = ", ".join(READ_FILES)
        raise CsvImportError(f"{folder} holds none of the CSV files tabmail reads ({expected})")
    if fatal:
        first = fatal[0].message
        more = f" (and {len(fatal) - 1} more problems)" if len(fatal) > 1 else ""
        raise CsvImportError(f"cannot import {folder.name}: {first}{more}", fatal)

    name = clean(tournament_name) or clean(folder.resolve().name) or "Tournament"
    bundle = ImportBundle(tournament=TournamentData(slug=slugify(name), name=name, source="csv"))
    bundle.problems = problems
    FolderReader(bundle, tables).run()
    return bundle


class FolderReader:
    """Turns the tables into the bundle; each ``_read_*`` handles one file's rows."""

    def __init__(self, bundle: ImportBundle, tables: dict[str, Table]) -> None:
        self.b = bundle
        self.t = tables
        self.inst_lookup: dict[str, InstitutionData] = {}
        self.venue_lookup: dict[str, VenueData] = {}
        self.team_lookup: dict[str, TeamData] = {}
        self.team_lines: dict[str, int] = {}
        self.people: dict[str, tuple[PersonData, int]] = {}  # key -> (person, line)
        self.rounds: dict[int, RoundData] = {}
        self.round_lookup: dict[str, RoundData] = {}

    def run(self) -> None:
        steps: list[tuple[str, Callable[[Row], None]]] = [
            ("institutions.csv", self._read_institution),
            ("venues.csv", self._read_venue),
            ("rounds.csv", self._read_round),
            ("motions.csv", self._read_motion),
            ("teams.csv", self._read_team),
            ("speakers.csv", self._read_speaker_row),
            ("adjudicators.csv", self._read_adjudicator),
        ]
        for name, step in steps:
            self.each(name, step)
        debates = read_draw(self)
        read_ballots(self, debates)
        self.b.rounds = [self.rounds[seq] for seq in sorted(self.rounds)]
        for seq in self.b.complete_rounds:
            self.rounds[seq].draw_status = "C"
        self.b.people = [p for p, _line in self.people.values()]
        # Only a folder listing both speakers and adjudicators lists everyone: otherwise a
        # re-import of, say, adjudicators.csv alone must not mark every speaker as gone.
        self.b.people_complete = ("teams.csv" in self.t or "speakers.csv" in self.t) and (
            "adjudicators.csv" in self.t
        )

    def each(self, name: str, handle: Callable[[Row], None]) -> None:
        table = self.t.get(name)
        if table is None:
            return
        for row in table.rows:
            try:
                handle(row)
            except BadRow as exc:
                self.problem(row, f"{exc}; row skipped")

    def problem(self, row: Row, message: str) -> None:
        self.b.problems.append(ImportProblem(row.where, message))

    # -- institutions, venues, rounds, motions ----------------------------------------
    def _read_institution(self, row: Row) -> None:
        name, code = clean(row.get("name")), clean(row.get("code"))
        if not name and not code:
            raise BadRow("no name")
        key = norm(code or name)
        if key in self.inst_lookup or norm(name) in self.inst_lookup:
            raise BadRow(f"institution {name or code!r} is listed twice")
        inst = InstitutionData(key=key, name=name or code, code=code, region=clean(row.get("region")))
        self.b.institutions.append(inst)
        for alias in (norm(name), norm(code)):
            if alias:
                self.inst_lookup.setdefault(alias, inst)

    def institution(self, row: Row, text: str) -> InstitutionData | None:
        """The institution a row names: None when blank; BadRow when unknown."""
        if not text:
            return None
        inst = self.inst_lookup.get(norm(text))
        if inst is not None:
            return inst
        if "institutions.csv" in self.t:
            raise BadRow(f"unknown institution {text!r} (not in institutions.csv)")
        # Without institutions.csv, the institutions are the ones the other files name.
        inst = InstitutionData(key=norm(text), name=clean(text), code=clean(text))
        self.b.institutions.append(inst)
        self.inst_lookup[inst.key] = inst
        return inst

    def _read_venue(self, row: Row) -> None:
        name = clean(row.get("name"))
        if not name:
            raise BadRow("no name")
        if norm(name) in self.venue_lookup:
            raise BadRow(f"venue {name!r} is listed twice")
        venue = VenueData(key=norm(name), name=name)
        self.b.venues.append(venue)
        self.venue_lookup[venue.key] = venue

    def venue(self, row: Row, text: str) -> VenueData | None:
        if not text:
            return None
        venue = self.venue_lookup.get(norm(text))
        if venue is not None:
            return venue
        if "venues.csv" in self.t:
            raise BadRow(f"unknown venue {text!r} (not in venues.csv)")
        venue = VenueData(key=norm(text), name=clean(text))
        self.b.venues.append(venue)
        self.venue_lookup[venue.key] = venue
        return venue

    def _read_round(self, row: Row) -> None:
        name = clean(row.get("name"))
        if not name:
            raise BadRow("no name")
        seq_text = row.get("seq")
        if seq_text:
            if not seq_text.isdigit():
                raise BadRow(f"seq {seq_text!r} is not a whole number")
            seq = int(seq_text)
        else:
            seq = max(self.rounds, default=0) + 1
        if seq in self.rounds:
            raise BadRow(f"round {seq} is listed twice")
        stage_text = row.get("stage").lower()
        if stage_text in ("", "p", "preliminary", "prelim"):
            stage = "P"
        elif stage_text in ("e", "elimination", "elim", "break"):
            stage = "E"
        else:
            raise BadRow(f"stage {stage_text!r} is neither preliminary nor elimination")
        rnd = RoundData(seq=seq, name=name, abbreviation=clean(row.get("abbreviation")), stage=stage)
        self.add_round(rnd)

    def add_round(self, rnd: RoundData) -> None:
        self.rounds[rnd.seq] = rnd
        for alias in (str(rnd.seq), norm(rnd.abbreviation), norm(rnd.name)):
            if alias:
                self.round_lookup.setdefault(alias, rnd)

    def round(self, text: str) -> RoundData:
        """The round a row names (number, abbreviation or name); BadRow when unknown."""
        if not text:
            raise BadRow("no round")
        rnd = self.round_lookup.get(norm(text))
        if rnd is not None:
            return rnd
        match = re.fullmatch(r"(?:r|round)?\s*(\d+)", norm(text))
        if match and "rounds.csv" not in self.t:
            seq = int(match.group(1))
            rnd = RoundData(seq=seq, name=f"Round {seq}", abbreviation=f"R{seq}")
            self.add_round(rnd)
            return rnd
        raise BadRow(f"unknown round {text!r}")

    def _read_motion(self, row: Row) -> None:
        text = clean(row.get("text", "motion"))
        if not text:
            raise BadRow("no motion text")
        refs = [r for r in re.split(r"[;,|]", row.get("rounds", "round")) if r.strip()]
        if not refs:
            raise BadRow("no round")
        for ref in refs:
            rnd = self.round(ref.strip())
            rnd.motions.append((len(rnd.motions) + 1, text, clean(row.get("reference"))))

    # -- teams and people -------------------------------------------------------------
    def add_team(self, row: Row, name: str, inst: InstitutionData | None, **extra: Any) -> TeamData:
        key = norm(name)
        if key in self.team_lookup:
            raise BadRow(f"team {name!r} is listed twice (first on line {self.team_lines[key]})")
        team = TeamData(
            key=key, name=name, short_name=name, institution_key=inst.key if inst else None, **extra
        )
        self.b.teams.append(team)
        self.team_lookup[key] = team
        self.team_lines[key] = row.line
        return team

    def team(self, row: Row, text: str) -> TeamData:
        team = self.team_lookup.get(norm(text))
        if team is None:
            raise BadRow(f"unknown team {text!r}")
        return team

    def _read_team(self, row: Row) -> None:
        reference = clean(row.get("reference", "name"))
        if not reference:
            raise BadRow("no team name (reference)")
        inst = self.institution(row, row.get("institution"))
        name = reference
        if inst is not None and truthy(row.get("use_institution_prefix")):
            name = f"{inst.code or inst.name} {reference}"
        breaks = [clean(b) for b in re.split(r"[;,]", row.get("break_category")) if clean(b)]
        team = self.add_team(
            row,
            name,
            inst,
            code_name=clean(row.get("code_name")),
            emoji=clean(row.get("emoji"))[:20],
            break_categories=breaks if self.t["teams.csv"].has("break_category") else None,
        )
        if inst is not None and truthy(row.get("use_institution_prefix")):
            # "University of Arnor AC" finds "Arnor AC" too (Tabbycat's long name).
            self.team_lookup.setdefault(norm(f"{inst.name} {reference}"), team)
        indices = sorted(
            {
                int(m.group(1))
                for h in self.t["teams.csv"].headers
                if (m := re.fullmatch(r"speaker(\d+)_name", h))
            }
        )
        for i in indices:
            speaker = clean(row.get(f"speaker{i}_name"))
            email = row.get(f"speaker{i}_email")
            if not speaker:
                if email:
                    self.problem(
                        row, f"speaker{i}_email is given but speaker{i}_name is empty; speaker skipped"
                    )
                continue
            self.add_person(
                row,
                speaker,
                Role.SPEAKER,
                email,
                email_known=self.t["teams.csv"].has(f"speaker{i}_email"),
                team=team,
                inst=inst,
                phone=row.get(f"speaker{i}_phone") or None,
                skip_on_duplicate=True,
            )

    def _read_speaker_row(self, row: Row) -> None:
        name = clean(row.get("name"))
        if not name:
            raise BadRow("no name")
        team_text = clean(row.get("team"))
        if not team_text:
            raise BadRow(f"no team for {name}")
        team = self.team_lookup.get(norm(team_text))
        inst = self.institution(row, row.get("institution"))
        if team is None:
            if "teams.csv" in self.t:
                raise BadRow(f"unknown team {team_text!r} (not in teams.csv)")
            team = self.add_team(row, team_text, inst)
        email_known = self.t["speakers.csv"].has("email")
        self.add_person(row, name, Role.SPEAKER, row.get("email"), email_known, team, inst, row.get("phone"))

    def _read_adjudicator(self, row: Row) -> None:
        name = clean(row.get("name"))
        if not name:
            raise BadRow("no name")
        inst = self.institution(row, row.get("institution"))
        email_known = self.t["adjudicators.csv"].has("email")
        self.add_person(
            row, name, Role.ADJUDICATOR, row.get("email"), email_known, None, inst, row.get("phone")
        )
        found = self.people.get(person_key(Role.ADJUDICATOR, name))
        if found is not None:
            columns = self.t["adjudicators.csv"]
            found[0].details = {
                flag: truthy(row.get(flag)) for flag in ("independent", "adj_core") if columns.has(flag)
            }

    def add_person(
        self,
        row: Row,
        name: str,
        role: Role,
        email: str,
        email_known: bool,
        team: TeamData | None,
        inst: InstitutionData | None,
        phone: str | None,
        skip_on_duplicate: bool = False,
    ) -> None:
        key = person_key(role, name)
        if key in self.people:
            message = f"{role.value} {name!r} is listed twice (first on line {self.people[key][1]})"
            if skip_on_duplicate:  # the rest of a team row still imports
                self.problem(row, f"{message}; speaker skipped")
                return
            raise BadRow(message)
        email = email.strip()
        if email:
            valid, _normalised, why = validate_address(email)
            if not valid:
                reason = (why or "invalid").rstrip(".")
                self.problem(row, f"{name}: {email!r} is not a valid address ({reason}); imported as given")
        person = PersonData(
            key=key,
            name=name,
            role=role,
            email=email or None,
            team_key=team.key if team else None,
            institution_key=inst.key if inst else None,
            phone=phone.strip() if phone and phone.strip() else None,
            email_known=email_known,
            url_key_known=False,  # CSV never has private URLs: keep any we already have
        )
        self.people[key] = (person, row.line)

    def person(self, text: str, role: Role) -> PersonData:
        found = self.people.get(person_key(role, text))
        if found is None:
            raise BadRow(f"unknown {role.value} {clean(text)!r}")
        return found[0]


def person_key(role: Role, name: str) -> str:
    return f"{role.value}:{norm(name)}"
