"""Reading one CSV file of an import folder: encoding, separator, header, required columns.

Shared by ``csv_import`` (people, teams, rounds) and ``csv_draw`` (draw and ballots).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tabmail.domain.errors import TabmailError
from tabmail.domain.imported import ImportProblem
from tabmail.domain.text import clean_name, human_size

# Files read, in the order they are read (later files refer to earlier ones).
READ_FILES = (
    "institutions.csv",
    "venues.csv",
    "rounds.csv",
    "motions.csv",
    "teams.csv",
    "speakers.csv",
    "adjudicators.csv",
    "draw.csv",
    "ballots.csv",
)
# Tabbycat's other import files: known, not needed for notifications, silently ignored.
TABBYCAT_IGNORED = frozenset(
    {
        "adj_feedback_questions.csv",
        "adjudicator_conflicts.csv",
        "adjudicator_venue_constraints.csv",
        "break_categories.csv",
        "institution_conflicts.csv",
        "scores.csv",
        "speaker_categories.csv",
        "team_conflicts.csv",
        "team_venue_constraints.csv",
        "venue_categories.csv",
    }
)
# Team side columns of draw.csv (normalised header -> side as stored).
SIDES: dict[str, str] = {
    "og": "og",
    "oo": "oo",
    "cg": "cg",
    "co": "co",
    "opening_government": "og",
    "opening_opposition": "oo",
    "closing_government": "cg",
    "closing_opposition": "co",
    "aff": "aff",
    "neg": "neg",
    "affirmative": "aff",
    "negative": "neg",
    "prop": "aff",
    "proposition": "aff",
    "gov": "aff",
    "government": "aff",
    "opp": "neg",
    "opposition": "neg",
}
# Each alternative is a tuple: one of its columns must be present.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "institutions.csv": (("name", "code"),),
    "venues.csv": (("name",),),
    "rounds.csv": (("name",),),
    "motions.csv": (("rounds", "round"), ("text", "motion")),
    "teams.csv": (("reference", "name"),),
    "speakers.csv": (("name",), ("team",)),
    "adjudicators.csv": (("name",),),
    "draw.csv": (("round",), tuple(SIDES)),
    "ballots.csv": (("round",), ("venue", "debate"), ("team",)),
}


class CsvImportError(TabmailError):
    """The folder cannot be imported at all; ``problems`` lists every fatal problem found."""

    def __init__(self, message: str, problems: Iterable[ImportProblem] = ()) -> None:
        super().__init__(message)
        self.problems: list[ImportProblem] = list(problems)


class CsvTooLarge(CsvImportError):
    """Past one of CsvLimits: refused at once, before more is read."""


MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CsvLimits:
    """How much one CSV import reads (docs/csv-format.md, "Limits"). A world championship's files
    stay far below: ~1,000 teams, ~4,000 ballot rows, well under 1 MB a file. The limits keep the
    memory of any input under 500 MB (tests/bench/bench_input_sizes.py)."""

    file_bytes: int = 8 * MIB
    folder_bytes: int = 16 * MIB
    rows: int = 20_000  # data rows per file
    cells: int = 2_000_000  # cells of every file together


@dataclass(slots=True)
class CsvBudget:
    """What one folder's import has used of its CsvLimits so far."""

    limits: CsvLimits = field(default_factory=CsvLimits)
    bytes: int = 0
    cells: int = 0


class BadRow(Exception):
    """Raised while reading one row: the row is skipped and the message reported."""


def norm(text: str | None) -> str:
    """The key form of a name: as ``clean``, case folded."""
    return clean_name(text).casefold()


def clean(text: str | None) -> str:
    """A name as shown: no control characters, trimmed, inner runs of spaces collapsed."""
    return clean_name(text)


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:100].strip("-") or "tournament"


def truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "y", "t")


@dataclass(slots=True)
class Row:
    file: str
    line: int
    cells: dict[str, str]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def get(self, *columns: str) -> str:
        """The first non-empty value among ``columns`` (stripped), or ''."""
        for column in columns:
            value = self.cells.get(column, "").strip()
            if value:
                return value
        return ""


@dataclass(slots=True)
class Table:
    name: str
    headers: list[str]
    rows: list[Row]

    def has(self, *columns: str) -> bool:
        return any(c in self.headers for c in columns)


def _header(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def _decode(path: Path, budget: CsvBudget) -> str:
    limits = budget.limits
    size = path.stat().st_size
    if size > limits.file_bytes:
        raise CsvTooLarge(
            f"{path.name} is {human_size(size)}; tabmail reads CSV files of up to "
            f"{human_size(limits.file_bytes)} (a tournament's files are far smaller; see "
            "docs/csv-format.md, Limits)"
        )
    budget.bytes += size
    if budget.bytes > limits.folder_bytes:
        raise CsvTooLarge(
            f"the CSV files come to more than {human_size(limits.folder_bytes)} with {path.name}; "
            f"tabmail reads up to {human_size(limits.folder_bytes)} per folder (docs/csv-format.md, Limits)"
        )
    with path.open("rb") as fh:
        data = fh.read(limits.file_bytes + 1)  # a file growing while it is read stays bounded
    if len(data) > limits.file_bytes:
        raise CsvTooLarge(
            f"{path.name} grew past {human_size(limits.file_bytes)} while it was read; tabmail reads "
            f"CSV files of up to {human_size(limits.file_bytes)} (see docs/csv-format.md, Limits)"
        )
    offset = 0
    if data.startswith(b"\xef\xbb\xbf"):
        offset = 3
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + offset
        line = data[:at].count(b"\n") + 1
        raise CsvImportError(
            f"{path.name} is not UTF-8 text (byte 0x{data[at]:02x} at byte offset {at}, line {line}); "
            "save it as UTF-8 (in a spreadsheet: Save As, CSV UTF-8) and import again"
        ) from None


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def read_table(path: Path, name: str, budget: CsvBudget | None = None) -> Table:
    """One CSV file as rows keyed by normalised header. Raises CsvImportError for a bad file,
    CsvTooLarge past the budget's limits (default CsvLimits)."""
    budget = budget if budget is not None else CsvBudget()
    limits = budget.limits
    text = _decode(path, budget)
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    headers: list[str] | None = None
    rows: list[Row] = []
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            budget.cells += len(cells)
            if budget.cells > limits.cells:
                raise CsvTooLarge(
                    f"the CSV files hold more than {limits.cells:,} cells (at {name}:{reader.line_num}); "
                    f"tabmail reads up to {limits.cells:,} per folder (docs/csv-format.md, Limits)"
                )
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= limits.rows:
                raise CsvTooLarge(
                    f"{name} has more than {limits.rows:,} rows; tabmail reads up to {limits.rows:,} "
                    "rows per file (docs/csv-format.md, Limits)"
                )
            if headers is None:
                headers = [_header(c) for c in cells]
                continue
            values = {h: v for h, v in zip(headers, cells, strict=False) if h}
            rows.append(Row(name, start, values))
    except csv.Error as exc:
        raise CsvImportError(f"{name}:{reader.line_num} is not valid CSV ({exc})") from None
    if headers is None:
        return Table(name, [], [])
    for alternatives in REQUIRED.get(name, ()):
        if not any(a in headers for a in alternatives):
            if len(alternatives) > 3:
                wanted = f"team side column ({', '.join(alternatives[:4])}, ...)"
            else:
                wanted = " or ".join(repr(a) for a in alternatives) + " column"
            found = ", ".join(h for h in headers if h) or "none"
            raise CsvImportError(f"{name} has no {wanted}, which is required (columns found: {found})")
    return Table(name, headers, rows)
