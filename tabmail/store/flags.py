"""Address flags: addresses known not to work. History is kept; clearing is always explicit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import AddressFlag, FlagKind
from tabmail.store.db import Database
from tabmail.store.sql import Sql, as_required_time, as_time

_COLUMNS = "address_key, address, kind, since, diagnostic, source, cleared_at, cleared_reason"


def _flag(r: Sequence[Any]) -> AddressFlag:
    """An AddressFlag from a row of ``_COLUMNS``."""
    return AddressFlag(r[0], r[1], FlagKind(r[2]), as_required_time(r[3]), r[4], r[5])


class FlagRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def active(self, keys: Iterable[str] | None = None) -> dict[str, AddressFlag]:
        """Active flags by address key (all of them when keys is None)."""
        params: dict[str, Any] = {}
        sql = f"SELECT {_COLUMNS} FROM address_flags WHERE cleared_at IS NULL"
        with self._db.sql() as q:
            if keys is not None:
                wanted = list(set(keys))
                if not wanted:
                    return {}
                sql += " AND " + q.one_of("address_key", "keys", wanted, params)
            rows = q.rows(sql + " ORDER BY since, id", params)
        return {r[0]: _flag(r) for r in rows}

    def add(
        self, address: str, kind: FlagKind, diagnostic: str, source: str, since: datetime | None = None
    ) -> bool:
        """Flag an address. Returns False when an active flag of the same kind already exists."""
        key = address_key(address)
        if key is None:
            return False
        with self._db.sql(write=True) as q:
            existing = q.one(
                "SELECT id FROM address_flags WHERE address_key = :key AND cleared_at IS NULL AND kind = :kind",
                {"key": key, "kind": kind.value},
            )
            if existing is not None:
                return False
            q.run(
                "INSERT INTO address_flags (address_key, address, kind, since, diagnostic, source) "
                "VALUES (:key, :address, :kind, :since, :diagnostic, :source)",
                {
                    "key": key,
                    "address": address,
                    "kind": kind.value,
                    "since": since or datetime.now(UTC),
                    "diagnostic": diagnostic[:2000],
                    "source": source,
                },
            )
            return True

    @staticmethod
    def _clear(q: Sql, where: str, params: dict[str, Any], reason: str) -> list[str]:
        """Clear the active flags ``where`` picks; their address keys."""
        where = f"cleared_at IS NULL AND {where}"
        keys = [r[0] for r in q.rows(f"SELECT address_key FROM address_flags WHERE {where}", params)]
        if keys:
            q.run(
                f"UPDATE address_flags SET cleared_at = :now, cleared_reason = :reason WHERE {where}",
                {**params, "now": datetime.now(UTC), "reason": reason},
            )
        return keys

    def clear(self, address: str, reason: str) -> int:
        """Clear every active flag of an address (an explicit act, recorded with its reason)."""
        with self._db.sql(write=True) as q:
            return len(self._clear(q, "address_key = :key", {"key": address_key(address)}, reason))

    def clear_source(self, source: str, reason: str) -> list[str]:
        """Clear every active flag ``source`` set (recorded with the reason); their address keys."""
        with self._db.sql(write=True) as q:
            return sorted(set(self._clear(q, "source = :source", {"source": source}, reason)))

    def history(self, address: str | None = None) -> list[tuple[AddressFlag, datetime | None, str | None]]:
        sql = f"SELECT {_COLUMNS} FROM address_flags"
        params: dict[str, Any] = {}
        if address is not None:
            sql += " WHERE address_key = :key"
            params["key"] = address_key(address)
        with self._db.sql() as q:
            rows = q.rows(sql + " ORDER BY since, id", params)
        return [(_flag(r), as_time(r[6]), r[7]) for r in rows]
