"""A tournament merged into a database that holds another one (tabmail db copy --merge) opens
in the round view as it did in the source: every round's and the tournament-wide batches' tree,
cell by cell, though every id but the messages' is new."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from sqlalchemy import select, update

from tabmail.gui.bridge import EventBridge
from tabmail.gui.rounds import RoundMessagesModel
from tabmail.gui.theme import Theme
from tabmail.services.context import AppContext
from tabmail.services.dbcopy import merge_database
from tabmail.store.db import Database
from tabmail.store.models import BatchRow, RoundRow, TournamentRow
from tests.keyrings import MemoryKeyring
from tests.servers.postgres import PostgresServer
from tests.test_db_merge import _laptop, _shared

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qapp")]


def _tree(model: RoundMessagesModel, parent: QModelIndex) -> list[Any]:
    rows = []
    for r in range(model.rowCount(parent)):
        cells = [
            model.index(r, c, parent).data(Qt.ItemDataRole.DisplayRole)
            for c in range(model.columnCount(parent))
        ]
        rows.append((cells, _tree(model, model.index(r, 0, parent))))
    return rows


def _views(url: str, slug: str) -> dict[str, Any]:
    ctx = AppContext.open(url, keyring_backend=MemoryKeyring())
    bridge = EventBridge(ctx.bus)
    try:
        t = next(t for t in ctx.tournaments.list_all() if t.slug == slug)
        model = RoundMessagesModel(ctx, Theme(), bridge)
        shown: dict[str, Any] = {}
        for rnd in ctx.tournaments.rounds(t.id):
            model.load(rnd.id)
            shown[rnd.name] = _tree(model, QModelIndex())
        model.load_tournament_wide(t.id)
        shown["tournament-wide"] = _tree(model, QModelIndex())
        return shown
    finally:
        bridge.detach()
        ctx.close()


def test_a_merged_tournament_shows_in_the_round_view_as_in_the_source(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    laptop = _laptop(tmp_path / "laptop.sqlite3")
    db = Database(laptop)
    try:  # the demo's batch belongs to its first round, so a round's view shows messages
        with db.session() as s:
            demo = s.scalars(select(TournamentRow).where(TournamentRow.slug == "demo-open")).one()
            first = s.scalars(
                select(RoundRow).where(RoundRow.tournament_id == demo.id).order_by(RoundRow.seq)
            ).first()
            assert first is not None
            s.execute(update(BatchRow).where(BatchRow.tournament_id == demo.id).values(round_id=first.id))
    finally:
        db.dispose()
    room = postgres_server.fresh_database()
    try:
        _shared(room)
        before = {slug: _views(laptop, slug) for slug in ("demo-open", "spring-cup")}
        assert merge_database(laptop, room, keyring_backend=MemoryKeyring()).committed
        for slug, shown in before.items():
            assert _views(room, slug) == shown
        rounds = before["demo-open"]
        assert sum(len(children) for _cells, children in next(iter(rounds.values()))) == 4  # messages shown
        assert sum(len(children) for _cells, children in before["spring-cup"]["tournament-wide"]) == 4
    finally:
        postgres_server.drop(room)
