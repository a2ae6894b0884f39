"""Non-secret settings and small persistent state, in the database's settings table.

Each change records who made it, on which machine and when (the database's actor). A setting
kept per machine (``user.name``) is stored as ``key@host``: laptops sharing a database each
keep their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tabmail.domain.actor import USER_NAME_SETTING, local_actor
from tabmail.domain.config import SETTINGS, parse_setting
from tabmail.store.db import Database
from tabmail.store.models import SettingRow


class SettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _stored(self, key: str) -> str:
        spec = SETTINGS.get(key)
        return f"{key}@{self._db.actor.machine}" if spec is not None and spec.per_machine else key

    def get(self, key: str) -> Any:
        with self._db.session() as s:
            row = s.get(SettingRow, self._stored(key))
            if row is not None:
                return row.value
        spec = SETTINGS.get(key)
        return spec.default if spec else None

    def is_set(self, key: str) -> bool:
        """True when ``key`` was stored (even with its default value), False when it is a default."""
        with self._db.session() as s:
            return s.get(SettingRow, self._stored(key)) is not None

    def all(self) -> dict[str, Any]:
        values = {k: spec.default for k, spec in SETTINGS.items()}
        stored = {self._stored(k): k for k in SETTINGS}
        with self._db.session() as s:
            for row in s.query(SettingRow).filter(SettingRow.key.in_(list(stored))):
                values[stored[row.key]] = row.value
        return values

    def changes(self) -> dict[str, tuple[str | None, str | None, datetime | None]]:
        """key -> (who, machine, when) of the last change of each stored setting (None: before
        tabmail kept it)."""
        stored = {self._stored(k): k for k in SETTINGS}
        with self._db.session() as s:
            return {
                stored[r.key]: (r.changed_by, r.changed_on, r.changed_at)
                for r in s.query(SettingRow).filter(SettingRow.key.in_(list(stored)))
            }

    def set_text(self, key: str, text: str) -> Any:
        """Parse and store a setting given as text; raises SettingError naming the problem."""
        value = parse_setting(key, text)
        self.set(key, value)
        return value

    def set(self, key: str, value: Any) -> None:
        self._write(self._stored(key), value)
        if key == USER_NAME_SETTING:  # what this process records from now on
            self._db.actor = local_actor(str(value or ""))

    def _write(self, stored_key: str, value: Any) -> None:
        actor = self._db.actor
        with self._db.session() as s:
            row = s.get(SettingRow, stored_key)
            if row is None:
                row = SettingRow(key=stored_key, value=value)
                s.add(row)
            else:
                row.value = value
            row.changed_by, row.changed_on, row.changed_at = actor.who, actor.machine, datetime.now(UTC)

    # State (poll cursors and the like) shares the table under a "state." prefix.
    def get_state(self, key: str, default: Any = None) -> Any:
        with self._db.session() as s:
            row = s.get(SettingRow, "state." + key)
            return default if row is None else row.value

    def set_state(self, key: str, value: Any) -> None:
        self._write("state." + key, value)
