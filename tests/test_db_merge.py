"""tabmail db copy --merge: a laptop's tournaments join a database that already holds others,
with new ids and every reference rewritten (foreign keys and the ids inside JSON), in both
directions between SQLite and a real PostgreSQL; refusals; a mismatch rolls everything back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, func, select, update

from tabmail.cli.main import main
from tabmail.services.context import AppContext
from tabmail.services.dbcopy import CopyError, copy_database, merge_database
from tabmail.store.db import Database
from tabmail.store.merge import JSON_IDS, JSON_WITHOUT_IDS, NOT_MERGED, merged_tables
from tabmail.store.models import (
    AddressFlagRow,
    Base,
    BatchRow,
    MessageBodyRow,
    MessageRow,
    PersonRow,
    RoundRow,
    TeamRow,
    TournamentRow,
)
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer
from tests.test_db_copy import RAW, T0, _fill

KEYS = MemoryKeyring()


def _laptop(path: Path) -> str:
    """The copy tests' database (demo-open with its ballots, spring-cup), with a round's
    available teams and the site's team standings (ids inside JSON) and valid flag kinds."""
    _fill(str(path))
    db = Database(str(path))
    try:
        with db.session() as s:
            demo = s.scalars(select(TournamentRow).where(TournamentRow.slug == "demo-open")).one()
            teams = s.scalars(
                select(TeamRow).where(TeamRow.tournament_id == demo.id).order_by(TeamRow.id)
            ).all()
            rnd = s.scalars(
                select(RoundRow).where(RoundRow.tournament_id == demo.id).order_by(RoundRow.seq)
            ).first()
            assert rnd is not None and len(teams) > 3
            rnd.available_teams = [t.id for t in teams[:3]]
            demo.details = {"team_standings": {str(t.id): {"points": 3.0, "wins": 1.0} for t in teams[:2]}}
            s.execute(update(AddressFlagRow).values(kind="hard"))
    finally:
        db.dispose()
    return str(path)


def _shared(url: str) -> None:
    """A tab room's database with a tournament of its own (its ids are the ones the laptop's
    tournaments use), and the flag the laptop also holds for zoe@example.org."""
    ctx = AppContext.open(url, keyring_backend=KEYS)
    try:
        ctx.settings.set("from_address", "room@example.org")
        with ctx.db.session() as s:
            t = TournamentRow(slug="winter-open", name="Winter Open")
            s.add(t)
            s.flush()
            team = TeamRow(tournament_id=t.id, key="w1", name="Winter A")
            s.add(team)
            s.flush()
            people = [
                PersonRow(
                    tournament_id=t.id, key=f"w{i}", name=f"Winter {i}", role="speaker", team_id=team.id
                )
                for i in range(50)
            ]
            s.add_all(people)
            s.add(RoundRow(tournament_id=t.id, seq=1, name="Round 1", available_teams=[team.id]))
            s.flush()
            batch = BatchRow(
                tournament_id=t.id,
                tournament_slug=t.slug,
                event="draw",
                created_at=T0,
                subject_template="Draw",
                text_template="Hi",
                backend="smtp",
            )
            s.add(batch)
            s.flush()
            s.add(
                MessageRow(
                    id="winter-00",
                    batch_id=batch.id,
                    person_id=people[0].id,
                    recipient_name="Winter 0",
                    address="w0@example.org",
                    address_key="w0@example.org",
                    created_at=T0,
                    raw=b"winter\r\n",
                )
            )
            s.add(
                AddressFlagRow(
                    address_key="zoe@example.org",
                    address="zoe@example.org",
                    kind="hard",
                    since=T0,
                    source="sendgrid",
                )
            )
    finally:
        ctx.close()


def _dump(url: str, slug: str) -> dict[str, Any]:
    """One tournament as the program shows it, ids replaced by keys: `tabmail status --json`
    without its ids, the rounds' available teams, the ballots' sheets, the message bytes."""
    ctx = AppContext.open(url, keyring_backend=KEYS)
    try:
        t = next(t for t in ctx.tournaments.list_all() if t.slug == slug)
        with ctx.db.session() as s:
            team_key = dict(
                s.execute(select(TeamRow.id, TeamRow.key).where(TeamRow.tournament_id == t.id)).all()
            )
            person_key = dict(
                s.execute(select(PersonRow.id, PersonRow.key).where(PersonRow.tournament_id == t.id)).all()
            )
            bodies = dict(
                s.execute(
                    select(MessageBodyRow.message_id, MessageBodyRow.raw)
                    .join(MessageRow)
                    .join(BatchRow)
                    .where(BatchRow.tournament_id == t.id)
                ).all()
            )
            flags = s.scalar(select(func.count()).select_from(AddressFlagRow))
        rounds = []
        for rnd in ctx.tournaments.rounds(t.id):
            draw = ctx.tournaments.draw(t.id, rnd.seq)
            rounds.append(
                (
                    rnd.name,
                    sorted(team_key[i] for i in rnd.available_team_ids or ()),
                    sorted(
                        repr(
                            [
                                (
                                    person_key.get(sh.adjudicator_id),  # type: ignore[arg-type]
                                    [
                                        (
                                            team_key.get(st.team_id),
                                            st.score,
                                            [person_key.get(sp.speaker_id) for sp in st.speeches],
                                        )  # type: ignore[arg-type]
                                        for st in sh.teams
                                    ],
                                )
                                for sh in b.sheets
                            ]
                        )
                        for b in draw.ballots.values()
                    ),
                )
            )
        standings = ctx.tournaments.team_standings(t.id)
        return {
            "rounds": rounds,
            "standings": None if standings is None else {team_key[k]: v for k, v in standings.items()},
            "bodies": bodies,
            "flags": flags,
        }
    finally:
        ctx.close()


def _status(url: str, slug: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`tabmail status` as printed, but for the batches' ids."""
    capsys.readouterr()
    assert main(["--db", url, "status", "--tournament", slug]) == 0
    out = capsys.readouterr().out
    assert out.startswith("batch ")
    return re.sub(r"^batch \d+:", "batch:", out, flags=re.M)  # the batch's id is new


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.fresh_database()
    yield url
    postgres_server.drop(url)


def test_every_table_and_json_column_with_ids_is_handled() -> None:
    """A migration adding a table, or a JSON column, the merge has not been taught about fails
    here (and the merge refuses): a reference left as it was would point at another row."""
    assert {t.name for t in merged_tables()} == set(Base.metadata.tables) - NOT_MERGED
    json_cols = {
        (t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns if isinstance(c.type, JSON)
    }
    assert json_cols == set(JSON_IDS) | JSON_WITHOUT_IDS
    assert not set(JSON_IDS) & JSON_WITHOUT_IDS


def test_sqlite_laptop_joins_a_postgresql_room_with_another_tournament(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    _shared(pg_url)
    winter_before = _dump(pg_url, "winter-open")
    expected = {slug: _dump(laptop, slug) for slug in ("demo-open", "spring-cup")}
    status = {slug: _status(laptop, slug, capsys) for slug in ("demo-open", "spring-cup")}

    report = merge_database(laptop, pg_url, keyring_backend=KEYS)
    assert report.committed and report.ok
    assert [t.slug for t in report.tournaments] == ["demo-open", "spring-cup"]
    assert {c.table for c in report.tournaments[0].checks} == {t.name for t in merged_tables()}

    for slug in ("demo-open", "spring-cup"):
        got = _dump(pg_url, slug)
        want = expected[slug]
        assert got["rounds"] == want["rounds"]
        assert got["standings"] == want["standings"]
        assert got["bodies"] == want["bodies"]  # exact bytes
        assert _status(pg_url, slug, capsys) == status[slug]
    assert expected["demo-open"]["rounds"][0][1]  # the available teams were checked, not empty
    assert _dump(pg_url, "demo-open")["bodies"]["demo-open-01"] == RAW + b"demo-open-01"
    # The room's own tournament is as it was; zoe's identical flag is not doubled (2 on the
    # laptop, 1 of them zoe's, plus the room's: 2).
    after = _dump(pg_url, "winter-open")
    assert after["rounds"] == winter_before["rounds"] and after["bodies"] == winter_before["bodies"]
    assert after["flags"] == 2
    # The room's settings stay its own.
    ctx = AppContext.open(pg_url, keyring_backend=KEYS)
    try:
        assert ctx.settings.get("from_address") == "room@example.org"
        # New rows keep coming after the merged ones.
        with ctx.db.session() as s:
            top = s.scalar(select(func.max(PersonRow.id)))
            row = PersonRow(tournament_id=1, key="late", name="Late", role="speaker")
            s.add(row)
            s.flush()
            assert top is not None and row.id > top
    finally:
        ctx.close()


def test_postgresql_to_a_sqlite_file_with_another_tournament(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    assert copy_database(laptop, pg_url, keyring_backend=KEYS).committed
    home = tmp_path / "home.sqlite3"
    _shared(str(home))
    want, status = _dump(pg_url, "spring-cup"), _status(pg_url, "spring-cup", capsys)
    capsys.readouterr()
    assert (
        main(["db", "copy", "--merge", "--from", pg_url, "--to", str(home), "--tournament", "spring-cup"])
        == 0
    )
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()[1:-1]]
    assert {line[0] for line in lines} == {"spring-cup"}
    assert {line[1] for line in lines} == {t.name for t in merged_tables()}
    assert all(line[-1] == "ok" for line in lines)
    assert "spring-cup merged" in out.splitlines()[-1]
    got = _dump(str(home), "spring-cup")
    assert got["rounds"] == want["rounds"] and got["bodies"] == want["bodies"]
    assert _status(str(home), "spring-cup", capsys) == status
    ctx = AppContext.open(home, keyring_backend=KEYS)
    try:
        assert sorted(t.slug for t in ctx.tournaments.list_all()) == ["spring-cup", "winter-open"]
    finally:
        ctx.close()


def _count_all(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in Base.metadata.sorted_tables
            }
    finally:
        db.dispose()


def test_a_tournament_the_target_has_is_refused_or_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    room = tmp_path / "room.sqlite3"
    _shared(str(room))
    assert merge_database(laptop, room, tournament="spring-cup", keyring_backend=KEYS).committed
    before = _count_all(str(room))
    capsys.readouterr()
    assert main(["db", "copy", "--merge", "--from", laptop, "--to", str(room)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the tournament 'spring-cup' is already in" in err[0]
    assert _count_all(str(room)) == before
    assert main(["db", "copy", "--merge", "--skip-existing", "--from", laptop, "--to", str(room)]) == 0
    out, err2 = capsys.readouterr()
    assert "skipped tournament spring-cup: the target already has it" in err2
    assert {line.split()[0] for line in out.splitlines()[1:-1]} == {"demo-open"}
    assert _count_all(str(room))["tournaments"] == 3


def test_a_message_id_the_target_holds_is_refused_in_one_line(tmp_path: Path) -> None:
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    room = tmp_path / "room.sqlite3"
    _shared(str(room))
    db = Database(str(laptop))
    try:
        with db.session() as s:
            s.execute(update(MessageRow).where(MessageRow.id == "spring-cup-!resend").values(id="winter-00"))
    finally:
        db.dispose()
    before = _count_all(str(room))
    with pytest.raises(
        CopyError, match=r"^the message id 'winter-00' of tournament 'spring-cup' is already in"
    ):
        merge_database(laptop, room, keyring_backend=KEYS)
    assert _count_all(str(room)) == before


def test_a_mismatch_rolls_the_merge_back_and_exits_1(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that changes what it is given (a real trigger on the server) is caught."""
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    _shared(pg_url)
    db = Database(pg_url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION flip() RETURNS trigger AS $$ BEGIN "
            "NEW.raw := NEW.raw || '\\x00'::bytea; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER flip BEFORE INSERT ON message_bodies FOR EACH ROW EXECUTE FUNCTION flip()"
        )
    db.dispose()
    before = _count_all(pg_url)
    capsys.readouterr()
    assert main(["db", "copy", "--merge", "--from", laptop, "--to", pg_url]) == 1
    out, err = capsys.readouterr()
    bad = [line.split()[:2] for line in out.splitlines() if "MISMATCH" in line]
    assert bad == [["demo-open", "message_bodies"], ["spring-cup", "message_bodies"]]
    assert "nothing was committed" in err
    assert _count_all(pg_url) == before


def test_an_unknown_tournament_is_one_line_naming_those_there_are(tmp_path: Path) -> None:
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    room = tmp_path / "room.sqlite3"
    with pytest.raises(CopyError, match=r"no tournament 'nope' .*demo-open, spring-cup"):
        merge_database(laptop, room, tournament="nope", keyring_backend=KEYS)
    assert not room.exists()  # a file the merge created and did not fill goes again
