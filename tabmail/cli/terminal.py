"""What the CLI writes to a terminal shows control characters as escapes.

Imports strip control characters from names (domain.text.clean_name), but a database written by
an older tabmail, a provider's event text or an address can still hold one. When standard
output or standard error is a terminal, every write goes through ``terminal_safe``: a name can
never move the cursor, recolour the screen or retitle the window. Pipes and files get the data
as stored (``--json`` output is escaped by JSON itself).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tabmail.domain.text import terminal_safe


class _SafeStream:
    """A text stream whose ``write`` escapes control characters other than ``allowed``."""

    def __init__(self, stream: TextIO, allowed: str) -> None:
        self._stream = stream
        self._allowed = allowed

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text, self._allowed))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    @property
    def raw(self) -> TextIO:
        """The terminal itself, for tabmail's own control characters (a progress line's \\r)."""
        return self._stream

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def raw_stderr() -> TextIO:
    """Standard error without the escaping (for a progress line that rewrites itself)."""
    stream = sys.stderr
    return stream.raw if isinstance(stream, _SafeStream) else stream


def guard_terminal_streams() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` when they are terminals (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, _SafeStream):
            continue
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        if tty:
            setattr(sys, name, _SafeStream(stream, "\n\t"))
