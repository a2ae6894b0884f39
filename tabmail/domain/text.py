"""Text that crosses a trust boundary: names from an import, cells of a CSV we write, lines
printed to a terminal.

- ``clean_name``: what an imported name is stored as (no control characters: a terminal escape,
  a NUL or a line break in a name is never what the tab room meant).
- ``csv_cell``: one CSV cell made inert for spreadsheets (OWASP's rule for CSV injection).
- ``terminal_safe``: control characters shown as visible escapes, for text going to a terminal.
"""

from __future__ import annotations

import unicodedata

# OWASP "CSV Injection": a cell starting with one of these is read as a formula by Excel,
# LibreOffice and Google Sheets; a leading single quote makes it text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell that no spreadsheet runs as a formula. Non-text passes through."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(values: dict[str, object]) -> dict[str, object]:
    """Every cell of a ``csv.DictWriter`` row through ``csv_cell``."""
    return {key: csv_cell(value) for key, value in values.items()}


def human_size(size: float) -> str:
    """A byte count for a person: "50 MB", "8.5 MB", "16 kB", "900 bytes" (binary units)."""
    for unit, scale in (("MB", 1024 * 1024), ("kB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(size)} bytes"


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"  # C0, DEL and C1 (ESC, NUL, CR, LF, CSI, ...)


def clean_name(value: object) -> str:
    """An imported name as stored: control characters dropped (line breaks and tabs become a
    space), runs of spaces collapsed, trimmed. Other characters (accents, emoji) are kept."""
    if value is None:
        return ""
    text = str(value)
    if any(_is_control(c) for c in text):
        text = "".join(" " if c in "\t\n\r\v\f\x85" else "" if _is_control(c) else c for c in text)
    return " ".join(text.split())


_TERMINAL_TABLES: dict[str, dict[int, str]] = {}


def _terminal_table(allowed: str) -> dict[int, str]:
    table = _TERMINAL_TABLES.get(allowed)
    if table is None:
        codes = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
        table = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in codes if chr(c) not in allowed}
        _TERMINAL_TABLES[allowed] = table
    return table


def terminal_safe(text: str, allowed: str = "\n\t") -> str:
    """``text`` with every control character except those in ``allowed`` written as a visible
    escape (``\\x1b``), so a name cannot move the cursor, recolour or retitle the terminal."""
    return text.translate(_terminal_table(allowed))
