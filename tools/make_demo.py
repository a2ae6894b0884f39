"""Generate the demo tournament in resources/demo/ (CSV, the format of docs/csv-format.md).

    python tools/make_demo.py [OUTPUT_FOLDER]

Deterministic: the same seed writes byte-identical files, so the output is committed and
regenerated only when this script changes. A small BP tournament: 4 institutions, 16 teams
(32 speakers), 12 adjudicators, 4 venues, 3 rounds drawn (chair, panellist, trainee on every
panel), ballots for rounds 1 and 2. Names are made up; every address is at example.org. One
address is deliberately invalid and one adjudicator has none, so the dashboard shows both states.
"""

from __future__ import annotations

import csv
import random
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

SEED = 20261124
OUT = Path(__file__).resolve().parents[1] / "resources" / "demo"

INSTITUTIONS = (
    ("Northvale", "North", "University of Northvale"),
    ("Eastmere", "East", "Eastmere College"),
    ("Southby", "South", "Southby Institute of Technology"),
    ("Westford", "West", "University of Westford"),
)
VENUES = ("Hall A", "Hall B", "Seminar 1", "Seminar 2")
ROUNDS = (
    ("Round 1", "R1", "This House would replace exams with continuous assessment"),
    ("Round 2", "R2", "This House believes that cities should ban private cars from their centres"),
    ("Round 3", "R3", "This House regrets the rise of the four-day work week"),
)
FIRST = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Esi", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kalani",
    "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sami", "Tove", "Umar", "Vera",
    "Wen", "Ximena", "Yusuf", "Zofia", "Amara", "Björn", "Céline", "Dara", "Elif", "Felix", "Gaia",
    "Hamid", "Ilse", "Joaquín", "Kofi", "Liv", "Mirela", "Niko", "Olu", "Paz", "Rafa", "Saoirse",
)  # fmt: skip
LAST = (
    "Achterberg", "Brannigan", "Castellano", "Dube", "Eriksen", "Fontaine", "Guerrero", "Halloran",
    "Ibarra", "Jovanović", "Kowalczyk", "Lindqvist", "Mbeki", "Nakamura", "Okafor", "Petrov",
    "Quiroga", "Rasmussen", "Sandoval", "Takahashi", "Udeh", "Valentin", "Wójcik", "Yilmaz",
    "Zeller", "Abernathy", "Bianchi", "Carvalho", "Delacroix", "Esposito", "Fitzgerald", "Grünewald",
    "Haddad", "Iwu", "Jensen", "Kuznetsova", "Laurent", "Moreau", "Novak", "Oduya", "Pereira",
    "Rahman", "Schulz", "Tanaka", "Ueda", "Varga",
)  # fmt: skip
TEAMS_PER_INSTITUTION = 4
ADJUDICATORS_PER_INSTITUTION = 3
SIDES = ("og", "oo", "cg", "co")
INVALID_SPEAKER = 5  # index of the speaker whose address is deliberately invalid
NO_ADDRESS_ADJUDICATOR = 10  # index of the adjudicator with no address


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def address(name: str) -> str:
    first, last = name.split(" ", 1)
    return f"{ascii_fold(first)}.{ascii_fold(last)}@example.org".lower().replace(" ", "")


def write(folder: Path, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with (folder / name).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def people_names(rng: random.Random, count: int) -> list[str]:
    pairs = [(f, la) for f in FIRST for la in LAST]
    rng.shuffle(pairs)
    names: list[str] = []
    used_first: set[str] = set()
    used_last: set[str] = set()
    for first, last in pairs:  # distinct first and last names keep the demo easy to read
        if first in used_first or last in used_last:
            continue
        used_first.add(first)
        used_last.add(last)
        names.append(f"{first} {last}")
        if len(names) == count:
            return names
    raise SystemExit("not enough distinct names for the demo")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    n_teams = len(INSTITUTIONS) * TEAMS_PER_INSTITUTION
    n_adjs = len(INSTITUTIONS) * ADJUDICATORS_PER_INSTITUTION
    names = people_names(rng, n_teams * 2 + n_adjs)
    speakers, adj_names = names[: n_teams * 2], names[n_teams * 2 :]

    write(out, "institutions.csv", ("code", "region", "name"), INSTITUTIONS)
    write(out, "venues.csv", ("name", "priority"), ((v, 100 - 10 * i) for i, v in enumerate(VENUES)))
    write(
        out,
        "rounds.csv",
        ("name", "abbreviation", "stage", "draw_type", "silent", "feedback_weight", "break_category", "weight"),
        ((name, abbr, "preliminary", "random" if i == 0 else "power paired", "FALSE", "0.5", "", "1")
         for i, (name, abbr, _m) in enumerate(ROUNDS)),
    )  # fmt: skip
    write(out, "motions.csv", ("rounds", "reference", "text"), ((a, m.split()[-1], m) for _n, a, m in ROUNDS))

    teams: list[str] = []  # team name as referred to elsewhere ("Northvale A")
    team_speakers: dict[str, tuple[str, str]] = {}
    team_rows = []
    for t in range(n_teams):
        code = INSTITUTIONS[t // TEAMS_PER_INSTITUTION][0]
        reference = "ABCD"[t % TEAMS_PER_INSTITUTION]
        s1, s2 = speakers[2 * t], speakers[2 * t + 1]
        e1, e2 = address(s1), address(s2)
        if 2 * t == INVALID_SPEAKER:
            e1 = e1.replace("@", "@@")
        if 2 * t + 1 == INVALID_SPEAKER:
            e2 = e2.replace("@", "@@")
        name = f"{code} {reference}"
        teams.append(name)
        team_speakers[name] = (s1, s2)
        team_rows.append((code, reference, "TRUE", "open", s1, e1, "", "", s2, e2, "", ""))
    write(
        out,
        "teams.csv",
        ("institution", "reference", "use_institution_prefix", "break_category",
         "speaker1_name", "speaker1_email", "speaker1_gender", "speaker1_category",
         "speaker2_name", "speaker2_email", "speaker2_gender", "speaker2_category"),
        team_rows,
    )  # fmt: skip
    adj_rows = []
    for a, name in enumerate(adj_names):
        code = INSTITUTIONS[a // ADJUDICATORS_PER_INSTITUTION][0]
        email = "" if a == NO_ADDRESS_ADJUDICATOR else address(name)
        adj_rows.append((name, email, "", code, "TRUE" if a == 0 else "FALSE", "FALSE"))
    write(
        out,
        "adjudicators.csv",
        ("name", "email", "gender", "institution", "adj_core", "independent"),
        adj_rows,
    )

    # Adjudicators in three tiers of strength: chairs, panellists, trainees.
    ranked = adj_names[:]
    rng.shuffle(ranked)
    tiers = [ranked[i * 4 : i * 4 + 4] for i in range(3)]
    points = dict.fromkeys(teams, 0)
    draw_rows: list[tuple[object, ...]] = []
    ballot_rows: list[tuple[object, ...]] = []
    for r, (_name, _abbr, _motion) in enumerate(ROUNDS, start=1):
        order = teams[:]
        rng.shuffle(order)
        if r > 1:  # power pairing: rooms of teams on similar points
            order.sort(key=lambda t: -points[t])
        rooms = [order[i : i + 4] for i in range(0, n_teams, 4)]
        venues = list(VENUES)
        rng.shuffle(venues)
        panels = [rng.sample(tier, len(tier)) for tier in tiers]
        for d, room in enumerate(rooms):
            rng.shuffle(room)
            chair, panellist, trainee = panels[0][d], panels[1][d], panels[2][d]
            draw_rows.append((r, venues[d], *room, chair, panellist, trainee))
            if r > 2:
                continue
            totals: dict[str, tuple[int, int]] = {}
            while len({a + b for a, b in totals.values()}) < 4:  # no tied totals in a room
                totals = {t: (rng.randint(68, 82), rng.randint(68, 82)) for t in room}
            ranking = sorted(room, key=lambda t: -sum(totals[t]))
            for side, team in zip(SIDES, room, strict=True):
                team_points = 3 - ranking.index(team)
                points[team] += team_points
                s1, s2 = team_speakers[team]
                ballot_rows.append(
                    (r, venues[d], team, side, team_points, s1, totals[team][0], s2, totals[team][1])
                )
    write(out, "draw.csv", ("round", "venue", *SIDES, "chair", "panellists", "trainees"), draw_rows)
    write(
        out,
        "ballots.csv",
        (
            "round",
            "venue",
            "team",
            "side",
            "points",
            "speaker1",
            "speaker1_score",
            "speaker2",
            "speaker2_score",
        ),
        ballot_rows,
    )
    (out / "readme.md").write_text(
        "Demo tournament for tabmail, generated by tools/make_demo.py (do not edit by hand).\n"
        "Every name is made up and every address is at example.org; see docs/csv-format.md.\n",
        encoding="utf-8",
    )
    print(f"wrote the demo tournament to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
