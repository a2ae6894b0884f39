"""Address flags: addresses known not to work. History is kept; clearing is always explicit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select

from tabmail.domain.addresses import address_key
from tabmail.domain.notification import AddressFlag, FlagKind
from tabmail.store.db import Database
from tabmail.store.models import AddressFlagRow


def flag_from_row(r: AddressFlagRow) -> AddressFlag:
    return AddressFlag(r.address_key, r.address, FlagKind(r.kind), r.since, r.diagnostic, r.source)


class FlagRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def active(self, keys: Iterable[str] | None = None) -> dict[str, AddressFlag]:
        """Active flags by address key (all of them when keys is None)."""
        with self._db.session() as s:
            q = select(AddressFlagRow).where(AddressFlagRow.cleared_at.is_(None))
            if keys is not None:
                wanted = list(set(keys))
                if not wanted:
                    return {}
                q = q.where(self._db.one_of(AddressFlagRow.address_key, wanted))
            out: dict[str, AddressFlag] = {}
            for r in s.scalars(q.order_by(AddressFlagRow.since)):
                out[r.address_key] = flag_from_row(r)
            return out

    def add(
        self, address: str, kind: FlagKind, diagnostic: str, source: str, since: datetime | None = None
    ) -> bool:
        """Flag an address. Returns False when an active flag of the same kind already exists."""
        key = address_key(address)
        if key is None:
            return False
        with self._db.session() as s:
            existing = s.scalar(
                select(AddressFlagRow).where(
                    AddressFlagRow.address_key == key,
                    AddressFlagRow.cleared_at.is_(None),
                    AddressFlagRow.kind == kind.value,
                )
            )
            if existing is not None:
                return False
            s.add(
                AddressFlagRow(
                    address_key=key,
                    address=address,
                    kind=kind.value,
                    since=since or datetime.now(UTC),
                    diagnostic=diagnostic[:2000],
                    source=source,
                )
            )
            return True

    def clear(self, address: str, reason: str) -> int:
        """Clear every active flag of an address (an explicit act, recorded with its reason)."""
        key = address_key(address)
        with self._db.session() as s:
            rows = list(
                s.scalars(
                    select(AddressFlagRow).where(
                        AddressFlagRow.address_key == key, AddressFlagRow.cleared_at.is_(None)
                    )
                )
            )
            now = datetime.now(UTC)
            for r in rows:
                r.cleared_at = now
                r.cleared_reason = reason
            return len(rows)

    def clear_source(self, source: str, reason: str) -> list[str]:
        """Clear every active flag ``source`` set (recorded with the reason); their address keys."""
        with self._db.session() as s:
            rows = list(
                s.scalars(
                    select(AddressFlagRow).where(
                        AddressFlagRow.source == source, AddressFlagRow.cleared_at.is_(None)
                    )
                )
            )
            now = datetime.now(UTC)
            for r in rows:
                r.cleared_at = now
                r.cleared_reason = reason
            return sorted({r.address_key for r in rows})

    def history(self, address: str | None = None) -> list[tuple[AddressFlag, datetime | None, str | None]]:
        with self._db.session() as s:
            q = select(AddressFlagRow)
            if address is not None:
                q = q.where(AddressFlagRow.address_key == address_key(address))
            return [
                (flag_from_row(r), r.cleared_at, r.cleared_reason)
                for r in s.scalars(q.order_by(AddressFlagRow.since))
            ]
