"""Names sort the way people read them: locale collation (QCollator), never code points.

"Céline" sorts before "Chiara". Under the C/POSIX locale (no locale configured, as on a bare
server or a test run) Qt would compare code points, so English collation stands in for it.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QCollator, QCollatorSortKey, QLocale, Qt


@lru_cache(maxsize=1)
def collator() -> QCollator:
    locale = QLocale()
    if locale.language() in (QLocale.Language.C, QLocale.Language.AnyLanguage):
        locale = QLocale(QLocale.Language.English)
    c = QCollator(locale)
    c.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    c.setNumericMode(True)
    return c


@lru_cache(maxsize=50_000)
def sort_key(text: str) -> QCollatorSortKey:
    """Cached: the same names come back in every round and every re-sort."""
    return collator().sortKey(text)


def compare(a: str, b: str) -> int:
    return collator().compare(a, b)
