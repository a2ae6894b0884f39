"""Merge tournaments from one database into another that already holds data (``tabmail db copy
--merge``): a laptop's history joins the shared database.

The source's tournaments that the target does not have (by slug) are added with everything that
belongs to them (the rows ``copy._scopes`` picks for one tournament, minus the settings, which
stay the target's own). Every row with an integer key gets a new id in the target and every
reference to one is rewritten: the foreign keys (found in the schema) and the ids kept inside JSON
columns (``JSON_IDS``; every JSON column of the schema is in ``JSON_IDS`` or ``JSON_WITHOUT_IDS``,
or the merge refuses, and a test fails). Message ids are strings (ULIDs) and stay as they are; one
that the target already has is refused, as is an inbox record's key. A flag on an address that the
target already holds, identical, is not added twice.

One transaction on the target. The check, per tournament and table: the count and checksum of the
source's rows equal those of the target's rows with every id translated back to the source's; any
difference rolls everything back.
"""

from __future__ import annotations

import copy as _deep
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import JSON, Connection, Table, func, select
from sqlalchemy.exc import DBAPIError

from tabmail.store.copy import (
    CHUNK,
    CopyError,
    Progress,
    TableCheck,
    _Checksum,
    _ordered,
    _scopes,
    _snapshot,
    copy_rows,
    no_such_tournament,
)
from tabmail.store.db import Database
from tabmail.store.models import Base

# The settings are the target's configuration (sender, accounts, poll cursors): not merged.
NOT_MERGED = frozenset({"alembic_version", "settings"})

# (old id -> new id) per table, or the other way round when checking.
Ref = Callable[[str, Any], Any]


def _available_teams(value: Any, ref: Ref) -> Any:
    return None if value is None else [ref("teams", i) for i in value]


def _sheets(value: Any, ref: Ref) -> Any:
    sheets = _deep.deepcopy(value) or []
    for sheet in sheets:
        if sheet.get("adjudicator_id") is not None:
            sheet["adjudicator_id"] = ref("people", sheet["adjudicator_id"])
        for team in sheet.get("teams") or []:
            if team.get("team_id") is not None:
                team["team_id"] = ref("teams", team["team_id"])
            for speech in team.get("speeches") or []:
                if speech.get("speaker_id") is not None:
                    speech["speaker_id"] = ref("people", speech["speaker_id"])
    return sheets if value is not None else None


def _details(value: Any, ref: Ref) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("team_standings"), dict):
        return value
    out = dict(value)
    out["team_standings"] = {str(ref("teams", int(k))): v for k, v in value["team_standings"].items()}
    return out


# The ids kept inside JSON: (table, column) -> how to rewrite them.
JSON_IDS: dict[tuple[str, str], Callable[[Any, Ref], Any]] = {
    ("rounds", "available_teams"): _available_teams,  # team ids
    ("ballots", "sheets"): _sheets,  # adjudicator_id, team_id, speaker_id
    ("tournaments", "details"): _details,  # team_standings keyed by team id
}
# JSON columns read and found to hold no row ids (message ids are kept, so they may hold those).
JSON_WITHOUT_IDS = frozenset(
    {
        ("tournaments", "settings"),  # templates by kind
        ("teams", "break_categories"),  # names
        ("people", "details"),
        ("rounds", "motions"),
        ("messages", "context"),  # template values (teams by name, no ids)
        ("messages", "reasons"),
        ("status_events", "raw"),  # the provider's event
        ("inbox_messages", "detail"),
        ("settings", "value"),
    }
)


@dataclass
class TournamentMerge:
    slug: str
    skipped: bool = False
    checks: list[TableCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass
class MergeReport:
    source: str
    target: str
    tournament: str | None
    tournaments: list[TournamentMerge] = field(default_factory=list)
    committed: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tournaments)

    @property
    def mismatches(self) -> list[tuple[str, TableCheck]]:
        return [(t.slug, c) for t in self.tournaments for c in t.checks if not c.ok]


def merged_tables() -> list[Table]:
    """The tables a merge writes, parents first; refuses a schema it does not know."""
    tables = Base.metadata.tables
    known = set(_scopes(dict(tables), 0)) - NOT_MERGED
    missing = sorted(set(tables) - known - NOT_MERGED)
    if missing:
        raise CopyError(f"this tabmail does not know how to merge the table(s) {', '.join(missing)}")
    unread = sorted(
        f"{t.name}.{c.name}"
        for t in tables.values()
        for c in t.columns
        if isinstance(c.type, JSON) and (t.name, c.name) not in JSON_IDS.keys() | JSON_WITHOUT_IDS
    )
    if unread:
        raise CopyError(f"this tabmail does not know whether {', '.join(unread)} hold ids to rewrite")
    return [t for t in Base.metadata.sorted_tables if t.name in known]


def _chunks(conn: Connection, stmt: Any) -> Iterator[Sequence[Any]]:
    """Rows in chunks, streamed; the option on the statement (on the connection it would stay,
    and make the target's next INSERT a cursor)."""
    yield from conn.execute(stmt.execution_options(yield_per=CHUNK)).partitions()


def _renumbered(table: Table) -> bool:
    pk = list(table.primary_key.columns)
    return len(pk) == 1 and pk[0].type.python_type is int


class _Abort(Exception):
    """Leaves the target's transaction (rolled back) when a check fails."""


class Merger:
    """One merge from ``source`` into ``target`` (both opened, migrated to the same head)."""

    def __init__(self, source: Database, target: Database, progress: Progress | None = None) -> None:
        self.source = source
        self.target = target
        self.progress = progress or (lambda _t, _d, _n: None)
        self.tables = dict(Base.metadata.tables)
        self._next: dict[str, int] = {}
        # (table, new key, JSON values holding source ids): rewritten once all tables are written.
        self._json_later: list[tuple[Table, Any, dict[str, Any]]] = []

    def run(self, tournament: str | None = None, *, skip_existing: bool = False) -> MergeReport:
        start = time.perf_counter()
        report = MergeReport(self.source.describe(), self.target.describe(), tournament)
        plan = merged_tables()
        t = self.tables["tournaments"]
        with self.source.engine.connect() as src, self.target.engine.connect() as dst:
            _snapshot(src, self.source)
            wanted = [(int(i), str(s)) for i, s in src.execute(select(t.c.id, t.c.slug).order_by(t.c.id))]
            if tournament is not None:
                wanted = [(i, s) for i, s in wanted if s == tournament]
                if not wanted:
                    raise no_such_tournament(src, self.source, tournament)
            try:
                with dst.begin():
                    todo = self._refusals(src, dst, wanted, report, skip_existing)
                    for tid, slug in todo:
                        entry = TournamentMerge(slug)
                        report.tournaments.append(entry)
                        self._merge_one(src, dst, plan, int(tid), entry)
                    if not report.ok:
                        raise _Abort
                report.committed = True
            except _Abort:
                pass  # rolled back; the report says which tables differ
            src.rollback()
        report.seconds = time.perf_counter() - start
        return report

    def _refusals(
        self,
        src: Connection,
        dst: Connection,
        wanted: list[Any],
        report: MergeReport,
        skip_existing: bool,
    ) -> list[tuple[int, str]]:
        """What is to be merged; refuses (before anything is written) a tournament the target
        already has (unless skipped), a message id or an inbox record it already holds."""
        t = self.tables["tournaments"]
        there = {s for (s,) in dst.execute(select(t.c.slug))}
        todo = []
        for tid, slug in wanted:
            if slug in there:
                if not skip_existing:
                    raise CopyError(
                        f"the tournament {slug!r} is already in {self.target.describe()}; nothing was "
                        "written (--skip-existing merges the others)"
                    )
                report.tournaments.append(TournamentMerge(slug, skipped=True))
            else:
                todo.append((int(tid), str(slug)))
        for table, column, what in (
            ("messages", "id", "message id"),
            ("inbox_messages", "key", "inbox record"),
        ):
            for tid, slug in todo:
                scope = _scopes(self.tables, tid)[table]
                col = self.tables[table].c[column]
                for chunk in _chunks(src, select(col).where(scope)):
                    values = [v for (v,) in chunk]
                    clash = dst.execute(select(col).where(col.in_(values)).limit(1)).scalar_one_or_none()
                    if clash is not None:
                        raise CopyError(
                            f"the {what} {clash!r} of tournament {slug!r} is already in "
                            f"{self.target.describe()}; nothing was written"
                        )
        return todo

    def _merge_one(
        self, src: Connection, dst: Connection, plan: list[Table], tid: int, entry: TournamentMerge
    ) -> None:
        maps: dict[str, dict[Any, Any]] = {}
        source_sums: dict[str, _Checksum] = {}
        scopes = _scopes(self.tables, tid)
        self._json_later.clear()
        for table in plan:
            maps[table.name] = {}
            source_sums[table.name] = self._write(src, dst, table, scopes[table.name], maps)
        for table, key, held in self._json_later:
            pk = next(iter(table.primary_key.columns))
            cols = [c.key for c in table.columns]
            row = [held.get(c) for c in cols]
            new = self._translate(table, row, maps)
            fixed = {c: new[cols.index(c)] for c in held if held[c] is not None}
            dst.execute(table.update().where(pk == key).values(**fixed))
        new_tid = maps["tournaments"][tid]
        back = {name: {new: old for old, new in m.items()} for name, m in maps.items()}
        target_scopes = _scopes(self.tables, new_tid)
        for table in plan:
            got = source_sums[table.name]
            if table.name == "address_flags":
                written = self._flags_back(dst, table, back)
            else:
                written = self._sum_back(dst, table, target_scopes[table.name], back)
            entry.checks.append(TableCheck(table.name, got.rows, written.rows, got.hex, written.hex))

    def _translate(
        self, table: Table, row: Sequence[Any], maps: dict[str, dict[Any, Any]], *, json: bool = True
    ) -> list[Any]:
        """A row with every id rewritten through ``maps`` (the ids inside JSON too if ``json``)."""

        def ref(name: str, value: Any) -> Any:
            try:
                return maps[name][value]
            except KeyError:
                raise CopyError(
                    f"a row of {table.name} refers to {name} id {value!r}, which is not part of the "
                    "tournament; nothing was written"
                ) from None

        values = list(row)
        for i, col in enumerate(table.columns):
            if values[i] is None:
                continue
            if col.primary_key and _renumbered(table):
                values[i] = ref(table.name, values[i])
            for fk in col.foreign_keys:
                if _renumbered(fk.column.table):
                    values[i] = ref(fk.column.table.name, values[i])
            rewrite = JSON_IDS.get((table.name, col.name))
            if rewrite is not None and json:
                values[i] = rewrite(values[i], ref)
        return values

    def _write(
        self, src: Connection, dst: Connection, table: Table, scope: Any, maps: dict[str, dict[Any, Any]]
    ) -> _Checksum:
        name = table.name
        total = int(src.execute(select(func.count()).select_from(table).where(scope)).scalar_one())
        stmt = select(table).where(scope).order_by(*_ordered(table, self.source.is_sqlite))
        keys = [c.key for c in table.columns]
        renumber = _renumbered(table)
        pk_key = next(iter(table.primary_key.columns)).key
        self_refs = [fk.parent.key for fk in table.foreign_keys if fk.column.table is table]
        json_cols = [c.key for c in table.columns if (name, c.name) in JSON_IDS]
        later: list[tuple[Any, dict[str, Any]]] = []
        checksum = _Checksum(table)
        self.progress(name, 0, total)
        for chunk in _chunks(src, stmt):
            checksum.add_all(chunk)
            if renumber:
                fresh = self._new_ids(dst, table, len(chunk))
                maps[name].update(
                    (row[keys.index(pk_key)], new) for row, new in zip(chunk, fresh, strict=True)
                )
            rows = []
            for row in chunk:
                values = dict(zip(keys, self._translate(table, row, maps, json=False), strict=True))
                # The ids inside JSON are rewritten once every table is written: a tournament's
                # standings name teams, written after it.
                if json_cols and any(values[k] is not None for k in json_cols):
                    self._json_later.append((table, values[pk_key], {k: values[k] for k in json_cols}))
                held = {k: values[k] for k in self_refs if values[k] is not None}
                if held:  # a resend's original may come later in key order
                    later.append((values[pk_key], held))
                    values.update(dict.fromkeys(held))
                rows.append(values)
            if name == "address_flags":
                rows = self._new_flags(dst, table, rows, chunk, maps[name])
            self._insert(dst, table, rows)
            self.progress(name, checksum.rows, total)
        for key, held in later:
            dst.execute(table.update().where(table.c[pk_key] == key).values(**held))
        return checksum

    def _new_flags(
        self,
        dst: Connection,
        table: Table,
        rows: list[dict[str, Any]],
        chunk: Sequence[Any],
        ids: dict[Any, Any],
    ) -> list[dict[str, Any]]:
        """An identical flag the target already has (the same address shared by two
        tournaments) is not added again: the source's flag maps onto it."""
        out = []
        for row, old in zip(rows, chunk, strict=True):
            same = [
                table.c[k] == v if v is not None else table.c[k].is_(None)
                for k, v in row.items()
                if k != "id"
            ]
            found = dst.execute(select(table.c.id).where(*same).limit(1)).scalar_one_or_none()
            if found is None:
                out.append(row)
            else:
                ids[old.id] = found
        return out

    def _new_ids(self, dst: Connection, table: Table, n: int) -> list[int]:
        """``n`` fresh ids, increasing, so the target's key order is the source's."""
        col = next(iter(table.primary_key.columns)).name
        if not self.target.is_sqlite:
            seq = f"pg_get_serial_sequence('{table.name}', '{col}')"
            got = dst.exec_driver_sql(f"SELECT nextval({seq}) FROM generate_series(1, {int(n)})").all()
            return sorted(int(v) for (v,) in got)
        if table.name not in self._next:
            top = dst.execute(select(func.max(table.c[col]))).scalar_one_or_none()
            self._next[table.name] = int(top or 0) + 1
        first = self._next[table.name]
        self._next[table.name] = first + n
        return list(range(first, first + n))

    def _insert(self, dst: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            if self.target.is_sqlite:
                dst.execute(table.insert(), rows)
            else:
                copy_rows(dst, table, rows)  # COPY FROM STDIN: an INSERT per row is slow
        except (DBAPIError, psycopg.Error) as exc:
            orig = exc.orig if isinstance(exc, DBAPIError) else exc
            reason = str(orig).strip().splitlines()[0] if orig is not None else type(exc).__name__
            raise CopyError(
                f"the table {table.name} could not be written to {self.target.describe()}: {reason}; "
                "nothing was written"
            ) from None

    def _rows_back(
        self, dst: Connection, stmt: Any, table: Table, back: dict[str, dict[Any, Any]]
    ) -> Iterator[list[Any]]:
        for chunk in _chunks(dst, stmt):
            yield [self._translate(table, row, back) for row in chunk]

    def _sum_back(
        self, dst: Connection, table: Table, scope: Any, back: dict[str, dict[Any, Any]]
    ) -> _Checksum:
        checksum = _Checksum(table)
        stmt = select(table).where(scope).order_by(*_ordered(table, self.target.is_sqlite))
        for rows in self._rows_back(dst, stmt, table, back):
            checksum.add_all(rows)
        return checksum

    def _flags_back(self, dst: Connection, table: Table, back: dict[str, dict[Any, Any]]) -> _Checksum:
        """The flags the source's map onto (added or already there), in the source's order."""
        checksum = _Checksum(table)
        mine = sorted(back["address_flags"])
        rows: list[list[Any]] = []
        for i in range(0, len(mine), 1000):
            stmt = select(table).where(table.c.id.in_(mine[i : i + 1000]))
            for chunk in self._rows_back(dst, stmt, table, back):
                rows.extend(chunk)
        # A flag shared by two of the merged tournaments maps back to the first one's id only.
        checksum.add_all(sorted(rows, key=lambda r: r[0]))
        return checksum
