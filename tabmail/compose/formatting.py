"""How tournament facts read in an email: side and position names, numbers, score sheets.

Recipients store plain JSON data; templates turn it into words. `ScoreSheets` is the one rich
value: a list (templates can loop over it) that prints as readable text, and as an escaped HTML
list where autoescaping is on, so Tabbycat's bare `{{ SCORES }}` keeps working.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup

from tabmail.domain.tournament import Position

SIDE_NAMES: dict[str, str] = {
    "og": "Opening Government",
    "oo": "Opening Opposition",
    "cg": "Closing Government",
    "co": "Closing Opposition",
    "aff": "Affirmative",
    "neg": "Negative",
}

SIDE_ABBREVIATIONS: dict[str, str] = {
    "og": "OG",
    "oo": "OO",
    "cg": "CG",
    "co": "CO",
    "aff": "Aff",
    "neg": "Neg",
}

# Tabbycat's wording, so "you are {{ POSITION }} adjudicator" reads as it does there.
POSITION_TEXT: dict[str, str] = {
    "only": "the only",
    Position.CHAIR.value: "the chair",
    Position.PANELLIST.value: "a panellist",
    Position.TRAINEE.value: "a trainee",
}

TBA = "TBA"

# Characters that end a line or reorder text somewhere (terminals, mail clients, the email
# package's own line splitting): never allowed into a header or a one-line value.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def side_name(side: str) -> str:
    code = side.strip().lower()
    if code in SIDE_NAMES:
        return SIDE_NAMES[code]
    return f"Side {code}" if code.isdigit() else side


def side_abbreviation(side: str) -> str:
    code = side.strip().lower()
    if code in SIDE_ABBREVIATIONS:
        return SIDE_ABBREVIATIONS[code]
    return f"Side {code}" if code.isdigit() else side


def one_line(text: str) -> str:
    """The text on one line: control, line-separator and bidi-override characters become spaces,
    whitespace runs collapse to one space, ends are trimmed."""
    if text.isascii() and text.isprintable():  # the common case: nothing to replace
        return " ".join(text.split())
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS else ch for ch in text
    )
    return " ".join(cleaned.split())


def format_number(value: Any) -> str:
    """75.0 -> "75", 75.5 -> "75.5", None -> ""; anything else as str()."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return str(value)


def result_text(points: int | None, win: bool | None) -> str:
    """BP points ("3 points"), else Win/Loss for two-team formats, else ""."""
    if points is not None:
        return f"{points} point" if points == 1 else f"{points} points"
    if win is not None:
        return "Win" if win else "Loss"
    return ""


def join_names(names: Iterable[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    items = list(names)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _team_line(team: Mapping[str, Any]) -> str:
    line = f"{team.get('side', '')}: {team.get('team', '')}"
    if team.get("result"):
        line += f", {team['result']}"
    if team.get("total") is not None:
        line += f", total {format_number(team['total'])}"
    return line


def _speech_line(speech: Mapping[str, Any]) -> str:
    line = f"{speech.get('position', '')}. {speech.get('speaker', '')}: {format_number(speech.get('score'))}"
    if speech.get("ghost"):
        line += " (iron)"
    return line


def scores_text(scores: Iterable[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for team in scores:
        lines.append(_team_line(team))
        lines.extend(f"  {_speech_line(speech)}" for speech in team.get("speeches", ()))
    return "\n".join(lines)


def scores_html(scores: Iterable[Mapping[str, Any]]) -> Markup:
    """A nested list like Tabbycat's; every value is escaped."""
    items: list[Markup] = []
    for team in scores:
        speeches = Markup("").join(
            Markup("<li>%s</li>") % _speech_line(speech) for speech in team.get("speeches", ())
        )
        inner = Markup("<ul>%s</ul>") % speeches if speeches else Markup("")
        items.append(Markup("<li>%s%s</li>") % (_team_line(team), inner))
    return Markup("<ul>%s</ul>") % Markup("").join(items)


class ScoreSheets(list[Any]):
    """A SCORES value at render time: loop over it, or print it whole (text or escaped HTML)."""

    def __str__(self) -> str:
        return scores_text(self)

    def __html__(self) -> Markup:
        return scores_html(self)
