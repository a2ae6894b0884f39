"""Tabbycat's JSON turned into an ImportBundle, one record at a time.

Every field is treated as optional and as possibly of the wrong type: a record (a team, a round,
a debate, a ballot) whose data cannot be read is skipped with a named problem, and the rest of
the tournament imports, as for a debate whose ballots answered HTTP 500.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from tabmail.domain.imported import (
    BallotData,
    DebateData,
    ImportBundle,
    ImportProblem,
    InstitutionData,
    PersonData,
    RoundData,
    SheetData,
    SheetTeamData,
    SpeechData,
    TeamData,
    TournamentData,
    VenueData,
)
from tabmail.domain.text import clean_name
from tabmail.domain.tournament import Position, Role


def parse_time(value: Any) -> datetime | None:
    """An ISO time from Tabbycat as aware UTC; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tail_id(value: Any) -> str | None:
    """The id at the end of a Tabbycat hyperlink (or an object's ``id``/``url``), as text."""
    if isinstance(value, dict):
        ident = value.get("id")
        if isinstance(ident, int) and not isinstance(ident, bool):
            return str(ident)
        value = value.get("url")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        last = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1]
        if last.isdigit():
            return last
    return None


def _side(value: Any) -> str:
    """og/oo/cg/co, aff/neg, or a numbered side as text; Tabbycat's -1 is a bye."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "bye" if value == -1 else str(value)
    return text_of(value)


def _float(value: Any) -> float | None:
    """A finite number, or None (NaN, 1e400 read as infinity, text that is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_INT_LIMIT = 2**31  # ids, sequence numbers, points and versions all fit; SQLite needs < 2**63


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and abs(number) < _INT_LIMIT else None


def text_of(value: Any) -> str:
    """A scalar as text; a list or an object where text was expected is no text."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return str(value)


def _name(value: Any) -> str:
    """A name as stored: no control characters (domain.text.clean_name)."""
    return clean_name(value) if isinstance(value, str) else text_of(value)


class BadRecord(Exception):
    """One record cannot be read: it is skipped and the message names why."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "text"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _items(obj: dict[str, Any], field: str) -> list[Any]:
    """``obj[field]`` as a list: absent or null is empty; anything else is a bad record."""
    value = obj.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRecord(f"its {field!r} is {_kind(value)}, not a list")
    return value


def _object(obj: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRecord(f"its {field!r} is {_kind(value)}, not an object")
    return value


def _motions_released(rnd: dict[str, Any]) -> bool | None:
    """Whether the round's motions are public; None when the site does not say."""
    if "motions_released" in rnd:
        return bool(rnd["motions_released"])
    if "motions_status" in rnd:  # 2.11: info slides can be released before the motions
        status = rnd["motions_status"]
        if isinstance(status, bool):
            return status
        return text_of(status).upper() in {"R", "M", "RELEASED", "MOTIONS", "MOTIONS_RELEASED"}
    return None


def _adjudicator_details(obj: dict[str, Any]) -> dict[str, Any]:
    """Flags and conflicts as the site shows them; conflicts stay ("team"|"adjudicator"|
    "institution", key) pairs until BundleBuilder.finish names them."""
    details: dict[str, Any] = {}
    for flag in ("independent", "adj_core"):
        if isinstance(obj.get(flag), bool):
            details[flag] = obj[flag]
    conflicts = [
        [kind, key]
        for field, kind in (
            ("team_conflicts", "team"),
            ("adjudicator_conflicts", "adjudicator"),
            ("institution_conflicts", "institution"),
        )
        for u in _items(obj, field)
        if (key := tail_id(u)) is not None
    ]
    if conflicts:
        details["conflicts"] = conflicts
    return details


def _info_slide(motion: dict[str, Any]) -> str:
    """The info slide as plain text (Tabbycat sends both; the HTML one is never used as markup)."""
    return text_of(motion.get("info_slide_plain")).strip() or text_of(motion.get("info_slide")).strip()


def _label(what: str, obj: dict[str, Any], index: int) -> str:
    """ "team 12 (Oxford A)", or "the 3rd team" when it has no usable id."""
    key = tail_id(obj)
    name = _name(obj.get("name")) or _name(obj.get("short_name"))
    label = f"{what} {key}" if key is not None else f"{what} #{index + 1} of the list"
    return f"{label} ({name})" if name else label


_PROBLEMS_PER_PLACE = 20  # then only counted: a broken list must not become a million lines


class BundleBuilder:
    """Turns Tabbycat's JSON into an ImportBundle, noting each thing it had to skip."""

    def __init__(self, slug: str, tournament: dict[str, Any], base_url: str) -> None:
        name = _name(tournament.get("name")) or slug
        self.bundle = ImportBundle(
            TournamentData(
                slug=text_of(tournament.get("slug")) or slug,
                name=name,
                short_name=_name(tournament.get("short_name")) or name,
                source="tabbycat",
                source_url=base_url,
            )
        )
        self._rounds: dict[int, RoundData] = {}
        self._released: dict[int, bool | None] = {}
        self._motion_texts: dict[str, str] = {}
        self._break_names: dict[str, str] = {}
        self._problem_counts: dict[str, int] = {}
        self.rounds_missing_motions: set[int] = set()

    def problem(self, where: str, message: str) -> None:
        count = self._problem_counts.get(where, 0) + 1
        self._problem_counts[where] = count
        if count <= _PROBLEMS_PER_PLACE:
            self.bundle.problems.append(ImportProblem(where, message))

    def add_break_categories(self, items: list[Any]) -> None:
        """Names for the teams' break category links."""
        self._break_names = {
            k: _name(obj.get("name")) or f"Category {k}"
            for obj in items
            if isinstance(obj, dict) and (k := tail_id(obj)) is not None
        }

    def add_availabilities(self, seq: int, items: list[Any]) -> None:
        """The teams marked available for a round (the list also holds adjudicators and rooms).
        An empty list is taken as "not marked": Tabbycat sites that never use the availability
        page list nobody."""
        rnd = self._rounds.get(seq)
        teams = [k for u in items if isinstance(u, str) and "/teams/" in u and (k := tail_id(u))]
        if rnd is not None and teams:
            rnd.available_team_keys = teams

    def add_preferences(self, items: list[Any]) -> None:
        for pref in items:
            if (
                isinstance(pref, dict)
                and pref.get("name") == "public_team_standings"
                and isinstance(pref.get("value"), bool)
            ):
                self.bundle.tournament.public_team_standings = pref["value"]

    def add_team_standings(self, items: list[Any]) -> None:
        standings: dict[str, dict[str, float]] = {}
        for row in items:
            if not isinstance(row, dict) or (key := tail_id(row.get("team"))) is None:
                continue
            metrics: dict[str, float] = {}
            for m in _items(row, "metrics"):
                if (
                    isinstance(m, dict)
                    and m.get("metric") in ("points", "wins")
                    and (value := _float(m.get("value"))) is not None
                ):
                    metrics[str(m["metric"])] = value
            standings[key] = metrics
        self.bundle.tournament.team_standings = standings

    def finish(self) -> ImportBundle:
        names = {
            "team": {t.key: t.short_name or t.name for t in self.bundle.teams},
            "adjudicator": {p.key: p.name for p in self.bundle.people if p.role is Role.ADJUDICATOR},
            "institution": {i.key: i.name for i in self.bundle.institutions},
        }
        for person in self.bundle.people:
            if person.details and "conflicts" in person.details:
                person.details["conflicts"] = [
                    names.get(kind, {}).get(key, f"{kind} {key}") for kind, key in person.details["conflicts"]
                ]
        breaks = self._break_names
        for team in self.bundle.teams:
            if team.break_categories is not None:
                team.break_categories = [breaks.get(k, f"Category {k}") for k in team.break_categories]
        for where, count in self._problem_counts.items():
            if count > _PROBLEMS_PER_PLACE:
                more = count - _PROBLEMS_PER_PLACE
                self.bundle.problems.append(ImportProblem(where, f"and {more} more problems like these"))
        return self.bundle

    def _records(self, items: list[Any], what: str, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """The objects of a list, with their index; anything else is skipped, named."""
        for i, obj in enumerate(items):
            if isinstance(obj, dict):
                yield i, obj
            else:
                self.problem(where, f"skipped {what} #{i + 1} of the list: it is {_kind(obj)}, not an object")
                if what in ("team", "adjudicator"):
                    self.bundle.people_complete = False

    @contextmanager
    def _record(self, what: str, obj: dict[str, Any], index: int, where: str) -> Iterator[None]:
        """Skip one record whose data cannot be read, naming it and why."""
        try:
            yield
        except BadRecord as exc:
            self.problem(where, f"skipped {_label(what, obj, index)}: {exc}")
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError) as exc:
            self.problem(
                where, f"skipped {_label(what, obj, index)}: unreadable data ({type(exc).__name__}: {exc})"
            )
        else:
            return
        if what in ("team", "speaker", "adjudicator"):
            self.bundle.people_complete = False  # never mark someone inactive for a bad record

    def _key(self, obj: dict[str, Any], what: str, where: str) -> str | None:
        key = tail_id(obj)
        if key is None:
            self.problem(where, f"skipped a {what} without an id ({_name(obj.get('name')) or 'no name'})")
        return key

    def add_institutions(self, items: list[Any], where: str) -> None:
        for i, obj in self._records(items, "institution", where):
            with self._record("institution", obj, i, where):
                if (key := self._key(obj, "institution", where)) is not None:
                    self.bundle.institutions.append(
                        InstitutionData(
                            key,
                            _name(obj.get("name")) or _name(obj.get("code")) or f"Institution {key}",
                            _name(obj.get("code")),
                            _name(obj.get("region")),
                        )
                    )

    def add_venues(self, items: list[Any], where: str) -> None:
        for i, obj in self._records(items, "room", where):
            with self._record("room", obj, i, where):
                if (key := self._key(obj, "room", where)) is not None:
                    name = _name(obj.get("display_name")) or _name(obj.get("name")) or f"Room {key}"
                    self.bundle.venues.append(VenueData(key, name))

    def add_teams(self, items: list[Any], where: str) -> None:
        for i, obj in self._records(items, "team", where):
            with self._record("team", obj, i, where):
                key = self._key(obj, "team", where)
                if key is None:
                    continue
                institution = tail_id(obj.get("institution"))
                short = _name(obj.get("short_name")) or _name(obj.get("reference")) or f"Team {key}"
                team = TeamData(
                    key=key,
                    name=_name(obj.get("long_name")) or short,
                    short_name=short,
                    code_name=_name(obj.get("code_name")),
                    institution_key=institution,
                    emoji=_name(obj.get("emoji")),
                    break_categories=[k for u in _items(obj, "break_categories") if (k := tail_id(u))]
                    if "break_categories" in obj
                    else None,
                )
                speakers = _items(obj, "speakers")  # read before anything is added
                self.bundle.teams.append(team)
                for j, speaker in enumerate(speakers):
                    if isinstance(speaker, dict):
                        with self._record("speaker", speaker, j, where):
                            self._person(speaker, Role.SPEAKER, where, key, institution)

    def add_adjudicators(self, items: list[Any], where: str) -> None:
        for i, obj in self._records(items, "adjudicator", where):
            with self._record("adjudicator", obj, i, where):
                self._person(obj, Role.ADJUDICATOR, where, None, tail_id(obj.get("institution")))
                if self.bundle.people and tail_id(obj) == self.bundle.people[-1].key:
                    self.bundle.people[-1].details = _adjudicator_details(obj)

    def _person(
        self, obj: dict[str, Any], role: Role, where: str, team_key: str | None, institution_key: str | None
    ) -> None:
        key = self._key(obj, role.value, where)
        if key is None:
            return
        email = text_of(obj.get("email")) or None
        # Tabbycat drops contact fields for callers who may not see them, and sends a null
        # url_key to those who may not see private URLs: unknown, so the store keeps its own.
        url_key = text_of(obj.get("url_key")) or None
        phone = obj.get("phone")
        self.bundle.people.append(
            PersonData(
                key=key,
                name=_name(obj.get("name")) or f"({role.value} {key})",
                role=role,
                email=email,
                team_key=team_key,
                institution_key=institution_key,
                url_key=url_key,
                phone=phone if isinstance(phone, str) else None,
                email_known="email" in obj,
                url_key_known=url_key is not None,
            )
        )

    def add_rounds(self, items: list[Any], where: str) -> list[dict[str, Any]]:
        """Adds the rounds; returns the usable round objects (with an integer ``seq``)."""
        usable: list[dict[str, Any]] = []
        for i, obj in self._records(items, "round", where):
            with self._record("round", obj, i, where):
                if (rnd := self._round(obj, where)) is not None:
                    usable.append({**obj, "seq": rnd.seq})
        return usable

    def _round(self, obj: dict[str, Any], where: str) -> RoundData | None:
        seq = _int(obj.get("seq"))
        if seq is None:
            raw = obj.get("seq")
            said = f" (its seq is {_kind(raw)})" if raw is not None else ""
            self.problem(
                where, f"skipped a round without a number{said} ({_name(obj.get('name')) or 'no name'})"
            )
            return None
        released = _motions_released(obj)
        motions: list[tuple[int, str, str]] = []
        info: dict[int, str] = {}
        texts: dict[str, str] = {}
        for i, m in enumerate(_items(obj, "motions"), 1):
            if not isinstance(m, dict):
                continue
            if (mid := tail_id(m)) is not None:
                texts[mid] = text_of(m.get("text"))
            mseq = _int(m.get("seq")) or i
            motions.append((mseq, text_of(m.get("text")), text_of(m.get("reference"))))
            if slide := _info_slide(m):
                info[mseq] = slide
        self._motion_texts.update(texts)
        if "motions" not in obj:
            self.rounds_missing_motions.add(seq)
        # Unreleased motions are kept with their state: sending them needs the director's
        # explicit confirmation (services.notify refuses otherwise).
        rnd = RoundData(
            seq=seq,
            name=_name(obj.get("name")) or f"Round {seq}",
            abbreviation=_name(obj.get("abbreviation")),
            stage=text_of(obj.get("stage")) or "P",
            draw_status=text_of(obj.get("draw_status")) or "N",
            starts_at=parse_time(obj.get("starts_at")),
            motions=motions,
            motion_info=info,
            motions_released=released,
        )
        self._rounds[seq] = rnd
        self._released[seq] = released
        self.bundle.rounds.append(rnd)
        return rnd

    def add_motions(self, items: list[Any], where: str) -> None:
        """Motions from the tournament's motion list, for rounds that did not nest them."""
        for i, m in self._records(items, "motion", where):
            with self._record("motion", m, i, where):
                links = _items(m, "rounds")
                if (mid := tail_id(m)) is not None:
                    self._motion_texts[mid] = text_of(m.get("text"))
                for link in links:
                    seq = _int(tail_id(link.get("round"))) if isinstance(link, dict) else None
                    if seq in self.rounds_missing_motions:
                        rnd = self._rounds[seq]
                        mseq = _int(link.get("seq")) or len(rnd.motions) + 1
                        rnd.motions.append((mseq, text_of(m.get("text")), text_of(m.get("reference"))))
                        if slide := _info_slide(m):
                            rnd.motion_info[mseq] = slide

    def add_pairings(self, seq: int, items: list[Any], where: str) -> list[dict[str, Any]]:
        """Adds one round's debates (its draw is now complete); returns those with an id."""
        self.bundle.complete_rounds.add(seq)
        usable: list[dict[str, Any]] = []
        for i, obj in self._records(items, "debate", where):
            with self._record("debate", obj, i, where):
                if self._debate(seq, obj, where):
                    usable.append(obj)
        return usable

    def _debate(self, seq: int, obj: dict[str, Any], where: str) -> bool:
        key = self._key(obj, "debate", where)
        if key is None:
            return False
        teams = [
            (team, _side(t.get("side")))
            for t in _items(obj, "teams")
            if isinstance(t, dict) and (team := tail_id(t.get("team"))) is not None
        ]
        panel: list[tuple[str, Position]] = []
        adjs = _object(obj, "adjudicators")  # absent while only the team draw is released (2.11)
        if adjs is not None:
            if (chair := tail_id(adjs.get("chair"))) is not None:
                panel.append((chair, Position.CHAIR))
            for group, position in (("panellists", Position.PANELLIST), ("trainees", Position.TRAINEE)):
                panel.extend((k, position) for u in _items(adjs, group) if (k := tail_id(u)) is not None)
        self.bundle.debates.append(
            DebateData(
                key, seq, tail_id(obj.get("venue")), teams, panel, bool(obj.get("sides_confirmed", True))
            )
        )
        return True

    def add_ballots(self, debate_key: str, items: list[Any], where: str) -> None:
        """All of a debate's ballots with their flags: the store picks the current one."""
        for i, obj in self._records(items, "ballot", where):
            with self._record("ballot", obj, i, where):
                key = self._key(obj, "ballot", where)
                if key is not None:
                    self.bundle.ballots.append(self._ballot(key, debate_key, obj))

    def _ballot(self, key: str, debate_key: str, obj: dict[str, Any]) -> BallotData:
        result = _object(obj, "result")
        sheets: list[SheetData] = []
        for sheet in _items(result, "sheets") if result is not None else []:
            if not isinstance(sheet, dict):
                continue
            teams: list[SheetTeamData] = []
            for t in _items(sheet, "teams"):
                if not isinstance(t, dict):
                    continue
                speeches = [
                    SpeechData(
                        tail_id(sp.get("speaker")), _float(sp.get("score")), bool(sp.get("ghost", False))
                    )
                    for sp in _items(t, "speeches")
                    if isinstance(sp, dict)
                ]
                win = t.get("win")
                teams.append(
                    SheetTeamData(
                        team_key=tail_id(t.get("team")),
                        side=_side(t.get("side")),
                        points=_int(t.get("points")),
                        win=win if isinstance(win, bool) else None,
                        score=_float(t.get("score")),
                        speeches=speeches,
                    )
                )
            sheets.append(SheetData(tail_id(sheet.get("adjudicator")), teams))
        motion = tail_id(obj.get("motion"))
        return BallotData(
            key=key,
            debate_key=debate_key,
            confirmed=bool(obj.get("confirmed", False)),
            discarded=bool(obj.get("discarded", False)),
            version=_int(obj.get("version")) or 1,
            motion_text=self._motion_texts.get(motion) if motion is not None else None,
            sheets=sheets,
        )
