"""draw.csv and ballots.csv: tabmail's own simple formats (see docs/csv-format.md).

draw.csv has one row per debate; ballots.csv one row per team per ballot sheet. Both name teams,
people, venues and rounds as the other files do; an unknown name makes the row a bad row.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tabmail.domain.imported import BallotData, DebateData, SheetData, SheetTeamData, SpeechData
from tabmail.domain.tournament import Position, Role
from tabmail.importers.csv_files import SIDES, BadRow, Row, clean, norm, truthy

if TYPE_CHECKING:
    from tabmail.importers.csv_import import FolderReader

POSITION_COLUMNS: tuple[tuple[Position, tuple[str, ...]], ...] = (
    (Position.CHAIR, ("chair",)),
    (Position.PANELLIST, ("panellists", "panellist", "panelists", "panelist", "panel")),
    (Position.TRAINEE, ("trainees", "trainee")),
)

# (round seq, normalised debate id or venue name) -> debate
Debates = dict[tuple[int, str], DebateData]


def split_names(text: str) -> list[str]:
    """Several names in one cell, separated by semicolons (names may contain commas)."""
    return [clean(n) for n in re.split(r"[;\n]", text) if n.strip()]


def read_draw(r: FolderReader) -> Debates:
    table = r.t.get("draw.csv")
    debates: Debates = {}
    if table is None:
        return debates
    side_columns = [(h, SIDES[h]) for h in table.headers if h in SIDES]
    team_lines: dict[tuple[int, str], int] = {}  # (round, team key) -> line
    adj_lines: dict[tuple[int, str], int] = {}

    def handle(row: Row) -> None:
        rnd = r.round(row.get("round"))
        seq = rnd.seq
        venue = r.venue(row, row.get("venue"))
        ident = clean(row.get("debate")) or (venue.name if venue else "")
        if not ident:
            raise BadRow("no venue and no debate id")
        if (seq, norm(ident)) in debates:
            raise BadRow(f"debate {ident!r} is listed twice in round {seq}")
        teams: list[tuple[str, str]] = []
        for column, side in side_columns:
            text = row.get(column)
            if not text:
                continue
            team = r.team(row, text)
            if (seq, team.key) in team_lines:
                raise BadRow(
                    f"team {team.name!r} is already in round {seq} (line {team_lines[seq, team.key]})"
                )
            if side in {s for _k, s in teams}:
                raise BadRow(f"two teams on side {side}")
            if team.key in {k for k, _s in teams}:
                raise BadRow(f"team {team.name!r} is on two sides")
            teams.append((team.key, side))
        if not teams:
            raise BadRow("no teams")
        adjudicators: list[tuple[str, Position]] = []
        for position, columns in POSITION_COLUMNS:
            names = split_names(row.get(*columns))
            if position is Position.CHAIR and len(names) > 1:
                raise BadRow(f"{len(names)} chairs; put the others under panellists")
            for name in names:
                adj = r.person(name, Role.ADJUDICATOR)
                if (seq, adj.key) in adj_lines or adj.key in {k for k, _p in adjudicators}:
                    where = adj_lines.get((seq, adj.key), row.line)
                    raise BadRow(f"adjudicator {adj.name!r} is already in round {seq} (line {where})")
                adjudicators.append((adj.key, position))
        for key, _side in teams:
            team_lines[seq, key] = row.line
        for key, _position in adjudicators:
            adj_lines[seq, key] = row.line
        debate = DebateData(
            key=f"{seq}:{norm(ident)}",
            round_seq=seq,
            venue_key=venue.key if venue else None,
            teams=teams,
            adjudicators=adjudicators,
        )
        r.b.debates.append(debate)
        debates[seq, norm(ident)] = debate
        if venue is not None:  # ballots.csv may name the debate by its venue
            debates.setdefault((seq, venue.key), debate)
        r.b.complete_rounds.add(seq)

    r.each("draw.csv", handle)
    return debates


def _number(row: Row, columns: tuple[str, ...], kind: type[int] | type[float]) -> float | None:
    text = row.get(*columns)
    if not text:
        return None
    try:
        return kind(text.replace(",", ".") if kind is float else text)
    except ValueError:
        raise BadRow(f"{columns[0]} {text!r} is not a number") from None


def read_ballots(r: FolderReader, debates: Debates) -> None:
    table = r.t.get("ballots.csv")
    if table is None:
        return
    indices = sorted(
        {int(m.group(1)) for h in table.headers if (m := re.fullmatch(r"speaker(\d+)(?:_name)?", h))}
    )
    ballots: dict[str, BallotData] = {}
    sheets: dict[tuple[str, str | None], SheetData] = {}
    seen: dict[tuple[str, str | None, str], int] = {}

    def handle(row: Row) -> None:
        rnd = r.round(row.get("round"))
        ident = row.get("debate", "venue")
        debate = debates.get((rnd.seq, norm(ident)))
        if debate is None:
            raise BadRow(f"no debate {ident!r} in round {rnd.seq} of draw.csv")
        team = r.team(row, row.get("team"))
        sides = dict(debate.teams)
        if team.key not in sides:
            raise BadRow(f"team {team.name!r} is not in debate {ident!r} of round {rnd.seq}")
        side = sides[team.key]
        side_text = row.get("side")
        if side_text:
            given = SIDES.get(re.sub(r"[\s\-]+", "_", side_text.lower()))
            if given is None:
                raise BadRow(f"unknown side {side_text!r}")
            side = given
        adj_key: str | None = None
        adj_text = row.get("adjudicator")
        if adj_text:
            adj = r.person(adj_text, Role.ADJUDICATOR)
            if adj.key not in {k for k, _p in debate.adjudicators}:
                raise BadRow(f"adjudicator {adj.name!r} is not on the panel of debate {ident!r}")
            adj_key = adj.key
        speeches: list[SpeechData] = []
        for i in indices:
            name = row.get(f"speaker{i}", f"speaker{i}_name")
            score = _number(row, (f"speaker{i}_score", f"score{i}"), float)
            if not name:
                if score is not None:
                    raise BadRow(f"speaker{i}_score is given but speaker{i} is empty")
                continue
            speaker = r.person(name, Role.SPEAKER)
            if speaker.team_key != team.key:
                raise BadRow(f"{speaker.name} does not speak for {team.name}")
            speeches.append(SpeechData(speaker.key, score))
        points = _number(row, ("points",), int)
        total = _number(row, ("score", "total"), float)
        if total is None and speeches and all(s.score is not None for s in speeches):
            total = sum(s.score or 0.0 for s in speeches)
        if (debate.key, adj_key, team.key) in seen:
            raise BadRow(
                f"team {team.name!r} already has a row for this sheet (line {seen[debate.key, adj_key, team.key]})"
            )
        seen[debate.key, adj_key, team.key] = row.line
        ballot = ballots.get(debate.key)
        if ballot is None:
            ballot = ballots[debate.key] = BallotData(
                key=f"csv:{debate.key}", debate_key=debate.key, confirmed=True
            )
        motion = clean(row.get("motion"))
        if motion and not ballot.motion_text:
            ballot.motion_text = motion
        sheet = sheets.get((debate.key, adj_key))
        if sheet is None:
            sheet = sheets[debate.key, adj_key] = SheetData(adjudicator_key=adj_key)
            ballot.sheets.append(sheet)
        win_text = row.get("win")
        sheet.teams.append(
            SheetTeamData(
                team_key=team.key,
                side=side,
                points=None if points is None else int(points),
                win=truthy(win_text) if win_text else None,
                score=total,
                speeches=speeches,
            )
        )

    r.each("ballots.csv", handle)
    for ballot in ballots.values():
        seq = int(ballot.debate_key.split(":", 1)[0])
        motions = r.rounds[seq].motions
        if not ballot.motion_text and len(motions) == 1:
            ballot.motion_text = motions[0][1]
    r.b.ballots = list(ballots.values())
