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
from tabmail.store.sql import Json, as_time, in_list

# One statement for a new setting and a changed one (SQLite and PostgreSQL both take it).
_WRITE = (
    "INSERT INTO settings (key, value, changed_by, changed_on, changed_at) "
    "VALUES (:key, :value, :who, :machine, :at) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, changed_by = excluded.changed_by, "
    "changed_on = excluded.changed_on, changed_at = excluded.changed_at"
)


class SettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _stored(self, key: str) -> str:
        spec = SETTINGS.get(key)
        return f"{key}@{self._db.actor.machine}" if spec is not None and spec.per_machine else key

    def _row(self, stored_key: str) -> tuple[bool, Any]:
        """(stored at all, its value)."""
        with self._db.sql() as q:
            row = q.one("SELECT value FROM settings WHERE key = :key", {"key": stored_key})
            return (False, None) if row is None else (True, q.json(row[0]))

    def get(self, key: str) -> Any:
        found, value = self._row(self._stored(key))
        if found:
            return value
        spec = SETTINGS.get(key)
        return spec.default if spec else None

    def is_set(self, key: str) -> bool:
        """True when ``key`` was stored (even with its default value), False when it is a default."""
        return self._row(self._stored(key))[0]

    def _stored_rows(self) -> list[tuple[str, Any, str | None, str | None, datetime | None]]:
        """(setting, value, who, machine, when) of every setting stored."""
        stored = {self._stored(k): k for k in SETTINGS}
        params: dict[str, Any] = {}
        sql = "SELECT key, value, changed_by, changed_on, changed_at FROM settings WHERE key "
        with self._db.sql() as q:
            rows = q.rows(sql + in_list("k", list(stored), params), params)
            return [(stored[r[0]], q.json(r[1]), r[2], r[3], as_time(r[4])) for r in rows]

    def all(self) -> dict[str, Any]:
        values = {k: spec.default for k, spec in SETTINGS.items()}
        for key, value, *_ in self._stored_rows():
            values[key] = value
        return values

    def changes(self) -> dict[str, tuple[str | None, str | None, datetime | None]]:
        """key -> (who, machine, when) of the last change of each stored setting (None: before
        tabmail kept it)."""
        return {key: (who, machine, at) for key, _value, who, machine, at in self._stored_rows()}

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
        params = {
            "key": stored_key,
            "value": Json(value),
            "who": actor.who,
            "machine": actor.machine,
            "at": datetime.now(UTC),
        }
        with self._db.sql(write=True) as q:
            q.run(_WRITE, params)

    # State (poll cursors and the like) shares the table under a "state." prefix.
    def get_state(self, key: str, default: Any = None) -> Any:
        found, value = self._row("state." + key)
        return value if found else default

    def set_state(self, key: str, value: Any) -> None:
        self._write("state." + key, value)
