"""Copy a whole database, or one tournament's record, from one database to another (SQLite or
PostgreSQL, either direction), verified by row counts and checksums per table.

The target must hold no data: every row keeps its primary key, so references (foreign keys and
the ids kept inside JSON, such as a round's available teams or a ballot's sheets) stay right
without being rewritten. The rows are read in a canonical order (primary key, strings compared
byte-wise on both engines) in chunks, so memory stays bounded whatever the size; the source is
read in one snapshot and the target written in one transaction, committed only when every
table's count and checksum match. A checksum is the SHA-256 of the rows as SQLAlchemy hands them
back (the same values whatever the engine), so a message's exact bytes are part of it.

Every table of the schema has its place in ``_scopes`` (how its rows belong to one tournament);
a table added by a future migration and missing there makes the copy refuse, and a test fail.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    LargeBinary,
    Table,
    func,
    not_,
    or_,
    select,
    union,
)
from sqlalchemy.exc import DBAPIError

from tabmail.store.db import Database, DatabaseError
from tabmail.store.models import Base

CHUNK = 2000
NOT_COPIED = frozenset({"alembic_version"})  # the target's own migrations write it

# (table, rows done, rows in all): called after each chunk and at each table's end.
Progress = Callable[[str, int, int], None]


class CopyError(DatabaseError):
    """The copy was refused or failed; nothing was committed to the target."""


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass
class CopyReport:
    source: str
    target: str
    tournament: str | None
    checks: list[TableCheck] = field(default_factory=list)
    committed: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def mismatches(self) -> list[TableCheck]:
        return [c for c in self.checks if not c.ok]


def copied_tables() -> frozenset[str]:
    """The tables the copy knows how to copy (all of the models', minus NOT_COPIED)."""
    return frozenset(_scopes(_tables(), 0))


def no_such_tournament(src: Connection, source: Database, slug: str) -> CopyError:
    """The error for a tournament ``source`` does not have, naming (some of) those it has."""
    t = _tables()["tournaments"]
    known = [s for (s,) in src.execute(select(t.c.slug).order_by(t.c.slug).limit(11))]
    shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
    return CopyError(
        f"there is no tournament {slug!r} in {source.describe()} (its tournaments: {shown or 'none'})"
    )


def _tables() -> dict[str, Table]:
    return dict(Base.metadata.tables)


def _scopes(t: dict[str, Table], tid: int) -> dict[str, ColumnElement[bool]]:
    """For each table, which of its rows belong to tournament ``tid``."""
    people = select(t["people"].c.id).where(t["people"].c.tournament_id == tid)
    rounds = select(t["rounds"].c.id).where(t["rounds"].c.tournament_id == tid)
    debates = select(t["debates"].c.id).where(t["debates"].c.round_id.in_(rounds))
    batches = select(t["batches"].c.id).where(t["batches"].c.tournament_id == tid)
    messages = select(t["messages"].c.id).where(t["messages"].c.batch_id.in_(batches))
    # Flags are kept per address: those of the tournament's people and recipients go along.
    addresses = union(
        select(t["people"].c.email_key).where(
            t["people"].c.tournament_id == tid, t["people"].c.email_key.is_not(None)
        ),
        select(t["messages"].c.address_key).where(t["messages"].c.batch_id.in_(batches)),
    )
    inbox = t["inbox_messages"].c
    return {
        "tournaments": t["tournaments"].c.id == tid,
        "institutions": t["institutions"].c.tournament_id == tid,
        "venues": t["venues"].c.tournament_id == tid,
        "teams": t["teams"].c.tournament_id == tid,
        "people": t["people"].c.tournament_id == tid,
        "address_changes": t["address_changes"].c.person_id.in_(people),
        "rounds": t["rounds"].c.tournament_id == tid,
        "debates": t["debates"].c.round_id.in_(rounds),
        "debate_teams": t["debate_teams"].c.debate_id.in_(debates),
        "debate_adjudicators": t["debate_adjudicators"].c.debate_id.in_(debates),
        "ballots": t["ballots"].c.debate_id.in_(debates),
        "batches": t["batches"].c.tournament_id == tid,
        "messages": t["messages"].c.batch_id.in_(batches),
        "message_bodies": t["message_bodies"].c.message_id.in_(messages),
        "status_events": t["status_events"].c.message_id.in_(messages),
        "problem_resolutions": t["problem_resolutions"].c.message_id.in_(messages),
        "address_flags": t["address_flags"].c.address_key.in_(addresses),
        "inbox_messages": or_(
            inbox.message_id.in_(messages), (inbox.message_id.is_(None)) & inbox.person_id.in_(people)
        ),
        # The settings go along (sender, templates...), not the poll cursors of the tab room's
        # accounts: a copy taken home polls nothing.
        "settings": not_(t["settings"].c.key.like("state.%")),
    }


def _ordered(table: Table, is_sqlite: bool) -> list[ColumnElement[Any]]:
    """The primary key, strings compared byte-wise (SQLite's BINARY; PostgreSQL's "C")."""
    cols: list[ColumnElement[Any]] = []
    for col in table.primary_key.columns:
        python_type = col.type.python_type
        cols.append(col.collate("C") if python_type is str and not is_sqlite else col)
    return cols


class _Checksum:
    """SHA-256 over a table's rows in the canonical order: each row as the ``repr`` of the
    values SQLAlchemy hands back (str, int, bool, aware UTC datetime, bytes, None: the same on
    both engines), JSON values as sorted-key JSON text, one line per row."""

    def __init__(self, table: Table) -> None:
        self.rows = 0
        self._hash = hashlib.sha256()
        self._json = [i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)]
        self._binary = [i for i, c in enumerate(table.columns) if isinstance(c.type, LargeBinary)]

    def add_all(self, rows: Sequence[Sequence[Any]]) -> None:
        lines = []
        for row in rows:
            values = list(row)
            for i in self._json:
                if values[i] is not None:
                    values[i] = json.dumps(
                        values[i], sort_keys=True, ensure_ascii=False, separators=(",", ":")
                    )
            for i in self._binary:
                if values[i] is not None:
                    values[i] = bytes(values[i])
            lines.append(repr(tuple(values)))
        if lines:
            self.rows += len(lines)
            self._hash.update(("\n".join(lines) + "\n").encode("utf-8", "backslashreplace"))

    @property
    def hex(self) -> str:
        return self._hash.hexdigest()


def _chunks(conn: Connection, stmt: Any) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(yield_per=CHUNK).execute(stmt)
    yield from result.partitions()


def _snapshot(conn: Connection, db: Database) -> None:
    """Read the source as of one moment, whatever other processes write meanwhile."""
    if db.is_sqlite:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("BEGIN")  # a deferred transaction: one read snapshot until it ends
    else:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def _counts(conn: Connection, tables: dict[str, Table], names: Sequence[str]) -> dict[str, int]:
    return {
        name: int(conn.execute(select(func.count()).select_from(tables[name])).scalar_one()) for name in names
    }


def copy_rows(dst: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY FROM STDIN through the same connection and transaction, each value
    bound as SQLAlchemy binds it (UTC times made naive, JSON serialised): a multi-row INSERT
    spends most of its time in the driver parsing the statement."""
    dialect = dst.dialect
    binders = [(c.key, c.type._cached_bind_processor(dialect)) for c in table.columns]
    names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in table.columns)
    raw = dst.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    quoted = dialect.identifier_preparer.quote(table.name)
    with raw.cursor() as cur, cur.copy(f"COPY {quoted} ({names}) FROM STDIN") as copy:  # type: ignore[arg-type]
        for row in rows:
            copy.write_row([bind(row[key]) if bind is not None else row[key] for key, bind in binders])


class _Mismatch(Exception):
    """Leaves the target's transaction (rolled back) when a table's check fails."""


class Copier:
    """One copy from ``source`` to ``target`` (both opened, migrated to the same head)."""

    def __init__(self, source: Database, target: Database, progress: Progress | None = None) -> None:
        self.source = source
        self.target = target
        self.progress = progress or (lambda _t, _d, _n: None)
        self.tables = _tables()

    def _plan(self) -> list[Table]:
        known = copied_tables()
        missing = sorted(set(self.tables) - known - NOT_COPIED)
        if missing:
            raise CopyError(f"this tabmail does not know how to copy the table(s) {', '.join(missing)}")
        return [t for t in Base.metadata.sorted_tables if t.name in known]

    def run(self, tournament: str | None = None) -> CopyReport:
        start = time.perf_counter()
        report = CopyReport(self.source.describe(), self.target.describe(), tournament)
        plan = self._plan()
        with self.source.engine.connect() as src, self.target.engine.connect() as dst:
            _snapshot(src, self.source)
            scopes = self._scopes_for(src, tournament)
            self._refuse_non_empty(dst, plan)
            try:
                with dst.begin():
                    quiet = self._quiet_triggers(dst)
                    sums = {t.name: self._copy_table(src, dst, t, scopes.get(t.name)) for t in plan}
                    self._reset_sequences(dst, plan)
                    if not self.target.is_sqlite:
                        # Fresh statistics: until autovacuum came by, the planner would take
                        # the 100,000 new rows for an empty table and scan where it should not.
                        for table in plan:
                            dst.exec_driver_sql(
                                f"ANALYZE {dst.dialect.identifier_preparer.quote(table.name)}"
                            )
                    for quiet_table, trigger in quiet:
                        dst.exec_driver_sql(f'ALTER TABLE "{quiet_table}" ENABLE TRIGGER "{trigger}"')
                    for table in plan:
                        got, written = sums[table.name], self._checksum(dst, table, self.target)
                        report.checks.append(
                            TableCheck(table.name, got.rows, written.rows, got.hex, written.hex)
                        )
                    if not report.ok:
                        raise _Mismatch
                report.committed = True
            except _Mismatch:
                pass  # rolled back; the report says which tables differ
            src.rollback()
        report.seconds = time.perf_counter() - start
        return report

    @staticmethod
    def _checksum(conn: Connection, table: Table, db: Database) -> _Checksum:
        checksum = _Checksum(table)
        for chunk in _chunks(conn, select(table).order_by(*_ordered(table, db.is_sqlite))):
            checksum.add_all(chunk)
        return checksum

    def _scopes_for(self, src: Connection, tournament: str | None) -> dict[str, ColumnElement[bool]]:
        if tournament is None:
            return {}
        t = self.tables["tournaments"]
        tid = src.execute(select(t.c.id).where(t.c.slug == tournament)).scalar_one_or_none()
        if tid is None:
            raise no_such_tournament(src, self.source, tournament)
        return _scopes(self.tables, int(tid))

    def _refuse_non_empty(self, dst: Connection, plan: list[Table]) -> None:
        counts = _counts(dst, self.tables, [t.name for t in plan])
        dst.rollback()
        held = {k: v for k, v in counts.items() if v}
        if held:
            main = ("tournaments", "messages", "settings")
            shown = ", ".join(f"{held[k]:,} {k}" for k in main if k in held)
            shown = shown or ", ".join(f"{v:,} {k}" for k, v in list(held.items())[:3])
            raise CopyError(
                f"the target database {self.target.describe()} is not empty ({shown}); "
                "copy into a new file or a new, empty PostgreSQL database"
            )

    def _copy_table(
        self, src: Connection, dst: Connection, table: Table, scope: ColumnElement[bool] | None
    ) -> _Checksum:
        name = table.name
        count_stmt = select(func.count()).select_from(table)
        stmt = select(table).order_by(*_ordered(table, self.source.is_sqlite))
        if scope is not None:
            count_stmt = count_stmt.where(scope)
            stmt = stmt.where(scope)
        total = int(src.execute(count_stmt).scalar_one())
        # A column referring to its own table (a resend's original) is written once every row
        # is there: the rows come in key order, not in the order they refer to each other.
        self_refs = [fk.parent for fk in table.foreign_keys if fk.column.table is table]
        later: list[tuple[Any, dict[str, Any]]] = []
        pk = list(table.primary_key.columns)
        checksum = _Checksum(table)
        keys = [c.key for c in table.columns]
        self.progress(name, 0, total)
        for chunk in _chunks(src, stmt):
            rows = []
            checksum.add_all(chunk)
            for row in chunk:
                values = dict(zip(keys, row, strict=True))
                held = {c.key: values[c.key] for c in self_refs if values[c.key] is not None}
                if held:
                    later.append((tuple(values[c.key] for c in pk), held))
                    values.update(dict.fromkeys(held))
                rows.append(values)
            self._insert(dst, table, rows)
            self.progress(name, checksum.rows, total)
        for key, held in later:
            where = [c == v for c, v in zip(pk, key, strict=True)]
            dst.execute(table.update().where(*where).values(**held))
        return checksum

    def _insert(self, dst: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            if self.target.is_sqlite:
                dst.execute(table.insert(), rows)  # sqlite3's executemany: one prepared statement
            else:
                copy_rows(dst, table, rows)
        except (DBAPIError, psycopg.Error) as exc:
            orig = exc.orig if isinstance(exc, DBAPIError) else exc
            reason = str(orig).strip().splitlines()[0] if orig is not None else type(exc).__name__
            raise CopyError(
                f"the table {table.name} could not be written to {self.target.describe()}: {reason}; "
                "nothing was committed"
            ) from None

    def _quiet_triggers(self, dst: Connection) -> list[tuple[str, str]]:
        """On PostgreSQL, the copy's own transaction leaves out the live-change triggers (those
        calling tabmail_notify: a NOTIFY per few dozen rows, for 100,000 messages; the target
        was empty, so no window showed any of it) except the tournaments' ones: other windows
        learn that tournaments arrived when the copy commits. Any other trigger (an audit a
        server's owner added) still fires. Returns the (table, trigger) pairs switched off, to
        be switched on again before the commit. A role that does not own the tables copies
        with the triggers on."""
        if self.target.is_sqlite:
            return []
        found = dst.exec_driver_sql(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace s ON s.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND s.nspname = current_schema() "
            "AND strpos(p.prosrc, 'tabmail_notify') > 0 ORDER BY c.relname, t.tgname"
        ).all()
        pairs = [
            (str(table), str(name))
            for table, name in found
            if table in self.tables and table != "tournaments"
        ]
        try:
            with dst.begin_nested():
                for table, name in pairs:
                    dst.exec_driver_sql(f'ALTER TABLE "{table}" DISABLE TRIGGER "{name}"')
        except DBAPIError:  # not the owner: the triggers stay on (slower, same result)
            return []
        return pairs

    def _reset_sequences(self, dst: Connection, plan: list[Table]) -> None:
        """PostgreSQL's id sequences start after the copied ids (SQLite takes max + 1 itself)."""
        if self.target.is_sqlite:
            return
        for table in plan:
            pk: list[Column[Any]] = list(table.primary_key.columns)
            if len(pk) != 1 or pk[0].type.python_type is not int:
                continue
            col = pk[0].name
            dst.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{col}'), "
                f"COALESCE((SELECT MAX({col}) FROM {table.name}), 0) + 1, false)"
            )
