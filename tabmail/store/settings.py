"""Non-secret settings and small persistent state, in the database's settings table."""

from __future__ import annotations

from typing import Any

from tabmail.domain.config import SETTINGS, parse_setting
from tabmail.store.db import Database
from tabmail.store.models import SettingRow


class SettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> Any:
        with self._db.session() as s:
            row = s.get(SettingRow, key)
            if row is not None:
                return row.value
        spec = SETTINGS.get(key)
        return spec.default if spec else None

    def is_set(self, key: str) -> bool:
        """True when ``key`` was stored (even with its default value), False when it is a default."""
        with self._db.session() as s:
            return s.get(SettingRow, key) is not None

    def all(self) -> dict[str, Any]:
        values = {k: spec.default for k, spec in SETTINGS.items()}
        with self._db.session() as s:
            for row in s.query(SettingRow).filter(SettingRow.key.in_(list(SETTINGS))):
                values[row.key] = row.value
        return values

    def set_text(self, key: str, text: str) -> Any:
        """Parse and store a setting given as text; raises SettingError naming the problem."""
        value = parse_setting(key, text)
        self.set(key, value)
        return value

    def set(self, key: str, value: Any) -> None:
        with self._db.session() as s:
            row = s.get(SettingRow, key)
            if row is None:
                s.add(SettingRow(key=key, value=value))
            else:
                row.value = value

    # State (poll cursors and the like) shares the table under a "state." prefix.
    def get_state(self, key: str, default: Any = None) -> Any:
        with self._db.session() as s:
            row = s.get(SettingRow, "state." + key)
            return default if row is None else row.value

    def set_state(self, key: str, value: Any) -> None:
        self.set("state." + key, value)
