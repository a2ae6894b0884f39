"""Undoable edits: every address edit and every "marked resolved" goes on the main window's
QUndoStack, so Edit → Undo names what it undoes ("Undo Change Ada's address").

Each command has already happened when it is pushed: its first ``redo`` does nothing. Undo and
redo go through the same service calls as the edit itself; a failure is reported through
``on_error`` and the command is dropped from the stack (it can no longer be replayed).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from tabmail.domain.errors import TabmailError


class DoneCommand(QUndoCommand):
    """An edit already made (``forward``) and how to take it back (``backward``)."""

    def __init__(
        self,
        text: str,
        forward: Callable[[], object],
        backward: Callable[[], object],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(text)
        self._forward, self._backward = forward, backward
        self._first = True
        self._on_error = on_error

    def _run(self, step: Callable[[], object]) -> None:
        try:
            step()
        except TabmailError as exc:
            if self._on_error is not None:
                self._on_error(str(exc))
            self.setObsolete(True)

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self._run(self._forward)

    def undo(self) -> None:
        self._run(self._backward)
