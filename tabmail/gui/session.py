"""The window reopens where it was: the page (a tournament's participants, a round, its
"Tournament messages", a Problems view), its search text, "Problems only", and the selected message or participant.

Everything is written to the window's QSettings as it changes (so a crash loses nothing), under
``session/<database>/`` (ids mean something only in their own database: ``--db`` another file
opens that file's last place), and applied once at start by ``restore()``. A remembered round, message or person
that no longer exists is skipped quietly: the window then opens as it would have anyway.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from PySide6.QtCore import QObject, QSettings

from tabmail.gui.navigator import PARTICIPANTS, PROBLEMS, ROUND, TOURNAMENT, TOURNAMENT_WIDE

log = logging.getLogger(__name__)

NODE = "session/node"  # "round:12", "tournament:3", "participants:3", "problems:0", "tournament_wide:3"
ROUND_SEARCH = "session/round/search"
ROUND_PROBLEMS_ONLY = "session/round/problems_only"
ROUND_MESSAGE = "session/round/message"
PROBLEMS_SEARCH = "session/problems/search"
PROBLEMS_MESSAGE = "session/problems/message"
PEOPLE_SEARCH = "session/participants/search"
PEOPLE_PERSON = "session/participants/person"


def _node_text(key: tuple[str, int] | None) -> str:
    return f"{key[0]}:{key[1]}" if key else ""


def _node_key(text: Any) -> tuple[str, int] | None:
    if not isinstance(text, str) or ":" not in text:
        return None
    kind, _, ident = text.partition(":")
    try:
        return kind, int(ident)
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SessionMemory(QObject):
    """Remembers ``window``'s place in ``qsettings`` and puts it back with ``restore()``."""

    def __init__(self, window: Any, qsettings: QSettings) -> None:
        super().__init__(window)
        self.window = window
        self.qsettings = qsettings
        self._restoring = False
        where = window.ctx.db.describe()
        self._database = hashlib.sha256(where.encode("utf-8")).hexdigest()[:12]
        nav = window.navigator
        for signal in (
            nav.tournament_selected,
            nav.round_selected,
            nav.tournament_wide_selected,
            nav.problems_selected,
        ):
            signal.connect(lambda *_: self._save_node())
        rounds = window.round_view
        rounds.search.textChanged.connect(lambda text: self._save(ROUND_SEARCH, text))
        rounds.problems_only.toggled.connect(lambda on: self._save(ROUND_PROBLEMS_ONLY, bool(on)))
        rounds.message_selected.connect(lambda mid: self._save(ROUND_MESSAGE, mid))
        problems = window.problems_page
        problems.search.textChanged.connect(lambda text: self._save(PROBLEMS_SEARCH, text))
        problems.table.selectionModel().currentRowChanged.connect(
            lambda *_: self._save(PROBLEMS_MESSAGE, problems.current_message_id() or "")
        )
        people = window.participants_page
        people.search.textChanged.connect(lambda text: self._save(PEOPLE_SEARCH, text))
        people.person_selected.connect(lambda pid: self._save(PEOPLE_PERSON, int(pid)))

    def _key(self, key: str) -> str:
        return f"session/{self._database}/" + key.removeprefix("session/")

    def _save(self, key: str, value: Any) -> None:
        if not self._restoring:
            self.qsettings.setValue(self._key(key), value)

    def _save_node(self) -> None:
        self._save(NODE, _node_text(self.window.navigator.selected_key()))

    def saved(self) -> dict[str, Any]:
        keys = (
            NODE,
            ROUND_SEARCH,
            ROUND_PROBLEMS_ONLY,
            ROUND_MESSAGE,
            PROBLEMS_SEARCH,
            PROBLEMS_MESSAGE,
            PEOPLE_SEARCH,
            PEOPLE_PERSON,
        )
        return {key: self.qsettings.value(self._key(key)) for key in keys}

    def restore(self) -> bool:
        """Go back to the remembered place; False when there was none (or it is gone)."""
        saved = self.saved()  # read everything first: selecting the page changes what is saved
        key = _node_key(saved[NODE])
        if key is None:
            return False
        w = self.window
        self._restoring = True
        try:
            if not w.navigator.select(key):
                log.info("the page shown last (%s) is gone; opening as usual", saved[NODE])
                return False
            kind = key[0]
            if kind in (ROUND, TOURNAMENT_WIDE):  # both are the round view
                page = w.round_view
                page.search.setText(_text(saved[ROUND_SEARCH]))
                page.problems_only.setChecked(str(saved[ROUND_PROBLEMS_ONLY]).lower() == "true")
                if _text(saved[ROUND_MESSAGE]):
                    page.select_message(_text(saved[ROUND_MESSAGE]))
            elif kind == PROBLEMS:
                page = w.problems_page
                page.search.setText(_text(saved[PROBLEMS_SEARCH]))
                if _text(saved[PROBLEMS_MESSAGE]):
                    page.select_message(_text(saved[PROBLEMS_MESSAGE]))
            elif kind in (TOURNAMENT, PARTICIPANTS):
                page = w.participants_page
                page.search.setText(_text(saved[PEOPLE_SEARCH]))
                try:
                    person = int(saved[PEOPLE_PERSON] or -1)
                except (TypeError, ValueError):
                    person = -1
                if person >= 0:
                    page.select_person(person)
        finally:
            self._restoring = False
        self._save_node()
        return True
